// `cnn evaluate`: on the data a run was tested on, it reports that run's test result exactly; its table and
// confusion matrix agree with the accuracy; --png draws the matrix.
using System.Globalization;
using System.Text.RegularExpressions;
using Cnn.Coordinator.Commands;
using Cnn.Coordinator.Plots;
using Cnn.Engine.IO;
using Xunit;
using static Cnn.Coordinator.Tests.TestSupport;

namespace Cnn.Coordinator.Tests;

[Collection(TrainedRunCollection.Name)]
public sealed class EvaluateCommandTests(TrainedRun run)
{
    [Fact]
    public void Evaluate_on_a_runs_checkpoint_reports_the_test_accuracy_of_its_run_json()
    {
        CliResult result = RunCnn("evaluate", "--checkpoint", run.Checkpoint, "--data", run.Data);

        Assert.True(result.ExitCode == 0, result.Error);
        Assert.Equal("", result.Error);
        Match m = Regex.Match(result.Out, @"test_loss: (\S+) - test_accuracy: (\S+) \((\d+) of (\d+) correct\)");
        Assert.True(m.Success, result.Out);
        double accuracy = run.RunJson.GetProperty("testAccuracy").GetDouble();
        double loss = run.RunJson.GetProperty("testLoss").GetDouble();
        int samples = run.RunJson.GetProperty("testSamples").GetInt32();
        Assert.Equal(accuracy.ToString("F4", CultureInfo.InvariantCulture), m.Groups[2].Value);
        Assert.Equal(loss.ToString("F4", CultureInfo.InvariantCulture), m.Groups[1].Value);
        Assert.Equal(samples, int.Parse(m.Groups[4].Value, CultureInfo.InvariantCulture));
        Assert.Equal((int)Math.Round(accuracy * samples), int.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture));
    }

    [Fact]
    public void Evaluation_matches_the_runs_test_loss_and_accuracy_bit_for_bit_on_one_and_two_threads()
    {
        LoadedCheckpoint loaded = Checkpoint.Load(run.Checkpoint, expectedModel: null);

        Evaluation one = EvaluateCommand.Evaluate(loaded.Model, loaded.Weights, run.Test, threads: 1);
        Evaluation two = EvaluateCommand.Evaluate(loaded.Model, loaded.Weights, run.Test, threads: 2);

        Assert.Equal(run.RunJson.GetProperty("testAccuracy").GetDouble(), one.Accuracy);
        Assert.Equal(run.RunJson.GetProperty("testLoss").GetDouble(), one.Loss);
        Assert.Equal(one.LossSum, two.LossSum);
        Assert.Equal(one.Confusion, two.Confusion);
    }

    [Fact]
    public void The_per_class_table_and_the_confusion_matrix_add_up_to_the_test_labels_and_the_accuracy()
    {
        LoadedCheckpoint loaded = Checkpoint.Load(run.Checkpoint, expectedModel: null);

        Evaluation result = EvaluateCommand.Evaluate(loaded.Model, loaded.Weights, run.Test, threads: 2);
        string report = EvaluateCommand.Report(loaded, run.Checkpoint, run.Data, result);

        int diagonal = 0;
        for (int c = 0; c < 10; c++)
        {
            int row = Enumerable.Range(0, 10).Sum(p => result.Confusion[c, p]);
            Assert.Equal(run.Test.Labels.Count(l => l == c), row);
            diagonal += result.Confusion[c, c];
        }
        Assert.Equal(result.Correct, diagonal);
        string[] lines = report.Split('\n');
        int header = Array.FindIndex(lines, l => l.StartsWith("true \\ predicted", StringComparison.Ordinal));
        Assert.True(header > 0, report);
        string[] matrix = lines[header..(header + 11)];
        Assert.All(matrix, line => Assert.Equal(matrix[0].Length, line.Length));
        Assert.Contains("class   images  correct  accuracy", report);
    }

    [Fact]
    public void Evaluate_with_png_writes_the_confusion_matrix_picture()
    {
        string png = run.NewFile("confusion.png");

        CliResult result = RunCnn("evaluate", "--checkpoint", run.Checkpoint, "--data", run.Data, "--png", png);

        Assert.True(result.ExitCode == 0, result.Error);
        Png.AssertPicture(png, ConfusionMatrixPlot.Width, ConfusionMatrixPlot.Height);
    }
}
