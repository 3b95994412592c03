// An in-process cluster of several ActorSystems, started as `cnn train --local-workers 2` starts it: it forms
// (every node Up, with its role), trains steps through the coordinator and parameter server actors with every
// tensor crossing a node boundary, and notices a worker node that is shut down between steps
// (LocalCluster.StopWorkerAsync terminates the node's ActorSystem, which leaves the cluster on its way out, so
// this is a shutdown rather than a silent crash). The run then completes its steps on the remaining worker, the event
// callback names the lost worker, and the weights still equal the single-process run's: DESIGN.md's promise that
// losing a worker does not change the result. A second test has a TestProbe register as a worker that never
// answers: its subtrees must be raced by backups once the step deadline passes (DESIGN.md: a lost worker is
// noticed by the deadline first), and the result must still be exact. A third has a registered worker freeze
// (its data-plane connection stays open, nobody reads it, as with a stopped process or a partition without a
// reset): once it is lost, the parameter server must not stall writing it the weights of every step. A fourth
// registers from a node that reaches the coordinator but is not a member of its cluster (as a worker's node from
// before a coordinator restart is): it is answered NotAMember until that node has joined, then accepted.
using Akka.Actor;
using Akka.Cluster;
using Akka.TestKit;
using Akka.TestKit.Xunit2;
using Cnn.Cluster.Tests.Support;
using Cnn.Coordinator.Cluster;
using Cnn.Engine.IO;
using Cnn.Engine.Kernels;
using Cnn.Engine.Training;
using Cnn.Messages;
using Xunit;
using Xunit.Abstractions;

namespace Cnn.Cluster.Tests;

[Collection(ClusterCollection.Name)]
public sealed class LocalClusterTests(SyntheticRun run, ITestOutputHelper output) : TestKit(output: output)
{
    private const int StepsBefore = 4, Steps = 10;

    [Theory]
    [InlineData("tcp")]
    [InlineData("akka")]
    public async Task A_local_cluster_forms_trains_and_finishes_on_the_remaining_worker_when_a_worker_node_is_shut_down(string transport)
    {
        RunResult reference = run.Reference(Steps);
        await using ClusterRun cluster = await ClusterRun.StartAsync(run, workers: 2, threadsPerWorker: 1,
            transport == "akka" ? ClusterTransport.Akka : ClusterTransport.Tcp);
        var membership = Akka.Cluster.Cluster.Get(cluster.Cluster.CoordinatorSystem);

        AwaitCondition(() => membership.State.Members.Count(m => m.Status == MemberStatus.Up) == 3, ClusterRun.JoinTimeout, TimeSpan.FromMilliseconds(50));
        Assert.Single(membership.State.Members, m => m.HasRole(CnnNode.CoordinatorRole) && m.Address == membership.SelfAddress);
        Assert.Equal(2, membership.State.Members.Count(m => m.HasRole(CnnNode.WorkerRole)));
        // Each says where its thread runs: on a CPU of its own where every thread has one, else unpinned.
        for (int k = 0; k < 2; k++)
            Assert.Contains($"worker worker-{k + 1} joined (1 threads{(cluster.Cluster.WorkerCpus[k] is { } cpus ? $" on CPUs {string.Join(",", cpus)}" : "")})",
                cluster.Events);

        TestProbe removals = CreateTestProbe(cluster.Cluster.CoordinatorSystem, "removals");
        membership.Subscribe(removals.Ref, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsSnapshot, typeof(ClusterEvent.MemberRemoved));
        removals.ExpectMsg<ClusterEvent.CurrentClusterState>(TimeSpan.FromSeconds(10));
        Address lostAddress = NodeAddress(cluster.Cluster.Workers[0]);

        List<StepMetrics> metrics = run.Train(cluster.Backend, 0, StepsBefore);
        Assert.All(cluster.Backend.Stats().Workers, w => Assert.True(w.Contributions > 0, $"{w.Id} made no accepted contribution"));
        await cluster.Cluster.StopWorkerAsync(0);
        metrics.AddRange(run.Train(cluster.Backend, StepsBefore, Steps));

        var removed = removals.FishForMessage<ClusterEvent.MemberRemoved>(m => m.Member.Address == lostAddress, ClusterRun.JoinTimeout);
        Assert.True(removed.Member.HasRole(CnnNode.WorkerRole));
        string? lost = cluster.AwaitEvent(e => e.StartsWith("lost worker worker-1 ", StringComparison.Ordinal), ClusterRun.JoinTimeout);
        Assert.True(lost is not null, $"the coordinator never reported worker-1 lost; events:\n{cluster.EventLog}");
        Assert.DoesNotContain(cluster.Events, e => e.StartsWith("lost worker worker-2", StringComparison.Ordinal));
        Assert.Equal(["worker-2"], cluster.Backend.Stats().Workers.Select(w => w.Id));
        Assert.Equal(reference.Metrics, metrics);
        Assert.Equal(reference.WeightsSha256, Checkpoint.WeightsSha256(cluster.Backend.Weights));
    }

    [Fact]
    public async Task A_worker_that_never_answers_has_its_subtrees_raced_by_backups_after_the_deadline_and_the_weights_stay_exact()
    {
        const int steps = 3;
        RunResult reference = run.Reference(steps);
        await using ClusterRun cluster = await ClusterRun.StartAsync(run, workers: 1, threadsPerWorker: 1, ClusterTransport.Tcp,
            deadlineFloor: TimeSpan.FromMilliseconds(200));
        TestProbe silent = CreateTestProbe("silent-worker");
        cluster.Backend.Coordinator.Tell(new RegisterWorker("silent", 1, run.WorkerData.Sha256, Numerics.Fingerprint, CoordinatorState.ProtocolVersion), silent.Ref);
        Assert.Equal("silent", silent.ExpectMsg<WorkerAccepted>(TimeSpan.FromSeconds(30)).WorkerId);
        cluster.Backend.WaitForWorkers(2, ClusterRun.JoinTimeout);

        List<StepMetrics> metrics = run.Train(cluster.Backend, 0, 1);

        var request = silent.ExpectMsg<ComputeGradients>(TimeSpan.FromSeconds(10));
        Assert.Equal(0, request.Step);
        Assert.Equal([4], request.NodeFirst);
        Assert.Equal([4], request.NodeCount);
        Assert.Contains("step 0: leaves 4..7 re-assigned to worker worker-1", cluster.Events);

        Sys.Stop(silent.Ref);
        string? lost = cluster.AwaitEvent(e => e.StartsWith("lost worker silent ", StringComparison.Ordinal), ClusterRun.JoinTimeout);
        Assert.True(lost is not null, $"the coordinator never noticed the silent worker stop; events:\n{cluster.EventLog}");
        metrics.AddRange(run.Train(cluster.Backend, 1, steps));

        Assert.Equal(reference.Metrics, metrics);
        Assert.Equal(reference.WeightsSha256, Checkpoint.WeightsSha256(cluster.Backend.Weights));
    }

    [Fact]
    public async Task A_lost_worker_whose_data_plane_connection_stays_open_unread_does_not_stall_the_parameter_server()
    {
        const int steps = 80; // about 30 MB of weights: more than the socket buffers of a connection hold
        await using ClusterRun cluster = await ClusterRun.StartAsync(run, workers: 1, threadsPerWorker: 2, ClusterTransport.Tcp);
        TestProbe frozen = CreateTestProbe("frozen-worker");
        cluster.Backend.Coordinator.Tell(new RegisterWorker("frozen", 1, run.WorkerData.Sha256, Numerics.Fingerprint, CoordinatorState.ProtocolVersion), frozen.Ref);
        string endpoint = frozen.ExpectMsg<WorkerAccepted>(TimeSpan.FromSeconds(30)).DataPlaneEndpoint;
        using FrameConnection unread = FrameConnection.Connect(endpoint[..endpoint.LastIndexOf(':')], int.Parse(endpoint[(endpoint.LastIndexOf(':') + 1)..]),
            cluster.Backend.RunId, "frozen", TimeSpan.FromSeconds(10));
        Sys.Stop(frozen.Ref);
        Assert.True(cluster.AwaitEvent(e => e.StartsWith("lost worker frozen ", StringComparison.Ordinal), ClusterRun.JoinTimeout) is not null,
            $"the coordinator never noticed the frozen worker; events:\n{cluster.EventLog}");

        int done = 0;
        Task training = Task.Run(() =>
        {
            for (int step = 0; step < steps; step++)
            {
                cluster.Backend.Step(run.Batch(step), step);
                Interlocked.Increment(ref done);
            }
        });
        // Steps take tens of milliseconds; 15 s without one means the run is stuck.
        int seen = -1;
        var lastProgress = System.Diagnostics.Stopwatch.StartNew();
        while (!training.IsCompleted && lastProgress.Elapsed < TimeSpan.FromSeconds(15))
        {
            if (Volatile.Read(ref done) != seen)
            {
                seen = Volatile.Read(ref done);
                lastProgress.Restart();
            }
            Thread.Sleep(50);
        }
        bool finished = training.IsCompleted;
        int stalledAt = Volatile.Read(ref done);
        unread.Dispose(); // unblocks a parameter server stuck in a write, so that the cluster can stop
        await training;

        Assert.True(finished, $"the run stalled after {stalledAt} of {steps} steps: the parameter server blocks writing weights to the " +
            "data-plane connection of a lost worker that reads nothing");
        Assert.Equal(run.Reference(steps).WeightsSha256, Checkpoint.WeightsSha256(cluster.Backend.Weights));
    }

    // The remoting address of the node a (local) worker actor lives on.
    [Fact]
    public async Task A_registration_from_a_node_outside_the_cluster_is_answered_not_a_member_until_that_node_joins()
    {
        await using ClusterRun cluster = await ClusterRun.StartEmptyAsync(run, ClusterTransport.Tcp, workers: 1);
        Address coordinator = cluster.Cluster.CoordinatorAddress;
        using Microsoft.Extensions.Hosting.IHost stranger = CnnNode.CreateHost(new CnnNodeOptions
        {
            Role = CnnNode.WorkerRole, BindHost = coordinator.Host!, BindPort = 0, LogLevel = Akka.Event.LogLevel.WarningLevel,
        });
        await CnnNode.StartAsync(stranger, new CnnNodeOptions { Role = CnnNode.WorkerRole, BindHost = coordinator.Host! });
        ActorSystem strangerSystem = Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<ActorSystem>(stranger.Services);
        TestProbe worker = CreateTestProbe(strangerSystem, "worker");
        ActorSelection coordinatorActor = strangerSystem.ActorSelection(new RootActorPath(coordinator) / "user" / WorkerNames.Coordinator);
        var register = new RegisterWorker("stranger", 1, run.WorkerData.Sha256, Numerics.Fingerprint, CoordinatorState.ProtocolVersion);

        // Remoting connects the two nodes (the registration arrives), but the stranger is no member: it is told so
        // (a worker's host then starts a new node), and not taken.
        coordinatorActor.Tell(register, worker.Ref);
        NotAMember answer = worker.ExpectMsg<NotAMember>(ClusterRun.JoinTimeout);
        Assert.Equal("stranger", answer.WorkerId);
        Assert.Contains(((ExtendedActorSystem)strangerSystem).Provider.DefaultAddress.ToString(), answer.Reason);
        worker.ExpectNoMsg(TimeSpan.FromSeconds(1));
        Assert.DoesNotContain(cluster.Events, e => e.StartsWith("worker stranger joined", StringComparison.Ordinal));

        await Akka.Cluster.Cluster.Get(strangerSystem).JoinAsync(coordinator).WaitAsync(ClusterRun.JoinTimeout);
        coordinatorActor.Tell(register, worker.Ref);

        Assert.Equal("stranger", worker.ExpectMsg<WorkerAccepted>(ClusterRun.JoinTimeout).WorkerId);
        Assert.Contains("worker stranger joined (1 threads)", cluster.Events);
        await Akka.Cluster.Cluster.Get(strangerSystem).LeaveAsync().WaitAsync(TimeSpan.FromSeconds(10));
        await stranger.StopAsync();
    }

    private static Address NodeAddress(IActorRef worker) =>
        ((ExtendedActorSystem)((ActorRefWithCell)worker).Underlying.System).Provider.DefaultAddress;
}
