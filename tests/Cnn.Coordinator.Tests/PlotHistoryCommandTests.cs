// `cnn plot history` and the history.png that `cnn train` leaves in its run directory.
using Cnn.Coordinator.Plots;
using Xunit;
using static Cnn.Coordinator.Tests.TestSupport;

namespace Cnn.Coordinator.Tests;

[Collection(TrainedRunCollection.Name)]
public sealed class PlotHistoryCommandTests(TrainedRun run)
{
    [Fact]
    public void Train_writes_history_png_into_its_run_directory()
    {
        Png.AssertPicture(Path.Combine(run.Directory, HistoryPlot.FileName), HistoryPlot.Width, HistoryPlot.Height);
    }

    [Fact]
    public void Plot_history_draws_the_epochs_of_history_csv()
    {
        string png = run.NewFile("history.png");

        CliResult result = RunCnn("plot", "history", "--run", run.Directory, "--png", png);

        Assert.True(result.ExitCode == 0, result.Error);
        Assert.Contains("2 epoch(s) from", result.Out);
        Assert.Contains("history.csv", result.Out);
        Png.AssertPicture(png, HistoryPlot.Width, HistoryPlot.Height);
    }

    [Fact]
    public void Plot_history_falls_back_to_run_json_when_history_csv_is_gone()
    {
        string copy = run.NewFile("run-copy");
        Directory.CreateDirectory(copy);
        File.Copy(Path.Combine(run.Directory, "run.json"), Path.Combine(copy, "run.json"));
        string png = Path.Combine(copy, "plot.png");

        CliResult result = RunCnn("plot", "history", "--run", copy, "--png", png);

        Assert.True(result.ExitCode == 0, result.Error);
        Assert.Contains("2 epoch(s) from", result.Out);
        Assert.Contains("run.json", result.Out);
        Png.AssertPicture(png, HistoryPlot.Width, HistoryPlot.Height);
    }

    [Fact]
    public void Read_history_parses_history_csv_with_and_without_validation_columns()
    {
        string dir = run.NewFile("csv-run");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "history.csv"),
            "epoch,loss,accuracy,val_loss,val_accuracy,seconds,images_per_second\n1,0.5,0.8,,,1.5,1000\n2,0.25,0.9,0.3,0.85,1.5,1000\n");

        var (rows, _) = Commands.PlotCommand.ReadHistory(dir);

        Assert.Equal(2, rows.Count);
        Assert.Null(rows[0].ValLoss);
        Assert.Equal(0.85, rows[1].ValAccuracy);
        Assert.Equal(0.25, rows[1].Loss);
    }
}
