// The parameter server actor: a thin shell that moves messages in and out of ParameterServerState. It keeps
// the workers that asked for weights (over Akka, or by connecting to the tensor data plane), sends them the
// newest weights when they ask or connect and after every optimizer step, tells the coordinator which contributions
// it accepted and when a step is applied, and answers a rejected contribution with the reason (also logged, with
// the worker, step and version). When contributions come in exchange segments, each tail segment's new weights go
// to the data-plane workers as soon as the state applies it, and the head's when the step completes; a worker that
// connects mid-step gets the committed weights, then the tails already sent to the others. The coordinator's work
// for each step goes through here too, so that it travels on a worker's data plane connection when there is one.
// With work stealing, it records on the board the share it deals each worker, and forgets applied steps; the data
// plane's readers answer the steal requests (DataPlaneServer).
//
// Supervision: a bug here throws and the default strategy restarts the actor, which would lose the weights;
// the coordinator watches this actor and fails the run loudly instead (see CoordinatorActor).
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

    /// <summary>
    /// Server to coordinator: the step's optimizer update is applied; the weights are at Version. StolenLeaves: the
    /// leaves granted to thieves so far in the run.
    /// </summary>
    public sealed record StepApplied(long Step, long Version, double LossSum, int Correct, int Samples, long StolenLeaves = 0);

    /// <summary>Anyone to server: reply with a <see cref="Snapshot"/>.</summary>
    public sealed record SnapshotRequest;

    /// <summary>Copies of the weights and the optimizer state at Version.</summary>
    public sealed record Snapshot(long Version, float[] Weights, float[] M, float[] V, long Iterations);

    /// <summary>Data plane to server: a worker connected (send it the weights from now on).</summary>
    public sealed record DataPlaneJoined(FrameConnection Connection, string WorkerId);

    /// <summary>Data plane to server: a whole contribution read from a worker's connection.</summary>
    public sealed record DataPlaneGradient(ContributionHeader Header, float[] Gradients, int Segment = 0);

    /// <summary>
    /// Coordinator to server: deliver a step's work to a worker, as a message frame on its data plane connection when
    /// it has one (behind the weights already sent there), else over Akka to <c>Worker</c>.
    /// </summary>
    public sealed record DeliverWork(string WorkerId, IActorRef Worker, ComputeGradients Work);

    /// <summary>Coordinator to server: the worker is lost; close its data plane connection (do not wait for a write to time out).</summary>
    public sealed record DropWorker(string WorkerId);

    /// <summary>Server to coordinator: a worker's data plane connection closed.</summary>
    public sealed record WorkerConnectionLost(string WorkerId);

    /// <summary>Data plane to server: a worker's connection closed.</summary>
    public sealed record DataPlaneClosed(FrameConnection Connection, string WorkerId);

    private readonly ParameterServerState _state;
    private readonly IActorRef _coordinator;
    private readonly HashSet<IActorRef> _subscribers = [];
    // Each worker's data plane connection: its newest. A worker that connects again (its side saw the old one fail)
    // replaces the old one, so a step's work never goes to a dead socket and the old one's late close is no loss.
    private readonly Dictionary<string, FrameConnection> _connections = [];
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly StealBoard? _steals;

    /// <summary>
    /// A server over <paramref name="state"/> reporting to <paramref name="coordinator"/>; with <paramref name="steals"/>
    /// (work stealing on), it records there the shares it deals.
    /// </summary>
    public ParameterServerActor(ParameterServerState state, IActorRef coordinator, StealBoard? steals = null)
    {
        _state = state;
        _coordinator = coordinator;
        _steals = steals;
        Receive<BeginStep>(m => _state.BeginStep(m.Step, m.BatchSize, m.MicroBatch));
        Receive<GradientChunk>(c => Handle(_state.Accept(c), ContributionHeader.Of(c), Sender));
        Receive<DataPlaneGradient>(m => Handle(_state.Accept(m.Header, m.Gradients, m.Segment), m.Header, null));
        Receive<DataPlaneJoined>(m =>
        {
            if (_connections.Remove(m.WorkerId, out FrameConnection? older)) older.Dispose();
            _connections[m.WorkerId] = m.Connection;
            if (SendWeights(m.Connection, m.WorkerId, _state.CommittedWeights(), _state.Version, FrameHeader.Whole))
                foreach (int tail in _state.AppliedTails) SendSegment(m.Connection, m.WorkerId, tail, _state.Version + 1);
        });
        Receive<DataPlaneClosed>(m => Drop(m.Connection, m.WorkerId));
        Receive<DeliverWork>(OnDeliverWork);
        Receive<DropWorker>(m =>
        {
            if (_connections.Remove(m.WorkerId, out FrameConnection? connection)) connection.Dispose();
        });
        Receive<WeightsRequest>(OnWeightsRequest);
        Receive<SnapshotRequest>(_ =>
        {
            var (weights, m, v) = _state.CommittedCopy();
            Sender.Tell(new Snapshot(_state.Version, weights, m, v, _state.Adam.Iterations));
        });
        Receive<Terminated>(t => _subscribers.Remove(t.ActorRef));
    }

    /// <summary>Props for the server.</summary>
    public static Props Props(ParameterServerState state, IActorRef coordinator, StealBoard? steals = null) =>
        Akka.Actor.Props.Create(() => new ParameterServerActor(state, coordinator, steals));

    private void Handle(ChunkOutcome outcome, ContributionHeader h, IActorRef? replyTo)
    {
        switch (outcome)
        {
            case ChunkOutcome.Rejected r:
                _log.Warning("Rejected a contribution of worker {0} for step {1} version {2} ({3}): {4}",
                    h.WorkerId, h.Step, h.Version, new TreeNode(h.NodeFirst, h.NodeCount), r.Reason);
                replyTo?.Tell(new ContributionRejected(h.RunId, h.Step, h.Version, h.NodeFirst, h.NodeCount, r.Reason));
                if (r.NotFinite) _coordinator.Tell(new NotFiniteRejected(h.Step, new TreeNode(h.NodeFirst, h.NodeCount), h.WorkerId, r.Reason));
                break;
            case ChunkOutcome.Duplicate d:
                _log.Debug("Dropped a duplicate of {0} from worker {1} for step {2}", d.Node, d.WorkerId, h.Step);
                break;
            case ChunkOutcome.Accepted a:
                _coordinator.Tell(new NodeAccepted(h.Step, a.Node, a.WorkerId, a.ComputeMilliseconds));
                break;
            case ChunkOutcome.TailApplied t:
                foreach (var (workerId, connection) in _connections.ToList()) SendSegment(connection, workerId, t.Segment, t.Version);
                break;
            case ChunkOutcome.StepApplied s:
                Broadcast(s.SendWhole); // the workers first: they wait for nothing else
                _coordinator.Tell(new NodeAccepted(s.Step, s.Node, s.WorkerId, s.ComputeMilliseconds));
                _coordinator.Tell(new StepApplied(s.Step, s.Version, s.LossSum, s.Correct, s.Samples, _steals?.Granted ?? 0));
                _steals?.ForgetBefore(s.Step + 1);
                break;
        }
    }

    // A step's work goes where its weights go: with a data plane, no Akka message crosses the network in a step.
    private void OnDeliverWork(DeliverWork m)
    {
        if (_connections.TryGetValue(m.WorkerId, out FrameConnection? connection))
        {
            try
            {
                // On the board before the worker can see its share: once it is written, another worker's request may
                // reach a reader thread before this actor's next line would run. Should the write fail, the work goes
                // over Akka and a claim on its last leaf finds no connection: that leaf is computed twice at worst.
                _steals?.Assigned(m.Work.Step, m.Work.Version, m.WorkerId, m.Work.NodeFirst.Zip(m.Work.NodeCount, (f, c) => new TreeNode(f, c)).ToList());
                connection.WriteMessage(m.Work);
                return;
            }
            catch (Exception e) when (IsConnectionFailure(e))
            {
                _log.Warning("Data plane: could not send the work of step {0} to worker {1}: {2}", m.Work.Step, m.WorkerId, e.Message);
                Drop(connection, m.WorkerId); // the work goes over Akka, in case the worker is still there
            }
        }
        m.Worker.Tell(m.Work);
    }

    // Sends exchange segment i of the live weights as part of version (the last one completes it at the worker).
    private void SendSegment(FrameConnection connection, string workerId, int segment, long version)
    {
        ExchangeSegment range = _state.Segments[segment];
        SendWeights(connection, workerId, _state.Weights.AsSpan(range.From, range.Length), version, FrameHeader.PartOf(segment, _state.Segments.Count));
    }

    private bool SendWeights(FrameConnection connection, string workerId, ReadOnlySpan<float> weights, long version, byte part)
    {
        try
        {
            connection.Write(new FrameHeader(FrameKind.Weights, version, version, 0, 0, 0, 0, 0, 0, 0, 0, part), weights);
            return true;
        }
        catch (Exception e) when (IsConnectionFailure(e))
        {
            _log.Warning("Data plane: could not send weights version {0} to worker {1}: {2}", version, workerId, e.Message);
            Drop(connection, workerId);
            return false;
        }
    }

    private static bool IsConnectionFailure(Exception e) => e is IOException or ObjectDisposedException or System.Net.Sockets.SocketException;

    // A connection that failed a write or closed: the coordinator hears of it once, whichever end noticed first (a
    // failed write and its reader's report of the close both come here), and does not wait for the step deadline.
    // A connection the worker has already replaced is no loss.
    private void Drop(FrameConnection connection, string workerId)
    {
        if (_connections.TryGetValue(workerId, out FrameConnection? current) && current == connection)
        {
            _connections.Remove(workerId);
            _coordinator.Tell(new WorkerConnectionLost(workerId));
        }
        connection.Dispose();
    }

    private void OnWeightsRequest(WeightsRequest request)
    {
        if (request.RunId != _state.RunId)
        {
            _log.Warning("Ignored a weights request of worker {0} for run {1}: this is run {2}", request.WorkerId, request.RunId, _state.RunId);
            return;
        }
        if (_subscribers.Add(Sender)) Context.Watch(Sender);
        foreach (WeightsChunk chunk in Chunks()) Sender.Tell(chunk);
    }

    // The new weights to every worker: on the data plane the head completes the tails sent earlier (or, with one
    // segment, is the whole), unless the step needs them whole; over Akka, in chunks.
    private void Broadcast(bool whole)
    {
        foreach (var (workerId, connection) in _connections.ToList())
            if (whole) SendWeights(connection, workerId, _state.Weights, _state.Version, FrameHeader.Whole);
            else SendSegment(connection, workerId, _state.Segments.Count - 1, _state.Version);
        if (_subscribers.Count == 0) return;
        foreach (WeightsChunk chunk in Chunks())
            foreach (IActorRef subscriber in _subscribers)
                subscriber.Tell(chunk);
    }

    private IEnumerable<WeightsChunk> Chunks()
    {
        float[] weights = _state.CommittedWeights();
        int total = weights.Length, count = TensorChunks.ChunkCount(total);
        for (int i = 0; i < count; i++)
        {
            byte[] data = TensorChunks.Slice(weights, i, out int offset);
            yield return new WeightsChunk(_state.RunId, _state.Version, i, count, offset, total, data);
        }
    }
}
