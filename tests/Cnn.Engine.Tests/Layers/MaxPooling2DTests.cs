// MaxPooling2D: Backward against finite differences (coordinates whose step would change a window's winner
// are skipped), pools of 2 and 3 over odd sizes with channels on both kernel paths, and the output shape.
using Cnn.Engine.Layers;
using Xunit;

namespace Cnn.Engine.Tests.Layers;

public sealed class MaxPooling2DTests
{
    [Theory]
    [InlineData(2, 7, 6, 3)]
    [InlineData(2, 6, 6, 16)]
    [InlineData(3, 7, 8, 16)]
    [InlineData(3, 9, 9, 5)]
    public void MaxPooling2D_backward_matches_finite_differences(int pool, int height, int width, int channels)
    {
        var rng = new Random(pool * 1000 + height * 10 + channels);
        var layer = new MaxPooling2D(pool);
        var h = new LayerHarness(layer, [TensorShape.Image(height, width, channels)], batch: 2, rng);

        GradientCheck.Run(h, seed: 5, coordinates: 80, discreteState: Winners);
    }

    // The argmax indices the forward pass saved: the piecewise-linear state of max pooling.
    private static int[] Winners(LayerHarness h) => ((int[])h.Call.Scratch!).Take(h.OutputLength).ToArray();

    [Fact]
    public void MaxPooling2D_drops_rows_and_columns_that_do_not_fill_a_window()
    {
        var layer = new MaxPooling2D(2);
        _ = new LayerHarness(layer, [TensorShape.Image(13, 11, 32)], 1, new Random(1));

        Assert.Equal(TensorShape.Image(6, 5, 32), layer.OutputShape);
    }

    [Fact]
    public void MaxPooling2D_on_an_input_smaller_than_the_window_is_rejected()
    {
        var e = Assert.Throws<ArgumentException>(() => new LayerHarness(new MaxPooling2D(3), [TensorShape.Image(2, 5, 1)], 1, new Random(1)));

        Assert.Contains("(None, 2, 5, 1)", e.Message);
    }
}
