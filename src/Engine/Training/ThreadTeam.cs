// A fixed team of threads that runs numbered work items, each item on exactly one thread. The calling thread
// is member 0, so --threads 1 runs everything inline. Thread-owned state (a ModelRunner per member) is indexed
// by member number. Items are claimed in order with an atomic counter; which thread runs which item does not
// affect any result (each item writes its own buffer). An item that fails ends the run: Run rethrows that item's
// exception itself, with the stack trace of the thread it came from, so that callers catch it as they would from a
// single thread (a worker tells a closed connection's IOException from a bug by its type). A failure outranks a
// cancellation (OperationCanceledException, such as a leaf abandoned part-way) of the same run.
using System.Runtime.ExceptionServices;

namespace Cnn.Engine.Training;

/// <summary>A fixed set of threads running indexed items (see file header).</summary>
public sealed class ThreadTeam : IDisposable
{
    private readonly Thread[] _threads;
    private readonly SemaphoreSlim[] _start;
    private readonly CountdownEvent _done;
    private Action<int, int>? _work;
    private int _itemCount, _next;
    private volatile bool _stopping;
    private Exception? _failure;
    private readonly object _failureGate = new();
    private readonly IReadOnlyList<int>? _cpus;

    /// <summary>
    /// A team of <paramref name="size"/> members (the caller plus size - 1 threads). With <paramref name="cpus"/> (one per
    /// member), member i's thread pins itself to cpus[i] (ThreadAffinity); the caller, member 0, pins itself if it wants.
    /// </summary>
    public ThreadTeam(int size, IReadOnlyList<int>? cpus = null)
    {
        if (size < 1) throw new ArgumentOutOfRangeException(nameof(size), size, "a team needs at least one thread");
        if (cpus is not null && cpus.Count != size) throw new ArgumentException($"{cpus.Count} CPUs for a team of {size}", nameof(cpus));
        Size = size;
        _cpus = cpus;
        _threads = new Thread[size - 1];
        _start = new SemaphoreSlim[size - 1];
        _done = new CountdownEvent(1);
        for (int i = 0; i < _threads.Length; i++)
        {
            int member = i + 1;
            _start[i] = new SemaphoreSlim(0);
            _threads[i] = new Thread(() => Loop(member)) { IsBackground = true, Name = $"cnn-team-{member}" };
            _threads[i].Start();
        }
    }

    /// <summary>Number of members.</summary>
    public int Size { get; }

    /// <summary>Runs work(item, member) for items 0..count-1 and returns when all are done.</summary>
    public void Run(int count, Action<int, int> work)
    {
        _work = work;
        _itemCount = count;
        _next = 0;
        _failure = null;
        int helpers = Math.Min(_threads.Length, Math.Max(0, count - 1));
        _done.Reset(helpers + 1);
        for (int i = 0; i < helpers; i++) _start[i].Release();
        Drain(0);
        _done.Signal();
        _done.Wait();
        _work = null;
        if (_failure is not null) ExceptionDispatchInfo.Throw(_failure);
    }

    /// <summary>
    /// Runs <paramref name="body"/>(from, to) over disjoint ranges covering [0, <paramref name="length"/>), one per
    /// member, for element-wise work (reductions, the optimizer) whose results do not depend on the split.
    /// </summary>
    public void ForEachRange(int length, Action<int, int> body)
    {
        int parts = Math.Min(Size, Math.Max(1, length / 4096));
        int step = (length / parts + 15) & ~15; // whole vectors per range
        Run(parts, (part, _) =>
        {
            int from = Math.Min(length, part * step), to = part == parts - 1 ? length : Math.Min(length, from + step);
            if (from < to) body(from, to);
        });
    }

    private void Loop(int member)
    {
        if (_cpus is not null) ThreadAffinity.PinCurrentThread(_cpus[member]);
        while (true)
        {
            _start[member - 1].Wait();
            if (_stopping) return;
            Drain(member);
            _done.Signal();
        }
    }

    private void Drain(int member)
    {
        try
        {
            int item;
            while ((item = Interlocked.Increment(ref _next) - 1) < _itemCount) _work!(item, member);
        }
        catch (Exception e)
        {
            // A failure outranks a cancellation, whichever thread reports first: it is the one to see.
            lock (_failureGate)
                if (_failure is null or OperationCanceledException) _failure = e;
            Interlocked.Exchange(ref _next, int.MaxValue / 2);
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _stopping = true;
        foreach (SemaphoreSlim s in _start) s.Release();
        foreach (Thread t in _threads) t.Join();
        foreach (SemaphoreSlim s in _start) s.Dispose();
        _done.Dispose();
    }
}
