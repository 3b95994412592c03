// `cnn train`: reads the options into TrainSettings, validates them all before touching anything, and runs the
// single-process mode (--no-cluster): prepare the run directory, optionally resume from its checkpoint, load
// (or fetch) the data, then hand a LocalBackend to the shared TrainingLoop.
//
// Deliberately not here: the cluster mode. Without --no-cluster the command stops with a one-line error until
// the cluster exists; that mode will plug in beside RunLocal with its own ITrainingBackend.
using System.CommandLine;
using System.Globalization;
using Cnn.Coordinator.Runs;
using Cnn.Engine;
using Cnn.Engine.Data;
using Cnn.Engine.IO;
using Cnn.Engine.Models;
using Cnn.Engine.Training;

namespace Cnn.Coordinator.Commands;

/// <summary>The <c>train</c> command.</summary>
public static class TrainCommand
{
    /// <summary>The command, writing to <paramref name="io"/>.</summary>
    public static Command Create(CliOutput io)
    {
        var defaults = new TrainSettings();
        Option<string> model = SummaryCommand.ModelOption();
        var data = new Option<string>("--data") { Description = "Directory of the four IDX files; MNIST is fetched there if it holds none", DefaultValueFactory = _ => MnistFetcher.DefaultCacheDirectory };
        var epochs = new Option<int>("--epochs") { Description = "Epochs in total", DefaultValueFactory = _ => defaults.Epochs };
        var batchSize = new Option<int>("--batch-size") { Description = "Samples per optimizer step", DefaultValueFactory = _ => defaults.BatchSize };
        var microBatch = new Option<int>("--micro-batch") { Description = "Samples per leaf, the unit of exact parallel work", DefaultValueFactory = _ => defaults.MicroBatch };
        var lr = new Option<float>("--lr") { Description = "Adam learning rate", DefaultValueFactory = _ => defaults.LearningRate };
        var seed = new Option<ulong>("--seed") { Description = "Seed of initialisation, shuffles and dropout", DefaultValueFactory = _ => defaults.Seed };
        var split = new Option<double>("--validation-split") { Description = "Fraction held out from the end of the training file", DefaultValueFactory = _ => defaults.ValidationSplit };
        var threads = new Option<int>("--threads") { Description = "Threads computing leaves", DefaultValueFactory = _ => Environment.ProcessorCount };
        var maxSteps = new Option<long?>("--max-steps") { Description = "Stop after this many optimizer steps in total, then evaluate and write the artifacts" };
        var output = new Option<string?>("--out") { Description = "Run directory for history.csv, checkpoints and run.json (default: runs/<timestamp>)" };
        var resume = new Option<bool>("--resume") { Description = "Continue the run in --out from its checkpoint" };
        var checkpointEvery = new Option<int?>("--checkpoint-every") { Description = "Also checkpoint every K steps (default: at each epoch end only)" };
        var noCluster = new Option<bool>("--no-cluster") { Description = "Train in this process on local threads" };

        Option[] trajectory = [model, batchSize, microBatch, lr, seed, split];
        var command = new Command("train", "Train a model (Keras-like progress; history.csv, checkpoints and run.json in --out).")
        {
            model, data, epochs, batchSize, microBatch, lr, seed, split, threads, maxSteps, output, resume, checkpointEvery, noCluster,
        };
        command.SetAction(parse =>
        {
            string? outDirectory = parse.GetValue(output);
            bool resuming = parse.GetValue(resume);
            if (resuming && outDirectory is null) throw new CnnUserException("--resume needs --out DIR, the directory of the run to continue");
            var settings = new TrainSettings
            {
                Model = parse.GetValue(model)!,
                DataDirectory = parse.GetValue(data)!,
                Epochs = parse.GetValue(epochs),
                BatchSize = parse.GetValue(batchSize),
                MicroBatch = parse.GetValue(microBatch),
                LearningRate = parse.GetValue(lr),
                Seed = parse.GetValue(seed),
                ValidationSplit = parse.GetValue(split),
                Threads = parse.GetValue(threads),
                MaxSteps = parse.GetValue(maxSteps),
                OutDirectory = outDirectory ?? DefaultOutDirectory(),
                Resume = resuming,
                CheckpointEvery = parse.GetValue(checkpointEvery),
                NoCluster = parse.GetValue(noCluster),
            };
            var given = trajectory.Where(o => parse.GetResult(o) is { Implicit: false }).Select(o => o.Name).ToHashSet();
            return Run(settings, given, io);
        });
        return command;
    }

    /// <summary>
    /// Validates <paramref name="settings"/> and trains; <paramref name="givenOptions"/> names the options set on the
    /// command line (they must agree with a checkpoint being resumed).
    /// </summary>
    public static int Run(TrainSettings settings, IReadOnlySet<string> givenOptions, CliOutput io)
    {
        settings.Validate();
        if (!settings.NoCluster)
        {
            throw new CnnUserException("the cluster mode is not built yet: add --no-cluster to train in this process");
        }
        return RunLocal(settings, givenOptions, io);
    }

    private static int RunLocal(TrainSettings settings, IReadOnlySet<string> givenOptions, CliOutput io)
    {
        RunDirectory directory = RunDirectory.Prepare(settings.OutDirectory, settings.Resume);
        try
        {
            LoadedCheckpoint? checkpoint = null;
            var state = new RunState();
            if (settings.Resume)
            {
                (checkpoint, string path) = directory.LoadForResume(io.Error);
                settings = settings.ResumedFrom(path, checkpoint.Model.Name, checkpoint.Info, givenOptions);
                settings.Validate();
                state = RunState.FromCheckpoint(path, checkpoint.Info);
            }
            Model model = checkpoint?.Model ?? Presets.Create(settings.Model);
            TrainingData data = TrainingData.Load(settings.DataDirectory, model, settings.ValidationSplit, io.Out);
            if (checkpoint?.Info.Extra?.GetValueOrDefault(TrainingLoop.DataShaKey) is string trainedOn && trainedOn != data.Train.Sha256())
            {
                throw new CnnUserException($"--data {settings.DataDirectory} is not the data the checkpoint in {directory.Path} was trained on (SHA-256 {data.Train.Sha256()[..12]}... instead of {trainedOn[..Math.Min(12, trainedOn.Length)]}...)");
            }

            float[] weights = checkpoint?.Weights ?? model.Parameters.Initialize(settings.Seed);
            var adam = new Adam(model.Parameters, settings.LearningRate);
            checkpoint?.RestoreInto(adam);

            io.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"Training {model.Name} ({model.Parameters.Count:N0} parameters) on {data.TrainCount:N0} images, validating on {data.ValidationIds.Length:N0}, testing on {data.TestIds.Length:N0} ({data.Directory})"));
            io.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"batch {settings.BatchSize}, micro-batch {settings.MicroBatch}, lr {settings.LearningRate}, seed {settings.Seed}, threads {settings.Threads}, no cluster; artifacts in {directory.Path}"));
            if (checkpoint is not null)
            {
                io.Out.WriteLine($"Resuming at step {state.Step}: epoch {state.Epoch + 1}, {state.StepInEpoch} of its steps done.");
            }

            using var backend = new LocalBackend(model, weights, adam, data.TrainSource, settings.Threads, settings.MicroBatch, settings.Seed);
            var loop = new TrainingLoop(backend, model, settings, data, new RunReporter(io.Out, io.Interactive), directory);
            RunSummary summary = loop.Run(state, checkpoint?.Info.Step);
            io.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{summary.Steps} steps in {summary.WallSeconds:F1}s, {summary.TrainImagesPerSecond:N0} training images/s; weightsSha256 {summary.WeightsSha256}"));
            return 0;
        }
        catch (CnnUserException)
        {
            directory.DiscardIfUnused();
            throw;
        }
    }

    private static string DefaultOutDirectory()
    {
        string stamp = DateTime.Now.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture);
        string path = Path.Combine("runs", stamp);
        for (int i = 2; Directory.Exists(path); i++) path = Path.Combine("runs", $"{stamp}-{i}");
        return path;
    }
}
