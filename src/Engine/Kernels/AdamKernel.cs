// One Adam step over a contiguous slice of the flat parameter buffer, with Keras's formulation of the bias
// correction (folded into the step size, epsilon added to sqrt(v) uncorrected):
//   g = gradientSum / batch;  m += (g - m)(1 - beta1);  v += (g*g - v)(1 - beta2);  w -= alpha * m / (sqrt(v) + eps)
//   alpha = lr * sqrt(1 - beta2^t) / (1 - beta1^t), computed once per step by the caller.
// Each lane performs the same IEEE operations in the same order as the scalar reference (no fma), so the
// result is bit-identical to it. One exception that changes no bit: when the batch is a power of two (64 by
// default) the division g = gradientSum / batch becomes a multiplication by its reciprocal, which is exact
// (2^-k is representable), so both round the same real number, subnormals included; it saves one of the two
// vector divisions per element, the slowest instructions of the update. AVX-512 takes 16 lanes at a time,
// Vector<float> (8 lanes with AVX2, 4 with ARM64's 128-bit vectors) what is left or all of it, scalar the rest.
//
// m and v are stored flushed to zero when they fall below the smallest normal float (2^-126), as TensorFlow's
// CPU kernels do by running with flush-to-zero. Without it, the first moment of a parameter whose gradient has
// become zero (a dead ReLU unit) decays by beta1 a step until it is subnormal, and then sticks there for good:
// m * (1 - beta1) rounds to zero, so m never reaches it. On x86 every vector operation that reads or produces a
// subnormal takes a microcode assist; after two epochs of seed-cnn 9% of m was subnormal, spread over nearly
// every vector, and the update took 14 times as long (measured: 37 us against 514 us for 46,661 parameters).
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Cnn.Engine.Kernels.Reference;

namespace Cnn.Engine.Kernels;

/// <summary>The Adam update kernel.</summary>
public static class AdamKernel
{
    /// <summary>Updates w, m and v in place from the summed gradient of a batch of <paramref name="batch"/> samples.</summary>
    /// <remarks>
    /// Never inlined: inlined into a large caller, the JIT can run out of inlining budget for the vector helpers and
    /// leave them as calls with the vectors spilled to the stack. That made the parameter server's update 2.3 times
    /// slower once dynamic PGO had recompiled its caller (340 us against 150 us a step, measured).
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    public static void Update(Span<float> w, Span<float> m, Span<float> v, ReadOnlySpan<float> gradientSum, float batch,
        float alpha, float beta1, float beta2, float epsilon)
    {
        int n = w.Length;
        if (m.Length != n || v.Length != n || gradientSum.Length != n)
            throw new ArgumentException($"w, m, v and the gradient sum must have one length; they have {n}, {m.Length}, {v.Length} and {gradientSum.Length}");
        int i = 0;
        if (Vector512.IsHardwareAccelerated && n >= 16)
        {
            ref float pw = ref MemoryMarshal.GetReference(w);
            ref float pm = ref MemoryMarshal.GetReference(m);
            ref float pv = ref MemoryMarshal.GetReference(v);
            ref float pg = ref MemoryMarshal.GetReference(gradientSum);
            Vector512<float> vb = Vector512.Create(batch), vAlpha = Vector512.Create(alpha), vEps = Vector512.Create(epsilon);
            Vector512<float> oneMinusB1 = Vector512.Create(1f - beta1), oneMinusB2 = Vector512.Create(1f - beta2);
            Vector512<float> minNormal = Vector512.Create(AdamReference.MinNormal), inverse = Vector512.Create(1f / batch);
            // g = sum * (1 / batch) when that is exact (see the file header), else sum / batch: a loop-invariant,
            // always-predicted branch.
            bool exactReciprocal = IsExactReciprocal(batch);
            for (; i + 16 <= n; i += 16)
            {
                nuint at = (nuint)i;
                Vector512<float> sum = Vector512.LoadUnsafe(ref pg, at);
                Vector512<float> g = exactReciprocal ? sum * inverse : sum / vb;
                Vector512<float> mi = Vector512.LoadUnsafe(ref pm, at);
                Vector512<float> vi = Vector512.LoadUnsafe(ref pv, at);
                mi += (g - mi) * oneMinusB1;
                vi += (g * g - vi) * oneMinusB2;
                mi = Vector512.ConditionalSelect(Vector512.LessThan(Vector512.Abs(mi), minNormal), Vector512<float>.Zero, mi);
                vi = Vector512.ConditionalSelect(Vector512.LessThan(Vector512.Abs(vi), minNormal), Vector512<float>.Zero, vi);
                Vector512<float> wi = Vector512.LoadUnsafe(ref pw, at) - vAlpha * mi / (Vector512.Sqrt(vi) + vEps);
                mi.StoreUnsafe(ref pm, at);
                vi.StoreUnsafe(ref pv, at);
                wi.StoreUnsafe(ref pw, at);
            }
        }
        if (Vector.IsHardwareAccelerated)
            i = UpdateVector(w, m, v, gradientSum, i, batch, alpha, beta1, beta2, epsilon);
        AdamReference.Update(w[i..], m[i..], v[i..], gradientSum[i..], batch, alpha, beta1, beta2, epsilon);
    }

    // The same body on Vector<float> (8 lanes with AVX2, 4 with ARM64's 128-bit vectors), from element i on: what the
    // 16-lane loop left, or everything on a machine without AVX-512. Returns where it stopped.
    private static int UpdateVector(Span<float> w, Span<float> m, Span<float> v, ReadOnlySpan<float> gradientSum, int i, float batch,
        float alpha, float beta1, float beta2, float epsilon)
    {
        ref float pw = ref MemoryMarshal.GetReference(w);
        ref float pm = ref MemoryMarshal.GetReference(m);
        ref float pv = ref MemoryMarshal.GetReference(v);
        ref float pg = ref MemoryMarshal.GetReference(gradientSum);
        Vector<float> vb = new(batch), vAlpha = new(alpha), vEps = new(epsilon);
        Vector<float> oneMinusB1 = new(1f - beta1), oneMinusB2 = new(1f - beta2);
        Vector<float> minNormal = new(AdamReference.MinNormal), inverse = new(1f / batch);
        bool exactReciprocal = IsExactReciprocal(batch);
        for (; i + Vector<float>.Count <= w.Length; i += Vector<float>.Count)
        {
            nuint at = (nuint)i;
            Vector<float> sum = Vector.LoadUnsafe(ref pg, at);
            Vector<float> g = exactReciprocal ? sum * inverse : sum / vb;
            Vector<float> mi = Vector.LoadUnsafe(ref pm, at);
            Vector<float> vi = Vector.LoadUnsafe(ref pv, at);
            mi += (g - mi) * oneMinusB1;
            vi += (g * g - vi) * oneMinusB2;
            mi = Vector.ConditionalSelect(Vector.LessThan(Vector.Abs(mi), minNormal), Vector<float>.Zero, mi);
            vi = Vector.ConditionalSelect(Vector.LessThan(Vector.Abs(vi), minNormal), Vector<float>.Zero, vi);
            Vector<float> wi = Vector.LoadUnsafe(ref pw, at) - vAlpha * mi / (Vector.SquareRoot(vi) + vEps);
            mi.StoreUnsafe(ref pm, at);
            vi.StoreUnsafe(ref pv, at);
            wi.StoreUnsafe(ref pw, at);
        }
        return i;
    }

    /// <summary>True when x / <paramref name="batch"/> equals x * (1 / batch) for every float x: batch is a power of two whose reciprocal is a normal float.</summary>
    public static bool IsExactReciprocal(float batch) =>
        float.IsNormal(batch) && batch > 0 && (BitConverter.SingleToInt32Bits(batch) & 0x7FFFFF) == 0 && float.IsNormal(1f / batch);
}
