// Model building: Keras naming, shape inference, and the errors a user gets when the layers do not fit, each
// naming the shapes involved and a likely fix.
using Cnn.Engine.Layers;
using Cnn.Engine.Models;
using Xunit;

namespace Cnn.Engine.Tests.Models;

public sealed class ModelTests
{
    private static readonly TensorShape Mnist = TensorShape.Image(28, 28, 1);

    [Fact]
    public void Dense_right_after_Conv2D_fails_naming_the_shape_and_Flatten()
    {
        var e = Assert.Throws<ArgumentException>(() => Model.Sequential("m", Mnist, new Conv2D(32, 3), new Dense(10, Activation.Softmax)));

        Assert.Contains("(batch, features)", e.Message);
        Assert.Contains("(None, 26, 26, 32)", e.Message);
        Assert.Contains("Flatten", e.Message);
    }

    [Fact]
    public void Add_of_mismatched_branches_fails_naming_both_shapes()
    {
        var g = new FunctionalBuilder(Mnist);
        Symbol a = g.Apply(new Conv2D(8, 3), g.Input);
        Symbol b = g.Apply(new Conv2D(8, 3, padding: Padding.Same), g.Input);

        var e = Assert.Throws<ArgumentException>(() =>
        {
            Symbol sum = g.Apply(new Add(), a, b);
            Symbol flat = g.Apply(new Flatten(), sum);
            g.Build("m", g.Apply(new Dense(10), flat));
        });

        Assert.Contains("(None, 26, 26, 8)", e.Message);
        Assert.Contains("(None, 28, 28, 8)", e.Message);
    }

    [Fact]
    public void A_model_ending_in_an_image_shape_fails_with_a_hint()
    {
        var e = Assert.Throws<ArgumentException>(() => Model.Sequential("m", Mnist, new Conv2D(4, 3)));

        Assert.Contains("(None, 26, 26, 4)", e.Message);
        Assert.Contains("Flatten", e.Message);
    }

    [Fact]
    public void Softmax_before_the_last_layer_is_rejected()
    {
        var e = Assert.Throws<ArgumentException>(() =>
            Model.Sequential("m", TensorShape.Flat(5), new Dense(4, Activation.Softmax), new Dense(3)));

        Assert.Contains("softmax", e.Message);
    }

    [Fact]
    public void Layers_are_named_per_type_in_order_as_keras_does()
    {
        var g = new FunctionalBuilder(TensorShape.Image(8, 8, 2));
        Symbol a = g.Apply(new Conv2D(4, 3, padding: Padding.Same), g.Input);
        Symbol b = g.Apply(new Conv2D(4, 3, padding: Padding.Same), a);
        Symbol c = g.Apply(new Add(), b, a);
        Symbol d = g.Apply(new ReLU(), c);
        Symbol e = g.Apply(new Conv2D(4, 1), d);
        Symbol f = g.Apply(new Add(), e, d);
        Symbol pooled = g.Apply(new GlobalAveragePooling2D(), f);
        Model model = g.Build("m", g.Apply(new Dense(3, Activation.Softmax), pooled));

        Assert.Equal(["conv2d", "conv2d_1", "add", "re_lu", "conv2d_2", "add_1", "global_average_pooling2d", "dense"],
            model.Layers.Select(l => l.Name));
        Assert.Equal(["conv2d/kernel", "conv2d/bias", "conv2d_1/kernel", "conv2d_1/bias", "conv2d_2/kernel", "conv2d_2/bias", "dense/kernel", "dense/bias"],
            model.Parameters.Slices.Select(s => s.Name));
    }

    [Fact]
    public void FunctionalBuilder_requires_the_output_to_be_the_last_layer_applied()
    {
        var g = new FunctionalBuilder(TensorShape.Flat(4));
        Symbol a = g.Apply(new Dense(3), g.Input);
        g.Apply(new Dense(2), a);

        Assert.Throws<ArgumentException>(() => g.Build("m", a));
    }

    [Fact]
    public void The_seed_cnn_is_exchanged_as_conv2d_2_onwards_then_the_head()
    {
        Model model = Presets.Create("seed-cnn");
        int conv3 = model.Parameters.Find("conv2d_2/kernel")!.Offset;
        int node = model.Nodes.ToList().FindIndex(n => n.Layer.Name == "conv2d_2");

        Assert.Equal([new ExchangeSegment(conv3, 93_322, node), new ExchangeSegment(0, conv3, -1)], model.ExchangeSegments);
        Assert.Equal(18_816, conv3);
    }

    [Theory]
    [InlineData("seed-cnn")]
    [InlineData("seed-resnet")]
    public void Exchange_segments_cover_the_parameters_from_the_end_down_each_tail_at_least_half_of_what_is_left_and_a_quarter_of_all(string preset)
    {
        Model model = Presets.Create(preset);
        IReadOnlyList<ExchangeSegment> segments = model.ExchangeSegments;

        Assert.Equal(model.Parameters.Count, segments[0].To);
        Assert.Equal(0, segments[^1].From);
        Assert.Equal(-1, segments[^1].Node);
        for (int i = 0; i < segments.Count - 1; i++)
        {
            Assert.Equal(segments[i].From, segments[i + 1].To);
            Assert.Equal(model.Nodes[segments[i].Node].Layer.ParameterOffset, segments[i].From);
            Assert.True(segments[i].Length * 2 >= segments[i].To, $"segment {i} holds {segments[i].Length} of {segments[i].To}");
            Assert.True(segments[i].Length * 4 >= model.Parameters.Count, $"segment {i} holds {segments[i].Length} of {model.Parameters.Count}");
        }
    }

    [Fact]
    public void A_model_with_one_parameter_layer_is_exchanged_whole()
    {
        Model model = Model.Sequential("one-layer", Mnist, new Flatten(), new Dense(10, Activation.Softmax));

        Assert.Equal([new ExchangeSegment(0, model.Parameters.Count, -1)], model.ExchangeSegments);
    }
}
