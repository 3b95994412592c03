// The built-in models: seed-cnn is the Keras MNIST CNN of DESIGN.md (its summary, names, kernel shapes and
// flat parameter order are the numerical contract with Keras), seed-resnet builds with its residual blocks and
// reports its BatchNormalization statistics as non-trainable; unknown names are a user error.
using Cnn.Engine.Layers;
using Cnn.Engine.Models;
using Xunit;

namespace Cnn.Engine.Tests.Models;

public sealed class PresetsTests
{
    [Fact]
    public void SeedCnn_summary_shows_the_keras_table_and_93322_parameters()
    {
        string summary = Presets.Create("seed-cnn").Summary();

        Assert.Contains("Model: \"seed-cnn\"", summary);
        Assert.Contains(" Total params: 93,322 (364.54 KB)", summary);
        Assert.Contains(" Trainable params: 93,322 (364.54 KB)", summary);
        Assert.Contains(" Non-trainable params: 0 (0.00 B)", summary);
        string[] rows =
        [
            "│ conv2d (Conv2D)                 │ (None, 26, 26, 32)     │           320 │",
            "│ max_pooling2d (MaxPooling2D)    │ (None, 13, 13, 32)     │             0 │",
            "│ conv2d_1 (Conv2D)               │ (None, 11, 11, 64)     │        18,496 │",
            "│ max_pooling2d_1 (MaxPooling2D)  │ (None, 5, 5, 64)       │             0 │",
            "│ conv2d_2 (Conv2D)               │ (None, 3, 3, 64)       │        36,928 │",
            "│ flatten (Flatten)               │ (None, 576)            │             0 │",
            "│ dense (Dense)                   │ (None, 64)             │        36,928 │",
            "│ dense_1 (Dense)                 │ (None, 10)             │           650 │",
        ];
        int at = 0;
        foreach (string row in rows)
        {
            int found = summary.IndexOf(row, at, StringComparison.Ordinal);
            Assert.True(found >= 0, $"row missing or out of order: {row}\n{summary}");
            at = found + row.Length;
        }
    }

    [Fact]
    public void SeedCnn_lays_out_parameters_in_keras_order_with_keras_shapes()
    {
        Model model = Presets.Create("seed-cnn");

        (string Name, int[] Shape)[] expected =
        [
            ("conv2d/kernel", [3, 3, 1, 32]), ("conv2d/bias", [32]),
            ("conv2d_1/kernel", [3, 3, 32, 64]), ("conv2d_1/bias", [64]),
            ("conv2d_2/kernel", [3, 3, 64, 64]), ("conv2d_2/bias", [64]),
            ("dense/kernel", [576, 64]), ("dense/bias", [64]),
            ("dense_1/kernel", [64, 10]), ("dense_1/bias", [10]),
        ];
        Assert.Equal(expected.Select(e => e.Name), model.Parameters.Slices.Select(s => s.Name));
        int offset = 0;
        foreach (((string name, int[] shape), ParameterSlice slice) in expected.Zip(model.Parameters.Slices))
        {
            Assert.Equal(shape, slice.Shape);
            Assert.Equal(offset, slice.Offset);
            Assert.True(slice.Trainable, name);
            offset += slice.Size;
        }
        Assert.Equal(93_322, model.Parameters.Count);
        Assert.Equal(93_322, model.Parameters.TrainableCount);
        Assert.Equal(373_288, model.Parameters.Count * sizeof(float)); // DESIGN.md: bytes of the weights or a gradient
    }

    [Fact]
    public void SeedCnn_layers_have_keras_names_and_shapes()
    {
        Model model = Presets.Create("seed-cnn");

        Assert.Equal(["conv2d", "max_pooling2d", "conv2d_1", "max_pooling2d_1", "conv2d_2", "flatten", "dense", "dense_1"],
            model.Layers.Select(l => l.Name));
        Assert.True(model.IsSequential);
        Assert.Equal(TensorShape.Image(28, 28, 1), model.InputShape);
        Assert.Equal(10, model.Classes);
    }

    [Fact]
    public void SeedResNet_builds_with_two_residual_blocks_and_non_trainable_batch_statistics()
    {
        Model model = Presets.Create("seed-resnet");
        string summary = model.Summary();

        Assert.False(model.IsSequential);
        Assert.Equal(4, model.Layers.OfType<BatchNormalization>().Count());
        Assert.Equal(2, model.Layers.OfType<Add>().Count());
        Assert.Equal(TensorShape.Flat(10), model.OutputShape);
        // conv2d 320 + 2 blocks x (2 x 9,248 + 2 x 128) + dense 330; 4 BN layers x 32 channels x 2 moving statistics.
        Assert.Equal(38_154, model.Parameters.Count);
        Assert.Equal(38_154 - 256, model.Parameters.TrainableCount);
        Assert.Contains(" Total params: 38,154 (149.04 KB)", summary);
        Assert.Contains(" Trainable params: 37,898 (148.04 KB)", summary);
        Assert.Contains(" Non-trainable params: 256 (1.00 KB)", summary);
        Assert.Contains("Connected to", summary);
        Assert.Contains("batch_normalization_1, conv2d", summary); // the first skip connection
        Assert.Equal(
            ["batch_normalization/gamma", "batch_normalization/beta", "batch_normalization/moving_mean", "batch_normalization/moving_variance"],
            model.Parameters.Slices.Where(s => s.Name.StartsWith("batch_normalization/", StringComparison.Ordinal)).Select(s => s.Name));
        Assert.All(model.Parameters.Slices.Where(s => s.Name.Contains("moving_")), s => Assert.False(s.Trainable));
    }

    [Fact]
    public void Presets_reject_an_unknown_name_listing_the_known_ones()
    {
        var e = Assert.Throws<CnnUserException>(() => Presets.Create("seed-vgg"));

        Assert.Contains("seed-vgg", e.Message);
        Assert.Contains("seed-cnn", e.Message);
        Assert.Contains("seed-resnet", e.Message);
    }

    [Fact]
    public void Presets_accept_another_input_shape()
    {
        Model model = Presets.Create("seed-cnn", TensorShape.Image(32, 32, 3));

        Assert.Equal([3, 3, 3, 32], model.Parameters.Find("conv2d/kernel")!.Shape);
        Assert.Equal([1024, 64], model.Parameters.Find("dense/kernel")!.Shape); // 4 x 4 x 64 after the third conv
    }
}
