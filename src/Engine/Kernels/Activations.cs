// Element-wise activation kernels. The ReLU forward pass is TensorPrimitives.Max(x, 0) or fused into the GEMM
// store; what is here is the backward mask, which needs the forward output (y > 0 exactly where x > 0).
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Cnn.Engine.Kernels.Reference;

namespace Cnn.Engine.Kernels;

/// <summary>SIMD activation kernels.</summary>
public static class Activations
{
    /// <summary>dx[i] = y[i] &gt; 0 ? dy[i] : 0. dx may alias dy.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    public static void ReluBackward(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx)
    {
        int n = y.Length;
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i + 16 <= n; i += 16)
            {
                Vector512<float> mask = Vector512.GreaterThan(Vector512.Create(y.Slice(i, 16)), Vector512<float>.Zero);
                Vector512.BitwiseAnd(mask, Vector512.Create(dy.Slice(i, 16))).CopyTo(dx.Slice(i, 16));
            }
        }
        if (Vector.IsHardwareAccelerated) // Vector<float>: 8 lanes with AVX2, 4 with ARM64's 128-bit vectors; the tail after AVX-512
        {
            for (; i + Vector<float>.Count <= n; i += Vector<float>.Count)
            {
                Vector<int> mask = Vector.GreaterThan(new Vector<float>(y.Slice(i, Vector<float>.Count)), Vector<float>.Zero);
                Vector.BitwiseAnd(Vector.AsVectorSingle(mask), new Vector<float>(dy.Slice(i, Vector<float>.Count))).CopyTo(dx.Slice(i, Vector<float>.Count));
            }
        }
        ActivationsReference.ReluBackward(y[i..], dy[i..], dx[i..]);
    }
}
