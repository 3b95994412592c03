// Every bad input to the commands ends the same way: exit code 2, exactly one line on stderr that names the
// problem, and no run directory left behind.
using Xunit;
using static Cnn.Coordinator.Tests.TestSupport;

namespace Cnn.Coordinator.Tests;

public sealed class TrainOptionValidationTests : IDisposable
{
    private readonly Scratch _scratch = new();

    [Theory]
    [InlineData("unknown model 'nope'", "--model", "nope")]
    [InlineData("--micro-batch 128 is larger than --batch-size 64", "--micro-batch", "128")]
    [InlineData("--batch-size must be at least 1, got 0", "--batch-size", "0")]
    [InlineData("--batch-size must be at least 1, got -5", "--batch-size", "-5")]
    [InlineData("--micro-batch must be at least 1, got 0", "--micro-batch", "0")]
    [InlineData("--epochs must be at least 1, got 0", "--epochs", "0")]
    [InlineData("--threads must be at least 1, got 0", "--threads", "0")]
    [InlineData("--validation-split must be in [0, 1), got 1", "--validation-split", "1")]
    [InlineData("--validation-split must be in [0, 1), got -0.1", "--validation-split", "-0.1")]
    [InlineData("--max-steps must be at least 1, got 0", "--max-steps", "0")]
    [InlineData("--checkpoint-every must be at least 1, got -1", "--checkpoint-every", "-1")]
    [InlineData("--lr must be a positive number, got 0", "--lr", "0")]
    [InlineData("Cannot parse argument 'abc' for option '--epochs'", "--epochs", "abc")]
    [InlineData("Unrecognized command or argument '--epoch'", "--epoch", "3")]
    public void A_bad_train_option_gives_exit_code_2_and_one_line_naming_it(string expected, params string[] option)
    {
        string outDir = _scratch.Path("out");

        CliResult result = RunCnn(["train", "--no-cluster", "--out", outDir, .. option]);

        Assert.Equal(2, result.ExitCode);
        string line = Assert.Single(result.ErrorLines);
        Assert.Contains(expected, line);
        Assert.False(Directory.Exists(outDir), "a rejected run must not leave its --out directory behind");
    }

    [Fact]
    public void Resume_without_an_out_directory_is_refused()
    {
        CliResult result = RunCnn("train", "--no-cluster", "--resume");

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("--resume needs --out DIR", Assert.Single(result.ErrorLines));
    }

    [Theory]
    [InlineData("--local-workers 0", "--local-workers must be at least 1")]
    [InlineData("--local-workers 9", "more than the 8 leaves")]
    [InlineData("--no-cluster --local-workers 2", "choose one mode")]
    [InlineData("--no-cluster --threads-per-worker 2", "--threads-per-worker applies to a local cluster")]
    [InlineData("--workers 2 --port 70000", "--port 70000 is not a port")]
    [InlineData("--workers 2 --host 0.0.0.0", "--public-host")]
    [InlineData("--transport udp", "udp")]
    [InlineData("--log-level loud", "--log-level: 'loud' is not a log level (expected error, warning, info, debug)")]
    [InlineData("--workers 2 --log-level LOUD", "--log-level / CNN_LOG_LEVEL: 'LOUD' is not a log level")]
    [InlineData("--no-cluster --log-level info", "--log-level applies to a cluster")]
    [InlineData("--no-cluster --allow-mixed-numerics", "--allow-mixed-numerics applies to a multi-node run (--workers N)")]
    [InlineData("--no-cluster --pin-threads off", "--pin-threads applies to a local cluster (--local-workers)")]
    [InlineData("--no-cluster --work-stealing on", "--work-stealing applies to a cluster (--local-workers or --workers)")]
    [InlineData("--local-workers 2 --transport akka --work-stealing on", "--work-stealing on needs the tcp data plane, not --transport akka")]
    [InlineData("--local-workers 2 --work-stealing sometimes", "sometimes")]
    [InlineData("--workers 2 --pin-threads on", "--pin-threads applies to a local cluster (--local-workers); worker processes take --cpus / CNN_CPUS")]
    [InlineData("--local-workers 2 --pin-threads maybe", "maybe")]
    [InlineData("--local-workers 2 --allow-mixed-numerics", "--allow-mixed-numerics applies to a multi-node run (--workers N)")]
    public void Cluster_options_that_cannot_work_are_refused_before_anything_starts(string options, string expected)
    {
        string outDir = _scratch.Path("out");
        CliResult result = RunCnn(["train", .. options.Split(' '), "--out", outDir]);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains(expected, Assert.Single(result.ErrorLines));
        Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public void Images_of_the_wrong_size_are_refused_with_both_shapes()
    {
        string data = WriteSyntheticMnist(_scratch.Path("data"), train: 20, test: 10, rows: 32, columns: 32);
        string outDir = _scratch.Path("out");

        CliResult result = RunCnn("train", "--no-cluster", "--data", data, "--out", outDir);

        Assert.Equal(2, result.ExitCode);
        string line = Assert.Single(result.ErrorLines);
        Assert.Contains("(None, 32, 32, 1)", line);
        Assert.Contains("(None, 28, 28, 1)", line);
        Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public void An_out_directory_that_cannot_be_created_is_refused_before_training()
    {
        string file = _scratch.Path("file");
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        File.WriteAllText(file, "not a directory");

        CliResult result = RunCnn("train", "--no-cluster", "--data", WriteSyntheticMnist(_scratch.Path("data")), "--out", Path.Combine(file, "run"));

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("cannot write there", Assert.Single(result.ErrorLines));
        Assert.Equal("", result.Out);
    }

    [Fact]
    public void A_missing_data_file_is_named()
    {
        string data = WriteSyntheticMnist(_scratch.Path("data"), train: 20, test: 10);
        File.Delete(Path.Combine(data, "t10k-labels-idx1-ubyte"));

        CliResult result = RunCnn("train", "--no-cluster", "--data", data, "--out", _scratch.Path("out"));

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("t10k-labels-idx1-ubyte", Assert.Single(result.ErrorLines));
    }

    [Fact]
    public void Resume_without_a_checkpoint_is_refused()
    {
        string outDir = _scratch.Path("out");
        Directory.CreateDirectory(outDir);

        CliResult result = RunCnn("train", "--no-cluster", "--resume", "--data", WriteSyntheticMnist(_scratch.Path("data")), "--out", outDir);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("no checkpoint.safetensors", Assert.Single(result.ErrorLines));
    }

    [Fact]
    public void Summary_of_an_unknown_model_gives_exit_code_2()
    {
        CliResult result = RunCnn("summary", "--model", "lenet");

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("unknown model 'lenet'", Assert.Single(result.ErrorLines));
    }

    [Theory]
    [InlineData("0")]
    [InlineData("-3")]
    public void Bench_with_fewer_than_one_repeat_gives_exit_code_2(string repeats)
    {
        CliResult result = RunCnn("bench", "--repeats", repeats);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains($"--repeats must be at least 1, got {repeats}", Assert.Single(result.ErrorLines));
    }

    [Fact]
    public void Bench_with_zero_threads_gives_exit_code_2()
    {
        CliResult result = RunCnn("bench", "--threads", "0");

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("--threads must be at least 1", Assert.Single(result.ErrorLines));
    }

    [Theory]
    [InlineData(new[] { "--workers", "2", "--local-workers", "2" }, "choose one mode: --no-cluster, --local-workers N or --workers N")]
    [InlineData(new[] { "--workers", "2", "--threads-per-worker", "2" }, "--threads-per-worker applies to a local cluster (--local-workers)")]
    [InlineData(new[] { "--local-workers", "0" }, "--local-workers must be at least 1, got 0")]
    [InlineData(new[] { "--local-workers", "9" }, "--local-workers 9 is more than the 8 leaves of a batch")]
    [InlineData(new[] { "--local-workers", "2", "--threads-per-worker", "0" }, "--threads-per-worker must be at least 1, got 0")]
    [InlineData(new[] { "--local-workers", "2", "--tls-cert", "node.p12" }, "--tls-cert applies to a multi-node run (--workers N)")]
    [InlineData(new[] { "--workers", "0" }, "--workers must be at least 1, got 0")]
    [InlineData(new[] { "--workers", "9" }, "--workers 9 is more than the 8 leaves of a batch")]
    [InlineData(new[] { "--workers", "2", "--port", "4053", "--data-port", "4053" }, "--data-port 4053 must be a port (1 to 65535) other than --port 4053")]
    [InlineData(new[] { "--workers", "2", "--join-timeout", "0" }, "--join-timeout must be positive, got 0")]
    [InlineData(new[] { "--local-workers", "2", "--join-timeout", "-1" }, "--join-timeout must be positive, got -1")]
    [InlineData(new[] { "--local-workers", "2", "--repeats", "0" }, "--repeats must be at least 1, got 0")]
    [InlineData(new[] { "--workers", "2", "--repeats", "0" }, "--repeats must be at least 1, got 0")]
    [InlineData(new[] { "--workers", "2", "--pin-threads", "off" }, "--pin-threads applies to a local cluster (--local-workers)")]
    [InlineData(new[] { "--local-workers", "2", "--pin-threads", "yes" }, "yes")]
    [InlineData(new[] { "--pin-threads", "off" }, "--pin-threads applies to a local cluster (--local-workers)")]
    [InlineData(new[] { "--work-stealing", "on" }, "--work-stealing applies to a cluster (--local-workers or --workers)")]
    [InlineData(new[] { "--threads-per-worker", "2" }, "--threads-per-worker applies to a local cluster (--local-workers)")]
    [InlineData(new[] { "--log-level", "info" }, "--log-level applies to a cluster")]
    public void Bench_through_a_cluster_with_bad_options_gives_exit_code_2_before_it_starts(string[] args, string expected)
    {
        CliResult result = RunCnn(["bench", .. args]);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains(expected, Assert.Single(result.ErrorLines));
    }

    [Fact]
    public void No_command_at_all_gives_exit_code_2()
    {
        CliResult result = RunCnn();

        Assert.Equal(2, result.ExitCode);
        Assert.Single(result.ErrorLines);
    }

    [Fact]
    public void Summary_prints_the_seed_cnn_parameter_count()
    {
        CliResult result = RunCnn("summary");

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("Total params: 93,322", result.Out);
    }

    public void Dispose() => _scratch.Dispose();
}
