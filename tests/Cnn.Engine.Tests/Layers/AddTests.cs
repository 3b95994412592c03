// Add: Backward against finite differences for both inputs, Forward as the element-wise sum, and the error
// for inputs of different shapes, which must show both.
using Cnn.Engine.Layers;
using Xunit;

namespace Cnn.Engine.Tests.Layers;

public sealed class AddTests
{
    [Fact]
    public void Add_backward_matches_finite_differences_for_both_inputs()
    {
        TensorShape shape = TensorShape.Image(4, 3, 5);
        var h = new LayerHarness(new Add(), [shape, shape], batch: 2, new Random(81));

        GradientCheck.Run(h, seed: 4);
    }

    [Fact]
    public void Add_forward_is_the_element_wise_sum()
    {
        TensorShape shape = TensorShape.Flat(21);
        var h = new LayerHarness(new Add(), [shape, shape], batch: 3, new Random(82));

        float[] y = h.Forward();

        Assert.Equal(h.Inputs[0].Zip(h.Inputs[1], (a, b) => a + b), y);
    }

    [Fact]
    public void Add_of_different_shapes_names_both()
    {
        var e = Assert.Throws<ArgumentException>(() =>
            new LayerHarness(new Add(), [TensorShape.Image(4, 4, 32), TensorShape.Image(4, 4, 16)], 1, new Random(1)));

        Assert.Contains("(None, 4, 4, 32)", e.Message);
        Assert.Contains("(None, 4, 4, 16)", e.Message);
    }
}
