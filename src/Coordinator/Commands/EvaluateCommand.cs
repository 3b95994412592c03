// `cnn evaluate --checkpoint FILE [--data DIR] [--model NAME] [--threads N] [--png OUT]`: how a trained model does
// on the test set: loss and accuracy, accuracy per class, and the confusion matrix as an aligned table (rows:
// true class, columns: predicted class); --png also draws the matrix (Plots/ConfusionMatrixPlot).
//
// The numbers are computed the way a training run computes its test result (LeafComputer.Evaluate): chunks of
// LeafComputer.ChunkSize images, inference mode, the fused softmax cross-entropy on the logits, the chunk loss
// sums added in chunk order. So on the data a run was tested on, the accuracy and the loss are the testLoss and
// testAccuracy of its run.json, bit for bit, whatever the thread count. The prediction of an image is the
// arg-max of its logits, the same one the loss counts as correct, so the table and the accuracy always agree.
//
// Deliberately not here: the validation split (the run's history has it) and any other metric.
using System.CommandLine;
using System.Globalization;
using System.Numerics.Tensors;
using System.Text;
using Cnn.Coordinator.Plots;
using Cnn.Engine;
using Cnn.Engine.Data;
using Cnn.Engine.IO;
using Cnn.Engine.Kernels;
using Cnn.Engine.Models;
using Cnn.Engine.Training;

namespace Cnn.Coordinator.Commands;

/// <summary>The result of evaluating a model on a test set.</summary>
/// <param name="LossSum">Cross-entropy summed over the images, in chunk order.</param>
/// <param name="Correct">Images whose predicted class is their label.</param>
/// <param name="Samples">Images evaluated.</param>
/// <param name="Confusion">Counts (true class, predicted class).</param>
public sealed record Evaluation(double LossSum, int Correct, int Samples, int[,] Confusion)
{
    /// <summary>Mean loss.</summary>
    public double Loss => LossSum / Samples;

    /// <summary>Fraction of images predicted correctly.</summary>
    public double Accuracy => (double)Correct / Samples;
}

/// <summary>The <c>evaluate</c> command.</summary>
public static class EvaluateCommand
{
    /// <summary>The command, writing to <paramref name="io"/>.</summary>
    public static Command Create(CliOutput io)
    {
        Option<string> checkpoint = CheckpointInputs.CheckpointOption();
        Option<string?> model = CheckpointInputs.ModelOption();
        Option<string> data = CheckpointInputs.DataOption();
        var threads = new Option<int>("--threads") { Description = "Threads evaluating", DefaultValueFactory = _ => Environment.ProcessorCount };
        Option<string?> png = CheckpointInputs.PngOption("Also draw the confusion matrix into this PNG file", required: false);
        var command = new Command("evaluate", "Test loss and accuracy of a checkpoint, per class and as a confusion matrix.")
        {
            checkpoint, model, data, threads, png,
        };
        command.SetAction(parse =>
        {
            int threadCount = parse.GetValue(threads);
            if (threadCount < 1) throw new CnnUserException($"--threads must be at least 1, got {threadCount}");
            string checkpointPath = parse.GetValue(checkpoint)!, directory = parse.GetValue(data)!;
            LoadedCheckpoint loaded = CheckpointInputs.LoadCheckpoint(checkpointPath, parse.GetValue(model));
            MnistDataset test = CheckpointInputs.LoadTestSet(directory, loaded.Model);

            Evaluation result = Evaluate(loaded.Model, loaded.Weights, test, threadCount);
            io.Out.Write(Report(loaded, checkpointPath, directory, result));
            if (parse.GetValue(png) is string output)
            {
                ConfusionMatrixPlot.Write(output, result.Confusion, string.Create(CultureInfo.InvariantCulture,
                    $"{loaded.Model.Name} at step {loaded.Info.Step}: test accuracy {result.Accuracy:F4} on {result.Samples:N0} images"));
                if (PlotFile.FontWarning is string warning) io.Error.WriteLine(warning);
                io.Out.WriteLine($"Confusion matrix written to {output}");
            }
            return 0;
        });
        return command;
    }

    /// <summary>Evaluates <paramref name="weights"/> of <paramref name="model"/> on every image of <paramref name="test"/> (see file header).</summary>
    public static Evaluation Evaluate(Model model, float[] weights, MnistDataset test, int threads)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(test);
        int classes = model.Classes, inputSize = model.InputShape.Size, chunkSize = LeafComputer.ChunkSize;
        int chunks = (test.Count + chunkSize - 1) / chunkSize;
        string outputLayer = model.Nodes[^1].Layer.Name;
        var source = new MnistSource(test);
        var chunkLoss = new double[chunks];
        var predicted = new int[test.Count];
        var labels = new int[test.Count];
        int workers = Math.Min(threads, chunks);
        // Worker w takes chunks w, w + workers, ...: each chunk's result lands in its own slot, so the sum
        // below is in chunk order whatever finishes first.
        Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, worker =>
        {
            var runner = new ModelRunner(model, chunkSize);
            var x = new float[chunkSize * inputSize];   // (chunk, input size)
            for (int chunk = worker; chunk < chunks; chunk += workers)
            {
                int start = chunk * chunkSize, count = Math.Min(chunkSize, test.Count - start);
                int[] ids = Enumerable.Range(start, count).ToArray();
                Span<int> chunkLabels = labels.AsSpan(start, count);
                source.Gather(ids, x.AsSpan(0, count * inputSize), chunkLabels);
                ReadOnlySpan<float> logits = runner.Activations(weights, x, count, outputLayer);   // (count, classes)
                (chunkLoss[chunk], _) = SoftmaxCrossEntropy.Forward(logits, chunkLabels, classes, default);
                for (int i = 0; i < count; i++) predicted[start + i] = TensorPrimitives.IndexOfMax(logits.Slice(i * classes, classes));
            }
        });

        double lossSum = 0;
        foreach (double loss in chunkLoss) lossSum += loss;
        var confusion = new int[classes, classes];
        int correct = 0;
        for (int i = 0; i < test.Count; i++)
        {
            confusion[labels[i], predicted[i]]++;
            if (predicted[i] == labels[i]) correct++;
        }
        return new Evaluation(lossSum, correct, test.Count, confusion);
    }

    /// <summary>The printed report: totals, the per-class table and the confusion matrix.</summary>
    public static string Report(LoadedCheckpoint checkpoint, string checkpointPath, string directory, Evaluation result)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        ArgumentNullException.ThrowIfNull(result);
        var text = new StringBuilder();
        CultureInfo invariant = CultureInfo.InvariantCulture;
        text.AppendLine(string.Create(invariant, $"{checkpoint.Model.Name} from {checkpointPath} (step {checkpoint.Info.Step}) on the {result.Samples:N0} test images of {directory}"));
        text.AppendLine(string.Create(invariant, $"test_loss: {result.Loss:F4} - test_accuracy: {result.Accuracy:F4} ({result.Correct:N0} of {result.Samples:N0} correct)"));
        text.AppendLine();

        int classes = result.Confusion.GetLength(0);
        text.AppendLine("class   images  correct  accuracy");
        for (int c = 0; c < classes; c++)
        {
            int images = 0;
            for (int p = 0; p < classes; p++) images += result.Confusion[c, p];
            int right = result.Confusion[c, c];
            string accuracy = images == 0 ? "-" : ((double)right / images).ToString("F4", invariant);
            text.AppendLine(string.Create(invariant, $"{c,5}  {images,7}  {right,7}  {accuracy,8}"));
        }
        text.AppendLine();

        int width = Math.Max(classes.ToString(invariant).Length, result.Confusion.Cast<int>().Max().ToString(invariant).Length) + 2;
        const string corner = "true \\ predicted";
        text.AppendLine("Confusion matrix (rows: true class, columns: predicted class)");
        text.Append(corner);
        for (int p = 0; p < classes; p++) text.Append(p.ToString(invariant).PadLeft(width));
        text.AppendLine();
        for (int t = 0; t < classes; t++)
        {
            text.Append(t.ToString(invariant).PadLeft(corner.Length));
            for (int p = 0; p < classes; p++) text.Append(result.Confusion[t, p].ToString(invariant).PadLeft(width));
            text.AppendLine();
        }
        return text.ToString();
    }
}
