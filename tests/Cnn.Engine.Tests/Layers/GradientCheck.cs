// The finite-difference gradient check every layer test uses, and the harness that drives one layer through
// LayerCall without a model.
//
// Objective: L = sum_i r_i * y_i in double, for a fixed random r, computed from the float forward pass; the
// analytic gradient is Backward with DOutput = r. Central differences use the step actually taken in float
// ((x + h) - (x - h) as stored), on all coordinates of a small tensor or a random sample of a big one.
// Piecewise-linear layers (ReLU, max pooling) are checked only on coordinates whose difference stays on one
// linear piece: the caller gives a "discrete state" (the ReLU mask, the argmax) and a coordinate whose +h or
// -h evaluation changes it is retried with a smaller step, then skipped; at least a quarter of the
// coordinates (and at least one) must be compared.
// Before the analytic pass every gradient buffer is filled with NaN, so a Backward that fails to overwrite a
// slot (the contract says Backward overwrites) shows up as a non-finite gradient.
using Cnn.Engine.Layers;
using Cnn.Engine.Models;
using Cnn.Engine.Tests.Kernels;
using Xunit;

namespace Cnn.Engine.Tests.Layers;

/// <summary>One layer, built for fixed input shapes and batch, with random weights and inputs.</summary>
internal sealed class LayerHarness
{
    public LayerHarness(Layer layer, TensorShape[] inputShapes, int batch, Random rng, bool training = true)
    {
        Layer = layer;
        Batch = batch;
        layer.Name = layer.NamePrefix;
        layer.Build(inputShapes);
        layer.ParameterOffset = 0;
        Weights = new float[layer.ParameterSpecs.Sum(s => s.Size)];
        int offset = 0;
        foreach (ParameterSpec spec in layer.ParameterSpecs)
        {
            Span<float> w = Weights.AsSpan(offset, spec.Size);
            float[] u = KernelAssert.Uniform(rng, spec.Size);
            for (int i = 0; i < w.Length; i++)
                w[i] = spec.Kind switch
                {
                    ParameterKind.Kernel => 0.5f * u[i],
                    ParameterKind.Bias => 0.2f * u[i],
                    ParameterKind.Gamma => 1f + 0.3f * u[i],
                    ParameterKind.Beta => 0.3f * u[i],
                    ParameterKind.MovingMean => 0.5f * u[i],
                    _ => 1f + 0.5f * u[i],
                };
            offset += spec.Size;
        }
        Gradients = new float[Weights.Length];
        int outSize = batch * layer.OutputShape.Size;
        Call = new LayerCall
        {
            Batch = batch,
            Training = training,
            Weights = Weights,
            Gradients = Gradients,
            SampleIds = Enumerable.Range(0, batch).Select(i => 1000 + 7 * i).ToArray(),
            Seed = 12345,
            Step = 3,
            Inputs = inputShapes.Select(s => KernelAssert.Uniform(rng, batch * s.Size)).ToArray(),
            Output = new float[outSize],
            DOutput = new float[outSize],
            DInputs = inputShapes.Select(s => (float[]?)new float[batch * s.Size]).ToArray(),
            Scratch = layer.CreateScratch(batch),
        };
    }

    public Layer Layer { get; }
    public int Batch { get; }
    public float[] Weights { get; }
    public float[] Gradients { get; }
    public LayerCall Call { get; }
    public float[][] Inputs => Call.Inputs;
    public float[] Output => Call.Output;
    public int OutputLength => Call.Output.Length;

    public float[] Forward()
    {
        Layer.Forward(Call);
        return (float[])Call.Output.Clone();
    }

    /// <summary>Backward with DOutput = dy (copied: Backward may destroy it).</summary>
    public void Backward(float[] dy)
    {
        Layer.PrepareWeights(Call);
        dy.CopyTo(Call.DOutput, 0);
        Layer.Backward(Call);
    }

    public double Objective(float[] r)
    {
        Layer.Forward(Call);
        double sum = 0;
        for (int i = 0; i < r.Length; i++) sum += (double)r[i] * Call.Output[i];
        return sum;
    }
}

internal static class GradientCheck
{
    /// <summary>
    /// Compares Backward with central differences for every input and every trainable parameter of
    /// <paramref name="h"/>. <paramref name="discreteState"/>, when given, returns the piecewise-linear state of
    /// the last forward pass (see the file header).
    /// </summary>
    public static void Run(LayerHarness h, int seed, float step = 1e-2f, int coordinates = 48,
        Func<LayerHarness, int[]>? discreteState = null, double relative = 1e-2, double absolute = 2e-3)
    {
        var rng = new Random(seed);
        float[] r = KernelAssert.Uniform(rng, h.OutputLength);

        Array.Fill(h.Gradients, float.NaN);
        foreach (float[]? dx in h.Call.DInputs) if (dx is not null) Array.Fill(dx, float.NaN);
        h.Forward();
        int[]? baseline = discreteState?.Invoke(h);
        h.Backward(r);
        float[] gradients = (float[])h.Gradients.Clone();
        float[][] dInputs = h.Call.DInputs.Select(d => (float[])d!.Clone()).ToArray();
        for (int i = 0; i < gradients.Length; i++)
            Assert.True(float.IsFinite(gradients[i]), $"{h.Layer.TypeName}: gradient slot {i} was not written ({gradients[i]})");
        for (int k = 0; k < dInputs.Length; k++)
            for (int i = 0; i < dInputs[k].Length; i++)
                Assert.True(float.IsFinite(dInputs[k][i]), $"{h.Layer.TypeName}: d input {k} [{i}] was not written ({dInputs[k][i]})");

        for (int k = 0; k < dInputs.Length; k++)
            Compare(h, r, h.Inputs[k], 0, h.Inputs[k].Length, dInputs[k], $"d L / d input {k}");
        int offset = 0;
        foreach (ParameterSpec spec in h.Layer.ParameterSpecs)
        {
            bool trainable = spec.Kind is not (ParameterKind.MovingMean or ParameterKind.MovingVariance);
            if (trainable) Compare(h, r, h.Weights, offset, spec.Size, gradients, $"d L / d {spec.Suffix}");
            offset += spec.Size;
        }

        void Compare(LayerHarness h, float[] r, float[] values, int start, int length, float[] analytic, string what)
        {
            List<int> indices = Enumerable.Range(start, length).ToList();
            if (length > coordinates) indices = indices.OrderBy(_ => rng.Next()).Take(coordinates).ToList();
            int compared = 0;
            foreach (int j in indices)
            {
                // A step that crosses a kink is retried once at a quarter of its size before the coordinate is skipped.
                foreach (float size in new[] { step, step / 4 })
                {
                    float original = values[j];
                    values[j] = original + size;
                    float up = values[j];
                    double plus = h.Objective(r);
                    bool kink = baseline is not null && !discreteState!(h).AsSpan().SequenceEqual(baseline);
                    values[j] = original - size;
                    float down = values[j];
                    double minus = h.Objective(r);
                    kink |= baseline is not null && !discreteState!(h).AsSpan().SequenceEqual(baseline);
                    values[j] = original;
                    if (kink) continue;
                    double numeric = (plus - minus) / ((double)up - down);
                    double a = analytic[j];
                    Assert.True(Math.Abs(a - numeric) <= relative * Math.Max(Math.Abs(a), Math.Abs(numeric)) + absolute,
                        $"{h.Layer.TypeName} {what} at [{j - start}]: analytic {a:G6}, finite differences {numeric:G6} (step {size})");
                    compared++;
                    break;
                }
            }
            Assert.True(compared >= Math.Max(1, indices.Count / 4),
                $"{h.Layer.TypeName} {what}: only {compared} of {indices.Count} coordinates were away from a kink");
            h.Forward();
        }
    }

    /// <summary>The ReLU state of the output: which elements are positive.</summary>
    public static int[] PositiveOutputs(LayerHarness h) => h.Output.Select(v => v > 0f ? 1 : 0).ToArray();
}
