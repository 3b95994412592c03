// The run every cluster test trains: seed-cnn on a small synthetic IDX dataset (512 training images, of which the
// last 20% are held out as in Keras, so an epoch is 7 batches of 64 and ends with a partial batch of 25 samples,
// 4 leaves), and its reference result from the single-process path (LocalBackend, as `--no-cluster` runs it).
// The schedule is the epoch loop's: batch i of epoch e comes from EpochSchedule.Order(seed, e, trainCount).
//
// It is an xunit collection fixture: the dataset is written and loaded once, the reference is trained once per
// step count, and the tests that start clusters share the collection so that no two clusters compete for the
// two cores at the same time.
using System.Collections.Concurrent;
using Cnn.Coordinator.Runs;
using Cnn.Coordinator.Tests;
using Cnn.Engine.IO;
using Cnn.Engine.Models;
using Cnn.Engine.Training;
using Cnn.Worker;
using Xunit;

namespace Cnn.Cluster.Tests.Support;

/// <summary>The weights hash and the per-step metrics of a run.</summary>
public sealed record RunResult(string WeightsSha256, IReadOnlyList<StepMetrics> Metrics);

/// <summary>Synthetic data, schedule and reference run shared by the cluster tests (see file header).</summary>
public sealed class SyntheticRun : IDisposable
{
    public const string ModelName = "seed-cnn";
    public const ulong Seed = 7;
    public const int BatchSize = 64;
    public const int MicroBatch = 8;
    public const double ValidationSplit = 0.2;

    private readonly ConcurrentDictionary<int, Lazy<RunResult>> _references = new();

    public SyntheticRun()
    {
        DataDirectory = TestSupport.WriteSyntheticMnist(Scratch.Path("data"), train: 512, test: 128);
        Data = TrainingData.Load(DataDirectory, Presets.Create(ModelName), ValidationSplit, TextWriter.Null);
    }

    /// <summary>Throw-away directories, removed with the fixture.</summary>
    public Scratch Scratch { get; } = new();

    /// <summary>The directory of the four IDX files.</summary>
    public string DataDirectory { get; }

    /// <summary>The loaded data, as `cnn train` loads it.</summary>
    public TrainingData Data { get; }

    /// <summary>What a worker node of a local cluster is given (same sources and hash as TrainCommand gives them).</summary>
    public WorkerData WorkerData => new(Data.TrainSource, Data.TestSource, Cnn.Coordinator.Cluster.ClusterBackend.WorkerDataSha(Data));

    /// <summary>The sample ids of global step <paramref name="step"/>, as the epoch loop builds them.</summary>
    public int[] Batch(long step)
    {
        int stepsPerEpoch = EpochSchedule.StepsPerEpoch(Data.TrainCount, BatchSize);
        int[] order = EpochSchedule.Order(Seed, (int)(step / stepsPerEpoch), Data.TrainCount);
        return EpochSchedule.Batch(order, (int)(step % stepsPerEpoch), BatchSize);
    }

    /// <summary>A fresh model, its initial weights for the seed, and a fresh optimizer.</summary>
    public static (Model Model, float[] Weights, Adam Adam) Fresh()
    {
        Model model = Presets.Create(ModelName);
        return (model, model.Parameters.Initialize(Seed), new Adam(model.Parameters));
    }

    /// <summary>Runs steps [<paramref name="from"/>, <paramref name="to"/>) through <paramref name="backend"/>.</summary>
    public List<StepMetrics> Train(ITrainingBackend backend, int from, int to)
    {
        var metrics = new List<StepMetrics>();
        for (int step = from; step < to; step++) metrics.Add(backend.Step(Batch(step), step));
        return metrics;
    }

    /// <summary>The single-process result after <paramref name="steps"/> steps (trained once, then cached).</summary>
    public RunResult Reference(int steps) => _references.GetOrAdd(steps, s => new Lazy<RunResult>(() =>
    {
        var (model, weights, adam) = Fresh();
        using var backend = new LocalBackend(model, weights, adam, Data.TrainSource, threads: 2, MicroBatch, Seed);
        List<StepMetrics> metrics = Train(backend, 0, s);
        return new RunResult(Checkpoint.WeightsSha256(backend.Weights), metrics);
    })).Value;

    public void Dispose() => Scratch.Dispose();
}

/// <summary>The tests that start clusters or train: one at a time, sharing <see cref="SyntheticRun"/>.</summary>
[CollectionDefinition(Name)]
public sealed class ClusterCollection : ICollectionFixture<SyntheticRun>
{
    public const string Name = "clusters";
}
