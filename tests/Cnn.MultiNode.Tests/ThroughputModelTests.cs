// deploy/throughput-model.sh prints deploy/README.md's table of modelled throughput. These tests run the script
// and check its cells against figures worked out by hand from the formulas in its header, against the limits the
// formulas must reach (no overlap when nothing is sent early, only the heads left when the tails are hidden), and
// that bad options end in one line naming the option and exit code 2.
using System.Globalization;
using Xunit;

namespace Cnn.MultiNode.Tests;

public sealed class ThroughputModelTests
{
    // 94% of 1 and 10 Gbit/s in bytes per second, as the script takes them.
    private const double OneGbE = 0.94e9 / 8, TenGbE = 0.94e10 / 8;
    private const double Tensor = 373_288, Tail = 298_024, Head = Tensor - Tail;

    [Fact]
    public void Two_workers_on_10_GbE_match_the_figures_worked_out_by_hand()
    {
        // R = 6,315 images/s: compute 64 / (2 * 6,315) = 5.07 ms. From the end of the computation: the tails leave
        // 0.64 * 8 / 6,315 = 0.811 ms before it and are in at -0.811 + 2 * 298,024 / 1.175e9 = -0.303 ms; the weights'
        // tails are out at 0.204 ms; the heads are in at 0 + 0.128 = 0.128 ms; the weights' heads are out at
        // max(0.204, 0.128) + 0.128 = 0.332 ms. 64 / (5.068 + 0.332) ms = 11,853 images/s. Without the overlap:
        // 4 * 373,288 / 1.175e9 = 1.271 ms and 64 / 6.339 ms = 10,097 images/s.
        string[] row = Row(Run("--images-per-second", "6315", "--workers", "2"), 2);

        Assert.Equal("5.07 ms", row[1]);
        Assert.Equal("746,576", row[2]);
        Assert.Equal("1,493,152", row[3]);
        Assert.Equal("0.33 ms (1.27)", row[6]);
        Assert.Equal("11,854 (10,098)", row[7]);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    [InlineData(8)]
    public void With_nothing_sent_early_the_transfer_is_the_whole_exchange_after_the_computation(int workers)
    {
        string[] row = Row(Run("--images-per-second", "6315", "--workers", $"{workers}", "--tail-lead", "0", "--tail-bytes", "0"), workers);

        string whole = Ms(2 * workers * Tensor / OneGbE);
        Assert.Equal($"{whole} ms ({whole})", row[4]);
        Assert.Equal(Between(row[5]).Overlap, Between(row[5]).Without);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(16)]
    public void With_the_tails_hidden_behind_the_computation_only_the_heads_are_left(int workers)
    {
        // A lead of 1,000 leaves sends the tails long before the end: both directions of the tail are over by then.
        string[] row = Row(Run("--images-per-second", "6315", "--workers", $"{workers}", "--tail-lead", "1000"), workers);

        Assert.Equal($"{Ms(2 * workers * Head / OneGbE)} ms ({Ms(2 * workers * Tensor / OneGbE)})", row[4]);
        Assert.Equal($"{Ms(2 * workers * Head / TenGbE)} ms ({Ms(2 * workers * Tensor / TenGbE)})", row[6]);
    }

    [Fact]
    public void More_workers_than_leaves_give_each_worker_one_smaller_leaf()
    {
        // 16 workers, batch 64: leaves of 4 images, so the tails leave 0.64 * 4 / 6,315 = 0.405 ms early. On 10 GbE:
        // tails in at -0.405 + 16 * 298,024 / 1.175e9 = 3.653 ms, out at 7.711 ms; heads in at 3.653 + 1.025 = 4.678 ms;
        // weights' heads out at 7.711 + 1.025 = 8.736 ms.
        string[] row = Row(Run("--images-per-second", "6315", "--workers", "16"), 16);

        Assert.StartsWith("8.74 ms (", row[6]);
    }

    [Theory]
    [InlineData("--images-per-second needs a value", "--images-per-second")]
    [InlineData("give --images-per-second", "--workers", "2")]
    [InlineData("--images-per-second must be a positive number, got 'fast'", "--images-per-second", "fast")]
    [InlineData("--images-per-second must be a positive number, got '0.0'", "--images-per-second", "0.0")]
    [InlineData("--tail-lead must be a number of leaves, 0 or more, got '-1'", "--images-per-second", "6315", "--tail-lead", "-1")]
    [InlineData("--micro-batch must be a whole number, got '2.5'", "--images-per-second", "6315", "--micro-batch", "2.5")]
    [InlineData("--batch 60 is not a multiple of --micro-batch 8", "--images-per-second", "6315", "--batch", "60")]
    [InlineData("--tail-bytes 400000 must be below --tensor-bytes 373288", "--images-per-second", "6315", "--tail-bytes", "400000")]
    [InlineData("--workers must list whole numbers above 0, got '0'", "--images-per-second", "6315", "--workers", "2 0")]
    [InlineData("128 workers cannot share a batch of 64 images", "--images-per-second", "6315", "--workers", "128")]
    [InlineData("unknown option --gbe", "--images-per-second", "6315", "--gbe", "40")]
    public void Bad_options_get_one_line_that_names_them_and_exit_code_2(string fragment, params string[] arguments)
    {
        (int exitCode, string output, string error) = Script(arguments);

        Assert.Equal(2, exitCode);
        Assert.Empty(output);
        string line = Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("throughput-model.sh: ", line);
        Assert.Contains(fragment, line);
    }

    // Seconds as the table's milliseconds.
    private static string Ms(double seconds) => (seconds * 1000).ToString("F2", CultureInfo.InvariantCulture);

    private static (int Overlap, int Without) Between(string cell)
    {
        string[] parts = cell.Split(" (");
        return (int.Parse(parts[0], NumberStyles.AllowThousands, CultureInfo.InvariantCulture),
            int.Parse(parts[1].TrimEnd(')'), NumberStyles.AllowThousands, CultureInfo.InvariantCulture));
    }

    // The cells of the table row for `workers`.
    private static string[] Row(string table, int workers) =>
        table.Split('\n').Where(l => l.StartsWith('|')).Select(l => l.Split('|', StringSplitOptions.TrimEntries)[1..^1]).Single(cells => cells[0] == $"{workers}");

    private static string Run(params string[] arguments)
    {
        (int exitCode, string output, string error) = Script(arguments);
        Assert.True(exitCode == 0, $"throughput-model.sh failed: {error}");
        return output;
    }

    private static (int ExitCode, string Output, string Error) Script(string[] arguments)
    {
        var info = new System.Diagnostics.ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add(Programs.File("deploy/throughput-model.sh"));
        foreach (string a in arguments) info.ArgumentList.Add(a);
        using var script = System.Diagnostics.Process.Start(info)!;
        Task<string> error = script.StandardError.ReadToEndAsync();
        string output = script.StandardOutput.ReadToEnd();
        script.WaitForExit();
        return (script.ExitCode, output, error.Result);
    }
}
