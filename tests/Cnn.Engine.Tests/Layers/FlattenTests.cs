// Flatten: Backward against finite differences, and the NHWC order of the features (Keras's order, so a
// Dense kernel trained by Keras reads the same features).
using Cnn.Engine.Layers;
using Xunit;

namespace Cnn.Engine.Tests.Layers;

public sealed class FlattenTests
{
    [Fact]
    public void Flatten_backward_matches_finite_differences()
    {
        var h = new LayerHarness(new Flatten(), [TensorShape.Image(3, 4, 5)], batch: 2, new Random(61));

        GradientCheck.Run(h, seed: 1);
    }

    [Fact]
    public void Flatten_keeps_the_nhwc_order_of_the_features()
    {
        var layer = new Flatten();
        var h = new LayerHarness(layer, [TensorShape.Image(3, 4, 5)], batch: 2, new Random(62));

        float[] y = h.Forward();

        Assert.Equal(TensorShape.Flat(60), layer.OutputShape);
        Assert.Equal(h.Inputs[0], y);
    }
}
