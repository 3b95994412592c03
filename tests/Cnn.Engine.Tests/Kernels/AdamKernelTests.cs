// AdamKernel.Update (SIMD) against AdamReference.Update: w, m and v must have the same bits after a step, for
// every length from 0 to 100 (the vector body and every tail) and for the size of seed-cnn's flat buffer.
using Cnn.Engine.Kernels;
using Cnn.Engine.Kernels.Reference;
using Cnn.Engine.Training;
using Xunit;

namespace Cnn.Engine.Tests.Kernels;

public sealed class AdamKernelTests
{
    [Fact]
    public void AdamKernel_Update_matches_the_reference_bit_for_bit_for_every_length()
    {
        var rng = new Random(31);
        const float beta1 = 0.9f, beta2 = 0.999f, epsilon = 1e-7f;
        foreach (int length in Enumerable.Range(0, 101).Concat([93_322]))
            foreach (long t in new long[] { 1, 7 })
            {
                float alpha = (float)(1e-3 * Math.Sqrt(1 - Adam.Power(beta2, t)) / (1 - Adam.Power(beta1, t)));
                float[] w = KernelAssert.Uniform(rng, length);
                float[] m = t == 1 ? new float[length] : KernelAssert.Uniform(rng, length, 0.01f);
                float[] v = t == 1 ? new float[length] : KernelAssert.Uniform(rng, length, 1e-4f).Select(MathF.Abs).ToArray();
                float[] gradientSum = KernelAssert.UniformWithZeros(rng, length, 5f);
                float[] wRef = (float[])w.Clone(), mRef = (float[])m.Clone(), vRef = (float[])v.Clone();

                AdamReference.Update(wRef, mRef, vRef, gradientSum, 64f, alpha, beta1, beta2, epsilon);
                AdamKernel.Update(w, m, v, gradientSum, 64f, alpha, beta1, beta2, epsilon);

                KernelAssert.BitIdentical(wRef, w, $"Adam w, length {length}, t {t}");
                KernelAssert.BitIdentical(mRef, m, $"Adam m, length {length}, t {t}");
                KernelAssert.BitIdentical(vRef, v, $"Adam v, length {length}, t {t}");
            }
    }

    // The kernel multiplies by 1/batch when that is exact (a power of two) and divides otherwise; both must give
    // the reference's bits, also for gradients whose quotient is subnormal, zero, infinite or NaN.
    [Theory]
    [InlineData(64f)]
    [InlineData(1f)]
    [InlineData(2f)]
    [InlineData(4096f)]
    [InlineData(48f)]
    [InlineData(3f)]
    [InlineData(100f)]
    public void AdamKernel_Update_matches_the_reference_for_power_of_two_and_other_batch_sizes(float batch)
    {
        var rng = new Random(7);
        const int length = 1_000;
        float[] special = [1e-38f, -3e-39f, float.Epsilon, 1.5e-45f * 7, 0f, -0f, 3.4e38f, float.PositiveInfinity, float.NaN];
        float[] gradientSum = KernelAssert.UniformWithZeros(rng, length, 5f);
        special.CopyTo(gradientSum, 3);
        special.CopyTo(gradientSum, 500);
        float[] w = KernelAssert.Uniform(rng, length), m = KernelAssert.Uniform(rng, length, 0.01f);
        float[] v = KernelAssert.Uniform(rng, length, 1e-4f).Select(MathF.Abs).ToArray();
        float[] wRef = (float[])w.Clone(), mRef = (float[])m.Clone(), vRef = (float[])v.Clone();

        AdamReference.Update(wRef, mRef, vRef, gradientSum, batch, 1e-3f, 0.9f, 0.999f, 1e-7f);
        AdamKernel.Update(w, m, v, gradientSum, batch, 1e-3f, 0.9f, 0.999f, 1e-7f);

        KernelAssert.BitIdentical(wRef, w, $"Adam w, batch {batch}");
        KernelAssert.BitIdentical(mRef, m, $"Adam m, batch {batch}");
        KernelAssert.BitIdentical(vRef, v, $"Adam v, batch {batch}");
    }

    [Theory]
    [InlineData(64f, true)]
    [InlineData(1f, true)]
    [InlineData(0.5f, true)]
    [InlineData(48f, false)]
    [InlineData(0f, false)]
    [InlineData(-64f, false)]
    [InlineData(float.PositiveInfinity, false)]
    [InlineData(float.NaN, false)]
    public void IsExactReciprocal_accepts_only_positive_powers_of_two(float batch, bool expected) =>
        Assert.Equal(expected, AdamKernel.IsExactReciprocal(batch));
}
