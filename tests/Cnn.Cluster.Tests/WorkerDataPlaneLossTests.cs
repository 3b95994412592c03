// A worker whose data plane connection closes while it computes (the coordinator's node stopped, or downed this
// worker): its writes fail, and that is an expected end of the step, not a fault of the worker. It logs one warning
// and registers again; the actor does not crash and restart. The close comes right after the step's work, so the
// write that fails is one made from inside the computation (the announcement of the share's last leaf), and such a
// failure reaches the actor wrapped by the thread team that ran it. The worker takes it up once it is back in a
// run (it holds everything while it registers again): that is when a wrapped failure used to crash the actor, with
// a stack trace in the log.
using Akka.Actor;
using Akka.Event;
using Akka.TestKit.Xunit2;
using Cnn.Cluster.Tests.Support;
using Cnn.Engine.Data;
using Cnn.Engine.Models;
using Cnn.Messages;
using Xunit;
using Xunit.Abstractions;

namespace Cnn.Cluster.Tests;

public sealed class WorkerDataPlaneLossTests(ITestOutputHelper output) : TestKit(Config, output)
{
    // WorkerActor subscribes to cluster events, so its node needs the cluster provider; it never joins a cluster here.
    private const string Config = """
        akka.actor.provider = cluster
        akka.remote.dot-netty.tcp.hostname = 127.0.0.1
        akka.remote.dot-netty.tcp.port = 0
        """;
    private const string RunId = "run-lost";
    private const int Batch = 64, MicroBatch = 8;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

    [Fact]
    public async Task A_connection_closed_in_the_middle_of_a_share_ends_the_step_with_a_warning_not_a_crash()
    {
        Model model = Presets.Create("seed-cnn");
        Assert.True(model.ExchangeSegments.Count > 1, "seed-cnn's gradients travel in segments, tails first");
        ArraySource data = OneStep.Images(Batch, seed: 5);
        var logs = CreateTestProbe();
        Sys.EventStream.Subscribe(logs.Ref, typeof(Warning));
        Sys.EventStream.Subscribe(logs.Ref, typeof(Error));

        using var peer = await WorkerOnDataPlane.StartAsync(Sys, CreateTestProbe().Ref, model.Name, data, RunId, MicroBatch, Patience);
        FrameConnection connection = peer.Connection;
        connection.Write(new FrameHeader(FrameKind.Weights, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, FrameHeader.Whole), model.Parameters.Initialize(1));
        connection.WriteMessage(new ComputeGradients(RunId, 0, 0, Enumerable.Range(0, Batch).ToArray(), MicroBatch, [0], [4]));
        connection.Dispose(); // the work is in the worker's socket before the close

        // The worker reads the work, then the close, and registers again; the share's computation goes on meanwhile,
        // and its first write, the LeafStarted before the last leaf, fails. Taken back in, the worker handles the
        // failed share (it was held while the worker registered).
        await ExpectLogAsync(logs, "lost the data plane connection");
        peer.Worker.Tell(peer.Acceptance, CreateTestProbe().Ref);
        await ExpectLogAsync(logs, "could not send gradients of version 0");
        // Nothing else comes: an actor that crashed would log its error now.
        foreach (object e in await logs.ReceiveWhileAsync(TimeSpan.FromSeconds(1), m => m).ToListAsync())
            Assert.False(e is Error, $"the worker logged an error: {e}");
    }

    // Reads the log events until one contains the text; fails on an error or after the patience.
    private static async Task ExpectLogAsync(Akka.TestKit.TestProbe logs, string text)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (true)
        {
            TimeSpan left = deadline - DateTime.UtcNow;
            Assert.True(left > TimeSpan.Zero, $"the worker did not log \"{text}\" within {Patience.TotalSeconds:0} s");
            LogEvent e = await logs.ExpectMsgAsync<LogEvent>(left);
            Assert.False(e is Error, $"the worker logged an error: {e}");
            if (e.Message.ToString()?.Contains(text, StringComparison.Ordinal) == true) return;
        }
    }
}
