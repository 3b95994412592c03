// run.json: the one-file account of a training run that scripts, CI checks and the cluster comparison read.
// The names of the first fields are fixed by the project (model, epochs, steps, batchSize, microBatch, seed,
// workers, threads, wallSeconds, trainImagesPerSecond, testLoss, testAccuracy, valAccuracy, weightsSha256);
// the rest are there so that a run can be reproduced and compared without its console output.
//
// Deliberately not here: anything measured per step (history.csv has the epochs, the console the steps).
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Cnn.Coordinator.Runs;

/// <summary>The JSON settings every artifact of a run uses: camelCase names, indented.</summary>
public static class RunJson
{
    /// <summary>camelCase property names, indented, nulls written.</summary>
    public static JsonSerializerOptions Options { get; } = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };
}

/// <summary>The content of run.json.</summary>
public sealed record RunSummary
{
    /// <summary>Preset model name.</summary>
    public required string Model { get; init; }
    /// <summary>Epochs asked for.</summary>
    public required int Epochs { get; init; }
    /// <summary>Epochs finished (a run stopped by --max-steps may end inside one).</summary>
    public required int CompletedEpochs { get; init; }
    /// <summary>Optimizer steps done in total.</summary>
    public required long Steps { get; init; }
    /// <summary>Samples per step.</summary>
    public required int BatchSize { get; init; }
    /// <summary>Samples per leaf.</summary>
    public required int MicroBatch { get; init; }
    /// <summary>Adam's step size.</summary>
    public required float LearningRate { get; init; }
    /// <summary>Run seed.</summary>
    public required ulong Seed { get; init; }
    /// <summary>Fraction of the training file held out.</summary>
    public required double ValidationSplit { get; init; }
    /// <summary>Worker processes (0 for a single-process run).</summary>
    public required int Workers { get; init; }
    /// <summary>Threads of this process.</summary>
    public required int Threads { get; init; }
    /// <summary>Wall time of this session's training, evaluations and artifacts (data loading excluded).</summary>
    public required double WallSeconds { get; init; }
    /// <summary>Training images per second of this session's step time (evaluations excluded).</summary>
    public required double TrainImagesPerSecond { get; init; }
    /// <summary>Mean loss on the test set.</summary>
    public required double TestLoss { get; init; }
    /// <summary>Accuracy on the test set.</summary>
    public required double TestAccuracy { get; init; }
    /// <summary>Mean validation loss at the end, or null without a validation split.</summary>
    public required double? ValLoss { get; init; }
    /// <summary>Validation accuracy at the end, or null without a validation split.</summary>
    public required double? ValAccuracy { get; init; }
    /// <summary>SHA-256 of the final weights as little-endian float32 in parameter order.</summary>
    public required string WeightsSha256 { get; init; }
    /// <summary>SHA-256 of the training file's content (see MnistDataset.Sha256).</summary>
    public required string DataSha256 { get; init; }
    /// <summary>SHA-256 of the test file's content.</summary>
    public required string TestDataSha256 { get; init; }
    /// <summary>Samples trained on per epoch.</summary>
    public required int TrainSamples { get; init; }
    /// <summary>Held-out validation samples.</summary>
    public required int ValidationSamples { get; init; }
    /// <summary>Test samples.</summary>
    public required int TestSamples { get; init; }
    /// <summary>The step this session resumed from, or null for a fresh run.</summary>
    public required long? ResumedFromStep { get; init; }
    /// <summary>The --max-steps limit, or null.</summary>
    public required long? MaxSteps { get; init; }
    /// <summary>The machine the run was measured on.</summary>
    public required MachineInfo Machine { get; init; }
    /// <summary>Every epoch's row, as in history.csv (a last partial epoch included).</summary>
    public required IReadOnlyList<HistoryRow> History { get; init; }
    /// <summary>Seconds from the start of the process to the end of this session's first optimizer step (start-up cost: data, cluster, JIT).</summary>
    public double? FirstStepSecondsSinceProcessStart { get; init; }
    /// <summary>Cluster figures (null for --no-cluster).</summary>
    public BackendReport? Cluster { get; init; }
    /// <summary>Per worker: images, contributions, mean compute milliseconds per step and pinned CPUs (cluster runs).</summary>
    public IReadOnlyList<Cnn.Coordinator.Cluster.WorkerStat>? WorkerStats => Cluster?.Workers;
}

/// <summary>What the numbers of a run or benchmark depend on.</summary>
/// <param name="ProcessorCount">Logical processors visible to the process.</param>
/// <param name="Vector512">Whether Vector512 is hardware accelerated (the engine's fastest kernels need it).</param>
/// <param name="Avx512F">Whether AVX-512F is supported.</param>
/// <param name="Framework">The .NET runtime.</param>
/// <param name="Os">The operating system.</param>
/// <param name="Numerics">The kernels' paths (Numerics.Fingerprint): runs with the same one give the same bits.</param>
public sealed record MachineInfo(int ProcessorCount, bool Vector512, bool Avx512F, string Framework, string Os, string Numerics)
{
    /// <summary>This machine.</summary>
    public static MachineInfo Current { get; } = new(
        Environment.ProcessorCount,
        System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated,
        System.Runtime.Intrinsics.X86.Avx512F.IsSupported,
        System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription,
        System.Runtime.InteropServices.RuntimeInformation.OSDescription,
        Cnn.Engine.Kernels.Numerics.Fingerprint);
}
