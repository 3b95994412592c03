// `cnn visualize filters` and `cnn visualize feature-maps`: each writes its picture at the documented size, and
// says what it drew.
using Cnn.Coordinator.Plots;
using Xunit;
using static Cnn.Coordinator.Tests.TestSupport;

namespace Cnn.Coordinator.Tests;

[Collection(TrainedRunCollection.Name)]
public sealed class VisualizeCommandTests(TrainedRun run)
{
    [Fact]
    public void Visualize_filters_draws_the_32_filters_of_the_first_convolution()
    {
        string png = run.NewFile("filters.png");

        CliResult result = RunCnn("visualize", "filters", "--checkpoint", run.Checkpoint, "--png", png);

        Assert.True(result.ExitCode == 0, result.Error);
        Assert.Contains("32 filters 3x3 of conv2d", result.Out);
        Png.AssertPicture(png, FilterPlot.Width, FilterPlot.Height);
    }

    [Fact]
    public void Visualize_feature_maps_draws_the_image_the_first_convolution_and_the_pooling_after_it()
    {
        string png = run.NewFile("maps.png");

        CliResult result = RunCnn("visualize", "feature-maps", "--checkpoint", run.Checkpoint, "--data", run.Data, "--index", "2", "--png", png);

        Assert.True(result.ExitCode == 0, result.Error);
        Assert.Contains("feature maps of conv2d (26x26x32) and max_pooling2d (13x13x32)", result.Out);
        Png.AssertPicture(png, FeatureMapPlot.Width, FeatureMapPlot.Height);
    }

    [Fact]
    public void Visualize_feature_maps_of_a_convolution_without_pooling_after_it_draws_the_convolution_alone()
    {
        string png = run.NewFile("maps.png");

        CliResult result = RunCnn("visualize", "feature-maps", "--checkpoint", run.Checkpoint, "--data", run.Data, "--index", "0",
            "--layer", "conv2d_2", "--png", png);

        Assert.True(result.ExitCode == 0, result.Error);
        Assert.Contains("conv2d_2 (3x3x64) (no pooling layer follows conv2d_2)", result.Out);
        Png.AssertPicture(png, FeatureMapPlot.Width, FeatureMapPlot.Height);
    }
}
