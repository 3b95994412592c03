// GlobalAveragePooling2D: Backward against finite differences and Forward as the per-channel mean.
using Cnn.Engine.Layers;
using Xunit;

namespace Cnn.Engine.Tests.Layers;

public sealed class GlobalAveragePooling2DTests
{
    [Fact]
    public void GlobalAveragePooling2D_backward_matches_finite_differences()
    {
        var h = new LayerHarness(new GlobalAveragePooling2D(), [TensorShape.Image(5, 3, 17)], batch: 3, new Random(91));

        GradientCheck.Run(h, seed: 6, absolute: 1e-3);
    }

    [Fact]
    public void GlobalAveragePooling2D_forward_is_the_mean_over_pixels()
    {
        const int batch = 2, pixels = 7 * 4, channels = 6;
        var layer = new GlobalAveragePooling2D();
        var h = new LayerHarness(layer, [TensorShape.Image(7, 4, channels)], batch, new Random(92));

        float[] y = h.Forward();

        Assert.Equal(TensorShape.Flat(channels), layer.OutputShape);
        for (int n = 0; n < batch; n++)
            for (int c = 0; c < channels; c++)
            {
                double mean = Enumerable.Range(0, pixels).Average(p => (double)h.Inputs[0][(n * pixels + p) * channels + c]);
                Assert.Equal(mean, y[n * channels + c], 1e-6);
            }
    }
}
