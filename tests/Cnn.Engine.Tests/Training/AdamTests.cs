// Adam: one and two Keras Adam steps against a hand computation in double (the first step moves every weight
// by about lr against the sign of its gradient); beta^t by binary powering; the moving-average update of
// BatchNormalization statistics, whose gradient slots hold leaf statistics times leaf sizes, checked from a
// real leaf computation through to the moving mean and variance.
using Cnn.Engine.Layers;
using Cnn.Engine.Models;
using Cnn.Engine.Tests.Kernels;
using Cnn.Engine.Training;
using Xunit;

namespace Cnn.Engine.Tests.Training;

public sealed class AdamTests
{
    private static Model Tiny() => Model.Sequential("tiny", TensorShape.Flat(4), new Dense(3, Activation.Softmax));

    [Fact]
    public void Adam_first_step_matches_the_keras_formula_computed_by_hand()
    {
        Model model = Tiny();
        var rng = new Random(1);
        float[] w = KernelAssert.Uniform(rng, model.Parameters.Count);
        float[] gradientSum = KernelAssert.Uniform(rng, model.Parameters.Count, 3f);
        float[] before = (float[])w.Clone();
        var adam = new Adam(model.Parameters);
        const int batch = 8;

        adam.Apply(w, gradientSum, batch);

        const double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, epsilon = 1e-7;
        double alpha = lr * Math.Sqrt(1 - beta2) / (1 - beta1);
        for (int i = 0; i < w.Length; i++)
        {
            double g = gradientSum[i] / (double)batch;
            double m = (1 - beta1) * g, v = (1 - beta2) * g * g;
            double expectedStep = -alpha * m / (Math.Sqrt(v) + epsilon);
            double step = (double)w[i] - before[i];
            Assert.True(Math.Abs(step - expectedStep) <= 1e-4 * Math.Abs(expectedStep) + 1e-7, $"w[{i}] moved by {step:G6}, Keras {expectedStep:G6}");
            Assert.Equal(-lr * Math.Sign(g), step, 1e-5); // the well-known first Adam step
            Assert.Equal(m, adam.M[i], 1e-6 * Math.Abs(m) + 1e-12);
            Assert.Equal(v, adam.V[i], 1e-4 * v + 1e-15);
        }
        Assert.Equal(1, adam.Iterations);
    }

    [Fact]
    public void Adam_second_step_matches_the_keras_recurrence_computed_by_hand()
    {
        Model model = Tiny();
        var rng = new Random(2);
        float[] w = KernelAssert.Uniform(rng, model.Parameters.Count);
        float[] g1 = KernelAssert.Uniform(rng, w.Length), g2 = KernelAssert.Uniform(rng, w.Length);
        double[] expected = w.Select(x => (double)x).ToArray();
        var adam = new Adam(model.Parameters, learningRate: 0.01f);

        adam.Apply(w, g1, 1);
        adam.Apply(w, g2, 1);

        const double lr = 0.01, beta1 = 0.9, beta2 = 0.999, epsilon = 1e-7;
        for (int i = 0; i < w.Length; i++)
        {
            double m = 0, v = 0;
            for (int t = 1; t <= 2; t++)
            {
                double g = t == 1 ? g1[i] : g2[i];
                m = beta1 * m + (1 - beta1) * g;
                v = beta2 * v + (1 - beta2) * g * g;
                expected[i] -= lr * Math.Sqrt(1 - Math.Pow(beta2, t)) / (1 - Math.Pow(beta1, t)) * m / (Math.Sqrt(v) + epsilon);
            }
            Assert.True(Math.Abs(w[i] - expected[i]) <= 2e-6, $"w[{i}] = {w[i]:G9}, Keras {expected[i]:G9}");
        }
        Assert.Equal(2, adam.Iterations);
    }

    [Fact]
    public void Adam_Power_is_b_to_the_t()
    {
        foreach (long t in new long[] { 0, 1, 2, 3, 10, 750, 7500, 1_000_000 })
        {
            double expected = Math.Pow(0.999, t);
            Assert.True(Math.Abs(Adam.Power(0.999, t) - expected) <= 1e-13 * expected + 1e-300, $"0.999^{t}");
        }
        Assert.Equal(0.9 * 0.9, Adam.Power(0.9, 2));
    }

    [Fact]
    public void Adam_rejects_a_learning_rate_that_is_not_positive()
    {
        ParameterLayout layout = Tiny().Parameters;

        Assert.Throws<CnnUserException>(() => new Adam(layout, learningRate: 0f));
        Assert.Throws<CnnUserException>(() => new Adam(layout, learningRate: float.NaN));
    }

    private static Model WithBatchNorm() =>
        Model.Sequential("bn", TensorShape.Image(2, 2, 3), new BatchNormalization(), new Flatten(), new Dense(3, Activation.Softmax));

    [Fact]
    public void Adam_updates_batch_norm_statistics_as_a_moving_average_and_leaves_their_moments_alone()
    {
        Model model = WithBatchNorm();
        float[] w = model.Parameters.Initialize(1);
        ParameterSlice mean = model.Parameters.Find("batch_normalization/moving_mean")!;
        ParameterSlice variance = model.Parameters.Find("batch_normalization/moving_variance")!;
        mean.Of(w).Fill(0.5f);
        float[] gradientSum = KernelAssert.Uniform(new Random(3), w.Length, 10f);
        float[] before = (float[])w.Clone();
        var adam = new Adam(model.Parameters);

        adam.Apply(w, gradientSum, 12);

        foreach (ParameterSlice slice in new[] { mean, variance })
            for (int i = slice.Offset; i < slice.Offset + slice.Size; i++)
            {
                float expected = before[i] * 0.99f + gradientSum[i] / 12 * (1f - 0.99f);
                Assert.Equal(expected, w[i]);
                Assert.Equal(0f, adam.M[i]);
                Assert.Equal(0f, adam.V[i]);
            }
    }

    // The parameter server's tail update saves what it replaces: a range across trainable slices and batch
    // normalisation's statistics gets the same weights, m and v as without saving, the saved arrays get the values of
    // that range as they were, and nothing outside the range changes in either.
    [Fact]
    public void ApplyRange_that_saves_stores_the_range_as_it_was_and_updates_it_as_without_saving()
    {
        Model model = WithBatchNorm();
        var rng = new Random(9);
        float[] w = model.Parameters.Initialize(3);
        float[] gradientSum = KernelAssert.Uniform(rng, w.Length, 10f);
        var saving = new Adam(model.Parameters);
        var plain = new Adam(model.Parameters);
        foreach (Adam adam in new[] { saving, plain })
        {
            adam.Apply((float[])w.Clone(), KernelAssert.Uniform(new Random(1), w.Length), 12); // moments that are not zero
        }
        float[] wSaving = (float[])w.Clone(), wPlain = (float[])w.Clone();
        float[][] saved = [Enumerable.Repeat(-7f, w.Length).ToArray(), Enumerable.Repeat(-7f, w.Length).ToArray(), Enumerable.Repeat(-7f, w.Length).ToArray()];
        float[][] before = [(float[])w.Clone(), (float[])saving.M.Clone(), (float[])saving.V.Clone()];
        int from = 1, to = w.Length - 2; // inside the first and the last slice, across every other one
        float alpha = saving.StepSize(2);

        saving.ApplyRange(wSaving, gradientSum, 12, alpha, from, to, saved);
        plain.ApplyRange(wPlain, gradientSum, 12, alpha, from, to);

        KernelAssert.BitIdentical(wPlain, wSaving, "weights");
        KernelAssert.BitIdentical(plain.M, saving.M, "m");
        KernelAssert.BitIdentical(plain.V, saving.V, "v");
        for (int k = 0; k < 3; k++)
            for (int i = 0; i < w.Length; i++)
                Assert.Equal(from <= i && i < to ? before[k][i] : -7f, saved[k][i]);
        Assert.NotEqual(before[0][from], wSaving[from]);
    }

    [Fact]
    public void Batch_norm_statistics_of_the_leaves_become_the_moving_average_of_their_weighted_mean()
    {
        Model model = WithBatchNorm();
        var rng = new Random(4);
        const int batch = 12, microBatch = 4, channels = 3, pixels = 4;
        float[] x = KernelAssert.Uniform(rng, batch * pixels * channels, 2f).Select(v => v + 1f).ToArray();
        var data = new Cnn.Engine.Data.ArraySource(model.InputShape, x, Enumerable.Range(0, batch).Select(i => i % 3).ToArray());
        float[] w = model.Parameters.Initialize(2);
        using var computer = new LeafComputer(model, threads: 2, microBatch);
        int[] ids = Enumerable.Range(0, batch).ToArray();

        GradientSum root = computer.Compute(w, data, ids, [GradientTree.Root(3)], step: 0, seed: 0)[0];
        new Adam(model.Parameters).Apply(w, root.Gradients, root.Samples);

        ParameterSlice mean = model.Parameters.Find("batch_normalization/moving_mean")!;
        ParameterSlice variance = model.Parameters.Find("batch_normalization/moving_variance")!;
        for (int c = 0; c < channels; c++)
        {
            double meanSum = 0, varianceSum = 0;
            for (int leaf = 0; leaf < 3; leaf++)
            {
                double[] values = Enumerable.Range(leaf * microBatch * pixels, microBatch * pixels).Select(r => (double)x[r * channels + c]).ToArray();
                double leafMean = values.Average();
                meanSum += microBatch * leafMean;
                varianceSum += microBatch * values.Average(v => (v - leafMean) * (v - leafMean));
            }
            Assert.Equal(meanSum, root.Gradients[mean.Offset + c], 1e-4);
            Assert.Equal(varianceSum, root.Gradients[variance.Offset + c], 1e-4);
            Assert.Equal(0 * 0.99 + meanSum / batch * 0.01, w[mean.Offset + c], 1e-6);
            Assert.Equal(1 * 0.99 + varianceSum / batch * 0.01, w[variance.Offset + c], 1e-6);
        }
    }
}
