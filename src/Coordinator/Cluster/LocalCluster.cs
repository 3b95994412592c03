// `cnn train --local-workers N`: a cluster of N + 1 ActorSystems inside this process, on loopback ports, each
// started by its own generic host with the same WithCnnNode configuration as a real node. Every message that
// crosses a node boundary in production is serialized and sent over TCP here too; only the dataset is shared
// (one copy in memory instead of N + 1, the workers still prove they hold the same data by its hash).
//
// The coordinator binds a free port and joins itself; workers take it as their seed node.
using Akka.Actor;
using Akka.Hosting;
using Cnn.Engine.Data;
using Cnn.Engine.Models;
using Cnn.Engine.Training;
using Cnn.Messages;
using Cnn.Worker;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Cnn.Coordinator.Cluster;

/// <summary>An in-process cluster of one coordinator node and N worker nodes (see file header).</summary>
public sealed class LocalCluster : IAsyncDisposable
{
    private readonly List<IHost> _hosts = [];
    private readonly List<IActorRef> _workers = [];
    private readonly Akka.Event.LogLevel _logLevel;

    private LocalCluster(IHost coordinator, ActorSystem system, Akka.Event.LogLevel logLevel)
    {
        _logLevel = logLevel;
        _hosts.Add(coordinator);
        CoordinatorSystem = system;
        CoordinatorAddress = Akka.Cluster.Cluster.Get(system).SelfAddress;
    }

    /// <summary>The coordinator node's ActorSystem.</summary>
    public ActorSystem CoordinatorSystem { get; }

    /// <summary>The coordinator node's address (the workers' seed).</summary>
    public Address CoordinatorAddress { get; }

    /// <summary>The worker actors started so far.</summary>
    public IReadOnlyList<IActorRef> Workers => _workers;

    /// <summary>
    /// Starts the coordinator node on <paramref name="host"/> (any free port) and forms the cluster; every node
    /// logs at <paramref name="logLevel"/>.
    /// </summary>
    public static async Task<LocalCluster> StartAsync(string host = "127.0.0.1", Akka.Event.LogLevel logLevel = Akka.Event.LogLevel.WarningLevel)
    {
        IHost node = await StartNodeAsync(new CnnNodeOptions { Role = CnnNode.CoordinatorRole, BindHost = host, BindPort = 0, LogLevel = logLevel });
        var system = node.Services.GetRequiredService<ActorSystem>();
        var cluster = Akka.Cluster.Cluster.Get(system);
        await cluster.JoinAsync(cluster.SelfAddress);
        return new LocalCluster(node, system, logLevel);
    }

    /// <summary>
    /// <see cref="StartAsync(string, Akka.Event.LogLevel)"/> for a run of <paramref name="model"/>: meanwhile a
    /// thread-pool thread compiles what the first step will need, the wire types' MessagePack formatters, the data
    /// plane's readers and the model's training path (one throw-away leaf of <paramref name="train"/>). The nodes'
    /// start-up is mostly the JIT compiling Akka, one method at a time, so the warm-up runs on the core it leaves idle.
    /// </summary>
    public static async Task<LocalCluster> StartAsync(Model model, IDataSource train, int microBatch, Akka.Event.LogLevel logLevel)
    {
        Task warm = Task.Run(() =>
        {
            CnnMessageSerializer.WarmUp();
            DataPlaneServer.PrepareReader();
            WorkerActor.PrepareDataPlaneReader();
            LeafComputer.WarmUp(model, train, microBatch);
        });
        LocalCluster cluster = await StartAsync(logLevel: logLevel);
        try
        {
            await warm;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
        return cluster;
    }

    /// <summary>
    /// The CPUs each worker started so far computes on, in order (null: left to the scheduler): what
    /// <see cref="AddWorkersAsync"/> planned for it.
    /// </summary>
    public IReadOnlyList<IReadOnlyList<int>?> WorkerCpus => _workerCpus;

    private readonly List<IReadOnlyList<int>?> _workerCpus = [];

    /// <summary>
    /// Starts <paramref name="count"/> worker nodes with <paramref name="threadsPerWorker"/> threads each; with
    /// <paramref name="pinThreads"/> (`--pin-threads`), each worker's computing threads get CPUs of their own when every
    /// thread of every worker can have one.
    /// </summary>
    public async Task AddWorkersAsync(int count, int threadsPerWorker, WorkerData data, string fingerprint, bool pinThreads = true)
    {
        string seed = CnnNode.SeedAddress(CoordinatorAddress.Host!, CoordinatorAddress.Port!.Value);
        var starts = Enumerable.Range(0, count).Select(_ => StartNodeAsync(new CnnNodeOptions
        {
            Role = CnnNode.WorkerRole, BindHost = CoordinatorAddress.Host!, BindPort = 0, SeedNodes = [seed], LogLevel = _logLevel,
        })).ToList();
        // Each worker's computing threads get CPUs of their own while every thread of every worker can have one
        // (ThreadAffinity): left to the scheduler, two workers' computations sometimes shared one CPU.
        // Off, for a machine whose CPUs other programs use as well: a pinned thread waits for its CPU even when another is free.
        IReadOnlyList<int>[]? cpus = pinThreads ? ThreadAffinity.Plan(ThreadAffinity.AllowedCpus(), _workers.Count, count, threadsPerWorker) : null;
        int started = 0;
        foreach (IHost node in await Task.WhenAll(starts))
        {
            _hosts.Add(node);
            var system = node.Services.GetRequiredService<ActorSystem>();
            string id = $"worker-{_workers.Count + 1}";
            var settings = new WorkerSettings(id, threadsPerWorker, CoordinatorAddress, fingerprint, CoordinatorState.ProtocolVersion,
                Cpus: cpus?[started++]);
            _workerCpus.Add(settings.Cpus);
            _workers.Add(system.ActorOf(WorkerActor.Props(settings, data), "worker"));
        }
    }

    /// <summary>Stops worker node <paramref name="index"/> (0-based) abruptly, as a crash would.</summary>
    public async Task StopWorkerAsync(int index)
    {
        IHost node = _hosts[index + 1];
        await node.Services.GetRequiredService<ActorSystem>().Terminate();
        await node.StopAsync();
    }

    private static async Task<IHost> StartNodeAsync(CnnNodeOptions options)
    {
        IHost host = CnnNode.CreateHost(options);
        await host.StartAsync();
        return host;
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        // Workers leave the cluster first, in parallel, so their associations close in order instead of failing;
        // then every node stops, workers before the coordinator.
        await Task.WhenAll(_hosts.Skip(1).Select(async host =>
        {
            var cluster = Akka.Cluster.Cluster.Get(host.Services.GetRequiredService<ActorSystem>());
            try
            {
                await cluster.LeaveAsync().WaitAsync(TimeSpan.FromSeconds(3));
            }
            catch (TimeoutException)
            {
            }
        }));
        for (int i = _hosts.Count - 1; i >= 0; i--)
        {
            try
            {
                await _hosts[i].StopAsync(TimeSpan.FromSeconds(5));
            }
            catch (OperationCanceledException)
            {
            }
            _hosts[i].Dispose();
        }
    }
}
