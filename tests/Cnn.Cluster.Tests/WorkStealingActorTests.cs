// The parameter server's side of work stealing over a real data plane (its readers answer, the actor deals the
// shares): two connections play the workers (as in ParameterServerActorTests) and the gradient sums are real ones
// (OneStep). A thief's request is answered on its
// connection, the owner hears of the claim on its own, and the step completed with the stolen leaf and the owner's
// remaining subtrees has the bits of LocalTrainer's. An owner that announced its last leaf keeps it; with stealing
// off, or for a step that is not open, no leaf is granted.
using Akka.Actor;
using Akka.TestKit;
using Akka.TestKit.Xunit2;
using Cnn.Cluster.Tests.Support;
using Cnn.Coordinator.Cluster;
using Cnn.Engine.Training;
using Cnn.Messages;
using Xunit;
using Xunit.Abstractions;
using static Cnn.Cluster.Tests.Support.Contributions;

namespace Cnn.Cluster.Tests;

public sealed class WorkStealingActorTests(OneStep step, ITestOutputHelper output) : TestKit(output: output), IClassFixture<OneStep>
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

    private sealed record Rig(IActorRef Server, TestProbe Coordinator, DataPlaneServer DataPlane, FrameConnection A, FrameConnection B) : IDisposable
    {
        public void Dispose()
        {
            A.Dispose();
            B.Dispose();
            DataPlane.Dispose();
        }
    }

    // Workers a and b connected, each with its share of step 0 delivered on its connection: a leaves 0..3, b leaves 4..7.
    private Rig Start(bool workStealing)
    {
        ParameterServerState state = step.Server(beginStep: false);
        TestProbe coordinator = CreateTestProbe("coordinator");
        var dataPlane = new DataPlaneServer("127.0.0.1", 0, "127.0.0.1", state, Sys.Log, workStealing: workStealing);
        IActorRef server = Sys.ActorOf(ParameterServerActor.Props(state, coordinator.Ref, dataPlane.Steals), "parameter-server");
        dataPlane.Attach(server);
        server.Tell(new ParameterServerActor.BeginStep(0, OneStep.Batch, OneStep.MicroBatch), coordinator.Ref);
        FrameConnection Connect(string worker, TreeNode share)
        {
            FrameConnection connection = FrameConnection.Connect("127.0.0.1", dataPlane.Port, OneStep.RunId, worker, Patience);
            connection.ReadTimeout = Patience; // a frame that never comes fails the test instead of hanging it
            FrameHeader weights = connection.ReadHeader();
            connection.ReadTensor(weights, new float[step.Layout.Count]);
            server.Tell(new ParameterServerActor.DeliverWork(worker, CreateTestProbe().Ref,
                new ComputeGradients(OneStep.RunId, 0, 0, step.BatchIds, OneStep.MicroBatch, [share.First], [share.Count])));
            Assert.IsType<ComputeGradients>(connection.ReadMessage(connection.ReadHeader()));
            return connection;
        }
        return new Rig(server, coordinator, dataPlane, Connect("a", new TreeNode(0, 4)), Connect("b", new TreeNode(4, 4)));
    }

    private void Send(FrameConnection connection, TreeNode node)
    {
        GradientSum sum = step.Sum(node);
        connection.Write(new FrameHeader(FrameKind.Gradient, 0, 0, node.First, node.Count, OneStep.Leaves, sum.Samples, sum.Correct, sum.LossSum, 1.0, 0),
            sum.Gradients);
    }

    private static T Read<T>(FrameConnection connection) where T : ICnnMessage => Assert.IsType<T>(connection.ReadMessage(connection.ReadHeader()));

    private float[] WeightsAfterStep(Rig rig)
    {
        var applied = rig.Coordinator.FishForMessage<ParameterServerActor.StepApplied>(_ => true, Patience);
        Assert.Equal(1, applied.Version);
        Assert.Equal(step.Metrics.LossSum, applied.LossSum);
        TestProbe asker = CreateTestProbe();
        rig.Server.Tell(new ParameterServerActor.SnapshotRequest(), asker.Ref);
        return asker.ExpectMsg<ParameterServerActor.Snapshot>(Patience).Weights;
    }

    [Fact]
    public void A_thief_gets_the_owners_last_leaf_the_owner_hears_of_the_claim_and_the_step_has_the_reference_bits()
    {
        using Rig rig = Start(workStealing: true);

        rig.A.WriteMessage(new StealRequest(OneStep.RunId, 0, 0, "a"));

        Assert.Equal(new LeafClaimed(OneStep.RunId, 0, 7), Read<LeafClaimed>(rig.B));
        Assert.Equal(new StealGrant(OneStep.RunId, 0, 0, 7), Read<StealGrant>(rig.A));
        Send(rig.A, new TreeNode(0, 4));
        Send(rig.A, new TreeNode(7, 1));
        Send(rig.B, new TreeNode(4, 2));
        Send(rig.B, new TreeNode(6, 1));
        AssertBitIdentical(step.Expected, WeightsAfterStep(rig), "weights after a step with a stolen leaf");
    }

    [Fact]
    public void When_the_owner_heard_of_the_claim_too_late_both_copies_come_and_the_step_has_the_reference_bits()
    {
        using Rig rig = Start(workStealing: true);
        rig.A.WriteMessage(new StealRequest(OneStep.RunId, 0, 0, "a"));
        Read<LeafClaimed>(rig.B);
        Assert.Equal(7, Read<StealGrant>(rig.A).Leaf);

        Send(rig.A, new TreeNode(7, 1));
        Send(rig.B, new TreeNode(4, 4)); // it had begun leaf 7: its whole share takes the stolen leaf's place
        Send(rig.A, new TreeNode(0, 4));

        AssertBitIdentical(step.Expected, WeightsAfterStep(rig), "weights after a step with a leaf computed twice");
    }

    [Fact]
    public void An_owner_that_announced_its_last_leaf_keeps_it_and_the_thief_gets_none()
    {
        using Rig rig = Start(workStealing: true);

        rig.B.WriteMessage(new LeafStarted(OneStep.RunId, 0, "b", 7));
        rig.B.WriteMessage(new StealRequest(OneStep.RunId, 0, 0, "b")); // behind the announcement on b's connection
        Assert.Equal(3, Read<StealGrant>(rig.B).Leaf);
        Assert.Equal(3, Read<LeafClaimed>(rig.A).Leaf);
        rig.A.WriteMessage(new StealRequest(OneStep.RunId, 0, 0, "a"));

        Assert.Equal(-1, Read<StealGrant>(rig.A).Leaf);
        Send(rig.A, new TreeNode(0, 2));
        Send(rig.A, new TreeNode(2, 1));
        Send(rig.B, new TreeNode(3, 1));
        Send(rig.B, new TreeNode(4, 4));
        AssertBitIdentical(step.Expected, WeightsAfterStep(rig), "weights after a step where b took a's last leaf and kept its own");
    }

    [Theory]
    [InlineData(false, 0L, 0L)]
    [InlineData(true, 1L, 0L)]
    [InlineData(true, 0L, 1L)]
    public void With_stealing_off_or_for_a_step_or_version_that_is_not_open_no_leaf_is_granted(bool workStealing, long requestStep, long requestVersion)
    {
        using Rig rig = Start(workStealing);

        rig.A.WriteMessage(new StealRequest(OneStep.RunId, requestStep, requestVersion, "a"));

        Assert.Equal(new StealGrant(OneStep.RunId, requestStep, requestVersion, -1), Read<StealGrant>(rig.A));
        rig.A.WriteMessage(new StealRequest(OneStep.RunId, 0, 0, "a")); // the open step: granted only with stealing on
        Assert.Equal(workStealing ? 7 : -1, Read<StealGrant>(rig.A).Leaf);
    }

    [Fact]
    public void A_request_in_another_workers_name_is_ignored()
    {
        using Rig rig = Start(workStealing: true);

        rig.A.WriteMessage(new StealRequest(OneStep.RunId, 0, 0, "b"));
        rig.A.WriteMessage(new StealRequest(OneStep.RunId, 0, 0, "a"));

        Assert.Equal(7, Read<StealGrant>(rig.A).Leaf); // the first got no answer; b's leaf was still there for a
        Assert.Equal(7, Read<LeafClaimed>(rig.B).Leaf);
    }
}
