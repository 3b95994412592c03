// One real training run on MNIST, the check that the whole engine learns what Keras's model learns: one epoch of
// seed-cnn with the default validation split reaches at least 98.0% test accuracy (PyTorch, trained on all
// 60,000 images: 98.6%). CI fetches MNIST into the cache with `cnn data fetch` before the tests; without it this
// test fails and says how to get it, it never skips.
using System.Text.Json;
using Cnn.Engine.Data;
using Xunit;
using static Cnn.Coordinator.Tests.TestSupport;

namespace Cnn.Coordinator.Tests;

public sealed class RealMnistTests : IDisposable
{
    private readonly Scratch _scratch = new();

    [Fact]
    public void One_epoch_of_seed_cnn_on_mnist_reaches_98_percent_test_accuracy()
    {
        string data = MnistFetcher.DefaultCacheDirectory;
        Assert.True(MnistFetcher.HasAll(data), $"MNIST is not in {data}: run `dotnet run -c Release --project src/Coordinator -- data fetch` (CI does) before the tests");
        string outDir = _scratch.Path("mnist-run");

        CliResult result = RunCnn("train", "--no-cluster", "--epochs", "1", "--data", data, "--out", outDir);

        Assert.True(result.ExitCode == 0, result.Error);
        using JsonDocument run = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "run.json")));
        double accuracy = run.RootElement.GetProperty("testAccuracy").GetDouble();
        Assert.True(accuracy >= 0.980, $"test accuracy after one epoch is {accuracy:P2}, below 98.0%");
        Assert.Equal(750, run.RootElement.GetProperty("steps").GetInt64());
    }

    public void Dispose() => _scratch.Dispose();
}
