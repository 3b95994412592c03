// The worker's side of the data plane, with the test in the parameter server's place.
//
// Work stealing: a worker that has sent its share asks for a leaf only while no part of the next weights has come.
// The server updates a tail of the weights only once the whole batch's tails are in, so a worker that holds such a
// tail knows every leaf of the step has been started: its head must come with no StealRequest in front of it. The
// tail is sent here before the step's work, which makes the order certain; the worker reads it as it reads any tail.
//
// A lost connection: when it closes while the worker computes (the coordinator's node stopped, or downed this
// worker), the worker's writes fail, and that is an expected end of the step, not a fault of the worker. It logs one
// warning and registers again; the actor does not crash and restart. The close comes right after the step's work,
// which the worker's data-plane thread computes, so the write that fails is one made from inside the computation
// (the announcement of the share's last leaf, or a tail). When the thread team still wrapped its items' exceptions
// in an AggregateException, the worker did not recognise the closed connection in it, and the actor crashed with a
// stack trace in the log.
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

public sealed class WorkerDataPlaneTests(ITestOutputHelper output) : TestKit(WorkerOnDataPlane.NodeConfig, output)
{
    private const string RunId = "run-data-plane";
    private const int Batch = OneStep.Batch, MicroBatch = OneStep.MicroBatch;
    private static readonly TimeSpan Patience = WorkerOnDataPlane.Patience;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task After_its_share_a_worker_asks_for_a_leaf_unless_part_of_the_next_weights_has_come(bool tailOfNextWeights)
    {
        Model model = Presets.Create("seed-cnn");
        IReadOnlyList<ExchangeSegment> segments = model.ExchangeSegments;
        Assert.True(segments.Count > 1, "seed-cnn's weights travel in segments");
        ArraySource data = OneStep.Images(Batch, seed: 11);

        using var peer = await WorkerOnDataPlane.StartAsync(Sys, CreateTestProbe().Ref, model.Name, data, RunId, MicroBatch, Patience);
        FrameConnection connection = peer.Connection;
        IActorRef worker = peer.Worker;

        // Weights version 0 whole, then (or not) a tail of version 1, then the worker's share of step 0: leaves 0..3 of 8.
        float[] weights = model.Parameters.Initialize(1);
        connection.Write(new FrameHeader(FrameKind.Weights, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, FrameHeader.Whole), weights);
        if (tailOfNextWeights)
            connection.Write(new FrameHeader(FrameKind.Weights, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, FrameHeader.PartOf(0, segments.Count)),
                weights.AsSpan(segments[0].From, segments[0].Length));
        connection.WriteMessage(new ComputeGradients(RunId, 0, 0, Enumerable.Range(0, Batch).ToArray(), MicroBatch, [0], [4]));

        // What the worker sends, in order, up to its head.
        var sent = new List<string>();
        while (true)
        {
            FrameHeader header = connection.ReadHeader();
            if (header.Kind == FrameKind.Message)
            {
                sent.Add(connection.ReadMessage(header).GetType().Name);
                continue;
            }
            Assert.Equal(FrameKind.Gradient, header.Kind);
            connection.ReadTensor(header, new float[header.BodyLength / 4]);
            bool head = header.SegmentIn(segments.Count) == segments.Count - 1;
            sent.Add(head ? "head" : "tail");
            if (head) break;
        }

        var expected = new List<string> { nameof(LeafStarted) }; // announced before the share's last leaf
        expected.AddRange(Enumerable.Repeat("tail", segments.Count - 1));
        if (!tailOfNextWeights) expected.Add(nameof(StealRequest));
        expected.Add("head");
        Assert.Equal(expected, sent);
        if (!tailOfNextWeights) connection.WriteMessage(new StealGrant(RunId, 0, 0, -1)); // none: the worker's wait ends
        Watch(worker);
        Sys.Stop(worker); // it closes its side of the data plane
        await ExpectTerminatedAsync(worker, Patience);
    }

    // The coordinator deals the next step's work ahead of its weights, so a subtree of the current step dealt again (it
    // was late, or refused) comes behind work that waits. The worker computes it at once; when its data-plane thread
    // took work in the order it came, the current step's subtree waited for weights that only its own result could
    // bring, and a diverging run was re-dealt until the loop's ask timed out instead of failing in seconds.
    [Fact]
    public async Task Work_for_the_weights_in_hand_is_computed_even_behind_work_that_waits_for_newer_weights()
    {
        Model model = Presets.Create("seed-cnn");
        IReadOnlyList<ExchangeSegment> segments = model.ExchangeSegments;
        ArraySource data = OneStep.Images(Batch, seed: 3);

        using var peer = await WorkerOnDataPlane.StartAsync(Sys, CreateTestProbe().Ref, model.Name, data, RunId, MicroBatch, Patience);
        FrameConnection connection = peer.Connection;
        int[] batch = Enumerable.Range(0, Batch).ToArray();
        connection.Write(new FrameHeader(FrameKind.Weights, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, FrameHeader.Whole), model.Parameters.Initialize(1));
        connection.WriteMessage(new ComputeGradients(RunId, 1, 1, batch, MicroBatch, [0], [4])); // the next step's, ahead of its weights
        connection.WriteMessage(new ComputeGradients(RunId, 0, 0, batch, MicroBatch, [4], [4])); // this step's, dealt again

        // Its head comes (the connection's reads time out after the patience).
        while (true)
        {
            FrameHeader header = connection.ReadHeader();
            if (header.Kind == FrameKind.Message)
            {
                connection.ReadMessage(header);
                continue;
            }
            connection.ReadTensor(header, new float[header.BodyLength / 4]);
            if (header.SegmentIn(segments.Count) < segments.Count - 1) continue;
            Assert.Equal((0L, 0L, 4, 4), (header.Step, header.Version, header.NodeFirst, header.NodeCount));
            break;
        }
        connection.WriteMessage(new StealGrant(RunId, 0, 0, -1)); // its request for a leaf, answered: none
        Watch(peer.Worker);
        Sys.Stop(peer.Worker);
        await ExpectTerminatedAsync(peer.Worker, Patience);
    }

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

        // The worker reads the weights and the work and computes the share; a write from inside the computation fails,
        // which ends the step and the connection, and the worker registers again. Taken back in, it connects again.
        await ExpectLogAsync(logs, "lost the data plane connection");
        peer.Worker.Tell(peer.Acceptance, CreateTestProbe().Ref);
        // Nothing else comes: an actor that crashed would log its error now.
        foreach (object e in await logs.ReceiveWhileAsync(TimeSpan.FromSeconds(1), m => m).ToListAsync())
            Assert.False(e is Error, $"the worker logged an error: {e}");
    }

    // Skips log events until one contains the text; fails on an error on the way, or after the patience.
    private static ValueTask<LogEvent> ExpectLogAsync(Akka.TestKit.TestProbe logs, string text) =>
        logs.FishForMessageAsync<LogEvent>(e =>
        {
            Assert.False(e is Error, $"the worker logged an error: {e}");
            return e.Message.ToString()?.Contains(text, StringComparison.Ordinal) == true;
        }, Patience, $"the worker logging \"{text}\"");
}
