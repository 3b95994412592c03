// ParameterServerActor with TestKit: TestProbes play the coordinator and the workers. The workers push known
// gradient sums (small multiples of 1/8, so every float sum is exact) as GradientChunk messages, and the weights
// after the step must equal Keras's Adam update computed by hand in double for a first step:
//   g = sum / batch,  m = (1 - b1) g,  v = (1 - b2) g^2,  w1 = w0 - lr * sqrt(1 - b2) / (1 - b1) * m / (sqrt(v) + eps)
// with lr 1e-3, b1 0.9, b2 0.999, eps 1e-7, to float precision. The probes also check the conversation: NodeAccepted
// and StepApplied to the coordinator, the new weights to subscribers as chunks, ContributionRejected to a sender
// whose contribution is refused. Over a real data plane with contributions in exchange segments, each tail's new
// weights go out as soon as it is applied, and a worker that connects mid-step gets the committed weights first.
// A step's work goes as a message frame on a worker's data plane connection, and over Akka to a worker without
// one or whose connection fails. A worker whose weights or work cannot be written is reported lost to the coordinator.
using Akka.Actor;
using Akka.TestKit;
using Akka.TestKit.Xunit2;
using Cnn.Cluster.Tests.Support;
using Cnn.Coordinator.Cluster;
using Cnn.Engine.Models;
using Cnn.Engine.Training;
using Cnn.Messages;
using Xunit;
using Xunit.Abstractions;
using static Cnn.Cluster.Tests.Support.Contributions;

namespace Cnn.Cluster.Tests;

public sealed class ParameterServerActorTests(ITestOutputHelper output) : TestKit(output: output)
{
    private const string RunId = "run-closed-form";
    private const double LearningRate = 1e-3, Beta1 = 0.9, Beta2 = 0.999, Epsilon = 1e-7;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

    private static readonly Model SeedCnn = Presets.Create("seed-cnn");
    private static readonly float[] Initial = SeedCnn.Parameters.Initialize(5);
    private static int Floats => SeedCnn.Parameters.Count;

    private (IActorRef Server, TestProbe Coordinator) StartServer(int batch, int microBatch)
    {
        var state = new ParameterServerState(RunId, SeedCnn.Parameters, (float[])Initial.Clone(), new Adam(SeedCnn.Parameters));
        TestProbe coordinator = CreateTestProbe("coordinator");
        IActorRef server = Sys.ActorOf(ParameterServerActor.Props(state, coordinator.Ref), "parameter-server");
        server.Tell(new ParameterServerActor.BeginStep(0, batch, microBatch), coordinator.Ref);
        return (server, coordinator);
    }

    // Worker k's known gradient sum for its node: a small multiple of 1/8 per float, varying with the index.
    private static float[] KnownGradient(int worker, TreeNode node)
    {
        var g = new float[Floats];
        for (int i = 0; i < g.Length; i++) g[i] = ((i * (worker + 3) + worker) % 13 - 6) * 0.125f * node.Count;
        return g;
    }

    private static void Push(TestProbe worker, IActorRef server, string workerId, TreeNode node, int leafCount, int samples, float[] gradients,
        double lossSum, int correct, long version = 0)
    {
        var h = new ContributionHeader(RunId, 0, version, node.First, node.Count, leafCount, Floats, lossSum, correct, samples, workerId, 2.0);
        foreach (GradientChunk chunk in Chunks(h, gradients)) server.Tell(chunk, worker.Ref);
    }

    private ParameterServerActor.Snapshot Snapshot(IActorRef server)
    {
        TestProbe asker = CreateTestProbe();
        server.Tell(new ParameterServerActor.SnapshotRequest(), asker.Ref);
        return asker.ExpectMsg<ParameterServerActor.Snapshot>(Patience);
    }

    private static float[] Assemble(TestProbe subscriber, long version)
    {
        var weights = new float[Floats];
        var assembler = new TensorAssembler(weights);
        while (!assembler.IsComplete)
        {
            var chunk = subscriber.ExpectMsg<WeightsChunk>(Patience);
            Assert.Equal(RunId, chunk.RunId);
            Assert.Equal(version, chunk.Version);
            Assert.True(assembler.Add(chunk.ChunkIndex, chunk.ChunkCount, chunk.Offset, chunk.TotalFloats, chunk.Data, out string? error), error);
        }
        return weights;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4)]
    public void One_step_of_N_probe_workers_gives_the_hand_computed_Keras_Adam_update(int workers)
    {
        const int batch = 64, microBatch = 8, leafCount = 8;
        var (server, coordinator) = StartServer(batch, microBatch);
        List<TreeNode> nodes = GradientTree.Cut(leafCount, workers);
        Assert.Equal(workers, nodes.Count);
        var sums = new double[Floats];

        for (int k = 0; k < workers; k++)
        {
            float[] g = KnownGradient(k, nodes[k]);
            for (int i = 0; i < g.Length; i++) sums[i] += g[i];
            Push(CreateTestProbe($"worker-{k}"), server, $"worker-{k}", nodes[k], leafCount, nodes[k].Count * microBatch, g, lossSum: 10.5 + k, correct: k);
        }

        var accepted = Enumerable.Range(0, workers).Select(_ => coordinator.ExpectMsg<ParameterServerActor.NodeAccepted>(Patience)).ToList();
        var applied = coordinator.ExpectMsg<ParameterServerActor.StepApplied>(Patience);
        Assert.Equal(nodes.ToHashSet(), accepted.Select(a => a.Node).ToHashSet());
        Assert.All(accepted, a => Assert.Equal(0, a.Step));
        Assert.Equal(new ParameterServerActor.StepApplied(0, 1, Enumerable.Range(0, workers).Sum(k => 10.5 + k), Enumerable.Range(0, workers).Sum(), batch), applied);

        ParameterServerActor.Snapshot snapshot = Snapshot(server);
        Assert.Equal(1, snapshot.Version);
        Assert.Equal(1, snapshot.Iterations);
        int changed = 0;
        for (int i = 0; i < Floats; i++)
        {
            double g = sums[i] / batch;
            double m = (1 - Beta1) * g, v = (1 - Beta2) * g * g;
            double w1 = Initial[i] - LearningRate * Math.Sqrt(1 - Beta2) / (1 - Beta1) * m / (Math.Sqrt(v) + Epsilon);
            AssertClose(w1, snapshot.Weights[i], $"w[{i}] (g = {g})");
            AssertClose(m, snapshot.M[i], $"m[{i}]");
            AssertClose(v, snapshot.V[i], $"v[{i}]");
            if (snapshot.Weights[i] != Initial[i]) changed++;
        }
        Assert.True(changed > Floats / 2, $"only {changed} of {Floats} weights moved");
    }

    // Float precision: the float path rounds m, v, sqrt, the quotient and the step (each about 6e-8 relative, on
    // a step of about lr = 1e-3), then the subtraction from w (half an ulp of w).
    private static void AssertClose(double expected, float actual, string what)
    {
        float e = (float)expected;
        double ulp = MathF.BitIncrement(MathF.Abs(e)) - MathF.Abs(e);
        double tolerance = ulp + 1e-6 * Math.Abs(expected) + 1e-9;
        Assert.True(Math.Abs(actual - expected) <= tolerance, $"{what} is {actual:R}, expected {expected:R} (tolerance {tolerance:E2})");
    }

    [Fact]
    public void Subscribed_probes_get_the_weights_at_once_and_after_the_step_as_chunks_that_reassemble_to_the_snapshot()
    {
        var (server, coordinator) = StartServer(batch: 16, microBatch: 8);
        TestProbe first = CreateTestProbe("subscriber-1"), second = CreateTestProbe("subscriber-2"), stranger = CreateTestProbe("stranger");
        server.Tell(new WeightsRequest(RunId, "subscriber-1", -1), first.Ref);
        server.Tell(new WeightsRequest(RunId, "subscriber-2", -1), second.Ref);
        server.Tell(new WeightsRequest("run-other", "stranger", -1), stranger.Ref);

        AssertBitIdentical(Initial, Assemble(first, version: 0), "version 0 to subscriber 1");
        AssertBitIdentical(Initial, Assemble(second, version: 0), "version 0 to subscriber 2");

        Push(CreateTestProbe(), server, "worker-a", new TreeNode(0, 1), 2, 8, KnownGradient(0, new TreeNode(0, 1)), 3.0, 1);
        Push(CreateTestProbe(), server, "worker-b", new TreeNode(1, 1), 2, 8, KnownGradient(1, new TreeNode(1, 1)), 4.0, 2);
        coordinator.ExpectMsg<ParameterServerActor.NodeAccepted>(Patience);
        coordinator.ExpectMsg<ParameterServerActor.NodeAccepted>(Patience);
        Assert.Equal(new ParameterServerActor.StepApplied(0, 1, 7.0, 3, 16), coordinator.ExpectMsg<ParameterServerActor.StepApplied>(Patience));

        ParameterServerActor.Snapshot snapshot = Snapshot(server);
        AssertBitIdentical(snapshot.Weights, Assemble(first, version: 1), "version 1 to subscriber 1");
        AssertBitIdentical(snapshot.Weights, Assemble(second, version: 1), "version 1 to subscriber 2");
        Assert.NotEqual(Initial, snapshot.Weights);
        stranger.ExpectNoMsg(TimeSpan.FromMilliseconds(200));
    }

    [Fact]
    public void A_refused_contribution_is_answered_with_ContributionRejected_and_the_weights_stay_put()
    {
        var (server, coordinator) = StartServer(batch: 16, microBatch: 8);
        TestProbe stale = CreateTestProbe("stale-worker"), broken = CreateTestProbe("broken-worker"), good = CreateTestProbe("good-worker");
        float[] poisoned = KnownGradient(0, new TreeNode(0, 1));
        poisoned[SeedCnn.Parameters.Find("dense/bias")!.Offset + 3] = float.NaN;

        Push(stale, server, "stale-worker", new TreeNode(0, 1), 2, 8, KnownGradient(0, new TreeNode(0, 1)), 1.0, 0, version: 7);
        Push(broken, server, "broken-worker", new TreeNode(0, 1), 2, 8, poisoned, 1.0, 0);
        var staleReply = stale.ExpectMsg<ContributionRejected>(Patience);
        var brokenReply = broken.ExpectMsg<ContributionRejected>(Patience);

        Assert.Equal((RunId, 0L, 7L, 0, 1), (staleReply.RunId, staleReply.Step, staleReply.Version, staleReply.NodeFirst, staleReply.NodeCount));
        Assert.Contains("stale", staleReply.Reason);
        Assert.Contains("not finite", brokenReply.Reason);
        Assert.Contains("dense/bias", brokenReply.Reason);
        // The coordinator hears of the non-finite one only (it fails the run when a second worker agrees), not of the stale one.
        var notFinite = coordinator.ExpectMsg<ParameterServerActor.NotFiniteRejected>(Patience);
        Assert.Equal((0L, new TreeNode(0, 1), "broken-worker"), (notFinite.Step, notFinite.Node, notFinite.WorkerId));
        coordinator.ExpectNoMsg(TimeSpan.FromMilliseconds(200));
        ParameterServerActor.Snapshot before = Snapshot(server);
        Assert.Equal(0, before.Version);
        AssertBitIdentical(Initial, before.Weights, "weights after the refusals");

        // The step still completes from a good contribution, whose sender gets no reply.
        Push(good, server, "good-worker", new TreeNode(0, 2), 2, 16, KnownGradient(2, new TreeNode(0, 2)), 2.0, 1);
        Assert.Equal(new TreeNode(0, 2), coordinator.ExpectMsg<ParameterServerActor.NodeAccepted>(Patience).Node);
        coordinator.ExpectMsg<ParameterServerActor.StepApplied>(Patience);
        good.ExpectNoMsg(TimeSpan.FromMilliseconds(200));
        Assert.Equal(1, Snapshot(server).Version);
    }

    // Reads weights frames until one completes a version: (version, weights) as a worker assembles them.
    private static (long Version, float[] Weights, List<byte> Parts) ReadVersion(FrameConnection connection, IReadOnlyList<ExchangeSegment> segments)
    {
        var weights = new float[Floats];
        var parts = new List<byte>();
        while (true)
        {
            FrameHeader header = connection.ReadHeader();
            Assert.Equal(FrameKind.Weights, header.Kind);
            parts.Add(header.Part);
            ExchangeSegment range = header.Part == FrameHeader.Whole ? new ExchangeSegment(0, Floats, -1) : segments[header.SegmentIn(segments.Count)];
            connection.ReadTensor(header, weights.AsSpan(range.From, range.Length));
            if (header.Part == FrameHeader.Whole || header.Part == segments.Count) return (header.Version, weights, parts);
        }
    }

    [Fact]
    public void Over_the_data_plane_a_tails_new_weights_go_out_at_once_and_a_worker_joining_mid_step_gets_the_committed_weights_first()
    {
        IReadOnlyList<ExchangeSegment> segments = SeedCnn.ExchangeSegments;
        var state = new ParameterServerState(RunId, SeedCnn.Parameters, (float[])Initial.Clone(), new Adam(SeedCnn.Parameters), segments: segments);
        TestProbe coordinator = CreateTestProbe("coordinator");
        using var dataPlane = new DataPlaneServer("127.0.0.1", 0, "127.0.0.1", state, Sys.Log);
        IActorRef server = Sys.ActorOf(ParameterServerActor.Props(state, coordinator.Ref), "parameter-server");
        dataPlane.Attach(server);
        server.Tell(new ParameterServerActor.BeginStep(0, 8, 8), coordinator.Ref);
        float[] gradient = KnownGradient(0, new TreeNode(0, 1));
        using FrameConnection first = FrameConnection.Connect("127.0.0.1", dataPlane.Port, RunId, "worker-1", Patience);
        var (startVersion, startWeights, _) = ReadVersion(first, segments);
        Assert.Equal(0, startVersion);
        AssertBitIdentical(Initial, startWeights, "the weights a worker gets when it connects");

        for (int s = 0; s < segments.Count - 1; s++)
            first.Write(new FrameHeader(FrameKind.Gradient, 0, 0, 0, 1, 1, 8, 0, 0, 0, 0, (byte)(s + 1)), gradient.AsSpan(segments[s].From, segments[s].Length));
        // The tails are applied and sent before the head exists: wait for them at the first worker, then let a second one join.
        var tailsAtFirst = new float[Floats];
        for (int s = 0; s < segments.Count - 1; s++)
        {
            FrameHeader header = first.ReadHeader();
            Assert.Equal((1L, (byte)(s + 1)), (header.Version, header.Part));
            first.ReadTensor(header, tailsAtFirst.AsSpan(segments[s].From, segments[s].Length));
        }
        using FrameConnection second = FrameConnection.Connect("127.0.0.1", dataPlane.Port, RunId, "worker-2", Patience);
        FrameHeader committed = second.ReadHeader();
        var atJoin = new float[Floats];
        second.ReadTensor(committed, atJoin);
        first.Write(new FrameHeader(FrameKind.Gradient, 0, 0, 0, 1, 1, 8, 3, 4.5, 2.0, 0, (byte)segments.Count), gradient.AsSpan(0, segments[^1].To));

        var applied = coordinator.FishForMessage<ParameterServerActor.StepApplied>(_ => true, Patience);
        float[] expected = Snapshot(server).Weights;
        var (version, atSecond, parts) = ReadVersion(second, segments);
        FrameHeader head = first.ReadHeader();
        first.ReadTensor(head, tailsAtFirst.AsSpan(0, segments[^1].To));

        Assert.Equal((0L, FrameHeader.Whole), (committed.Version, committed.Part));
        AssertBitIdentical(Initial, atJoin, "the weights a worker joining mid-step gets");
        Assert.Equal(1, applied.Version);
        Assert.Equal(1, version);
        Assert.Equal(Enumerable.Range(1, segments.Count).Select(p => (byte)p), parts);
        AssertBitIdentical(expected, atSecond, "version 1 at the worker that joined mid-step");
        AssertBitIdentical(expected, tailsAtFirst, "version 1 at the first worker");
        Assert.False(expected.AsSpan().SequenceEqual(Initial), "the step moved the weights");
    }

    // A parameter server over a real data plane, and worker-1 connected to it. With holdReports the data plane's
    // reports (the join, the close) go to the Reports probe instead of the server, so that a test can break the
    // server's end of the connection before it passes the join on.
    private sealed record DataPlaneRig(IActorRef Server, TestProbe Coordinator, TestProbe Reports, DataPlaneServer DataPlane, FrameConnection Worker)
        : IDisposable
    {
        public void Dispose()
        {
            Worker.Dispose();
            DataPlane.Dispose();
        }
    }

    private DataPlaneRig StartWithDataPlane(bool holdReports)
    {
        var state = new ParameterServerState(RunId, SeedCnn.Parameters, (float[])Initial.Clone(), new Adam(SeedCnn.Parameters));
        TestProbe coordinator = CreateTestProbe("coordinator"), reports = CreateTestProbe("reports");
        var dataPlane = new DataPlaneServer("127.0.0.1", 0, "127.0.0.1", state, Sys.Log);
        IActorRef server = Sys.ActorOf(ParameterServerActor.Props(state, coordinator.Ref), "parameter-server");
        dataPlane.Attach(holdReports ? reports.Ref : server);
        FrameConnection worker = FrameConnection.Connect("127.0.0.1", dataPlane.Port, RunId, "worker-1", Patience);
        worker.ReadTimeout = Patience; // a frame that never comes fails the test instead of hanging it
        return new DataPlaneRig(server, coordinator, reports, dataPlane, worker);
    }

    private static void ReadWelcome(FrameConnection worker) => worker.ReadTensor(worker.ReadHeader(), new float[Floats]); // the weights a joining worker gets

    [Fact]
    public void A_steps_work_goes_on_the_workers_data_plane_connection_when_it_has_one_and_over_akka_when_not()
    {
        using DataPlaneRig rig = StartWithDataPlane(holdReports: false);
        TestProbe connected = CreateTestProbe("connected"), unconnected = CreateTestProbe("unconnected");
        ReadWelcome(rig.Worker);
        var first = new ComputeGradients(RunId, 1, 1, Enumerable.Range(0, 16).ToArray(), 8, [0], [1]);
        var second = first with { NodeFirst = [1] };

        rig.Server.Tell(new ParameterServerActor.DeliverWork("worker-1", connected.Ref, first));
        rig.Server.Tell(new ParameterServerActor.DeliverWork("worker-2", unconnected.Ref, second));

        var sent = Assert.IsType<ComputeGradients>(rig.Worker.ReadMessage(rig.Worker.ReadHeader()));
        Assert.Equal((first.Step, first.NodeFirst[0]), (sent.Step, sent.NodeFirst[0]));
        Assert.Equal(first.BatchIds, sent.BatchIds);
        Assert.Equal(second.NodeFirst, unconnected.ExpectMsg<ComputeGradients>(Patience).NodeFirst);
        connected.ExpectNoMsg(TimeSpan.FromMilliseconds(300));
    }

    [Fact]
    public void When_the_work_cannot_be_written_it_goes_over_akka_and_the_worker_is_reported_lost()
    {
        using DataPlaneRig rig = StartWithDataPlane(holdReports: true);
        TestProbe worker = CreateTestProbe("worker");
        var join = rig.Reports.ExpectMsg<ParameterServerActor.DataPlaneJoined>(Patience);
        rig.Server.Tell(join);
        ReadWelcome(rig.Worker); // the server holds the connection now: it has written to it
        join.Connection.Dispose(); // and it breaks before the work is written
        var work = new ComputeGradients(RunId, 1, 1, Enumerable.Range(0, 8).ToArray(), 8, [0], [1]);

        rig.Server.Tell(new ParameterServerActor.DeliverWork("worker-1", worker.Ref, work));

        Assert.Equal(work.Step, worker.ExpectMsg<ComputeGradients>(Patience).Step);
        Assert.Equal("worker-1", rig.Coordinator.FishForMessage<ParameterServerActor.WorkerConnectionLost>(_ => true, Patience).WorkerId);
    }

    [Fact]
    public void A_worker_whose_weights_cannot_be_written_is_reported_lost_to_the_coordinator()
    {
        using DataPlaneRig rig = StartWithDataPlane(holdReports: true);
        var join = rig.Reports.ExpectMsg<ParameterServerActor.DataPlaneJoined>(Patience);
        join.Connection.Dispose(); // broken before the server writes the weights a joining worker gets

        rig.Server.Tell(join);

        Assert.Equal("worker-1", rig.Coordinator.FishForMessage<ParameterServerActor.WorkerConnectionLost>(_ => true, Patience).WorkerId);
    }

    [Fact]
    public void A_worker_that_connects_again_gets_its_work_on_the_new_connection_and_the_old_ones_close_is_no_loss()
    {
        using DataPlaneRig rig = StartWithDataPlane(holdReports: true);
        var old = rig.Reports.ExpectMsg<ParameterServerActor.DataPlaneJoined>(Patience);
        rig.Server.Tell(old);
        ReadWelcome(rig.Worker);
        using FrameConnection again = FrameConnection.Connect("127.0.0.1", rig.DataPlane.Port, RunId, "worker-1", Patience);
        again.ReadTimeout = Patience;
        rig.Server.Tell(rig.Reports.ExpectMsg<ParameterServerActor.DataPlaneJoined>(Patience));
        ReadWelcome(again);
        var work = new ComputeGradients(RunId, 1, 1, Enumerable.Range(0, 8).ToArray(), 8, [0], [1]);

        rig.Server.Tell(new ParameterServerActor.DataPlaneClosed(old.Connection, "worker-1")); // the old connection's close, reported late
        rig.Server.Tell(new ParameterServerActor.DeliverWork("worker-1", CreateTestProbe("akka").Ref, work));

        Assert.Equal(work.Step, Assert.IsType<ComputeGradients>(again.ReadMessage(again.ReadHeader())).Step);
        rig.Coordinator.ExpectNoMsg(TimeSpan.FromMilliseconds(300));
    }
}
