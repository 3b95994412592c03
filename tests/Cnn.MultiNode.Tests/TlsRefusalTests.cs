// With mutual TLS on, only nodes holding a certificate from the cluster's CA get in: a worker without a
// certificate (plain TCP) and a worker whose certificate comes from another CA never join, and the coordinator
// says in its log that it refused them. The coordinator waits for one worker; each test stops it as soon as
// the refusal is logged instead of waiting for its join timeout.
using Xunit;

namespace Cnn.MultiNode.Tests;

[Collection(ProcessCollection.Name)]
public sealed class TlsRefusalTests(ClusterRuns runs)
{
    private static readonly TimeSpan LogTimeout = TimeSpan.FromSeconds(90);

    [Fact]
    public void A_worker_without_a_certificate_cannot_join_and_the_coordinator_logs_the_refused_connection()
    {
        var ca = new TestAuthority("cnn test CA", runs.Scratch.Path("tls-plain"));
        using NodeProcess coordinator = runs.StartCoordinator(runs.Scratch.Path("refuse-plain"), workers: 1, out int port, ["--tls-cert", ca.IssuePkcs12("coordinator")]);
        Assert.True(coordinator.WaitForOutput("waiting up to", LogTimeout), coordinator.ToString());
        using NodeProcess plain = runs.StartWorker(1, port);

        // DotNetty's TLS handler meets the worker's plain Akka protocol bytes and drops the connection.
        bool logged = coordinator.WaitForOutput("TLS handshake failed", LogTimeout);

        Assert.True(logged, $"the coordinator did not log a refused TLS handshake\n{coordinator}\n{plain}");
        Assert.Contains("not an SSL/TLS record", coordinator.Out + coordinator.Error);
        Assert.DoesNotContain("joined", coordinator.Out);
        Assert.True(plain.IsRunning, $"a worker that cannot reach its seed keeps trying\n{plain}");
    }

    [Fact]
    public void A_worker_with_a_certificate_from_another_ca_cannot_join_and_both_sides_log_why()
    {
        var ca = new TestAuthority("cnn test CA", runs.Scratch.Path("tls-ca"));
        var stranger = new TestAuthority("another CA", runs.Scratch.Path("tls-stranger"));
        using NodeProcess coordinator = runs.StartCoordinator(runs.Scratch.Path("refuse-stranger"), workers: 1, out int port, ["--tls-cert", ca.IssuePkcs12("coordinator")]);
        Assert.True(coordinator.WaitForOutput("waiting up to", LogTimeout), coordinator.ToString());
        using NodeProcess worker = runs.StartWorker(1, port, new Dictionary<string, string> { ["CNN_TLS_CERT"] = stranger.IssuePkcs12("stranger") });

        bool logged = coordinator.WaitForOutput("TLS: refused the connection of", LogTimeout);
        int code = worker.WaitForExit(LogTimeout);

        Assert.True(logged, $"the coordinator did not log the refusal\n{coordinator}\n{worker}");
        Assert.Contains("certificate 'CN=stranger' issued by 'CN=another CA' is not trusted", coordinator.Error); // the node's log
        Assert.DoesNotContain("joined", coordinator.Out);
        // Akka shuts down a node whose outgoing TLS handshake fails; the worker says so in one line, exit 3.
        Assert.True(code == 3, $"worker exit code {code}\n{worker}");
        // Standard error holds the node's log (the refusal below) and the host's one-line reason to exit.
        Assert.Contains("TLS handshake with the cluster failed", Assert.Single(worker.ErrorLines, l => l.StartsWith("cnn-worker", StringComparison.Ordinal)));
        Assert.Contains("TLS: refused the connection of", worker.Error);
    }
}
