// A worker's side of work stealing (Messages/StealProtocol.cs), kept by its data-plane thread (WorkerDataPlane.cs),
// which hears the parameter server's grants and claims and computes the steps, as an owner and as a thief; with more
// than one thread per worker, the thread that starts a share's last leaf asks about claims.
//
// A claim counts only while the worker's share of that step is still being computed: one that comes later (the
// owner had already started the leaf) is dropped, so work re-dealt for the same step is never skipped. A stolen
// leaf whose step is over (newer weights have arrived: the owner's copy came first) is not sent.
//
// A worker asks for a leaf only while one may be left. The parameter server updates a tail segment of the weights
// only once the tails of the whole batch are in (Coordinator/Cluster/ParameterServerState.cs), so once any part of
// the next weights has arrived, every leaf of the step has been started by someone, and the answer could only be
// "none". That is the usual case for the step's last worker, whose request would otherwise stand in front of its
// head on the parameter server's reader, and whose answer it would wait for before taking the next step's work.
namespace Cnn.Worker;

/// <summary>Grants and claims of the work-stealing conversation (see file header). Thread-safe.</summary>
public sealed class StealState
{
    private readonly object _gate = new();
    private long _claimStep = -1;
    private int _claimLeaf = -1;
    private long _doneStep = -1;
    private long _grantStep = -1;
    private int _grantLeaf = -1;
    private bool _closed;
    private long _newestWeights = -1;
    private long _newestPart = -1;

    /// <summary>The reader heard that another worker computes <paramref name="leaf"/> of <paramref name="step"/>.</summary>
    public void Claimed(long step, int leaf)
    {
        lock (_gate)
            if (step > _doneStep)
            {
                _claimStep = step;
                _claimLeaf = leaf;
            }
    }

    /// <summary>The owner is about to start <paramref name="leaf"/> of <paramref name="step"/>: true when it was claimed (skip it).</summary>
    public bool TakeClaim(long step, int leaf)
    {
        lock (_gate)
        {
            if (_claimStep != step || _claimLeaf != leaf) return false;
            _claimStep = -1;
            return true;
        }
    }

    /// <summary>The worker's share of <paramref name="step"/> is computed: later claims for it are stale.</summary>
    public void ShareDone(long step)
    {
        lock (_gate)
        {
            _doneStep = Math.Max(_doneStep, step);
            if (_claimStep <= _doneStep) _claimStep = -1;
        }
    }

    /// <summary>The reader heard the answer to this worker's steal request for <paramref name="step"/>: <paramref name="leaf"/>, or -1.</summary>
    public void Granted(long step, int leaf)
    {
        lock (_gate)
        {
            _grantStep = step;
            _grantLeaf = leaf;
        }
    }

    /// <summary>The reader holds the whole weights of <paramref name="version"/> (a part of them too, for <see cref="MayStealFrom"/>).</summary>
    public void WeightsArrived(long version)
    {
        RaiseTo(ref _newestPart, version);
        RaiseTo(ref _newestWeights, version);
    }

    private static void RaiseTo(ref long newest, long version)
    {
        long seen;
        while ((seen = Interlocked.Read(ref newest)) < version && Interlocked.CompareExchange(ref newest, version, seen) != seen)
        {
        }
    }

    /// <summary>True once weights newer than <paramref name="version"/> have arrived: the step computed with it is over.</summary>
    public bool StepOver(long version) => Interlocked.Read(ref _newestWeights) > version;

    /// <summary>The reader holds a segment (a tail, or the head) of the weights of <paramref name="version"/>.</summary>
    public void PartArrived(long version) => RaiseTo(ref _newestPart, version);

    /// <summary>
    /// False once any part of weights newer than <paramref name="version"/> has arrived: every leaf of the step computed
    /// with it has been started (see file header), so a steal request would be answered with none.
    /// </summary>
    public bool MayStealFrom(long version) => Interlocked.Read(ref _newestPart) <= version;

    /// <summary>The data plane is gone: nobody will answer.</summary>
    public void Close()
    {
        lock (_gate) _closed = true;
    }

    /// <summary>
    /// True once the answer to this worker's steal request for <paramref name="step"/> has come, with the leaf granted in
    /// <paramref name="leaf"/> (null: none); also true, with none, once the data plane is closed (nobody will answer).
    /// </summary>
    public bool TryGetGrant(long step, out int? leaf)
    {
        lock (_gate)
        {
            leaf = _grantStep == step && _grantLeaf >= 0 ? _grantLeaf : null;
            return _grantStep == step || _closed;
        }
    }
}
