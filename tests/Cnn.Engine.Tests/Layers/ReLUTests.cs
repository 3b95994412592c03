// The ReLU layer: Backward against finite differences with inputs nudged at least 0.05 away from the kink at
// zero (so a step of 0.01 never crosses it), and Forward as max(0, x).
using Cnn.Engine.Layers;
using Xunit;

namespace Cnn.Engine.Tests.Layers;

public sealed class ReLUTests
{
    [Theory]
    [InlineData(5, 5, 16)]
    [InlineData(3, 3, 7)]
    public void ReLU_backward_matches_finite_differences(int height, int width, int channels)
    {
        var h = new LayerHarness(new ReLU(), [TensorShape.Image(height, width, channels)], batch: 2, new Random(71 + channels));
        float[] x = h.Inputs[0];
        for (int i = 0; i < x.Length; i++)
            if (MathF.Abs(x[i]) < 0.05f) x[i] = x[i] < 0 ? x[i] - 0.05f : x[i] + 0.05f;

        GradientCheck.Run(h, seed: 2, coordinates: 200);
    }

    [Fact]
    public void ReLU_forward_is_max_of_zero_and_x()
    {
        var h = new LayerHarness(new ReLU(), [TensorShape.Flat(37)], batch: 3, new Random(72));

        float[] y = h.Forward();

        Assert.Equal(h.Inputs[0].Select(v => MathF.Max(v, 0f)), y);
    }
}
