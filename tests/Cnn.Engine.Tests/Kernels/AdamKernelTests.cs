// AdamKernel.Update (SIMD) against AdamReference.Update: w, m and v must have the same bits after a step, for
// every length from 0 to 100 (the Vector<float> body and every tail) and for the size of seed-cnn's
// flat buffer. CI runs the engine's tests again at DOTNET_PreferredVectorBitWidth=256 and 128; the second gives
// Vector<float> 4 lanes, as on ARM64.
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

    // The saving form (the parameter server's tail updates) gives the same bits as the plain one, and the saved
    // arrays hold w, m and v exactly as they were before the step, for every length (the vector body and each tail).
    [Fact]
    public void AdamKernel_Update_that_saves_matches_the_reference_and_saves_the_values_before_the_step()
    {
        var rng = new Random(43);
        foreach (int length in Enumerable.Range(0, 101).Concat([93_322]))
        {
            float[] w = KernelAssert.Uniform(rng, length), m = KernelAssert.Uniform(rng, length, 0.01f);
            float[] v = KernelAssert.Uniform(rng, length, 1e-4f).Select(MathF.Abs).ToArray();
            float[] gradientSum = KernelAssert.UniformWithZeros(rng, length, 5f);
            float[] wBefore = (float[])w.Clone(), mBefore = (float[])m.Clone(), vBefore = (float[])v.Clone();
            float[] wRef = (float[])w.Clone(), mRef = (float[])m.Clone(), vRef = (float[])v.Clone();
            float[] savedW = KernelAssert.Uniform(rng, length), savedM = KernelAssert.Uniform(rng, length), savedV = KernelAssert.Uniform(rng, length);
            float[] refW = new float[length], refM = new float[length], refV = new float[length];

            AdamReference.Update(wRef, mRef, vRef, gradientSum, 64f, 2e-3f, 0.9f, 0.999f, 1e-7f, refW, refM, refV);
            AdamKernel.Update(w, m, v, gradientSum, 64f, 2e-3f, 0.9f, 0.999f, 1e-7f, savedW, savedM, savedV);

            KernelAssert.BitIdentical(wRef, w, $"Adam w, length {length}");
            KernelAssert.BitIdentical(mRef, m, $"Adam m, length {length}");
            KernelAssert.BitIdentical(vRef, v, $"Adam v, length {length}");
            KernelAssert.BitIdentical(wBefore, savedW, $"saved w, length {length}");
            KernelAssert.BitIdentical(mBefore, savedM, $"saved m, length {length}");
            KernelAssert.BitIdentical(vBefore, savedV, $"saved v, length {length}");
            KernelAssert.BitIdentical(wBefore, refW, $"reference's saved w, length {length}");
            KernelAssert.BitIdentical(vBefore, refV, $"reference's saved v, length {length}");
            float[] wPlain = (float[])wBefore.Clone(), mPlain = (float[])mBefore.Clone(), vPlain = (float[])vBefore.Clone();
            AdamKernel.Update(wPlain, mPlain, vPlain, gradientSum, 64f, 2e-3f, 0.9f, 0.999f, 1e-7f);
            KernelAssert.BitIdentical(w, wPlain, $"Adam w saving against not, length {length}");
        }
    }

    [Fact]
    public void AdamKernel_Update_refuses_saved_buffers_of_another_length()
    {
        float[] four = new float[4];
        var e = Assert.Throws<ArgumentException>(() => AdamKernel.Update(four, four, four, four, 64f, 1e-3f, 0.9f, 0.999f, 1e-7f, four, new float[3], four));
        Assert.Contains("4, 3 and 4", e.Message);
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

    // A first moment that decays towards zero (the parameter's gradient is zero) is stored as zero once it is
    // subnormal, instead of sticking at a subnormal value for good; normal values, zeros, NaN and infinities
    // pass unchanged, and kernel and reference agree on every bit, including for subnormal and NaN moments.
    [Fact]
    public void AdamKernel_stores_subnormal_moments_as_zero_like_the_reference_and_keeps_NaN()
    {
        const int length = 100;
        float[] m = new float[length], v = new float[length], w = new float[length], gradientSum = new float[length];
        for (int i = 0; i < length; i++)
        {
            m[i] = (i % 5) switch { 0 => 1e-30f, 1 => 1.2e-38f, 2 => -1e-39f, 3 => float.NaN, _ => 0.25f };
            v[i] = (i % 5) switch { 0 => 1e-39f, 1 => 1e-20f, 2 => 1e-8f, 3 => 1e-8f, _ => float.Epsilon };
            w[i] = 0.5f;
        }
        float[] wRef = (float[])w.Clone(), mRef = (float[])m.Clone(), vRef = (float[])v.Clone();

        AdamReference.Update(wRef, mRef, vRef, gradientSum, 64f, 1e-3f, 0.9f, 0.999f, 1e-7f);
        AdamKernel.Update(w, m, v, gradientSum, 64f, 1e-3f, 0.9f, 0.999f, 1e-7f);

        KernelAssert.BitIdentical(wRef, w, "Adam w");
        KernelAssert.BitIdentical(mRef, m, "Adam m");
        KernelAssert.BitIdentical(vRef, v, "Adam v");
        float Decayed(float x) => x + (0f - x) * (1f - 0.9f);
        Assert.Equal(Decayed(1e-30f), m[0]);   // normal: the usual rule
        Assert.True(float.IsSubnormal(Decayed(1.2e-38f)));
        Assert.Equal(0f, m[1]);                // subnormal after the step: stored as zero
        Assert.Equal(0, BitConverter.SingleToInt32Bits(m[2])); // -1e-39 * 0.9: +0, not -0
        Assert.True(float.IsNaN(m[3]));
        Assert.Equal(Decayed(0.25f), m[4]);
        Assert.Equal(0f, v[0]);
        Assert.Equal(0f, v[4]);
        Assert.DoesNotContain(m.Concat(v), float.IsSubnormal);

        // The decay of a dead parameter's moment ends at zero instead of at a subnormal fixed point.
        float[] one = [1e-3f], moment = [0f], second = [0f], weight = [0f];
        AdamReference.Update(weight, moment, second, one, 1f, 1e-3f, 0.9f, 0.999f, 1e-7f);
        for (int step = 0; step < 2_000; step++) AdamReference.Update(weight, moment, second, [0f], 1f, 1e-3f, 0.9f, 0.999f, 1e-7f);
        Assert.Equal(0f, moment[0]);
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

    [Fact]
    public void AdamKernel_Update_refuses_buffers_of_different_lengths()
    {
        float[] four = new float[4], three = new float[3];
        var e = Assert.Throws<ArgumentException>(() => AdamKernel.Update(four, four, three, four, 64f, 1e-3f, 0.9f, 0.999f, 1e-7f));
        Assert.Contains("4, 4, 3 and 4", e.Message);
        Assert.Throws<ArgumentException>(() => AdamKernel.Update(new float[32], new float[32], new float[32], new float[31], 64f, 1e-3f, 0.9f, 0.999f, 1e-7f));
    }
}
