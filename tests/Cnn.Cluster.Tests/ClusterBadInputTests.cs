// Bad input at the cluster's edge. A worker whose dataset hash or numerics fingerprint differs from the
// coordinator's is refused with an event that says why, does not join, and the run trains on the workers that
// were accepted. `cnn train` refuses a local cluster of no workers, or of more workers than a batch has leaves,
// with exit code 2 and one line, before it creates the run directory or starts a node. A coordinator whose
// workers never come gives up after --join-timeout with one line and exit code 1, and frees its ports: the same
// command can run again at once. A --data-port that is taken is a one-line error, like a --port that is taken.
using System.Net;
using System.Net.Sockets;
using Cnn.Cluster.Tests.Support;
using Cnn.Coordinator.Cluster;
using Cnn.Coordinator.Runs;
using Cnn.Coordinator.Tests;
using Cnn.Engine.Kernels;
using Cnn.Engine.Models;
using Cnn.Engine.Training;
using Xunit;
using static Cnn.Coordinator.Tests.TestSupport;

namespace Cnn.Cluster.Tests;

[Collection(ClusterCollection.Name)]
public sealed class ClusterBadInputTests(SyntheticRun run)
{
    [Fact]
    public async Task Workers_with_another_dataset_or_other_numerics_are_refused_with_the_reason_and_do_not_join()
    {
        await using ClusterRun cluster = await ClusterRun.StartEmptyAsync(run, ClusterTransport.Tcp, workers: 1);
        await cluster.Cluster.AddWorkersAsync(1, 1, run.WorkerData, Numerics.Fingerprint);
        await cluster.Cluster.AddWorkersAsync(1, 1, run.WorkerData with { Sha256 = new string('0', 64) }, Numerics.Fingerprint);
        await cluster.Cluster.AddWorkersAsync(1, 1, run.WorkerData, "another-instruction-set/v0");

        cluster.Backend.WaitForWorkers(1, ClusterRun.JoinTimeout);
        string? wrongData = cluster.AwaitEvent(e => e.StartsWith("refused worker worker-2: ", StringComparison.Ordinal), ClusterRun.JoinTimeout);
        string? wrongNumerics = cluster.AwaitEvent(e => e.StartsWith("refused worker worker-3: ", StringComparison.Ordinal), ClusterRun.JoinTimeout);

        Assert.True(wrongData is not null, $"worker-2 (other dataset) was not refused; events:\n{cluster.EventLog}");
        Assert.Contains("dataset hash mismatch", wrongData);
        Assert.True(wrongNumerics is not null, $"worker-3 (other numerics) was not refused; events:\n{cluster.EventLog}");
        Assert.Contains("numerics fingerprint mismatch", wrongNumerics);
        var waiting = Assert.Throws<RunFailedException>(() => cluster.Backend.WaitForWorkers(2, TimeSpan.FromSeconds(2)));
        Assert.Contains("only 1 joined (worker-1)", waiting.Message);
        Assert.Equal(["worker-1"], cluster.Backend.Stats().Workers.Select(w => w.Id));
        Assert.DoesNotContain(cluster.Events, e => e.StartsWith("worker worker-2 joined", StringComparison.Ordinal) || e.StartsWith("worker worker-3 joined", StringComparison.Ordinal));
        StepMetrics step = cluster.Backend.Step(run.Batch(0), 0);
        Assert.Equal(run.Reference(1).Metrics[0], step);
    }

    // Workers drop an evaluation range outside their set, so the coordinator would re-deal it for ever (a `cnn bench`
    // of 1,000 test images on a smaller test set did): the backend refuses such ids before anything is sent.
    [Fact]
    public async Task An_evaluation_past_the_end_of_the_set_is_refused_at_once_and_the_cluster_still_evaluates()
    {
        await using ClusterRun cluster = await ClusterRun.StartAsync(run, workers: 1, threadsPerWorker: 1, ClusterTransport.Tcp);
        int count = run.Data.TestSource.Count;

        var refused = Assert.Throws<ArgumentOutOfRangeException>(() => cluster.Backend.Evaluate(run.Data.TestSource, Enumerable.Range(count - 10, 20).ToArray()));
        LossAndAccuracy all = cluster.Backend.Evaluate(run.Data.TestSource, Enumerable.Range(0, count).ToArray());

        Assert.Contains($"outside the Test set of {count}", refused.Message);
        Assert.Equal(count, all.Samples);
    }

    // A learning rate that makes training diverge: every worker computes NaN, which the parameter server refuses
    // from any one worker; once two workers agree the run fails with one line, in seconds, instead of re-dealing
    // the step until the loop's ask times out. --no-cluster says the same from its loss.
    [Theory]
    [InlineData("--local-workers", "2")]
    [InlineData("--local-workers", "1")]
    [InlineData("--no-cluster", "")]
    public void A_diverging_run_fails_with_one_line_naming_the_step(string mode, string workers)
    {
        string outDir = run.Scratch.Path($"diverged{mode}{workers}");
        var clock = System.Diagnostics.Stopwatch.StartNew();

        CliResult result = RunCnn(["train", mode, .. workers.Length > 0 ? new[] { workers } : [], "--lr", "1e30", "--data", run.DataDirectory,
            "--out", outDir, "--epochs", "1", "--max-steps", "10"]);

        Assert.True(result.ExitCode == 1, $"exit code {result.ExitCode}\n{result.Out}\n{result.Error}");
        string line = Assert.Single(result.ErrorLines);
        Assert.StartsWith("cnn: the run failed: training diverged at step ", line);
        Assert.Contains("lower --lr", line);
        Assert.InRange(clock.Elapsed.TotalSeconds, 0, 120);
    }

    [Theory]
    [InlineData("0", "", "--local-workers must be at least 1, got 0")]
    [InlineData("-1", "", "--local-workers must be at least 1, got -1")]
    [InlineData("9", "", "--local-workers 9 is more than the 8 leaves of a batch (--batch-size 64 / --micro-batch 8)")]
    [InlineData("3", "--batch-size 16", "--local-workers 3 is more than the 2 leaves of a batch (--batch-size 16 / --micro-batch 8)")]
    public void A_local_cluster_of_no_workers_or_more_workers_than_leaves_is_a_one_line_error_with_exit_code_2(string workers, string more, string message)
    {
        string outDir = run.Scratch.Path("refused");

        CliResult result = RunCnn(["train", "--local-workers", workers, "--data", run.DataDirectory, "--out", outDir, "--max-steps", "1",
            .. more.Split(' ', StringSplitOptions.RemoveEmptyEntries)]);

        Assert.Equal(2, result.ExitCode);
        Assert.Equal($"error: {message}", Assert.Single(result.ErrorLines).Split(": some workers")[0]);
        Assert.DoesNotContain("[cluster]", result.Out);
        Assert.False(Directory.Exists(outDir), "the run directory was created before the options were checked");
    }

    [Fact]
    public void A_coordinator_whose_workers_never_join_fails_after_the_join_timeout_and_frees_its_ports()
    {
        int port = FreePort(), dataPort = FreePort();
        string[] args = ["train", "--workers", "1", "--join-timeout", "1", "--port", $"{port}", "--data-port", $"{dataPort}",
            "--data", run.DataDirectory, "--max-steps", "1"];

        CliResult first = RunCnn([.. args, "--out", run.Scratch.Path("nobody-came")]);
        CliResult again = RunCnn([.. args, "--out", run.Scratch.Path("nobody-came-again")]);

        Assert.Equal(1, first.ExitCode);
        Assert.Contains("waited for 1 workers but only 0 joined", Assert.Single(first.ErrorLines));
        Assert.True(again.ExitCode == 1, $"the second coordinator on the same ports: exit code {again.ExitCode}, {again.Error}");
        Assert.Contains("waited for 1 workers but only 0 joined", Assert.Single(again.ErrorLines));
    }

    [Fact]
    public void A_data_port_in_use_is_a_one_line_error_with_exit_code_2()
    {
        var squatter = new TcpListener(IPAddress.Loopback, 0);
        squatter.Start();
        try
        {
            int dataPort = ((IPEndPoint)squatter.LocalEndpoint).Port;

            CliResult result = RunCnn("train", "--workers", "1", "--join-timeout", "1", "--port", $"{FreePort()}", "--data-port", $"{dataPort}",
                "--data", run.DataDirectory, "--max-steps", "1", "--out", run.Scratch.Path("data-port-taken"));

            Assert.Equal(2, result.ExitCode);
            Assert.Contains($"--data-port {dataPort}", Assert.Single(result.ErrorLines));
        }
        finally
        {
            squatter.Stop();
        }
    }

    private static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}
