// A worker's data-plane thread: it reads what the parameter server sends on the worker's connection (the weights,
// whole or in the model's exchange segments; each step's work; the work-stealing conversation) and computes each
// step itself, on this thread, as soon as the step's work and its weights are both in. It sends the contributions on
// the same connection: the tails as soon as the engine hands them out, during the last backward pass; the head, with
// the loss, at the end. The actor hears of every complete weights version (it evaluates with them, and answers
// over Akka) and of a lost connection; it takes no part in a step.
//
// Why the step runs here and not on the actor's thread pool: a step that went through the actor took three thread
// hand-offs (this thread, the actor's mailbox on a pool thread, the computation's task), and on two cores each woken
// thread is a chance to wait a scheduler slice behind a computation. Traced on a 2-vCPU host (docs/performance.md,
// thirty-fourth session): in about one step in five the second worker's computation started 1 to 4 ms after the
// first, its mailbox runnable but queued on the core the first computation had just taken, with the other core idle;
// and the pool's idle threads, spinning between work items, made most of the process's 125 context switches a step.
//
// Once its weights are in, the thread yields its core once before it computes: it was usually woken on the core of
// the parameter server's thread in the middle of writing the new weights to every worker, and a computation that
// takes that core at once holds the other workers' weights back for a scheduler slice.
//
// While it computes, this thread does not read. It looks at the connection between layers only where work stealing
// needs an answer (a claim on the share's last leaf just before it starts, the end of the step during a stolen leaf):
// then it handles whatever frames have arrived, without blocking. Over TLS, bytes the stream has decrypted already
// are out of its sight, so it may hear of a claim or of the step's end later; a leaf is then computed twice, which
// the parameter server takes as it takes any late copy, and the weights do not change.
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Reflection;
using System.Runtime.CompilerServices;
using Akka.Actor;
using Akka.Event;
using Cnn.Engine.Data;
using Cnn.Engine.Models;
using Cnn.Engine.Training;
using Cnn.Messages;

namespace Cnn.Worker;

/// <summary>The reading and computing thread of a worker's data-plane connection (see file header).</summary>
internal sealed class WorkerDataPlane
{
    private readonly FrameConnection _connection;
    private readonly StealState _steal = new();
    private readonly bool _workStealing;
    private readonly IActorRef _actor;
    private readonly ConcurrentBag<float[]> _spare;
    private readonly LeafComputer _computer;
    private readonly object _computeGate;
    private readonly IDataSource _train;
    private readonly ulong _seed;
    private readonly string _runId;
    private readonly string _workerId;
    private readonly ILoggingAdapter _log;
    private readonly IReadOnlyList<ExchangeSegment> _segments;
    private readonly bool[] _seen;
    private readonly List<ComputeGradients> _work = []; // steps' work not computed yet, in the order it came
    private float[]? _partial; // the version being assembled from segments
    private long _partialVersion = -1;
    private float[]? _weights; // the newest complete version (the actor has it too, and gives it back to _spare)
    private long _version = -1;

    /// <summary>
    /// The loop of <paramref name="connection"/>: it computes with <paramref name="computer"/> (under
    /// <paramref name="computeGate"/>, which the actor's evaluations take too) and reports to <paramref name="actor"/>.
    /// </summary>
    public WorkerDataPlane(FrameConnection connection, bool workStealing, IActorRef actor, ConcurrentBag<float[]> spare,
        LeafComputer computer, object computeGate, IDataSource train, ulong seed, string runId, string workerId, ILoggingAdapter log)
    {
        _connection = connection;
        _workStealing = workStealing;
        _actor = actor;
        _spare = spare;
        _computer = computer;
        _computeGate = computeGate;
        _train = train;
        _seed = seed;
        _runId = runId;
        _workerId = workerId;
        _log = log;
        _segments = computer.Model.ExchangeSegments;
        _seen = new bool[_segments.Count];
    }

    /// <summary>Compiles <see cref="Run"/> now, so that a node that calls this while it starts does not compile it when its first weights arrive.</summary>
    public static void Prepare() =>
        RuntimeHelpers.PrepareMethod(typeof(WorkerDataPlane).GetMethod(nameof(Run), BindingFlags.Public | BindingFlags.Instance)!.MethodHandle);

    /// <summary>
    /// The thread's loop, for the whole life of the connection. Compiled optimized at its first call: a method entered once
    /// whose loop runs for the whole run is otherwise compiled again part-way by the tiered JIT (on-stack replacement), on
    /// this thread, while the frames it should read wait. Traced in a local cluster, that compilation came at step 1,185 to
    /// 1,211 and held the step up 335 to 371 ms; on a loaded host it passed the step's 1 s deadline (docs/performance.md).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Run()
    {
        // This thread is the team's first member when it computes (see ThreadAffinity).
        if (_computer.Cpus is { } cpus && !ThreadAffinity.PinCurrentThread(cpus[0]))
            _log.Warning("Worker {0}: could not pin its computing thread to CPU {1}; it runs where the scheduler puts it", _workerId, cpus[0]);
        try
        {
            while (true)
            {
                Handle(_connection.ReadHeader());
                while (NextWork() is { } work) Compute(work);
            }
        }
        catch (Exception e) when (e is IOException or InvalidDataException or ObjectDisposedException or System.Net.Sockets.SocketException)
        {
            _steal.Close();
            _actor.Tell(new WorkerActor.DataPlaneLost(_connection, e.Message));
        }
        catch (Exception e)
        {
            _actor.Tell(new WorkerActor.ComputeFailed(e)); // a bug: the actor fails, as it would on its own thread
        }
    }

    // One frame from the parameter server.
    private void Handle(FrameHeader header)
    {
        if (header.Kind == FrameKind.Message)
        {
            switch (_connection.ReadMessage(header))
            {
                case ComputeGradients work:
                    Take(work);
                    break;
                case StealGrant grant:
                    _steal.Granted(grant.Step, grant.Leaf);
                    break;
                case LeafClaimed claim:
                    _steal.Claimed(claim.Step, claim.Leaf);
                    break;
                case var other:
                    throw new InvalidDataException($"a {other.GetType().Name} on the data plane");
            }
            return;
        }
        if (header.Kind != FrameKind.Weights) throw new InvalidDataException($"a {header.Kind} frame where weights or work were expected");
        if (header.Part == FrameHeader.Whole)
        {
            float[] whole = Rent();
            _connection.ReadTensor(header, whole);
            Complete(header.Version, whole);
            return;
        }
        // The weights of a version come whole, or as the model's exchange segments: tails first (in any order), the head last.
        int segment = header.SegmentIn(_segments.Count);
        if (_partial is null || _partialVersion != header.Version)
        {
            _partial ??= Rent();
            _partialVersion = header.Version;
            Array.Clear(_seen);
        }
        _connection.ReadTensor(header, _partial.AsSpan(_segments[segment].From, _segments[segment].Length));
        _steal.PartArrived(header.Version);
        _seen[segment] = true;
        if (segment < _segments.Count - 1) return;
        if (Array.IndexOf(_seen, false) is int missing and >= 0)
            throw new InvalidDataException($"weights version {header.Version} ended without segment {missing + 1}");
        Complete(header.Version, _partial);
        _partial = null;
    }

    private float[] Rent() => WorkerActor.Rent(_spare, _computer.Model.Parameters.Count);

    // A whole version is in. From here this thread computes with it, and the actor holds it too: the actor gives the
    // buffer back to _spare once a newer version reaches it, which is after this thread has stopped using this one
    // (a computation of the older step ends, or is abandoned, as soon as this thread holds a newer version).
    private void Complete(long version, float[] weights)
    {
        _steal.WeightsArrived(version);
        _weights = weights;
        _version = version;
        _actor.Tell(new WorkerActor.WeightsArrived(_connection, version, weights));
    }

    // A step's work: kept until its weights are in, dropped when its version is older than the newest weights (the step
    // is over) or it cannot be computed here. Nothing a peer sends may crash the worker.
    private void Take(ComputeGradients work)
    {
        if (work.RunId != _runId || work.Version < _version) return;
        if (WorkerActor.Invalid(work, _computer, _train.Count) is { } problem)
        {
            _log.Warning("Worker {0}: dropped ComputeGradients for step {1} version {2}: {3}", _workerId, work.Step, work.Version, problem);
            return;
        }
        _work.Add(work);
    }

    // The first work whose weights are in, dropping work for older versions (its step is over); null when all wait for
    // newer weights. Work may wait behind work it does not wait for: the coordinator deals the next step's work ahead,
    // and a subtree of the current step dealt again (a late or refused one) comes after it.
    // Called after every frame: a plain loop, no delegate allocated.
    private ComputeGradients? NextWork()
    {
        for (int i = 0; i < _work.Count; i++)
        {
            ComputeGradients work = _work[i];
            if (work.Version > _version) continue;
            _work.RemoveAt(i--);
            if (work.Version == _version) return work;
        }
        return null;
    }

    // Handles the frames that have arrived, without waiting for more (see file header).
    private void Drain()
    {
        while (_connection.DataAvailable) Handle(_connection.ReadHeader());
    }

    // A step's work that came on this connection, computed with the newest weights on this thread.
    private void Compute(ComputeGradients request)
    {
        float[] weights = _weights!;
        Thread.Yield(); // see file header
        lock (_computeGate) ComputeShare(request, weights, _workStealing);
    }

    /// <summary>
    /// Computes a step's work that came over Akka (the parameter server dealt it before this connection had joined, or
    /// could not write it here) with <paramref name="weights"/> of its version, on the caller's thread, and sends the
    /// contribution on this connection as any other, without work stealing (which needs this connection's reads).
    /// </summary>
    public void ComputeWorkFromAkka(ComputeGradients request, float[] weights)
    {
        lock (_computeGate) ComputeShare(request, weights, stealing: false);
    }

    // One step's share: computed, sent tails first and head last; then, as a thief, a leaf of a slower worker's share.
    private void ComputeShare(ComputeGradients request, float[] weights, bool stealing)
    {
        long started = Stopwatch.GetTimestamp();
        var nodes = request.NodeFirst.Zip(request.NodeCount, (f, c) => new TreeNode(f, c)).ToList();
        int leafCount = GradientTree.LeafCount(request.BatchIds.Length, request.MicroBatch);
        long sendingTicks = 0; // writing tails is communication, not compute
        double ComputeMilliseconds() =>
            Stopwatch.GetElapsedTime(started).TotalMilliseconds - Stopwatch.GetElapsedTime(0, Interlocked.Read(ref sendingTicks)).TotalMilliseconds;
        Action<int, IReadOnlyList<GradientSum>>? sendTail = _segments.Count == 1 ? null : (segment, tails) =>
        {
            // A tail is final before the last leaf's backward pass is over: it travels while that pass runs.
            long writeStarted = Stopwatch.GetTimestamp();
            ExchangeSegment range = _segments[segment];
            foreach (GradientSum tail in tails)
                _connection.Write(new FrameHeader(FrameKind.Gradient, request.Step, request.Version, tail.Node.First, tail.Node.Count, leafCount,
                    GradientTree.NodeSamples(tail.Node, request.BatchIds.Length, request.MicroBatch).Count, 0, 0, 0, 0, FrameHeader.PartOf(segment, _segments.Count)),
                    tail.Gradients.AsSpan(range.From, range.Length));
            Interlocked.Add(ref sendingTicks, Stopwatch.GetTimestamp() - writeStarted);
        };
        // Straight from the leaf buffers to the socket: no copy, nothing allocated.
        void SendHeads(IReadOnlyList<GradientSum> sums, double ms)
        {
            foreach (GradientSum sum in sums)
                _connection.Write(new FrameHeader(FrameKind.Gradient, request.Step, request.Version, sum.Node.First, sum.Node.Count, leafCount,
                    sum.Samples, sum.Correct, sum.LossSum, ms / sums.Count, 0, FrameHeader.PartOf(_segments.Count - 1, _segments.Count)),
                    sum.Gradients.AsSpan(0, _segments[^1].To)); // the head, or the whole
        }
        // As an owner: the last leaf of the share is announced before it starts, unless a thief has it already.
        Func<int, bool>? mayStartLast = !stealing ? null : leaf =>
        {
            Drain();
            if (_steal.TakeClaim(request.Step, leaf)) return false;
            _connection.WriteMessage(new LeafStarted(_runId, request.Step, _workerId, leaf));
            return true;
        };
        IReadOnlyList<GradientSum> sums = _computer.Compute(weights, _train, request.BatchIds, nodes, request.Step, _seed, sendTail, mayStartLast);
        _steal.ShareDone(request.Step);
        double ms = ComputeMilliseconds();
        // When part of the next weights is here already, every leaf has been started: nothing is left to ask for.
        if (!stealing || !_steal.MayStealFrom(request.Version))
        {
            SendHeads(sums, ms);
            return;
        }
        // As a thief: the share is computed; the request goes ahead of its heads so that the answer comes sooner.
        _connection.WriteMessage(new StealRequest(_runId, request.Step, request.Version, _workerId));
        SendHeads(sums, ms);
        // The parameter server answers every request (a leaf, or none); the next weights end the wait too.
        int? granted;
        while (!_steal.TryGetGrant(request.Step, out granted) && !_steal.StepOver(request.Version)) Handle(_connection.ReadHeader());
        if (granted is not int leaf || _steal.StepOver(request.Version)) return;
        started = Stopwatch.GetTimestamp(); // the stolen leaf's compute time is its own
        Interlocked.Exchange(ref sendingTicks, 0);
        // When the owner had begun the leaf after all, its copy may complete the step first: a stolen leaf whose step
        // is over is not sent (the parameter server would only drop it as a late copy), and its computation stops at
        // the next layer, so that this worker is free for the next step's work. Traced, such a leaf otherwise held its
        // thief a mean 2.2 ms into the next step (docs/performance.md).
        bool StepOver()
        {
            Drain();
            return _steal.StepOver(request.Version);
        }
        Action<int, IReadOnlyList<GradientSum>>? sendStolenTail = sendTail is null ? null : (segment, tails) =>
        {
            if (!StepOver()) sendTail(segment, tails);
        };
        IReadOnlyList<GradientSum> stolen;
        try
        {
            stolen = _computer.Compute(weights, _train, request.BatchIds, [new TreeNode(leaf, 1)], request.Step, _seed, sendStolenTail,
                sameWeights: true, abandon: StepOver);
        }
        catch (OperationCanceledException)
        {
            return;
        }
        if (!StepOver()) SendHeads(stolen, ComputeMilliseconds());
    }
}
