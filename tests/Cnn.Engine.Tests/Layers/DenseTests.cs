// Dense: Backward against finite differences with and without the fused ReLU (kernel, bias and input), Forward
// against x . kernel + bias with the Keras (in, out) kernel layout, and the shape error that points at Flatten.
using Cnn.Engine.Layers;
using Xunit;

namespace Cnn.Engine.Tests.Layers;

public sealed class DenseTests
{
    [Theory]
    [InlineData(false, 7, 5)]
    [InlineData(true, 7, 5)]
    [InlineData(false, 65, 17)]
    [InlineData(true, 100, 64)]
    [InlineData(false, 64, 10)]
    public void Dense_backward_matches_finite_differences(bool relu, int inFeatures, int units)
    {
        var rng = new Random(inFeatures * 100 + units + (relu ? 1 : 0));
        var dense = new Dense(units, relu ? Activation.Relu : Activation.None);
        var h = new LayerHarness(dense, [TensorShape.Flat(inFeatures)], batch: 5, rng);

        GradientCheck.Run(h, seed: 3, step: relu ? 1e-3f : 1e-2f, discreteState: relu ? GradientCheck.PositiveOutputs : null);
    }

    [Fact]
    public void Dense_forward_is_x_times_kernel_plus_bias()
    {
        var rng = new Random(5);
        const int batch = 3, inFeatures = 19, units = 33;
        var h = new LayerHarness(new Dense(units), [TensorShape.Flat(inFeatures)], batch, rng, training: false);

        float[] y = h.Forward();

        for (int n = 0; n < batch; n++)
            for (int o = 0; o < units; o++)
            {
                double sum = h.Weights[inFeatures * units + o];
                for (int i = 0; i < inFeatures; i++) sum += (double)h.Inputs[0][n * inFeatures + i] * h.Weights[i * units + o];
                Assert.Equal(sum, y[n * units + o], 1e-5);
            }
    }

    [Fact]
    public void Dense_after_an_image_shape_names_the_shape_and_suggests_Flatten()
    {
        var e = Assert.Throws<ArgumentException>(() => new LayerHarness(new Dense(64), [TensorShape.Image(5, 5, 64)], 1, new Random(1)));

        Assert.Contains("(None, 5, 5, 64)", e.Message);
        Assert.Contains("Flatten", e.Message);
    }
}
