// One Adam step over a contiguous slice of the flat parameter buffer, with Keras's formulation of the bias
// correction (folded into the step size, epsilon added to sqrt(v) uncorrected):
//   g = gradientSum / batch;  m += (g - m)(1 - beta1);  v += (g*g - v)(1 - beta2);  w -= alpha * m / (sqrt(v) + eps)
//   alpha = lr * sqrt(1 - beta2^t) / (1 - beta1^t), computed once per step by the caller.
// Each lane performs the same IEEE operations in the same order as the scalar reference (no fma), so the
// result is bit-identical to it. One exception that changes no bit: when the batch is a power of two (64 by
// default) the division g = gradientSum / batch becomes a multiplication by its reciprocal, which is exact
// (2^-k is representable), so both round the same real number, subnormals included; it saves one of the two
// vector divisions per element, the slowest instructions of the update.
//
// One body on Vector<float>: 8 lanes on x64 (AVX2, and AVX-512 machines too, where .NET keeps Vector<float> at 256
// bits), 4 on ARM64's 128-bit vectors; the scalar reference takes the tail. A 512-bit copy of the loop is not
// kept: the update is bound by the divider and the square root, whose throughput per element is about the same
// at both widths here. AdamBenchmarks over all 93,322 parameters: 51.6 and 57.5 us with the 512-bit copy, 56.4
// and 62.7 us without it, 49.3 to 58.8 us with Vector512 switched off; at most 5 us of a step of milliseconds.
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
        float alpha, float beta1, float beta2, float epsilon) =>
        Update(w, m, v, gradientSum, batch, alpha, beta1, beta2, epsilon, default, default, default);

    /// <summary>
    /// The same update, storing w, m and v as they were before it into <paramref name="savedW"/>,
    /// <paramref name="savedM"/> and <paramref name="savedV"/> (all empty: nothing saved), so that it can be undone. The
    /// parameter server saves what a tail segment's early update replaces; in the same pass the old values are
    /// stored from registers, where a copy beforehand read all three arrays once more.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    public static void Update(Span<float> w, Span<float> m, Span<float> v, ReadOnlySpan<float> gradientSum, float batch,
        float alpha, float beta1, float beta2, float epsilon, Span<float> savedW, Span<float> savedM, Span<float> savedV)
    {
        int n = w.Length;
        if (m.Length != n || v.Length != n || gradientSum.Length != n)
            throw new ArgumentException($"w, m, v and the gradient sum must have one length; they have {n}, {m.Length}, {v.Length} and {gradientSum.Length}");
        bool save = !savedW.IsEmpty || !savedM.IsEmpty || !savedV.IsEmpty;
        if (save && (savedW.Length != n || savedM.Length != n || savedV.Length != n))
            throw new ArgumentException($"the saved w, m and v must have the length of w, {n}; they have {savedW.Length}, {savedM.Length} and {savedV.Length}");
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            ref float pw = ref MemoryMarshal.GetReference(w);
            ref float pm = ref MemoryMarshal.GetReference(m);
            ref float pv = ref MemoryMarshal.GetReference(v);
            ref float pg = ref MemoryMarshal.GetReference(gradientSum);
            ref float psw = ref MemoryMarshal.GetReference(savedW); // not dereferenced unless saving
            ref float psm = ref MemoryMarshal.GetReference(savedM);
            ref float psv = ref MemoryMarshal.GetReference(savedV);
            Vector<float> vb = new(batch), vAlpha = new(alpha), vEps = new(epsilon);
            Vector<float> oneMinusB1 = new(1f - beta1), oneMinusB2 = new(1f - beta2);
            Vector<float> minNormal = new(AdamReference.MinNormal), inverse = new(1f / batch);
            bool exactReciprocal = IsExactReciprocal(batch);
            for (; i + Vector<float>.Count <= n; i += Vector<float>.Count)
            {
                nuint at = (nuint)i;
                Vector<float> sum = Vector.LoadUnsafe(ref pg, at);
                Vector<float> g = exactReciprocal ? sum * inverse : sum / vb;
                Vector<float> mi = Vector.LoadUnsafe(ref pm, at);
                Vector<float> vi = Vector.LoadUnsafe(ref pv, at);
                Vector<float> wi = Vector.LoadUnsafe(ref pw, at);
                if (save)
                {
                    wi.StoreUnsafe(ref psw, at);
                    mi.StoreUnsafe(ref psm, at);
                    vi.StoreUnsafe(ref psv, at);
                }
                mi += (g - mi) * oneMinusB1;
                vi += (g * g - vi) * oneMinusB2;
                mi = Vector.ConditionalSelect(Vector.LessThan(Vector.Abs(mi), minNormal), Vector<float>.Zero, mi);
                vi = Vector.ConditionalSelect(Vector.LessThan(Vector.Abs(vi), minNormal), Vector<float>.Zero, vi);
                wi -= vAlpha * mi / (Vector.SquareRoot(vi) + vEps);
                mi.StoreUnsafe(ref pm, at);
                vi.StoreUnsafe(ref pv, at);
                wi.StoreUnsafe(ref pw, at);
            }
        }
        if (save) AdamReference.Update(w[i..], m[i..], v[i..], gradientSum[i..], batch, alpha, beta1, beta2, epsilon, savedW[i..], savedM[i..], savedV[i..]);
        else AdamReference.Update(w[i..], m[i..], v[i..], gradientSum[i..], batch, alpha, beta1, beta2, epsilon);
    }

    /// <summary>True when x / <paramref name="batch"/> equals x * (1 / batch) for every float x: batch is a power of two whose reciprocal is a normal float.</summary>
    public static bool IsExactReciprocal(float batch) =>
        float.IsNormal(batch) && batch > 0 && (BitConverter.SingleToInt32Bits(batch) & 0x7FFFFF) == 0 && float.IsNormal(1f / batch);
}
