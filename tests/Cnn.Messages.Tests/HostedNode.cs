// Test support: an ActorSystem built the way production nodes build theirs, through Akka.Hosting and
// WithCnnNode, but without a generic host (the DI container alone creates the system). Used directly, or as
// an xunit class fixture for a standalone worker node that joins nobody.
// It does not start actors or wait for cluster membership; tests that need that do it themselves.
using System.Diagnostics;
using Akka.Actor;
using Akka.Hosting;
using Microsoft.Extensions.DependencyInjection;

namespace Cnn.Messages.Tests;

public sealed class HostedNode : IDisposable
{
    private readonly ServiceProvider _services;

    /// <summary>A worker node on a free loopback port that joins nobody: for its configuration and serializers.</summary>
    public HostedNode() : this(new CnnNodeOptions { Role = CnnNode.WorkerRole })
    {
    }

    private HostedNode(CnnNodeOptions options)
    {
        var services = new ServiceCollection();
        services.AddAkka(CnnNode.SystemName, builder => builder.WithCnnNode(options));
        _services = services.BuildServiceProvider();
        System = _services.GetRequiredService<ActorSystem>();
        AwaitClusterDaemon(System);
    }

    public ActorSystem System { get; }

    /// <summary>A node configured with <paramref name="options"/>.</summary>
    public static HostedNode Start(CnnNodeOptions options) => new(options);

    /// <summary>
    /// Waits until the cluster's core daemon runs. A system terminated before that spends 5 s in its
    /// cluster-shutdown phase waiting for a daemon that missed the request, which only tests ever do.
    /// </summary>
    /// <remarks>
    /// Each question waits 1 s for its answer; one that gets none is asked again, until <see cref="Patience"/>. A
    /// system starting on a loaded machine (in CI, the other test projects build and run beside this one) once took
    /// longer than 1 s to answer the first, and the test that was starting it failed.
    /// </remarks>
    public static void AwaitClusterDaemon(ActorSystem system)
    {
        var daemon = system.ActorSelection("/system/cluster/core/daemon");
        var waited = Stopwatch.StartNew();
        for (var attempt = 0; waited.Elapsed < Patience; attempt++)
        {
            try
            {
                var identity = daemon.Ask<ActorIdentity>(new Identify(attempt), TimeSpan.FromSeconds(1)).GetAwaiter().GetResult();
                if (identity.Subject is not null)
                    return;
            }
            catch (AskTimeoutException)
            {
                // no answer yet: ask again
            }
            Thread.Sleep(10);
        }
        throw new TimeoutException($"the cluster daemon did not start within {Patience.TotalSeconds:0} s");
    }

    /// <summary>How long <see cref="AwaitClusterDaemon"/> waits for the daemon in all.</summary>
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    public void Dispose()
    {
        System.Terminate().Wait(TimeSpan.FromSeconds(10));
        _services.Dispose();
    }
}
