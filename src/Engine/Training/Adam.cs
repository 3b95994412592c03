// The optimizer: Adam for trainable slices (Keras defaults and bias correction, see Kernels/AdamKernel.cs),
// and the moving-average update for BatchNormalization statistics, whose "gradient" slot holds the
// sample-weighted sum of leaf statistics (Layers/BatchNormalization.cs). One pass over the flat buffer.
// beta^t is computed by exact binary powering in double rather than Math.Pow, whose last bit may differ
// between C libraries: the step size must be the same on every node.
using Cnn.Engine.Kernels;
using Cnn.Engine.Models;

namespace Cnn.Engine.Training;

/// <summary>Adam (Keras formulation) with its state m, v and the iteration count t.</summary>
public sealed class Adam
{
    private readonly ParameterLayout _layout;

    /// <summary>A fresh optimizer for <paramref name="layout"/>.</summary>
    public Adam(ParameterLayout layout, float learningRate = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f, float epsilon = 1e-7f)
    {
        if (!(learningRate > 0f) || !float.IsFinite(learningRate)) throw new CnnUserException($"--lr must be a positive number, got {learningRate}");
        _layout = layout;
        LearningRate = learningRate;
        Beta1 = beta1;
        Beta2 = beta2;
        Epsilon = epsilon;
        M = new float[layout.Count];
        V = new float[layout.Count];
    }

    /// <summary>Step size.</summary>
    public float LearningRate { get; }
    /// <summary>First-moment decay.</summary>
    public float Beta1 { get; }
    /// <summary>Second-moment decay.</summary>
    public float Beta2 { get; }
    /// <summary>Added to sqrt(v).</summary>
    public float Epsilon { get; }
    /// <summary>First moments (flat layout; zero for non-trainable slices).</summary>
    public float[] M { get; }
    /// <summary>Second moments (flat layout).</summary>
    public float[] V { get; }
    /// <summary>Steps taken (Keras's <c>iterations</c>).</summary>
    public long Iterations { get; set; }

    /// <summary>Applies one step from the summed gradient of a batch of <paramref name="batch"/> samples.</summary>
    public void Apply(float[] weights, float[] gradientSum, int batch) => ApplyRange(weights, gradientSum, batch, BeginStep(), 0, weights.Length);

    /// <summary>Counts a step and returns its step size; then <see cref="ApplyRange"/> covers the buffer, in any split.</summary>
    public float BeginStep() => StepSize(++Iterations);

    /// <summary>The step size of iteration <paramref name="t"/>.</summary>
    public float StepSize(long t) => (float)(LearningRate * Math.Sqrt(1.0 - Power(Beta2, t)) / (1.0 - Power(Beta1, t)));

    /// <summary>
    /// Updates elements [from, to) with step size <paramref name="alpha"/> from <see cref="BeginStep"/>. Every element's
    /// update depends only on itself, so threads may update disjoint ranges with bit-identical results.
    /// </summary>
    public void ApplyRange(float[] weights, float[] gradientSum, int batch, float alpha, int from, int to) =>
        ApplyRange(weights, gradientSum, batch, alpha, from, to, null);

    /// <summary>
    /// <see cref="ApplyRange(float[], float[], int, float, int, int)"/>, first storing elements [from, to) of the
    /// weights, <see cref="M"/> and <see cref="V"/> as they were into the same range of <paramref name="saved"/>'s three
    /// arrays (flat layout, in that order; null: nothing saved), so that the update can be undone.
    /// </summary>
    public void ApplyRange(float[] weights, float[] gradientSum, int batch, float alpha, int from, int to, float[][]? saved)
    {
        foreach (ParameterSlice slice in _layout.Slices)
        {
            int lo = Math.Max(from, slice.Offset), hi = Math.Min(to, slice.Offset + slice.Size);
            if (lo >= hi) continue;
            Span<float> w = weights.AsSpan(lo, hi - lo);
            ReadOnlySpan<float> g = gradientSum.AsSpan(lo, hi - lo);
            Span<float> savedW = saved is null ? default : saved[0].AsSpan(lo, hi - lo);
            Span<float> savedM = saved is null ? default : saved[1].AsSpan(lo, hi - lo);
            Span<float> savedV = saved is null ? default : saved[2].AsSpan(lo, hi - lo);
            if (slice.Trainable)
            {
                AdamKernel.Update(w, M.AsSpan(lo, hi - lo), V.AsSpan(lo, hi - lo), g, batch, alpha, Beta1, Beta2, Epsilon, savedW, savedM, savedV);
            }
            else
            {
                if (saved is not null)
                {
                    w.CopyTo(savedW);
                    M.AsSpan(lo, hi - lo).CopyTo(savedM);
                    V.AsSpan(lo, hi - lo).CopyTo(savedV);
                }
                float keep = slice.Momentum, take = 1f - slice.Momentum;
                for (int i = 0; i < w.Length; i++) w[i] = w[i] * keep + g[i] / batch * take;
            }
        }
    }

    /// <summary>b^t by binary powering in double (deterministic on every platform).</summary>
    public static double Power(double b, long t)
    {
        double result = 1.0, factor = b;
        for (long e = t; e > 0; e >>= 1)
        {
            if ((e & 1) != 0) result *= factor;
            factor *= factor;
        }
        return result;
    }
}
