// ModelRunner: whole-model gradient checks of d loss / d weights from TrainLeaf against central differences of
// the training-mode loss (TrainLeaf's own loss sum, so BatchNormalization uses the leaf's statistics), on
// graphs where a node feeds two or three later nodes (the fan-out accumulation), with and without
// BatchNormalization, and on seed-resnet itself (skipping differences that cross a ReLU or max-pooling
// kink); plus Evaluate, Predict and the promise that TrainLeaf writes
// every gradient slot.
using System.Reflection;
using Cnn.Engine.Data;
using Cnn.Engine.Kernels.Reference;
using Cnn.Engine.Layers;
using Cnn.Engine.Models;
using Cnn.Engine.Tests.Kernels;
using Xunit;

namespace Cnn.Engine.Tests.Models;

public sealed class ModelRunnerTests
{
    private static ArraySource RandomData(Random rng, TensorShape shape, int count, int classes) =>
        new(shape, KernelAssert.Uniform(rng, count * shape.Size), Enumerable.Range(0, count).Select(_ => rng.Next(classes)).ToArray());

    private static (Model Model, IDataSource Data) SeedCnnWithData(Random rng, int count)
    {
        Model model = Presets.Create("seed-cnn");
        return (model, RandomData(rng, model.InputShape, count, model.Classes));
    }

    // Initial weights plus noise, so biases and betas are not zero and gammas not one.
    private static float[] Weights(Model model, Random rng)
    {
        float[] w = model.Parameters.Initialize(5);
        foreach (ParameterSlice slice in model.Parameters.Slices.Where(s => s.Trainable))
        {
            Span<float> values = slice.Of(w);
            for (int i = 0; i < values.Length; i++) values[i] += (float)(rng.NextDouble() - 0.5) * 0.2f;
        }
        return w;
    }

    /// <summary>
    /// Compares TrainLeaf's gradient with central differences of its loss on <paramref name="perSlice"/> sampled
    /// coordinates of every trainable slice. With <paramref name="kinks"/>, a coordinate whose +h or -h pass
    /// changes any ReLU mask or max-pooling winner is skipped (a smaller step would drown in the float noise of
    /// the loss); at least half of the coordinates must be compared.
    /// </summary>
    private static void CheckTrainLeafGradient(Model model, int batch, int seed, int perSlice, float step, bool kinks = false)
    {
        var rng = new Random(seed);
        IDataSource data = RandomData(rng, model.InputShape, batch, model.Classes);
        int[] ids = Enumerable.Range(0, batch).ToArray();
        float[] w = Weights(model, rng);
        var runner = new ModelRunner(model, batch);
        var gradients = new float[model.Parameters.Count];
        Array.Fill(gradients, float.NaN);

        runner.TrainLeaf(w, data, ids, gradients, step: 1, seed: 1);

        for (int i = 0; i < gradients.Length; i++)
            Assert.True(float.IsFinite(gradients[i]), $"gradient slot {i} was not written");
        int[] baseline = kinks ? KinkState(model, runner, batch) : [];
        float[] analytic = (float[])gradients.Clone();
        int sampled = 0, compared = 0;
        foreach (ParameterSlice slice in model.Parameters.Slices.Where(s => s.Trainable))
            foreach (int j in Enumerable.Range(slice.Offset, slice.Size).OrderBy(_ => rng.Next()).Take(perSlice))
            {
                sampled++;
                float original = w[j];
                w[j] = original + step;
                float up = w[j];
                double plus = runner.TrainLeaf(w, data, ids, gradients, 1, 1).LossSum;
                bool crossed = kinks && !KinkState(model, runner, batch).AsSpan().SequenceEqual(baseline);
                w[j] = original - step;
                float down = w[j];
                double minus = runner.TrainLeaf(w, data, ids, gradients, 1, 1).LossSum;
                crossed |= kinks && !KinkState(model, runner, batch).AsSpan().SequenceEqual(baseline);
                w[j] = original;
                if (crossed) continue;
                double numeric = (plus - minus) / ((double)up - down), a = analytic[j];
                Assert.True(Math.Abs(a - numeric) <= 1e-2 * Math.Max(Math.Abs(a), Math.Abs(numeric)) + 2e-3,
                    $"{slice.Name}[{j - slice.Offset}]: TrainLeaf gives {a:G6}, finite differences {numeric:G6}");
                compared++;
            }
        Assert.True(compared >= sampled / 2, $"only {compared} of {sampled} coordinates were away from a kink");
    }

    // The piecewise-linear state of the last forward pass: every ReLU mask (ReLU layers and fused activations)
    // and every max-pooling winner. The runner keeps its activations private, so they are read by reflection.
    private static int[] KinkState(Model model, ModelRunner runner, int batch)
    {
        FieldInfo field = typeof(ModelRunner).GetField("_outputs", BindingFlags.NonPublic | BindingFlags.Instance)
            ?? throw new InvalidOperationException("ModelRunner no longer keeps its activations in _outputs: update this test helper");
        var outputs = (float[][])field.GetValue(runner)!;
        var state = new List<int>();
        for (int j = 0; j < model.Nodes.Count; j++)
        {
            Layer layer = model.Nodes[j].Layer;
            int size = batch * layer.OutputShape.Size;
            if (layer is ReLU or Conv2D { Activation: Activation.Relu } or Dense { Activation: Activation.Relu })
                for (int i = 0; i < size; i++) state.Add(outputs[j][i] > 0f ? 1 : 0);
            if (layer is MaxPooling2D pool && model.Nodes[j].Inputs[0] is int input and >= 0)
            {
                TensorShape x = layer.InputShapes[0];
                var argmax = new int[size];
                MaxPoolReference.Forward(outputs[input].AsSpan(0, batch * x.Size), batch, x.Height, x.Width, x.Channels, pool.PoolSize,
                    new float[size], argmax);
                state.AddRange(argmax);
            }
        }
        return state.ToArray();
    }

    [Fact]
    public void ModelRunner_gradient_matches_finite_differences_when_a_node_feeds_three_others()
    {
        // a feeds b, c and the first Add: its gradient is the sum of three contributions.
        var g = new FunctionalBuilder(TensorShape.Image(6, 6, 2));
        Symbol a = g.Apply(new Conv2D(4, 3, padding: Padding.Same), g.Input);
        Symbol b = g.Apply(new Conv2D(4, 3, padding: Padding.Same), a);
        Symbol c = g.Apply(new Conv2D(4, 1), a);
        Symbol d = g.Apply(new Add(), b, a);
        Symbol e = g.Apply(new Add(), d, c);
        Symbol pooled = g.Apply(new GlobalAveragePooling2D(), e);
        Model model = g.Build("fan-out", g.Apply(new Dense(3, Activation.Softmax), pooled));

        CheckTrainLeafGradient(model, batch: 4, seed: 1, perSlice: 12, step: 1e-2f);
    }

    [Fact]
    public void ModelRunner_gradient_matches_finite_differences_through_training_mode_batch_norm_and_a_skip()
    {
        // seed-resnet's block without its kinks: Conv-BN-Conv-BN + skip Add, then pooling and Dense.
        var g = new FunctionalBuilder(TensorShape.Image(6, 6, 1));
        Symbol x = g.Apply(new Conv2D(4, 3, padding: Padding.Same), g.Input);
        Symbol y = g.Apply(new Conv2D(4, 3, padding: Padding.Same), x);
        y = g.Apply(new BatchNormalization(), y);
        y = g.Apply(new Conv2D(4, 3, padding: Padding.Same), y);
        y = g.Apply(new BatchNormalization(), y);
        Symbol sum = g.Apply(new Add(), y, x);
        Symbol pooled = g.Apply(new GlobalAveragePooling2D(), sum);
        Model model = g.Build("bn-skip", g.Apply(new Dense(3, Activation.Softmax), pooled));

        CheckTrainLeafGradient(model, batch: 4, seed: 2, perSlice: 12, step: 1e-2f);
    }

    [Fact]
    public void ModelRunner_gradient_of_seed_resnet_matches_finite_differences_away_from_kinks()
    {
        // The real preset on 8x8 inputs: ReLUs, max pooling, training-mode BatchNorm and both skips.
        Model model = Presets.Create("seed-resnet", TensorShape.Image(8, 8, 1));

        CheckTrainLeafGradient(model, batch: 3, seed: 3, perSlice: 6, step: 1e-3f, kinks: true);
    }

    [Fact]
    public void ModelRunner_gradient_is_doubled_when_a_node_is_added_to_itself()
    {
        // Add(a, a) = 2a: both inputs of one node read the same node, so both contributions must be summed.
        var g = new FunctionalBuilder(TensorShape.Flat(5));
        Symbol a = g.Apply(new Dense(4), g.Input);
        Symbol twice = g.Apply(new Add(), a, a);
        Model model = g.Build("self-add", g.Apply(new Dense(3, Activation.Softmax), twice));

        CheckTrainLeafGradient(model, batch: 4, seed: 4, perSlice: 20, step: 1e-2f);
    }

    [Fact]
    public void Evaluate_gives_the_training_loss_for_a_model_without_batch_norm_or_dropout()
    {
        var rng = new Random(6);
        (Model model, IDataSource data) = SeedCnnWithData(rng, 10);
        int[] ids = [3, 1, 4, 1, 5, 9, 2, 6];
        float[] w = model.Parameters.Initialize(1);
        var runner = new ModelRunner(model, 8);

        LossAndAccuracy trained = runner.TrainLeaf(w, data, ids, new float[w.Length], 0, 0);
        LossAndAccuracy evaluated = runner.Evaluate(w, data, ids);

        Assert.Equal(trained, evaluated);
        Assert.Equal(8, evaluated.Samples);
    }

    // A worker's weights arrive in whichever array the GC placed. When the kernels sit off a cache line, Conv2D's
    // forward product reads an aligned copy that PrepareWeights makes once per weights version. Training gives the
    // same bits either way; a new version refreshes the copy; inference, which PrepareWeights does not precede (the
    // weights may have changed in place since), never reads it.
    [Fact]
    public void Training_gives_the_same_bits_with_weights_on_and_off_a_cache_line_and_no_pass_reads_an_old_kernel_copy()
    {
        var rng = new Random(8);
        (Model model, IDataSource data) = SeedCnnWithData(rng, 16);
        int[] ids = [0, 2, 4, 6, 8, 10, 12, 14];
        float[] values = Weights(model, rng);
        float[] on = KernelAssert.ArrayAt(values.Length, aligned: true), off = KernelAssert.ArrayAt(values.Length, aligned: false);
        Assert.All(model.Parameters.Slices.Where(s => s.Name.EndsWith("/kernel")).Select(s => s.Offset % 16), o => Assert.Equal(0, o));
        var runner = new ModelRunner(model, 8); // reads "off" throughout
        var reference = new ModelRunner(model, 8); // reads "on": Gemm takes its kernels as they are

        foreach (int version in new[] { 1, 2 })
        {
            if (version == 2)
                for (int i = 0; i < values.Length; i++) values[i] *= 0.5f; // in place, as the --no-cluster trainer does
            values.CopyTo(on, 0);
            values.CopyTo(off, 0);
            Assert.Equal(reference.Evaluate(on, data, ids), runner.Evaluate(off, data, ids));
            float[] expected = new float[values.Length], actual = new float[values.Length];
            LossAndAccuracy trainedOn = reference.TrainLeaf(on, data, ids, expected, 0, 0, weightsVersion: version);
            LossAndAccuracy trainedOff = runner.TrainLeaf(off, data, ids, actual, 0, 0, weightsVersion: version);
            Assert.Equal(trainedOn, trainedOff);
            KernelAssert.BitIdentical(expected, actual, $"gradients of version {version}, weights on and off a cache line");
        }
        for (int i = 0; i < values.Length; i++) off[i] = on[i] = values[i] * 2f; // changed after the last training pass
        Assert.Equal(reference.Evaluate(on, data, ids), runner.Evaluate(off, data, ids));
    }

    [Fact]
    public void Predict_returns_the_softmax_of_the_logits()
    {
        var rng = new Random(7);
        Model model = Model.Sequential("m", TensorShape.Flat(6), new Dense(5, Activation.Relu), new Dense(4, Activation.Softmax));
        float[] w = model.Parameters.Initialize(2);
        float[] x = KernelAssert.Uniform(rng, 3 * 6);
        var runner = new ModelRunner(model, 3);
        var p = new float[3 * 4];

        runner.Predict(w, x, 3, p);

        float[] logits = runner.Activations(w, x, 3, "dense_1").ToArray();
        for (int n = 0; n < 3; n++)
        {
            double sum = Enumerable.Range(0, 4).Sum(c => Math.Exp(logits[n * 4 + c]));
            for (int c = 0; c < 4; c++) Assert.Equal(Math.Exp(logits[n * 4 + c]) / sum, p[n * 4 + c], 1e-6);
        }
    }

    [Fact]
    public void ModelRunner_rejects_an_empty_or_oversized_batch()
    {
        Model model = Model.Sequential("m", TensorShape.Flat(2), new Dense(2, Activation.Softmax));
        var data = new ArraySource(TensorShape.Flat(2), new float[10], new int[5]);
        var runner = new ModelRunner(model, 2);
        float[] w = model.Parameters.Initialize(1);

        Assert.Throws<ArgumentException>(() => runner.Evaluate(w, data, []));
        Assert.Throws<ArgumentException>(() => runner.Evaluate(w, data, [0, 1, 2]));
    }
}
