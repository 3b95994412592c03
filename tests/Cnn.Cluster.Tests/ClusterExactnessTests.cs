// DESIGN.md's exactness property through the whole distributed path: for one seed, a local cluster of 1, 2, 3 or
// 4 workers (any threads per worker, tensors over the TCP data plane or as chunked Akka messages) ends with the
// same weights, bit for bit, as the single-process path (LocalBackend, what `--no-cluster` runs), and reports the
// same loss sums and correct counts at every step. 12 steps of 64 on 409 training images cross an epoch boundary
// and include the epoch's partial last batch (25 samples, 4 leaves: with 4 workers, one leaf each). Through the
// real `cnn train` path, a local-cluster run stopped by --max-steps and resumed from its checkpoint on another
// number of workers and the other transport also ends with the --no-cluster weights and history, and the residual
// model (batch normalisation, skip Add) on 3 workers ends with the --no-cluster weights and test loss. With work
// stealing, leaves change hands in some steps and the weights are still the --no-cluster ones.
using System.Text.Json;
using Cnn.Cluster.Tests.Support;
using Cnn.Coordinator.Tests;
using Cnn.Coordinator.Cluster;
using Cnn.Engine.IO;
using Cnn.Engine.Training;
using Xunit;
using static Cnn.Coordinator.Tests.TestSupport;

namespace Cnn.Cluster.Tests;

[Collection(ClusterCollection.Name)]
public sealed class ClusterExactnessTests(SyntheticRun run)
{
    private const int Steps = 12, StepsBeforeBaseline = 5;

    [Theory]
    [InlineData(1, 2, "tcp", true)]
    [InlineData(2, 1, "tcp", true)]
    [InlineData(2, 1, "tcp", false)]
    [InlineData(3, 1, "tcp", true)]
    [InlineData(4, 1, "tcp", true)]
    [InlineData(3, 1, "akka", true)]
    public async Task A_local_cluster_ends_with_the_no_cluster_weights_bit_for_bit(int workers, int threadsPerWorker, string transport, bool pinThreads)
    {
        RunResult reference = run.Reference(Steps);
        await using ClusterRun cluster = await ClusterRun.StartAsync(run, workers, threadsPerWorker, transport == "akka" ? ClusterTransport.Akka : ClusterTransport.Tcp,
            pinThreads: pinThreads);
        // Pinned where every thread of every worker has a CPU of its own (on a 2-CPU machine: up to 2 threads in
        // all), else, and with --pin-threads off, left to the scheduler.
        IReadOnlyList<int>[]? plan = ThreadAffinity.Plan(ThreadAffinity.AllowedCpus(), 0, workers, threadsPerWorker);
        Assert.Equal(pinThreads && plan is not null ? plan : Enumerable.Repeat<IReadOnlyList<int>?>(null, workers), cluster.Cluster.WorkerCpus);

        List<StepMetrics> metrics = run.Train(cluster.Backend, 0, StepsBeforeBaseline);
        var baseline = cluster.Backend.Stats();
        metrics.AddRange(run.Train(cluster.Backend, StepsBeforeBaseline, Steps));

        Assert.Equal(reference.Metrics, metrics);
        Assert.Equal(reference.WeightsSha256, Checkpoint.WeightsSha256(cluster.Backend.Weights));
        var stats = cluster.Backend.Stats();
        Assert.Equal(workers, stats.Workers.Count);
        // What run.json records of each worker's CPUs is what the worker was pinned to (worker-k is the k-th started).
        Assert.Equal(cluster.Cluster.WorkerCpus, stats.Workers.OrderBy(w => w.Id, StringComparer.Ordinal).Select(w => w.Cpus));
        // Every worker took part (a late one may see some of its subtrees raced by backups, so no exact count).
        Assert.All(stats.Workers, w => Assert.True(w.Contributions > 0, $"{w.Id} made no accepted contribution in {Steps} steps"));
        Assert.Equal(Steps, stats.Steps);
        // The report over the steps after a baseline (what `cnn bench` prints) covers those steps only.
        var whole = cluster.Backend.Report();
        var since = cluster.Backend.Report(baseline);
        Assert.Equal(Steps, whole.Steps);
        Assert.Equal(Steps - StepsBeforeBaseline, since.Steps);
        Assert.InRange(since.MeanStepMilliseconds, since.MeanComputeMilliseconds, double.MaxValue);
        // The workers' mean compute time is at most the slowest worker's, and a worker that computes takes some.
        Assert.InRange(since.MeanWorkerComputeMilliseconds, double.Epsilon, since.MeanComputeMilliseconds);
        double expectedMean = (stats.MeanWorkerComputeMilliseconds - baseline.MeanWorkerComputeMilliseconds) / (Steps - StepsBeforeBaseline);
        Assert.Equal(expectedMean, since.MeanWorkerComputeMilliseconds, 9);
        double expectedStep = (stats.StepMilliseconds - baseline.StepMilliseconds) / (Steps - StepsBeforeBaseline);
        Assert.Equal(expectedStep, since.MeanStepMilliseconds, 9);
    }

    // Work stealing (on by default on the tcp data plane) happens whenever a worker finishes its share before the
    // other has begun its last leaf, which on shared cores is a share of the steps; over 60 steps some leaves are
    // stolen (each then computed by the thief and left out by its owner, or computed by both), and the weights are
    // still the --no-cluster ones. With it off, no leaf is stolen.
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task With_work_stealing_leaves_change_hands_and_the_weights_stay_bit_for_bit_the_no_cluster_ones(bool workStealing)
    {
        const int steps = 60;
        RunResult reference = run.Reference(steps);
        await using ClusterRun cluster = await ClusterRun.StartAsync(run, 2, 1, ClusterTransport.Tcp with { WorkStealing = workStealing });

        List<StepMetrics> metrics = run.Train(cluster.Backend, 0, steps);

        Assert.Equal(reference.Metrics, metrics);
        Assert.Equal(reference.WeightsSha256, Checkpoint.WeightsSha256(cluster.Backend.Weights));
        long stolen = cluster.Backend.Stats().StolenLeaves;
        if (workStealing) Assert.InRange(stolen, 1, steps);
        else Assert.Equal(0, stolen);
    }

    [Fact]
    public void The_reference_run_moves_the_weights_and_learns()
    {
        RunResult reference = run.Reference(Steps);
        var (_, initial, _) = SyntheticRun.Fresh();

        Assert.NotEqual(Checkpoint.WeightsSha256(initial), reference.WeightsSha256);
        Assert.All(reference.Metrics, m => Assert.True(double.IsFinite(m.LossSum)));
        double first = reference.Metrics[0].LossSum / reference.Metrics[0].Samples, last = reference.Metrics[^1].LossSum / reference.Metrics[^1].Samples;
        Assert.True(last < first, $"the loss went from {first} to {last}");
    }

    [Fact]
    public void Cnn_train_on_a_local_cluster_stopped_and_resumed_on_other_workers_and_transport_ends_with_the_no_cluster_weights()
    {
        string single = run.Scratch.Path("cli-no-cluster"), split = run.Scratch.Path("cli-resumed");
        string[] common = ["--data", run.DataDirectory, "--epochs", "2", "--seed", SyntheticRun.Seed.ToString()];

        CliResult straight = RunCnn(["train", "--no-cluster", "--out", single, "--max-steps", "10", .. common]);
        CliResult first = RunCnn(["train", "--local-workers", "3", "--out", split, "--max-steps", "4", .. common]);
        CliResult second = RunCnn(["train", "--local-workers", "2", "--transport", "akka", "--out", split, "--resume", "--max-steps", "10", .. common]);

        Assert.True(straight.ExitCode == 0, straight.Error);
        Assert.True(first.ExitCode == 0, $"{first.Error}\n{first.Out}");
        Assert.True(second.ExitCode == 0, $"{second.Error}\n{second.Out}");
        Assert.Contains("[cluster] worker worker-3 joined", first.Out);
        Assert.Contains("Resuming at step 4", second.Out);
        JsonElement a = JsonDocument.Parse(File.ReadAllText(Path.Combine(single, "run.json"))).RootElement;
        JsonElement b = JsonDocument.Parse(File.ReadAllText(Path.Combine(split, "run.json"))).RootElement;
        Assert.Equal(a.GetProperty("weightsSha256").GetString(), b.GetProperty("weightsSha256").GetString());
        Assert.Equal(run.Reference(10).WeightsSha256, a.GetProperty("weightsSha256").GetString());
        Assert.Equal(2, b.GetProperty("workers").GetInt32());
        Assert.Equal(2, b.GetProperty("cluster").GetProperty("workers").GetArrayLength());
        Assert.Contains("akka", b.GetProperty("cluster").GetProperty("transport").GetString());
        string[] historyA = File.ReadAllLines(Path.Combine(single, "history.csv")), historyB = File.ReadAllLines(Path.Combine(split, "history.csv"));
        Assert.Equal(historyA.Length, historyB.Length);
        for (int i = 0; i < historyA.Length; i++) Assert.Equal(historyA[i].Split(',')[..5], historyB[i].Split(',')[..5]);
    }

    [Fact]
    public void Cnn_train_of_the_residual_model_on_a_local_cluster_ends_with_the_no_cluster_weights_and_test_loss()
    {
        // seed-resnet adds batch normalisation (per-leaf statistics, moving averages folded in by the optimizer, the
        // inference scale-and-shift in the distributed test evaluation) and the skip Add to the path checked above.
        string single = run.Scratch.Path("resnet-no-cluster"), cluster = run.Scratch.Path("resnet-cluster");
        string[] common = ["--model", "seed-resnet", "--data", run.DataDirectory, "--epochs", "1", "--max-steps", "4", "--seed", SyntheticRun.Seed.ToString()];

        CliResult local = RunCnn(["train", "--no-cluster", "--out", single, .. common]);
        CliResult distributed = RunCnn(["train", "--local-workers", "3", "--out", cluster, .. common]);

        Assert.True(local.ExitCode == 0, local.Error);
        Assert.True(distributed.ExitCode == 0, $"{distributed.Error}\n{distributed.Out}");
        JsonElement a = JsonDocument.Parse(File.ReadAllText(Path.Combine(single, "run.json"))).RootElement;
        JsonElement b = JsonDocument.Parse(File.ReadAllText(Path.Combine(cluster, "run.json"))).RootElement;
        Assert.Equal(3, b.GetProperty("workers").GetInt32());
        Assert.Equal(("seed-resnet", "seed-resnet"), (a.GetProperty("model").GetString(), b.GetProperty("model").GetString()));
        Assert.Equal(4, b.GetProperty("steps").GetInt32());
        Assert.Equal(a.GetProperty("weightsSha256").GetString(), b.GetProperty("weightsSha256").GetString());
        Assert.Equal(a.GetProperty("testLoss").GetDouble(), b.GetProperty("testLoss").GetDouble());
        Assert.Equal(a.GetProperty("testAccuracy").GetDouble(), b.GetProperty("testAccuracy").GetDouble());
    }
}
