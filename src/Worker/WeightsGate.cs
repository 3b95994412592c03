// Which weights a worker computes with, and when a job may run: the worker actor and the data-plane reader thread
// share it, behind one lock. The thread that makes a job runnable runs it: the reader thread, when the weights a
// parked job waits for complete, so a step starts on the thread that read its weights with no hand-off (measured on
// a 2-vCPU VM: the hop through the actor cost 80 us at the median and 300 us on average per step); the actor's
// Task.Run, when a job arrives for weights already here.
//
// Rules (those the worker actor had kept with its stash):
//   - One job runs at a time (they share the engine's threads and buffers); each gets the weights of its version.
//   - A job for a version not here yet is parked until it arrives; a job for an older version is dropped (its step
//     is over), and so is a parked one once a newer version is applied.
//   - A version arriving while a job runs waits as pending (double buffering) and is applied when the job finishes;
//     a version older than the newest one here is recycled, as is the buffer it replaces.
using System.Collections.Concurrent;

namespace Cnn.Worker;

/// <summary>Work for the weights of one version: <see cref="Run"/> gets them.</summary>
public sealed record WeightsJob(long Version, Action<float[]> Run);

/// <summary>The weights a worker computes with and the jobs waiting for them (see file header).</summary>
public sealed class WeightsGate
{
    private readonly object _lock = new();
    private readonly ConcurrentBag<float[]> _spare = [];
    private readonly List<WeightsJob> _parked = [];
    private readonly int _count;
    private float[]? _weights;
    private (long Version, float[] Weights)? _pending;
    private bool _running;

    /// <summary>A gate for weights of <paramref name="count"/> floats; no version yet.</summary>
    public WeightsGate(int count) => _count = count;

    /// <summary>The version in use (-1 before the first).</summary>
    public long Version { get; private set; } = -1;

    /// <summary>True when <paramref name="version"/> is the newest version here (a result computed with it is not stale).</summary>
    public bool IsNewest(long version)
    {
        lock (_lock) return version == Version && _pending is null;
    }

    /// <summary>A buffer for a version being received: a recycled one, or new.</summary>
    public float[] Rent() => _spare.TryTake(out float[]? b) ? b : new float[_count];

    /// <summary>Gives back a buffer that holds no version.</summary>
    public void Return(float[] buffer)
    {
        if (buffer.Length == _count) _spare.Add(buffer);
    }

    /// <summary>
    /// A complete version arrived in <paramref name="weights"/> (a buffer from <see cref="Rent"/>, now the gate's).
    /// Returns the job the caller must run now with its weights (then call <see cref="Finish"/>), or null.
    /// </summary>
    public (WeightsJob Job, float[] Weights)? Arrive(long version, float[] weights)
    {
        lock (_lock)
        {
            if (version <= Version || (_pending is { } p && version <= p.Version))
            {
                Return(weights);
                return null;
            }
            if (_pending is { } older) Return(older.Weights);
            _pending = (version, weights);
            return _running ? null : ApplyAndTake();
        }
    }

    /// <summary>
    /// A job: returns it, with its weights, when the caller must run it now (then call <see cref="Finish"/>); null when
    /// it is parked (its version is not here yet, or another job runs) or dropped (<paramref name="stale"/>: its version is over).
    /// </summary>
    public (WeightsJob Job, float[] Weights)? Offer(WeightsJob job, out bool stale)
    {
        lock (_lock)
        {
            stale = job.Version < Version;
            if (stale) return null;
            _parked.Add(job);
            return _running ? null : ApplyAndTake();
        }
    }

    /// <summary>The job the caller ran is over: returns the next one to run now, or null.</summary>
    public (WeightsJob Job, float[] Weights)? Finish()
    {
        lock (_lock)
        {
            _running = false;
            return ApplyAndTake();
        }
    }

    // Under the lock, with no job running: applies the pending version, drops parked jobs it made stale, and takes
    // the first parked job of the version in use.
    private (WeightsJob, float[])? ApplyAndTake()
    {
        if (_pending is { } next)
        {
            if (_weights is not null) Return(_weights);
            _weights = next.Weights;
            Version = next.Version;
            _pending = null;
            _parked.RemoveAll(j => j.Version < Version);
        }
        int at = _parked.FindIndex(j => j.Version == Version);
        if (at < 0 || _weights is null) return null;
        WeightsJob job = _parked[at];
        _parked.RemoveAt(at);
        _running = true;
        return (job, _weights);
    }
}
