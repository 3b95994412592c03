// Helpers shared by the coordinator tests: run `cnn` in-process with captured output, make throw-away
// directories (removed when the test ends), and write a tiny deterministic MNIST-like dataset as real IDX files, so that the tests go through
// the same loading and checking code as a real run without needing MNIST or a network.
using System.Buffers.Binary;

namespace Cnn.Coordinator.Tests;

/// <summary>What a command printed and returned.</summary>
public sealed record CliResult(int ExitCode, string Out, string Error)
{
    /// <summary>The non-empty lines of stderr.</summary>
    public string[] ErrorLines => Error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}

/// <summary>A temp directory for one test class instance, deleted with everything in it on Dispose.</summary>
public sealed class Scratch : IDisposable
{
    private readonly string _root = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "cnn-coordinator-tests", Guid.NewGuid().ToString("N"));

    /// <summary>A fresh path inside the scratch directory (not created).</summary>
    public string Path(string name) => System.IO.Path.Combine(_root, $"{name}-{Guid.NewGuid():N}");

    /// <inheritdoc/>
    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }
}

/// <summary>Runs commands and makes test data.</summary>
public static class TestSupport
{
    /// <summary>Runs <c>cnn</c> with <paramref name="args"/> in this process.</summary>
    public static CliResult RunCnn(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = Cli.Run(args, output, error);
        return new CliResult(code, output.ToString(), error.ToString());
    }

    /// <summary>
    /// Writes the four standard IDX files of a dataset with <paramref name="train"/> and <paramref name="test"/> images
    /// of <paramref name="rows"/> x <paramref name="columns"/> into <paramref name="dir"/> (created) and returns it. Each image is
    /// a bright bar whose position depends on its label, plus noise from a fixed LCG, so the set is learnable and
    /// the same on every run.
    /// </summary>
    public static string WriteSyntheticMnist(string dir, int train = 256, int test = 64, int rows = 28, int columns = 28)
        => Cnn.Tests.Shared.SyntheticMnist.Write(dir, train, test, rows, columns);
}
