// Scalar definition of the Adam step (Keras formulation); see AdamKernel for the formulas and for why m and v
// are stored flushed to zero when they fall below the smallest normal float.
namespace Cnn.Engine.Kernels.Reference;

/// <summary>Scalar reference for <see cref="AdamKernel"/>.</summary>
public static class AdamReference
{
    /// <summary>See <see cref="AdamKernel.Update"/>.</summary>
    public static void Update(Span<float> w, Span<float> m, Span<float> v, ReadOnlySpan<float> gradientSum, float batch,
        float alpha, float beta1, float beta2, float epsilon)
    {
        float oneMinusB1 = 1f - beta1, oneMinusB2 = 1f - beta2;
        for (int i = 0; i < w.Length; i++)
        {
            float g = gradientSum[i] / batch;
            m[i] = FlushSubnormal(m[i] + (g - m[i]) * oneMinusB1);
            v[i] = FlushSubnormal(v[i] + (g * g - v[i]) * oneMinusB2);
            w[i] -= alpha * m[i] / (MathF.Sqrt(v[i]) + epsilon);
        }
    }

    /// <summary>See <see cref="AdamKernel.Update(Span{float}, Span{float}, Span{float}, ReadOnlySpan{float}, float, float, float, float, float, Span{float}, Span{float}, Span{float})"/>.</summary>
    public static void Update(Span<float> w, Span<float> m, Span<float> v, ReadOnlySpan<float> gradientSum, float batch,
        float alpha, float beta1, float beta2, float epsilon, Span<float> savedW, Span<float> savedM, Span<float> savedV)
    {
        w.CopyTo(savedW);
        m.CopyTo(savedM);
        v.CopyTo(savedV);
        Update(w, m, v, gradientSum, batch, alpha, beta1, beta2, epsilon);
    }

    /// <summary>The smallest positive normal float, 2^-126.</summary>
    public const float MinNormal = 1.17549435E-38f;

    /// <summary>+0 for a subnormal or zero <paramref name="x"/>, else <paramref name="x"/> itself (NaN and infinities included).</summary>
    public static float FlushSubnormal(float x) => MathF.Abs(x) < MinNormal ? 0f : x;
}
