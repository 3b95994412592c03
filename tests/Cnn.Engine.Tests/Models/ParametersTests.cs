// Parameter initialisation with Keras's initialisers: Glorot-uniform kernels within sqrt(6 / (fan_in +
// fan_out)) and filling that range, zero biases and betas, unit gammas and moving variances; the same seed
// gives the same weights, another seed other weights, and appending a layer leaves earlier kernels alone.
using Cnn.Engine.Layers;
using Cnn.Engine.Models;
using Xunit;

namespace Cnn.Engine.Tests.Models;

public sealed class ParametersTests
{
    [Theory]
    [InlineData("seed-cnn")]
    [InlineData("seed-resnet")]
    public void Initialize_follows_the_keras_initialisers(string preset)
    {
        ParameterLayout layout = Presets.Create(preset).Parameters;

        float[] w = layout.Initialize(seed: 42);

        foreach (ParameterSlice slice in layout.Slices)
        {
            float[] values = slice.Of(w).ToArray();
            switch (slice.Kind)
            {
                case ParameterKind.Kernel:
                    double limit = Math.Sqrt(6.0 / (slice.FanIn + slice.FanOut));
                    Assert.All(values, v => Assert.True(Math.Abs(v) <= limit, $"{slice.Name}: {v} outside +-{limit}"));
                    Assert.True(values.Max(MathF.Abs) > 0.9 * limit, $"{slice.Name}: values do not reach the Glorot limit {limit}");
                    Assert.True(Math.Abs(values.Average()) < 0.1 * limit, $"{slice.Name}: mean {values.Average()} is not near zero");
                    break;
                case ParameterKind.Bias or ParameterKind.Beta or ParameterKind.MovingMean:
                    Assert.All(values, v => Assert.Equal(0f, v));
                    break;
                default:
                    Assert.All(values, v => Assert.Equal(1f, v));
                    break;
            }
        }
    }

    [Fact]
    public void Glorot_fans_are_those_of_keras()
    {
        ParameterLayout layout = Presets.Create("seed-cnn").Parameters;

        ParameterSlice conv = layout.Find("conv2d_1/kernel")!, dense = layout.Find("dense/kernel")!;

        Assert.Equal((3 * 3 * 32, 3 * 3 * 64), (conv.FanIn, conv.FanOut));
        Assert.Equal((576, 64), (dense.FanIn, dense.FanOut));
    }

    [Fact]
    public void The_same_seed_gives_the_same_weights_and_another_seed_other_weights()
    {
        ParameterLayout layout = Presets.Create("seed-cnn").Parameters;

        float[] a = layout.Initialize(7), b = layout.Initialize(7), c = layout.Initialize(8);

        Assert.Equal(a, b);
        foreach (ParameterSlice slice in layout.Slices.Where(s => s.Kind == ParameterKind.Kernel))
            Assert.False(slice.Of(a).SequenceEqual(slice.Of(c)), $"{slice.Name} did not change with the seed");
    }

    [Fact]
    public void Kernels_of_one_model_are_not_copies_of_each_other()
    {
        Model model = Model.Sequential("m", TensorShape.Flat(8), new Dense(8), new Dense(8), new Dense(8, Activation.Softmax));

        float[] w = model.Parameters.Initialize(3);

        Assert.False(model.Parameters.Find("dense/kernel")!.Of(w).SequenceEqual(model.Parameters.Find("dense_1/kernel")!.Of(w)));
        Assert.False(model.Parameters.Find("dense_1/kernel")!.Of(w).SequenceEqual(model.Parameters.Find("dense_2/kernel")!.Of(w)));
    }

    [Fact]
    public void Appending_a_layer_leaves_the_earlier_kernels_unchanged()
    {
        Model small = Model.Sequential("m", TensorShape.Flat(6), new Dense(5), new Dense(4, Activation.Softmax));
        Model bigger = Model.Sequential("m", TensorShape.Flat(6), new Dense(5), new Dense(4), new Dense(3, Activation.Softmax));

        float[] a = small.Parameters.Initialize(11), b = bigger.Parameters.Initialize(11);

        Assert.Equal(small.Parameters.Find("dense/kernel")!.Of(a).ToArray(), bigger.Parameters.Find("dense/kernel")!.Of(b).ToArray());
        Assert.Equal(small.Parameters.Find("dense_1/kernel")!.Of(a).ToArray(), bigger.Parameters.Find("dense_1/kernel")!.Of(b).ToArray());
    }
}
