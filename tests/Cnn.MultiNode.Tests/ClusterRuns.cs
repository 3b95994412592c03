// The shared fixture of the process tests: one synthetic dataset, the training options every run uses, the
// `--no-cluster` reference hash they are compared with (computed once), and helpers that start a coordinator
// and worker processes the way docker-compose.yml and deploy/local-cluster.sh do (the same CNN_* variables).
// The tests that start processes share one collection, so they run one after another: each run already keeps
// both cores busy.
using System.Text.Json;
using Cnn.Worker;
using Xunit;

namespace Cnn.MultiNode.Tests;

/// <summary>The collection of tests that start processes (run serially).</summary>
[CollectionDefinition(Name)]
public sealed class ProcessCollection : ICollectionFixture<ClusterRuns>
{
    /// <summary>Its name.</summary>
    public const string Name = "processes";
}

/// <summary>Data, options and the reference result shared by the process tests (see file header).</summary>
public sealed class ClusterRuns : IDisposable
{
    /// <summary>How long a run may take before the test gives up: generous, the machine may be busy.</summary>
    public static readonly TimeSpan RunTimeout = TimeSpan.FromMinutes(3);

    private readonly Lazy<string> _reference;

    /// <summary>Writes the dataset.</summary>
    public ClusterRuns()
    {
        DataDirectory = TestMaterial.WriteSyntheticMnist(Scratch.Path("data"));
        _reference = new Lazy<string>(() => RunNoCluster(Scratch.Path("reference")));
    }

    /// <summary>Where runs and certificates go.</summary>
    public Scratch Scratch { get; } = new();

    /// <summary>The synthetic IDX files.</summary>
    public string DataDirectory { get; }

    /// <summary>
    /// The options of every run: 1,024 training images, so --max-steps 20 crosses an epoch boundary (16 steps
    /// an epoch) and takes a reshuffle; evaluation covers 256 validation and 256 test images.
    /// </summary>
    public string[] TrainOptions => ["--epochs", "2", "--max-steps", "20", "--seed", "7", "--batch-size", "64", "--micro-batch", "8", "--data", DataDirectory];

    /// <summary>weightsSha256 of the `--no-cluster --threads 2` run of <see cref="TrainOptions"/>.</summary>
    public string ReferenceWeightsSha256 => _reference.Value;

    /// <summary>
    /// Starts a coordinator (`cnn train --workers N` on 127.0.0.1, on a free <paramref name="port"/>) with
    /// <paramref name="extra"/> options, and returns it once it listens.
    /// </summary>
    public NodeProcess StartCoordinator(string outDirectory, int workers, out int port, IEnumerable<string>? extra = null, IReadOnlyDictionary<string, string>? environment = null) =>
        TestMaterial.StartListening((p, dataPort) => StartCoordinatorOn(p, dataPort, outDirectory, workers, TrainOptions, extra, environment), out port);

    /// <summary>
    /// Starts a coordinator (`cnn train --workers N` on 127.0.0.1:<paramref name="port"/>, data plane on
    /// <paramref name="dataPort"/>) training with <paramref name="trainOptions"/> and <paramref name="extra"/> into
    /// <paramref name="outDirectory"/>, without waiting for it.
    /// </summary>
    public static NodeProcess StartCoordinatorOn(int port, int dataPort, string outDirectory, int workers, IEnumerable<string> trainOptions,
        IEnumerable<string>? extra = null, IReadOnlyDictionary<string, string>? environment = null) =>
        NodeProcess.Start("coordinator", Programs.Coordinator,
            ["train", "--workers", workers.ToString(), "--host", "127.0.0.1", "--port", port.ToString(), "--data-port", dataPort.ToString(),
             "--join-timeout", "90", .. trainOptions, "--out", outDirectory, .. extra ?? []],
            environment);

    /// <summary>
    /// Starts worker <paramref name="index"/> on 127.0.0.(index+1), configured through the environment variables
    /// docker-compose.yml sets, plus <paramref name="extra"/> (TLS, overrides).
    /// </summary>
    public NodeProcess StartWorker(int index, int coordinatorPort, IReadOnlyDictionary<string, string>? extra = null)
    {
        string address = $"127.0.0.{index + 1}";
        var environment = new Dictionary<string, string>
        {
            [WorkerOptions.Env.Seeds] = $"127.0.0.1:{coordinatorPort}",
            [WorkerOptions.Env.BindHost] = address,
            [WorkerOptions.Env.BindPort] = "0",
            [WorkerOptions.Env.PublicHost] = address,
            [WorkerOptions.Env.Data] = DataDirectory,
            [WorkerOptions.Env.Threads] = "1",
            [WorkerOptions.Env.WorkerId] = $"worker-{index}",
        };
        foreach (var (key, value) in extra ?? new Dictionary<string, string>()) environment[key] = value;
        return NodeProcess.Start($"worker-{index}", Programs.Worker, [], environment);
    }

    /// <summary>Reads run.json of a finished run.</summary>
    public static JsonElement RunJson(string outDirectory) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(outDirectory, "run.json"))).RootElement.Clone();

    private string RunNoCluster(string outDirectory)
    {
        using NodeProcess run = NodeProcess.Start("no-cluster", Programs.Coordinator, ["train", "--no-cluster", "--threads", "2", .. TrainOptions, "--out", outDirectory]);
        int code = run.WaitForExit(RunTimeout);
        Assert.True(code == 0, $"the --no-cluster reference run failed with {code}\n{run}");
        return RunJson(outDirectory).GetProperty("weightsSha256").GetString()!;
    }

    /// <inheritdoc/>
    public void Dispose() => Scratch.Dispose();
}
