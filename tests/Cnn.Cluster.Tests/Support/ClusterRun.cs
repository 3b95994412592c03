// A local cluster with a run on it, started the way `cnn train --local-workers N` starts it (TrainCommand):
// the coordinator node, the ClusterBackend (coordinator and parameter server actors, the data plane for
// --transport tcp), then N worker nodes, then a wait until all N joined. Events the coordinator reports are
// collected for the tests to read. Disposal stops the backend, then every node, as TrainCommand does.
using System.Collections.Concurrent;
using System.Diagnostics;
using Cnn.Coordinator.Cluster;
using Cnn.Engine.Kernels;

namespace Cnn.Cluster.Tests.Support;

/// <summary>An in-process cluster and a ClusterBackend training on it (see file header).</summary>
public sealed class ClusterRun : IAsyncDisposable
{
    /// <summary>How long cluster formation and joining may take on a loaded, shared machine.</summary>
    public static readonly TimeSpan JoinTimeout = TimeSpan.FromSeconds(60);

    private ClusterRun(LocalCluster cluster, ClusterBackend backend, ConcurrentQueue<string> events)
    {
        Cluster = cluster;
        Backend = backend;
        Events = events;
    }

    public LocalCluster Cluster { get; }
    public ClusterBackend Backend { get; }

    /// <summary>Everything the coordinator reported through its event callback, in order.</summary>
    public ConcurrentQueue<string> Events { get; }

    /// <summary>
    /// Starts a coordinator node and a run for <paramref name="run"/>'s model, seed and data, without workers yet.
    /// </summary>
    public static async Task<ClusterRun> StartEmptyAsync(SyntheticRun run, ClusterTransport transport, int workers, TimeSpan? deadlineFloor = null)
    {
        LocalCluster cluster = await LocalCluster.StartAsync();
        try
        {
            var (model, weights, adam) = SyntheticRun.Fresh();
            var events = new ConcurrentQueue<string>();
            var backend = new ClusterBackend(cluster.CoordinatorSystem, model, weights, adam, run.Data, SyntheticRun.MicroBatch, SyntheticRun.Seed,
                workers, deadlineFloor ?? TimeSpan.FromSeconds(1), events.Enqueue, transport);
            return new ClusterRun(cluster, backend, events);
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Starts a run and <paramref name="workers"/> worker nodes of <paramref name="threadsPerWorker"/> threads (pinned
    /// to CPUs of their own where they fit, unless <paramref name="pinThreads"/> is false), and waits until all joined.
    /// </summary>
    public static async Task<ClusterRun> StartAsync(SyntheticRun run, int workers, int threadsPerWorker, ClusterTransport transport, TimeSpan? deadlineFloor = null,
        bool pinThreads = true)
    {
        ClusterRun started = await StartEmptyAsync(run, transport, workers, deadlineFloor);
        try
        {
            await started.Cluster.AddWorkersAsync(workers, threadsPerWorker, run.WorkerData, Numerics.Fingerprint, pinThreads);
            started.Backend.WaitForWorkers(workers, JoinTimeout);
            return started;
        }
        catch
        {
            await started.DisposeAsync();
            throw;
        }
    }

    /// <summary>Waits until an event satisfies <paramref name="match"/>; returns it, or null after <paramref name="timeout"/>.</summary>
    public string? AwaitEvent(Func<string, bool> match, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            string? found = Events.FirstOrDefault(match);
            if (found is not null || clock.Elapsed > timeout) return found;
            Thread.Sleep(20);
        }
    }

    /// <summary>The events so far, one per line, for assertion messages.</summary>
    public string EventLog => string.Join("\n", Events);

    public async ValueTask DisposeAsync()
    {
        Backend.Dispose();
        await Cluster.DisposeAsync();
    }
}
