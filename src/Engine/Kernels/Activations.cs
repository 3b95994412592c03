// Element-wise activation kernels. The ReLU forward pass is TensorPrimitives.Max(x, 0) or fused into the GEMM
// store; what is here is the backward mask, which needs the forward output (y > 0 exactly where x > 0).
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
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i + 8 <= n; i += 8)
            {
                Vector256<float> mask = Vector256.GreaterThan(Vector256.Create(y.Slice(i, 8)), Vector256<float>.Zero);
                Vector256.BitwiseAnd(mask, Vector256.Create(dy.Slice(i, 8))).CopyTo(dx.Slice(i, 8));
            }
        }
        if (Vector128.IsHardwareAccelerated) // ARM64's loop; on wider machines it takes a tail of 4 to 7
        {
            for (; i + 4 <= n; i += 4)
            {
                Vector128<float> mask = Vector128.GreaterThan(Vector128.Create(y.Slice(i, 4)), Vector128<float>.Zero);
                Vector128.BitwiseAnd(mask, Vector128.Create(dy.Slice(i, 4))).CopyTo(dx.Slice(i, 4));
            }
        }
        ActivationsReference.ReluBackward(y[i..], dy[i..], dx[i..]);
    }
}
