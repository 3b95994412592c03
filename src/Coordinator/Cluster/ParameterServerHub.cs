// The parameter server's state with the workers it sends weights to, behind one lock: the ParameterServerActor calls
// it for what arrives over Akka, and the data plane's reader threads call it for gradient frames. A contribution is
// checked, reduced and applied on the thread that brought it, and each segment's new weights are written to the
// data-plane workers right there: the step's last contribution goes from its socket to the new weights' sockets
// without waiting for a dispatcher thread to wake (measured on a 2-vCPU VM: a hand-off to the actor cost 50 us at
// the median and 300 us on average per step).
//
// What it does with an outcome: a rejected contribution is logged and answered with the reason (over Akka); an
// accepted one is reported to the coordinator; a tail segment applied goes to the data-plane workers at once; a step
// applied goes to every worker (the head after the tails sent earlier, or whole), then NodeAccepted and StepApplied
// to the coordinator. Reports to the coordinator are sent inside the lock, so they reach it in the order the state
// produced them, whichever thread produced them. A worker that connects mid-step gets the committed weights, then
// the tails already sent to the others. A write that fails closes that worker's connection.
//
// Not here: the checks and the arithmetic (ParameterServerState), message routing (ParameterServerActor), reading
// frames (DataPlaneServer).
using Akka.Actor;
using Akka.Event;
using Cnn.Engine.Models;
using Cnn.Engine.Training;
using Cnn.Messages;

namespace Cnn.Coordinator.Cluster;

/// <summary>The parameter server's state and its workers behind one lock (see file header).</summary>
public sealed class ParameterServerHub
{
    private readonly object _lock = new();
    private readonly ParameterServerState _state;
    private readonly IActorRef _coordinator;
    private readonly ILoggingAdapter _log;
    private readonly HashSet<IActorRef> _subscribers = [];
    private readonly Dictionary<FrameConnection, string> _connections = [];

    /// <summary>A hub over <paramref name="state"/> reporting to <paramref name="coordinator"/>.</summary>
    public ParameterServerHub(ParameterServerState state, IActorRef coordinator, ILoggingAdapter log)
    {
        _state = state;
        _coordinator = coordinator;
        _log = log;
    }

    /// <summary>Opens step <paramref name="step"/> (ParameterServerState.BeginStep).</summary>
    public void BeginStep(long step, int batchSize, int microBatch)
    {
        lock (_lock) _state.BeginStep(step, batchSize, microBatch);
    }

    /// <summary>A chunk of a contribution sent over Akka by <paramref name="sender"/>, who hears the reason if it is rejected.</summary>
    public void Accept(GradientChunk chunk, IActorRef sender)
    {
        lock (_lock) Handle(_state.Accept(chunk), ContributionHeader.Of(chunk), sender);
    }

    /// <summary>A contribution, or one exchange segment of it, read from a worker's data-plane connection (on any thread).</summary>
    public void Accept(ParameterServerActor.DataPlaneGradient frame)
    {
        lock (_lock) Handle(_state.Accept(frame.Header, frame.Gradients, frame.Segment), frame.Header, null);
    }

    /// <summary>A worker connected to the data plane: it gets the committed weights and the tails applied since, and every version from now on.</summary>
    public void Joined(FrameConnection connection, string workerId)
    {
        lock (_lock)
        {
            _connections[connection] = workerId;
            if (SendWeights(connection, workerId, _state.CommittedWeights(), _state.Version, FrameHeader.Whole))
                foreach (int tail in _state.AppliedTails) SendSegment(connection, workerId, tail, _state.Version + 1);
        }
    }

    /// <summary>A worker's data-plane connection closed: the coordinator hears of it once.</summary>
    public void Closed(FrameConnection connection, string workerId)
    {
        lock (_lock)
            if (_connections.Remove(connection)) _coordinator.Tell(new ParameterServerActor.WorkerConnectionLost(workerId));
    }

    /// <summary>Closes the data-plane connections of a worker the coordinator lost (no write waits for it to time out).</summary>
    public void Drop(string workerId)
    {
        lock (_lock)
            foreach (var (connection, _) in _connections.Where(c => c.Value == workerId).ToList())
            {
                _connections.Remove(connection);
                connection.Dispose();
            }
    }

    /// <summary>
    /// An Akka worker asks for weights: it gets the committed ones now and every version from now on. False when the
    /// request is for another run (logged) or the subscriber was already known.
    /// </summary>
    public bool Subscribe(WeightsRequest request, IActorRef subscriber)
    {
        lock (_lock)
        {
            if (request.RunId != _state.RunId)
            {
                _log.Warning("Ignored a weights request of worker {0} for run {1}: this is run {2}", request.WorkerId, request.RunId, _state.RunId);
                return false;
            }
            bool added = _subscribers.Add(subscriber);
            foreach (WeightsChunk chunk in Chunks()) subscriber.Tell(chunk);
            return added;
        }
    }

    /// <summary>Forgets an Akka subscriber that terminated.</summary>
    public void Unsubscribe(IActorRef subscriber)
    {
        lock (_lock) _subscribers.Remove(subscriber);
    }

    /// <summary>Copies of the committed weights and optimizer state.</summary>
    public ParameterServerActor.Snapshot Snapshot()
    {
        lock (_lock)
        {
            var (weights, m, v) = _state.CommittedCopy();
            return new ParameterServerActor.Snapshot(_state.Version, weights, m, v, _state.Adam.Iterations);
        }
    }

    private void Handle(ChunkOutcome outcome, ContributionHeader h, IActorRef? replyTo)
    {
        switch (outcome)
        {
            case ChunkOutcome.Rejected r:
                _log.Warning("Rejected a contribution of worker {0} for step {1} version {2} ({3}): {4}",
                    h.WorkerId, h.Step, h.Version, new TreeNode(h.NodeFirst, h.NodeCount), r.Reason);
                replyTo?.Tell(new ContributionRejected(h.RunId, h.Step, h.Version, h.NodeFirst, h.NodeCount, r.Reason));
                if (r.NotFinite)
                    _coordinator.Tell(new ParameterServerActor.NotFiniteRejected(h.Step, new TreeNode(h.NodeFirst, h.NodeCount), h.WorkerId, r.Reason));
                break;
            case ChunkOutcome.Duplicate d:
                _log.Debug("Dropped a duplicate of {0} from worker {1} for step {2}", d.Node, d.WorkerId, h.Step);
                break;
            case ChunkOutcome.Accepted a:
                _coordinator.Tell(new ParameterServerActor.NodeAccepted(h.Step, a.Node, a.WorkerId, a.ComputeMilliseconds));
                break;
            case ChunkOutcome.TailApplied t:
                foreach (var (connection, workerId) in _connections.ToList()) SendSegment(connection, workerId, t.Segment, t.Version);
                break;
            case ChunkOutcome.StepApplied s:
                Broadcast(s.SendWhole); // the workers first: they wait for nothing else
                _coordinator.Tell(new ParameterServerActor.NodeAccepted(s.Step, s.Node, s.WorkerId, s.ComputeMilliseconds));
                _coordinator.Tell(new ParameterServerActor.StepApplied(s.Step, s.Version, s.LossSum, s.Correct, s.Samples));
                break;
        }
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
        catch (Exception e) when (e is IOException or ObjectDisposedException or System.Net.Sockets.SocketException)
        {
            _log.Warning("Data plane: could not send weights version {0} to worker {1}: {2}", version, workerId, e.Message);
            _connections.Remove(connection);
            connection.Dispose();
            return false;
        }
    }

    // The new weights to every worker: on the data plane the head completes the tails sent earlier (or, with one
    // segment, is the whole), unless the step needs them whole; over Akka, in chunks.
    private void Broadcast(bool whole)
    {
        foreach (var (connection, workerId) in _connections.ToList())
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
