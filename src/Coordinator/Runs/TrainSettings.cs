// What `cnn train` was asked to do, checked in one place before anything is loaded or written, so that every
// bad option is a one-line error with exit code 2 and no half-made run directory.
//
// On --resume the settings that decide the sequence of weights (model, batch size, micro-batch, learning rate,
// seed, validation split) come from the checkpoint: an option left out takes the checkpoint's value, an option
// given with another value is refused, because the resumed run would silently stop matching the original one.
// Epochs, --max-steps, threads and the checkpoint interval may change freely: they do not change the bits.
// Left out, --epochs, --data and a --max-steps not yet reached also come from the checkpoint, so that a run
// stopped early (Ctrl-C, SIGTERM) and resumed with just --resume ends where the original run would have, on the
// same data (the data's SHA-256 is checked either way).
//
// Deliberately not here: parsing (Commands/TrainCommand), data loading (TrainingData) and the mode switch
// between single-process and cluster training.
using System.Globalization;
using Cnn.Engine;
using Cnn.Engine.IO;
using Cnn.Engine.Models;

namespace Cnn.Coordinator.Runs;

/// <summary>The options of one training run.</summary>
public sealed record TrainSettings
{
    /// <summary>Preset model name.</summary>
    public string Model { get; init; } = "seed-cnn";
    /// <summary>Directory holding the four IDX files.</summary>
    public string DataDirectory { get; init; } = "";
    /// <summary>Epochs to train in total (counting those done before a resume).</summary>
    public int Epochs { get; init; } = 5;
    /// <summary>Samples per optimizer step.</summary>
    public int BatchSize { get; init; } = 64;
    /// <summary>Samples per leaf (the unit of exact, parallel gradient computation).</summary>
    public int MicroBatch { get; init; } = 8;
    /// <summary>Adam's step size.</summary>
    public float LearningRate { get; init; } = 1e-3f;
    /// <summary>Seed of initialisation, shuffles and dropout.</summary>
    public ulong Seed { get; init; } = 1;
    /// <summary>Fraction of the training file held out, from its end, for validation.</summary>
    public double ValidationSplit { get; init; } = 0.2;
    /// <summary>Threads of this process.</summary>
    public int Threads { get; init; } = Environment.ProcessorCount;
    /// <summary>Stop once this many optimizer steps are done in total, or never when null.</summary>
    public long? MaxSteps { get; init; }
    /// <summary>Run directory for the artifacts.</summary>
    public string OutDirectory { get; init; } = "";
    /// <summary>Continue from the checkpoint in <see cref="OutDirectory"/>.</summary>
    public bool Resume { get; init; }
    /// <summary>Checkpoints kept in the run directory (the newest and older ones), at least 2.</summary>
    public int KeepCheckpoints { get; init; } = 3;
    /// <summary>Also checkpoint every this many steps, or only at epoch ends when null.</summary>
    public int? CheckpointEvery { get; init; }
    /// <summary>Train in this process, without a cluster.</summary>
    public bool NoCluster { get; init; }
    /// <summary>Workers of an in-process local cluster (the default mode, with 2), or null.</summary>
    public int? LocalWorkers { get; init; }
    /// <summary>Threads of each worker of a local cluster (default: cores divided by workers).</summary>
    public int? ThreadsPerWorker { get; init; }
    /// <summary>Remote workers to wait for (multi-node mode), or null.</summary>
    public int? Workers { get; init; }
    /// <summary>Address the coordinator node binds (multi-node mode).</summary>
    public string Host { get; init; } = "127.0.0.1";
    /// <summary>Port the coordinator node binds (multi-node mode).</summary>
    public int Port { get; init; } = 4053;
    /// <summary>Host name workers reach the coordinator by, when it differs from Host.</summary>
    public string? PublicHost { get; init; }
    /// <summary>How long to wait for the workers before giving up, in seconds.</summary>
    public double JoinTimeoutSeconds { get; init; } = 60;
    /// <summary>The smallest per-step deadline before late work is re-assigned, in seconds.</summary>
    public double StepDeadlineSeconds { get; init; } = 1;

    /// <summary>How tensors travel in a cluster: "tcp" (the data plane) or "akka" (chunked messages).</summary>
    public string Transport { get; init; } = "tcp";
    /// <summary>Cluster on the data plane: workers that are done take the last leaf of a slower worker's share (Cluster/StealBoard.cs).</summary>
    public bool WorkStealing { get; init; }
    /// <summary>--pin-threads as given ("on" or "off"), or null for the default, on (LocalCluster.AddWorkersAsync).</summary>
    public string? PinThreads { get; init; }
    /// <summary>True unless --pin-threads off: a local cluster's workers compute on CPUs of their own when they fit.</summary>
    public bool PinsThreads => PinThreads != "off";
    /// <summary>Port of the tensor data plane on the coordinator node (multi-node mode).</summary>
    public int DataPort { get; init; } = 4054;

    /// <summary>
    /// Multi-node: admit workers whose numerics fingerprint (kernel paths) differs from this node's instead of
    /// refusing them, giving up bit-identical results for a cluster of mixed machines.
    /// </summary>
    public bool AllowMixedNumerics { get; init; }

    /// <summary>Mutual TLS for remoting and the data plane (multi-node mode), or null for plain TCP.</summary>
    public Messages.NodeTlsFiles? Tls { get; init; }

    /// <summary>
    /// The Akka log level of a cluster's nodes as given (--log-level, or CNN_LOG_LEVEL in multi-node mode), or null
    /// for the default, warning.
    /// </summary>
    public string? LogLevel { get; init; }

    /// <summary>The Akka log level of this run's nodes (see <see cref="LogLevel"/>).</summary>
    public Akka.Event.LogLevel NodeLogLevel => Cnn.Worker.WorkerOptions.ParseLogLevel(LogLevel ?? "warning",
        Mode == TrainingMode.Remote ? $"--log-level / {Cnn.Worker.WorkerOptions.Env.LogLevel}" : "--log-level");

    /// <summary>The training mode these settings select.</summary>
    public TrainingMode Mode => NoCluster ? TrainingMode.NoCluster : Workers is not null ? TrainingMode.Remote : TrainingMode.LocalCluster;

    /// <summary>Workers of the local cluster.</summary>
    public int LocalWorkerCount => LocalWorkers ?? 2;

    /// <summary>Threads of each local worker.</summary>
    public int LocalThreadsPerWorker => ThreadsPerWorker ?? Math.Max(1, Environment.ProcessorCount / LocalWorkerCount);

    /// <summary>Throws a one-line <see cref="CnnUserException"/> for the first option that cannot work.</summary>
    public void Validate()
    {
        Presets.Create(Model);
        Positive("--epochs", Epochs);
        Positive("--batch-size", BatchSize);
        Positive("--micro-batch", MicroBatch);
        if (MicroBatch > BatchSize)
        {
            throw new CnnUserException($"--micro-batch {MicroBatch} is larger than --batch-size {BatchSize}: a leaf cannot hold more samples than the batch");
        }
        if (!(LearningRate > 0f) || !float.IsFinite(LearningRate))
        {
            throw new CnnUserException($"--lr must be a positive number, got {LearningRate.ToString(CultureInfo.InvariantCulture)}");
        }
        if (!(ValidationSplit >= 0 && ValidationSplit < 1))
        {
            throw new CnnUserException($"--validation-split must be in [0, 1), got {ValidationSplit.ToString(CultureInfo.InvariantCulture)}");
        }
        Positive("--threads", Threads);
        if (MaxSteps is long max) Positive("--max-steps", max);
        if (CheckpointEvery is int every) Positive("--checkpoint-every", every);
        if (KeepCheckpoints < 2) throw new CnnUserException($"--keep-checkpoints must be at least 2 (a damaged newest checkpoint needs one before it), got {KeepCheckpoints}");
        if (string.IsNullOrWhiteSpace(DataDirectory)) throw new CnnUserException("--data must name a directory");
        if (!Worker.WorkerOptions.CanList(DataDirectory)) throw new CnnUserException($"--data {DataDirectory}: the directory cannot be read (permission denied)");
        ValidateMode();
        if (string.IsNullOrWhiteSpace(OutDirectory)) throw new CnnUserException("--out must name a directory");
    }

    /// <summary>
    /// These settings continued from a checkpoint: options in <paramref name="givenOptions"/> must agree with it,
    /// the others take its values (see file header).
    /// </summary>
    public TrainSettings ResumedFrom(string checkpointPath, string modelName, CheckpointInfo info, IReadOnlySet<string> givenOptions)
    {
        T Pick<T>(string option, T mine, T theirs)
        {
            if (!givenOptions.Contains(option) || EqualityComparer<T>.Default.Equals(mine, theirs)) return theirs;
            throw new CnnUserException(string.Create(CultureInfo.InvariantCulture,
                $"{option} {mine} differs from the {theirs} of {checkpointPath}: leave it out to continue with the checkpoint's value, or train into a new --out"));
        }

        TrainSettings? planned = Stored(info.ConfigJson);
        return this with
        {
            Epochs = givenOptions.Contains("--epochs") || planned is null ? Epochs : planned.Epochs,
            // The run's --max-steps only while it is still ahead (the run was stopped short of it): a run that
            // reached its limit and is resumed without one goes on to --epochs.
            MaxSteps = givenOptions.Contains("--max-steps") || planned?.MaxSteps is not long limit || limit <= info.Step ? MaxSteps : limit,
            DataDirectory = givenOptions.Contains("--data") || planned is not { DataDirectory.Length: > 0 } ? DataDirectory : planned.DataDirectory,
            Model = Pick("--model", Model, modelName),
            BatchSize = Pick("--batch-size", BatchSize, info.BatchSize),
            MicroBatch = Pick("--micro-batch", MicroBatch, info.MicroBatch),
            LearningRate = Pick("--lr", LearningRate, info.LearningRate),
            Seed = Pick("--seed", Seed, info.Seed),
            ValidationSplit = Pick("--validation-split", ValidationSplit, info.ValidationSplit),
        };
    }

    // The settings of the run that wrote a checkpoint (stored with RunJson.Options when it was saved), or null
    // when they cannot be read (a checkpoint from elsewhere): then this session's values apply.
    private static TrainSettings? Stored(string configJson)
    {
        try
        {
            return System.Text.Json.JsonSerializer.Deserialize<TrainSettings>(configJson, RunJson.Options);
        }
        catch (System.Text.Json.JsonException)
        {
            return null;
        }
    }

    /// <summary>Throws a one-line <see cref="CnnUserException"/> for the first mode or multi-node option that cannot work.</summary>
    public void ValidateMode()
    {
        int modes = (NoCluster ? 1 : 0) + (LocalWorkers is not null ? 1 : 0) + (Workers is not null ? 1 : 0);
        if (modes > 1) throw new CnnUserException("choose one mode: --no-cluster, --local-workers N or --workers N");
        if (Tls is not null && Mode != TrainingMode.Remote)
            throw new CnnUserException("--tls-cert applies to a multi-node run (--workers N): a local cluster never leaves this process");
        if (LogLevel is not null && Mode == TrainingMode.NoCluster)
            throw new CnnUserException("--log-level applies to a cluster (--local-workers or --workers): --no-cluster starts no Akka node");
        _ = NodeLogLevel; // parses --log-level, so that a bad name is refused before anything starts
        if (AllowMixedNumerics && Mode != TrainingMode.Remote)
            throw new CnnUserException("--allow-mixed-numerics applies to a multi-node run (--workers N): the workers of a local cluster run this machine's kernels");
        if (WorkStealing && Mode == TrainingMode.NoCluster)
            throw new CnnUserException("--work-stealing applies to a cluster (--local-workers or --workers): --no-cluster has no workers to move leaves between");
        if (WorkStealing && Transport != "tcp")
            throw new CnnUserException($"--work-stealing on needs the tcp data plane, not --transport {Transport}: the workers' steal requests travel on it");
        if (PinThreads is not null && Mode != TrainingMode.LocalCluster)
            throw new CnnUserException("--pin-threads applies to a local cluster (--local-workers); worker processes take --cpus / CNN_CPUS on their own command line");
        if (ThreadsPerWorker is not null && Mode != TrainingMode.LocalCluster)
            throw new CnnUserException("--threads-per-worker applies to a local cluster (--local-workers); remote workers take --threads on their own command line");
        int leaves = (BatchSize + MicroBatch - 1) / MicroBatch;
        if (Mode == TrainingMode.LocalCluster)
        {
            Positive("--local-workers", LocalWorkerCount);
            if (LocalWorkerCount > leaves)
                throw new CnnUserException($"--local-workers {LocalWorkerCount} is more than the {leaves} leaves of a batch (--batch-size {BatchSize} / --micro-batch {MicroBatch}): some workers would have nothing to do");
            Positive("--threads-per-worker", LocalThreadsPerWorker);
        }
        if (Mode == TrainingMode.Remote)
        {
            Positive("--workers", Workers!.Value);
            if (Workers > leaves)
                throw new CnnUserException($"--workers {Workers} is more than the {leaves} leaves of a batch (--batch-size {BatchSize} / --micro-batch {MicroBatch})");
            if (Port is < 1 or > 65535) throw new CnnUserException($"--port {Port} is not a port (1 to 65535)");
            if (DataPort is < 1 or > 65535 || DataPort == Port) throw new CnnUserException($"--data-port {DataPort} must be a port (1 to 65535) other than --port {Port}");
            if (Uri.CheckHostName(Host) == UriHostNameType.Unknown) throw new CnnUserException($"--host '{Host}' is not a host name or IP address");
            if ((Host == "0.0.0.0" || Host == "::") && string.IsNullOrWhiteSpace(PublicHost))
                throw new CnnUserException($"--host {Host} listens on every interface: give --public-host so workers can reach the coordinator");
        }
        if (!(JoinTimeoutSeconds > 0)) throw new CnnUserException($"--join-timeout must be positive, got {JoinTimeoutSeconds.ToString(CultureInfo.InvariantCulture)}");
        if (!(StepDeadlineSeconds > 0)) throw new CnnUserException($"--step-deadline must be positive, got {StepDeadlineSeconds.ToString(CultureInfo.InvariantCulture)}");
    }

    private static void Positive(string option, long value)
    {
        if (value <= 0) throw new CnnUserException($"{option} must be at least 1, got {value.ToString(CultureInfo.InvariantCulture)}");
    }
}

/// <summary>Where the steps are computed.</summary>
public enum TrainingMode
{
    /// <summary>This process's threads (--no-cluster).</summary>
    NoCluster,
    /// <summary>An in-process cluster of N worker nodes (--local-workers N, the default with 2).</summary>
    LocalCluster,
    /// <summary>Worker processes on other hosts that join this coordinator (--workers N).</summary>
    Remote,
}
