// The shared fixture of the fault-tolerance tests: one synthetic dataset sized so that every step of a run shows
// in the coordinator's output, the training options every run uses, the `--no-cluster` reference hash they are
// compared with (computed once: weights are bit-identical across modes, DESIGN.md "Exactness"), and helpers that
// start the coordinator and worker processes through the multi-node harness (NodeProcess, ClusterRuns), which
// kills them all in Dispose.
//
// Why these sizes: 800 training-file images leave 640 for training after the 20% validation split, so an epoch
// is 10 steps of 64 and the reporter prints a line after every step (it prints each tenth of an epoch when not
// on a terminal). A step takes 25 to 50 ms with 3 one-thread workers on a 2-core machine without AVX-512, so 500
// steps are long enough to disturb a run in its middle and to see its throughput before, during and after. The
// run in which a worker is frozen for 10 s is longer (LongMaxSteps): the worker must wake while it still goes on,
// and on a 2-core host with AVX-512 a step takes about 10 ms, so the two other workers carried 430 steps in the
// 4 s after the loss, and a 500-step run ended as the frozen worker woke.
//
// Deliberately not here: the scenarios (one test class per kind of fault) and the reading of the output
// (CoordinatorLog).
using System.Text.Json;
using Cnn.MultiNode.Tests;
using Cnn.Worker;
using Xunit;

namespace Cnn.FaultTolerance.Tests;

/// <summary>The collection of fault-tolerance tests: they run one after another, each run keeps both cores busy.</summary>
[CollectionDefinition(Name)]
public sealed class FaultCollection : ICollectionFixture<FaultRuns>
{
    /// <summary>Its name.</summary>
    public const string Name = "fault tolerance";
}

/// <summary>Data, options, reference result and process starters shared by the fault-tolerance tests (see file header).</summary>
public sealed class FaultRuns : IDisposable
{
    /// <summary>Steps of one epoch (640 training images, batch 64).</summary>
    public const int StepsPerEpoch = 10;

    /// <summary>Steps of a whole run.</summary>
    public const int MaxSteps = 500;

    /// <summary>Epochs of a whole run (every epoch is whole: <see cref="MaxSteps"/> is a multiple of <see cref="StepsPerEpoch"/>).</summary>
    public const int Epochs = MaxSteps / StepsPerEpoch;

    /// <summary>Steps of the run in which a worker is frozen for 10 s (see file header); a multiple of <see cref="StepsPerEpoch"/>.</summary>
    public const int LongMaxSteps = 1500;

    /// <summary>How long one coordinator session may take before the test gives up: generous, the machine is shared.</summary>
    public static readonly TimeSpan RunTimeout = TimeSpan.FromMinutes(3);

    /// <summary>
    /// How long a run may go without completing a step before the test calls it stuck. Every legitimate pause is far
    /// shorter: a step waits at most the 1 s deadline floor (5 s for the first) before backups go out, and a dead
    /// worker is declared unreachable after about 5 s.
    /// </summary>
    public static readonly TimeSpan StallTimeout = TimeSpan.FromSeconds(30);

    private readonly ClusterRuns _harness = new();
    private readonly Lazy<string> _reference;
    private readonly Lazy<string> _longReference;

    /// <summary>Writes the dataset.</summary>
    public FaultRuns()
    {
        DataDirectory = TestMaterial.WriteSyntheticMnist(Scratch.Path("fault-data"), train: 800, test: 256);
        _reference = new Lazy<string>(() => RunNoCluster(Scratch.Path("fault-reference"), MaxSteps));
        _longReference = new Lazy<string>(() => RunNoCluster(Scratch.Path("fault-reference-long"), LongMaxSteps));
    }

    /// <summary>Where runs go (deleted at the end).</summary>
    public Scratch Scratch => _harness.Scratch;

    /// <summary>The synthetic IDX files every node loads.</summary>
    public string DataDirectory { get; }

    /// <summary>
    /// The options that decide the weights of a run of <paramref name="runSteps"/> steps (whole epochs), the same in every
    /// run of that length; <paramref name="maxSteps"/> may stop a session early.
    /// </summary>
    public string[] TrainOptions(int maxSteps = MaxSteps, int runSteps = MaxSteps) =>
        ["--epochs", (runSteps / StepsPerEpoch).ToString(), "--max-steps", maxSteps.ToString(), "--seed", "7", "--batch-size", "64", "--micro-batch", "8",
            "--data", DataDirectory];

    /// <summary>weightsSha256 of the `--no-cluster --threads 2` run of <see cref="TrainOptions"/> (the undisturbed run).</summary>
    public string ReferenceWeightsSha256 => _reference.Value;

    /// <summary>The same for a run of <see cref="LongMaxSteps"/>.</summary>
    public string LongReferenceWeightsSha256 => _longReference.Value;

    /// <summary>
    /// Starts a coordinator (`cnn train --workers N` on 127.0.0.1, on a free <paramref name="port"/>) writing to
    /// <paramref name="outDirectory"/>, with <paramref name="extra"/> options, and returns it once it listens.
    /// </summary>
    public NodeProcess StartCoordinator(string outDirectory, int workers, out int port, IEnumerable<string>? extra = null, int maxSteps = MaxSteps,
        int runSteps = MaxSteps) =>
        TestMaterial.StartListening((p, dataPort) => StartCoordinatorOn(p, dataPort, outDirectory, workers, extra, maxSteps, runSteps), out port);

    /// <summary>
    /// Starts a coordinator on 127.0.0.1:<paramref name="port"/> (data plane on <paramref name="dataPort"/>), e.g. a
    /// restarted one on its predecessor's address, where the workers look for it.
    /// </summary>
    public NodeProcess StartCoordinatorOn(int port, int dataPort, string outDirectory, int workers, IEnumerable<string>? extra = null, int maxSteps = MaxSteps,
        int runSteps = MaxSteps) =>
        ClusterRuns.StartCoordinatorOn(port, dataPort, outDirectory, workers, TrainOptions(maxSteps, runSteps), extra);

    /// <summary>
    /// Starts worker-<paramref name="index"/> on 127.0.0.(index+1) with one thread, configured through the CNN_*
    /// variables as docker-compose does, on this fixture's data or on <paramref name="dataDirectory"/>, bound to
    /// <paramref name="bindPort"/> (0: any free port; docker-compose gives every worker the same fixed one).
    /// </summary>
    public NodeProcess StartWorker(int index, int coordinatorPort, string? dataDirectory = null, int bindPort = 0) =>
        _harness.StartWorker(index, coordinatorPort, new Dictionary<string, string>
        {
            [WorkerOptions.Env.Data] = dataDirectory ?? DataDirectory, [WorkerOptions.Env.BindPort] = bindPort.ToString(),
        });

    /// <summary>run.json's cluster events: the step in progress (steps done) and what happened.</summary>
    public static List<(long Step, string What)> Events(JsonElement run) =>
        run.GetProperty("cluster").GetProperty("events").EnumerateArray().Select(e => (e.GetProperty("step").GetInt64(), e.GetProperty("what").GetString()!)).ToList();

    private string RunNoCluster(string outDirectory, int runSteps)
    {
        using NodeProcess run = NodeProcess.Start("no-cluster", Programs.Coordinator,
            ["train", "--no-cluster", "--threads", "2", .. TrainOptions(runSteps, runSteps), "--out", outDirectory]);
        int code = run.WaitForExit(RunTimeout);
        Assert.True(code == 0, $"the --no-cluster reference run failed with {code}\n{run}");
        return ClusterRuns.RunJson(outDirectory).GetProperty("weightsSha256").GetString()!;
    }

    /// <inheritdoc/>
    public void Dispose() => _harness.Dispose();
}
