// The exactness property on real MNIST, through the real command path: `cnn train --no-cluster` and
// `cnn train --local-workers 2` (run in this process, as the CLI tests run commands) must write the same
// weightsSha256 into run.json after 30 steps. MNIST comes from ~/.cache/cnn-distributed/mnist, which CI fills
// with `cnn data fetch` before the tests; when the files are missing the test fails and says so, because a
// skipped exactness test looks like a passing one.
using System.Text.Json;
using Cnn.Cluster.Tests.Support;
using Cnn.Coordinator.Tests;
using Cnn.Engine.Data;
using Xunit;
using static Cnn.Coordinator.Tests.TestSupport;

namespace Cnn.Cluster.Tests;

[Collection(ClusterCollection.Name)]
public sealed class MnistExactnessTests(SyntheticRun run)
{
    private static JsonElement RunJson(string outDir) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "run.json"))).RootElement;

    [Fact]
    public void On_real_MNIST_no_cluster_and_two_local_workers_write_the_same_weightsSha256_after_30_steps()
    {
        string mnist = MnistFetcher.DefaultCacheDirectory;
        Assert.True(MnistFetcher.HasAll(mnist),
            $"MNIST is not in {mnist}: this test needs the real files and neither fetches nor skips. Run `cnn data fetch` first (CI does, before the tests).");
        string noCluster = run.Scratch.Path("mnist-no-cluster"), localCluster = run.Scratch.Path("mnist-local-2");
        string[] common = ["--data", mnist, "--epochs", "1", "--max-steps", "30", "--seed", "11"];

        CliResult single = RunCnn(["train", "--no-cluster", "--out", noCluster, .. common]);
        CliResult cluster = RunCnn(["train", "--local-workers", "2", "--out", localCluster, .. common]);

        Assert.True(single.ExitCode == 0, $"--no-cluster failed ({single.ExitCode}): {single.Error}");
        Assert.True(cluster.ExitCode == 0, $"--local-workers 2 failed ({cluster.ExitCode}): {cluster.Error}\n{cluster.Out}");
        JsonElement a = RunJson(noCluster), b = RunJson(localCluster);
        Assert.Equal(30, a.GetProperty("steps").GetInt64());
        Assert.Equal(30, b.GetProperty("steps").GetInt64());
        Assert.Equal(0, a.GetProperty("workers").GetInt32());
        Assert.Equal(2, b.GetProperty("workers").GetInt32());
        Assert.Equal(48_000, b.GetProperty("trainSamples").GetInt32());
        Assert.Matches("^[0-9a-f]{64}$", a.GetProperty("weightsSha256").GetString());
        Assert.Equal(a.GetProperty("weightsSha256").GetString(), b.GetProperty("weightsSha256").GetString());
        JsonElement rowA = a.GetProperty("history")[0], rowB = b.GetProperty("history")[0];
        Assert.Equal(rowA.GetProperty("loss").GetDouble(), rowB.GetProperty("loss").GetDouble());
        Assert.Equal(rowA.GetProperty("accuracy").GetDouble(), rowB.GetProperty("accuracy").GetDouble());
    }
}
