// `cnn train`: reads the options into TrainSettings, validates them all before touching anything, prepares the
// run directory, optionally resumes from its checkpoint, loads (or fetches) the data, then hands a backend to the
// shared TrainingLoop. The three modes differ only in the backend:
//   --no-cluster       LocalBackend, this process's threads;
//   --local-workers N  (the default, with 2) ClusterBackend over an in-process cluster of N worker nodes;
//   --workers N        ClusterBackend on a coordinator node that waits for N worker processes to join; with
//                      --tls-cert (or CNN_TLS_CERT, read in this mode only) remoting and the data plane run
//                      mutual TLS, and a bad certificate file is a one-line error before any data is loaded.
//
// Deliberately not here: the epoch loop, the artifacts and the actors.
using System.CommandLine;
using System.Globalization;
using Cnn.Coordinator.Cluster;
using Cnn.Coordinator.Runs;
using Cnn.Engine;
using Cnn.Engine.Data;
using Cnn.Engine.IO;
using Cnn.Engine.Kernels;
using Cnn.Messages;
using Cnn.Worker;
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
        var keepCheckpoints = new Option<int>("--keep-checkpoints") { Description = "Checkpoints kept in --out (newest first; --resume falls back to older ones)", DefaultValueFactory = _ => 3 };
        var noCluster = new Option<bool>("--no-cluster") { Description = "Train in this process on local threads (the reference path)" };
        var localWorkers = new Option<int?>("--local-workers") { Description = "Train on an in-process cluster of N worker nodes over loopback TCP (default mode, N = 2)" };
        var threadsPerWorker = new Option<int?>("--threads-per-worker") { Description = "Threads of each local worker (default: cores / workers)" };
        var multiNode = new MultiNodeOptions("Multi-node: wait for N worker processes to join this coordinator, then train");
        var transport = new Option<string>("--transport") { Description = "How tensors travel in a cluster: tcp (data plane) or akka (chunked messages)", DefaultValueFactory = _ => "tcp" };
        transport.AcceptOnlyFromAmong("tcp", "akka");
        var mixedNumerics = new Option<bool>("--allow-mixed-numerics")
        {
            Description = "Multi-node: admit workers whose kernels differ from this node's (other SIMD widths, another CPU architecture); the weights are then no longer bit-identical to --no-cluster",
        };
        Option<string> workStealing = WorkStealingOption();
        Option<string?> pinThreads = PinThreadsOption();
        var stepDeadline = new Option<double>("--step-deadline") { Description = "Smallest per-step (and per-evaluation) deadline in seconds before late work is re-assigned", DefaultValueFactory = _ => 1 };

        // The options a checkpoint remembers: given on --resume they must agree (trajectory) or replace its plan (epochs, steps, data).
        Option[] remembered = [model, batchSize, microBatch, lr, seed, split, epochs, maxSteps, data];
        var command = new Command("train", "Train a model (Keras-like progress; history.csv, checkpoints and run.json in --out).")
        {
            model, data, epochs, batchSize, microBatch, lr, seed, split, threads, maxSteps, output, resume, checkpointEvery, keepCheckpoints, noCluster,
            localWorkers, threadsPerWorker, stepDeadline, transport, workStealing, pinThreads, mixedNumerics,
        };
        foreach (Option option in multiNode.All) command.Options.Add(option);
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
                KeepCheckpoints = parse.GetValue(keepCheckpoints),
                NoCluster = parse.GetValue(noCluster),
                LocalWorkers = parse.GetValue(localWorkers),
                ThreadsPerWorker = parse.GetValue(threadsPerWorker),
                StepDeadlineSeconds = parse.GetValue(stepDeadline),
                Transport = parse.GetValue(transport)!,
                WorkStealing = parse.GetValue(workStealing) == "on",
                PinThreads = parse.GetValue(pinThreads),
                AllowMixedNumerics = parse.GetValue(mixedNumerics),
            };
            settings = multiNode.ReadInto(settings, parse);
            var given = remembered.Where(o => parse.GetResult(o) is { Implicit: false }).Select(o => o.Name).ToHashSet();
            return Run(settings, given, io);
        });
        return command;
    }

    /// <summary>
    /// The --work-stealing option of the cluster modes; "on" turns it on. Off by default since the thirty-fourth session:
    /// on the 2-vCPU reference host its messages and waits cost more than the imbalance it takes back (cnn bench
    /// --local-workers 2, alternated: 84.3% of --no-cluster with it against 87.7% without; docs/performance.md).
    /// </summary>
    public static Option<string> WorkStealingOption()
    {
        var option = new Option<string>("--work-stealing")
        {
            Description = "Cluster on the tcp data plane: a worker that has sent its share of a step computes the last leaf of a slower worker's share (on or off; the weights are the same either way)",
            DefaultValueFactory = _ => "off",
        };
        option.AcceptOnlyFromAmong("on", "off");
        return option;
    }

    /// <summary>
    /// The --pin-threads option of a local cluster: "on" (the default) gives each worker's computing threads CPUs of
    /// their own when every thread of every worker can have one, as Open MPI binds its ranks; "off" leaves them to
    /// the scheduler, for a machine whose CPUs other programs use as well.
    /// </summary>
    public static Option<string?> PinThreadsOption()
    {
        var option = new Option<string?>("--pin-threads")
        {
            Description = "Local cluster: give each worker's computing threads CPUs of their own when every thread can have one (on, the default, or off for a machine shared with other programs)",
        };
        option.AcceptOnlyFromAmong("on", "off");
        return option;
    }

    /// <summary>The environment variables <c>cnn train</c> reads (in multi-node mode); flags win over them.</summary>
    public static IReadOnlyList<string> EnvironmentVariables => MultiNodeOptions.EnvironmentVariables;

    /// <summary>
    /// Validates <paramref name="settings"/> and trains; <paramref name="givenOptions"/> names the options set on the
    /// command line (they must agree with a checkpoint being resumed).
    /// </summary>
    public static int Run(TrainSettings settings, IReadOnlySet<string> givenOptions, CliOutput io)
    {
        settings.Validate();
        NodeTls? tls = WorkerOptions.LoadTls(settings.Tls);
        using var stop = new StopSignal(io.Error);
        try
        {
            return RunAny(settings, tls, givenOptions, io, stop.Token);
        }
        catch (RunFailedException e)
        {
            io.Error.WriteLine($"cnn: the run failed: {e.Message}");
            return 1;
        }
        catch (RunInterruptedException e)
        {
            io.Out.Flush();
            string signal = StopSignal.Name(stop.Signal!.Value);
            io.Error.WriteLine(e.HasCheckpoint
                ? $"cnn: stopped by {signal} after step {e.Step}; its checkpoint is in {e.Directory}: continue by running the same command with --resume (--out {e.Directory})"
                : $"cnn: stopped by {signal} before the first step; there is nothing to resume");
            return StopSignal.ExitCode(stop.Signal.Value);
        }
    }

    private static int RunAny(TrainSettings settings, NodeTls? tls, IReadOnlySet<string> givenOptions, CliOutput io, CancellationToken stop)
    {
        RunDirectory directory = RunDirectory.Prepare(settings.OutDirectory, settings.Resume);
        directory.KeepCheckpoints = settings.KeepCheckpoints;
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
                $"batch {settings.BatchSize}, micro-batch {settings.MicroBatch}, lr {settings.LearningRate}, seed {settings.Seed}, {ModeText(settings)}; artifacts in {directory.Path}"));
            if (checkpoint is not null)
            {
                io.Out.WriteLine($"Resuming at step {state.Step}: epoch {state.Epoch + 1}, {state.StepInEpoch} of its steps done.");
            }

            LocalCluster? cluster = null;
            CoordinatorNode? remote = null;
            ITrainingBackend? backend = null;
            try
            {
                switch (settings.Mode)
                {
                    case TrainingMode.NoCluster:
                        backend = new LocalBackend(model, weights, adam, data.TrainSource, settings.Threads, settings.MicroBatch, settings.Seed);
                        break;
                    case TrainingMode.LocalCluster:
                        cluster = LocalCluster.StartAsync(model, data.TrainSource, settings.MicroBatch, settings.NodeLogLevel).GetAwaiter().GetResult();
                        var local = new ClusterBackend(cluster.CoordinatorSystem, model, weights, adam, data, settings.MicroBatch, settings.Seed,
                            settings.LocalWorkerCount, TimeSpan.FromSeconds(settings.StepDeadlineSeconds), e => io.Out.WriteLine($"[cluster] {e}"), Transport(settings, null));
                        backend = local;
                        cluster.AddWorkersAsync(settings.LocalWorkerCount, settings.LocalThreadsPerWorker,
                            new WorkerData(data.TrainSource, data.TestSource, ClusterBackend.WorkerDataSha(data)), Numerics.Fingerprint, settings.PinsThreads).GetAwaiter().GetResult();
                        local.WaitForWorkers(settings.LocalWorkerCount, TimeSpan.FromSeconds(settings.JoinTimeoutSeconds));
                        break;
                    default:
                        remote = CoordinatorNode.Start(settings, tls);
                        var multi = new ClusterBackend(remote.System, model, weights, adam, data, settings.MicroBatch, settings.Seed,
                            settings.Workers!.Value, TimeSpan.FromSeconds(settings.StepDeadlineSeconds), e => io.Out.WriteLine($"[cluster] {e}"), Transport(settings, tls),
                            settings.AllowMixedNumerics);
                        backend = multi;
                        io.Out.WriteLine($"Coordinator listening at {remote.Address}{(tls is null ? "" : $" with mutual TLS as {tls.Description}")}; waiting up to {settings.JoinTimeoutSeconds:0}s for {settings.Workers} workers");
                        multi.WaitForWorkers(settings.Workers.Value, TimeSpan.FromSeconds(settings.JoinTimeoutSeconds));
                        break;
                }
            }
            catch
            {
                // Start-up failed (a worker never joined, a port is taken): free the nodes and ports before reporting it.
                Release(backend, cluster, remote);
                throw;
            }
            try
            {
                var loop = new TrainingLoop(backend, model, settings, data, new RunReporter(io.Out, io.Interactive), directory);
                RunSummary summary = loop.Run(state, checkpoint?.Info.Step, stop);
                io.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{summary.Steps} steps in {summary.WallSeconds:F1}s, {summary.TrainImagesPerSecond:N0} training images/s; weightsSha256 {summary.WeightsSha256}"));
                if (summary.Cluster is { } report)
                    io.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"cluster: {report.MeanStepMilliseconds:F2} ms per step, {report.MeanComputeMilliseconds:F2} ms compute on the critical path (the workers' mean {report.MeanWorkerComputeMilliseconds:F2}), {report.MeanCommunicationMilliseconds:F2} ms communication ({report.CommunicationShare:P0}), {report.TensorBytesPerStepPerWorker:N0} tensor bytes per step per worker, {report.StolenLeavesPerStep:F2} leaves stolen per step"));
                return 0;
            }
            finally
            {
                Release(backend, cluster, remote);
            }
        }
        catch (Exception e) when (e is CnnUserException or RunInterruptedException { HasCheckpoint: false })
        {
            directory.DiscardIfUnused();
            throw;
        }
    }

    private static void Release(ITrainingBackend? backend, LocalCluster? cluster, CoordinatorNode? remote)
    {
        backend?.Dispose();
        cluster?.DisposeAsync().AsTask().GetAwaiter().GetResult();
        remote?.Dispose();
    }

    private static ClusterTransport Transport(TrainSettings settings, NodeTls? tls) => settings.Transport switch
    {
        "akka" => ClusterTransport.Akka,
        _ => new ClusterTransport(true, settings.Mode == TrainingMode.Remote ? settings.Host : null, settings.Mode == TrainingMode.Remote ? settings.DataPort : 0, tls,
            settings.WorkStealing),
    };

    private static string ModeText(TrainSettings settings) => settings.Mode switch
    {
        TrainingMode.NoCluster => $"threads {settings.Threads}, no cluster",
        TrainingMode.LocalCluster => $"local cluster of {settings.LocalWorkerCount} workers x {settings.LocalThreadsPerWorker} threads",
        _ => $"cluster of {settings.Workers} worker processes",
    };

    private static string DefaultOutDirectory()
    {
        string stamp = DateTime.Now.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture);
        string path = Path.Combine("runs", stamp);
        for (int i = 2; Directory.Exists(path); i++) path = Path.Combine("runs", $"{stamp}-{i}");
        return path;
    }
}
