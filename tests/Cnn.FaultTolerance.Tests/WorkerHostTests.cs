// The worker host's own life cycle around its rejoin loop (src/Worker/Program.cs): a host whose node is downed
// starts a new ActorSystem and joins again, but a host asked to stop (SIGTERM from `docker stop`, `kill`, an
// orchestrator scaling down) must stop, with exit code 0, instead of taking the request for a lost cluster.
using System.Diagnostics;
using Cnn.MultiNode.Tests;
using Xunit;

namespace Cnn.FaultTolerance.Tests;

[Collection(FaultCollection.Name)]
public sealed class WorkerHostTests(FaultRuns runs)
{
    [Fact]
    public void A_worker_host_sent_SIGTERM_exits_with_0_instead_of_joining_again()
    {
        // No coordinator listens at the seed: the host loads its data, starts its node and keeps trying to join.
        int port = TestMaterial.FreePort();
        using NodeProcess worker = runs.StartWorker(5, port);
        Assert.True(worker.WaitForOutput("cnn-worker worker-5: 1 threads", TimeSpan.FromSeconds(60)), $"the worker host did not start\n{worker}");
        int pid = Signals.ChildWithEnvironment("CNN_WORKER_ID=worker-5");

        Signals.Send(pid, Signals.Signal.Terminate);

        var clock = Stopwatch.StartNew();
        while (worker.IsRunning && clock.Elapsed < TimeSpan.FromSeconds(20)) Thread.Sleep(100);
        Assert.False(worker.IsRunning, $"the worker host still runs 20 s after SIGTERM\n{worker}");
        Assert.Equal(0, worker.WaitForExit(TimeSpan.FromSeconds(10)));
        Assert.DoesNotContain("joining again", worker.Out);
    }
}
