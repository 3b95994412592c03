// The parameter server actor: a thin shell that moves Akka messages into the ParameterServerHub, which holds the
// ParameterServerState with the workers to send weights to (over Akka, or on the tensor data plane) behind one lock.
// The data plane's reader threads call the hub directly, so a step's last contribution is reduced, applied and its
// new weights written to the workers on the thread that read it, with no hand-off to a dispatcher thread on the
// critical path; everything that arrives over Akka (steps opened, chunked contributions, joins, snapshots) comes here.
//
// Supervision: a bug in the hub throws, here or on a data-plane reader thread (which reports it as Failed), and the
// default strategy restarts the actor, which would lose the weights; the coordinator watches this actor and fails
// the run loudly instead (see CoordinatorActor).
using Akka.Actor;
using Akka.Event;
using Cnn.Engine.Models;
using Cnn.Engine.Training;
using Cnn.Messages;

namespace Cnn.Coordinator.Cluster;

/// <summary>The parameter server (see file header).</summary>
public sealed class ParameterServerActor : ReceiveActor
{
    /// <summary>Coordinator to server: open step <c>Step</c> for a batch of BatchSize samples.</summary>
    public sealed record BeginStep(long Step, int BatchSize, int MicroBatch);

    /// <summary>Server to coordinator: a contribution for the open step was refused because its numbers are not finite.</summary>
    public sealed record NotFiniteRejected(long Step, TreeNode Node, string WorkerId, string Reason);

    /// <summary>Server to coordinator: a contribution was accepted.</summary>
    public sealed record NodeAccepted(long Step, TreeNode Node, string WorkerId, double ComputeMilliseconds);

    /// <summary>Server to coordinator: the step's optimizer update is applied; the weights are at Version.</summary>
    public sealed record StepApplied(long Step, long Version, double LossSum, int Correct, int Samples);

    /// <summary>Anyone to server: reply with a <see cref="Snapshot"/>.</summary>
    public sealed record SnapshotRequest;

    /// <summary>Copies of the weights and the optimizer state at Version.</summary>
    public sealed record Snapshot(long Version, float[] Weights, float[] M, float[] V, long Iterations);

    /// <summary>Data plane to server: a worker connected (send it the weights from now on).</summary>
    public sealed record DataPlaneJoined(FrameConnection Connection, string WorkerId);

    /// <summary>Data plane to server: a whole contribution read from a worker's connection.</summary>
    public sealed record DataPlaneGradient(ContributionHeader Header, float[] Gradients, int Segment = 0);

    /// <summary>Coordinator to server: the worker is lost; close its data plane connection (do not wait for a write to time out).</summary>
    public sealed record DropWorker(string WorkerId);

    /// <summary>Server to coordinator: a worker's data plane connection closed.</summary>
    public sealed record WorkerConnectionLost(string WorkerId);

    /// <summary>Data plane to server: a worker's connection closed.</summary>
    public sealed record DataPlaneClosed(FrameConnection Connection, string WorkerId);

    /// <summary>Data plane to server: the hub threw on a reader thread; the actor rethrows it (see file header).</summary>
    public sealed record Failed(Exception Exception);

    private readonly ParameterServerHub _hub;

    /// <summary>A server over <paramref name="hub"/>.</summary>
    public ParameterServerActor(ParameterServerHub hub)
    {
        _hub = hub;
        Receive<BeginStep>(m => _hub.BeginStep(m.Step, m.BatchSize, m.MicroBatch));
        Receive<GradientChunk>(c => _hub.Accept(c, Sender));
        Receive<DataPlaneGradient>(_hub.Accept);
        Receive<DataPlaneJoined>(m => _hub.Joined(m.Connection, m.WorkerId));
        Receive<DataPlaneClosed>(m => _hub.Closed(m.Connection, m.WorkerId));
        Receive<DropWorker>(m => _hub.Drop(m.WorkerId));
        Receive<WeightsRequest>(request =>
        {
            if (_hub.Subscribe(request, Sender)) Context.Watch(Sender);
        });
        Receive<SnapshotRequest>(_ => Sender.Tell(_hub.Snapshot()));
        Receive<Terminated>(t => _hub.Unsubscribe(t.ActorRef));
        Receive<Failed>(m => throw new InvalidOperationException("the parameter server failed on a data-plane reader thread", m.Exception));
    }

    /// <summary>Props for a server over <paramref name="hub"/>.</summary>
    public static Props Props(ParameterServerHub hub) => Akka.Actor.Props.Create(() => new ParameterServerActor(hub));

    /// <summary>A server over <paramref name="state"/> reporting to <paramref name="coordinator"/>, with a hub of its own.</summary>
    public ParameterServerActor(ParameterServerState state, IActorRef coordinator) : this(new ParameterServerHub(state, coordinator, Context.GetLogger()))
    {
    }

    /// <summary>Props for a server over <paramref name="state"/> reporting to <paramref name="coordinator"/>, with a hub of its own.</summary>
    public static Props Props(ParameterServerState state, IActorRef coordinator) =>
        Akka.Actor.Props.Create(() => new ParameterServerActor(state, coordinator));
}
