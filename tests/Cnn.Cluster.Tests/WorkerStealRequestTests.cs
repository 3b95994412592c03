// The worker's side of work stealing over a real data plane, with the test in the parameter server's place: a
// worker that has sent its share asks for a leaf only while no part of the next weights has come. The server
// updates a tail of the weights only once the whole batch's tails are in, so a worker that holds such a tail knows
// every leaf of the step has been started: its head must come with no StealRequest in front of it. The tail is sent
// here before the step's work, which makes the order certain; the worker reads it as it reads any tail.
using Akka.Actor;
using Akka.TestKit.Xunit2;
using Cnn.Cluster.Tests.Support;
using Cnn.Engine.Data;
using Cnn.Engine.Models;
using Cnn.Messages;
using Xunit;
using Xunit.Abstractions;

namespace Cnn.Cluster.Tests;

public sealed class WorkerStealRequestTests(ITestOutputHelper output) : TestKit(Config, output)
{
    // WorkerActor subscribes to cluster events, so its node needs the cluster provider; it never joins a cluster here.
    private const string Config = """
        akka.actor.provider = cluster
        akka.remote.dot-netty.tcp.hostname = 127.0.0.1
        akka.remote.dot-netty.tcp.port = 0
        """;
    private const string RunId = "run-steal";
    private const int Batch = 64, MicroBatch = 8;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

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
}
