// The bad inputs of evaluate, predict, visualize and plot: each is refused with exit code 2 and one line on
// stderr that names the problem, and no picture (nor a temp file) is left behind.
using Cnn.Engine.IO;
using Cnn.Engine.Models;
using Cnn.Engine.Training;
using Xunit;
using static Cnn.Coordinator.Tests.TestSupport;

namespace Cnn.Coordinator.Tests;

[Collection(TrainedRunCollection.Name)]
public sealed class PictureCommandErrorTests(TrainedRun run)
{
    private (CliResult Result, string Png) Refused(Func<string, string[]> args)
    {
        string png = run.NewFile("refused.png");
        CliResult result = RunCnn(args(png));
        Assert.Equal(2, result.ExitCode);
        Assert.Single(result.ErrorLines);
        Assert.StartsWith("error: ", result.Error);
        Assert.False(File.Exists(png), $"{png} was written");
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(png)!));
        return (result, png);
    }

    private string DamagedCheckpoint()
    {
        string path = run.NewFile("damaged.safetensors");
        byte[] bytes = File.ReadAllBytes(run.Checkpoint);
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        return path;
    }

    public static TheoryData<string> Commands => ["evaluate", "predict", "filters", "feature-maps"];

    private string[] Command(string name, string checkpoint, string png, params string[] more) => name switch
    {
        "evaluate" => ["evaluate", "--checkpoint", checkpoint, "--data", run.Data, "--png", png, .. more],
        "predict" => ["predict", "--checkpoint", checkpoint, "--data", run.Data, "--index", "0", "--png", png, .. more],
        "filters" => ["visualize", "filters", "--checkpoint", checkpoint, "--png", png, .. more],
        _ => ["visualize", "feature-maps", "--checkpoint", checkpoint, "--data", run.Data, "--index", "0", "--png", png, .. more],
    };

    [Theory]
    [MemberData(nameof(Commands))]
    public void A_missing_checkpoint_is_refused(string command)
    {
        string missing = Path.Combine(Path.GetTempPath(), $"no-such-{Guid.NewGuid():N}.safetensors");

        var (result, _) = Refused(png => Command(command, missing, png));

        Assert.Contains("file not found", result.Error);
    }

    [Theory]
    [MemberData(nameof(Commands))]
    public void A_damaged_checkpoint_is_refused_naming_the_file(string command)
    {
        string damaged = DamagedCheckpoint();

        var (result, _) = Refused(png => Command(command, damaged, png));

        Assert.Contains(damaged, result.Error);
    }

    [Theory]
    [MemberData(nameof(Commands))]
    public void A_checkpoint_of_another_model_than_model_is_refused(string command)
    {
        var (result, _) = Refused(png => Command(command, run.Checkpoint, png, "--model", "seed-resnet"));

        Assert.Contains("'seed-cnn', not 'seed-resnet'", result.Error);
    }

    [Fact]
    public void A_seed_resnet_checkpoint_is_refused_where_seed_cnn_is_expected()
    {
        Model resnet = Presets.Create("seed-resnet");
        string path = run.NewFile("resnet.safetensors");
        Checkpoint.Save(path, resnet, resnet.Parameters.Initialize(1), new Adam(resnet.Parameters),
            new CheckpointInfo(0, 0, 0, 1, 0.001f, 64, 8, 0.2, "{}"));

        var (result, _) = Refused(png => ["visualize", "filters", "--checkpoint", path, "--model", "seed-cnn", "--png", png]);

        Assert.Contains("'seed-resnet', not 'seed-cnn'", result.Error);
    }

    [Theory]
    [InlineData("predict", "64")]
    [InlineData("predict", "-1")]
    [InlineData("feature-maps", "64")]
    public void An_index_out_of_range_is_refused_with_the_valid_range(string command, string index)
    {
        var (result, _) = Refused(png => command == "predict"
            ? ["predict", "--checkpoint", run.Checkpoint, "--data", run.Data, "--index", index, "--png", png]
            : ["visualize", "feature-maps", "--checkpoint", run.Checkpoint, "--data", run.Data, "--index", index, "--png", png]);

        Assert.Contains($"--index {index} is out of range", result.Error);
        Assert.Contains("0 to 63", result.Error);
    }

    [Fact]
    public void An_image_that_is_not_a_png_is_refused()
    {
        string gif = run.NewFile("digit.png");
        File.WriteAllBytes(gif, [.. "GIF89a"u8, 1, 0, 1, 0, 0, 0, 0]);

        var (result, _) = Refused(png => ["predict", "--checkpoint", run.Checkpoint, "--image", gif, "--png", png]);

        Assert.Contains("not a PNG file", result.Error);
    }

    [Fact]
    public void A_truncated_png_is_refused_as_damaged()
    {
        string whole = run.NewFile("whole.png"), truncated = run.NewFile("truncated.png");
        Png.WriteDigit(whole, run.Test, 0);
        File.WriteAllBytes(truncated, File.ReadAllBytes(whole)[..60]);

        var (result, _) = Refused(png => ["predict", "--checkpoint", run.Checkpoint, "--image", truncated, "--png", png]);

        Assert.Contains("damaged PNG", result.Error);
    }

    [Fact]
    public void A_run_directory_without_history_is_refused()
    {
        string empty = run.NewFile("empty-run");
        Directory.CreateDirectory(empty);

        var (result, _) = Refused(png => ["plot", "history", "--run", empty, "--png", png]);

        Assert.Contains("no history.csv or run.json", result.Error);
    }

    [Fact]
    public void A_damaged_history_csv_is_refused_naming_the_line()
    {
        string dir = run.NewFile("bad-run");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "history.csv"), "epoch,loss,accuracy,val_loss,val_accuracy,seconds,images_per_second\n1,0.5,zero,,,1,1\n");

        var (result, _) = Refused(png => ["plot", "history", "--run", dir, "--png", png]);

        Assert.Contains("line 2", result.Error);
    }

    [Fact]
    public void A_layer_that_is_not_a_convolution_is_refused_naming_the_convolutions()
    {
        var (result, _) = Refused(png => ["visualize", "feature-maps", "--checkpoint", run.Checkpoint, "--data", run.Data, "--index", "0",
            "--layer", "dense", "--png", png]);

        Assert.Contains("conv2d, conv2d_1, conv2d_2", result.Error);
    }
}
