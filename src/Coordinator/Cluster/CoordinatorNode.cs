// The coordinator node of a multi-node run (`cnn train --workers N`): an ActorSystem bound to --host:--port
// (with --public-host when it listens on every interface), configured like every other node by WithCnnNode,
// that joins itself as the cluster's seed. Worker processes join it through that address: akka.tcp://cnn@...,
// or akka.ssl.tcp://cnn@... when the node has a certificate (mutual TLS, see Messages/NodeTls.cs).
using Akka.Actor;
using Akka.Hosting;
using Cnn.Coordinator.Runs;
using Cnn.Engine;
using Cnn.Messages;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Cnn.Coordinator.Cluster;

/// <summary>A running coordinator node (see file header).</summary>
public sealed class CoordinatorNode : IDisposable
{
    private readonly IHost _host;

    private CoordinatorNode(IHost host, ActorSystem system)
    {
        _host = host;
        System = system;
        Address = Akka.Cluster.Cluster.Get(system).SelfAddress;
    }

    /// <summary>The node's ActorSystem.</summary>
    public ActorSystem System { get; }

    /// <summary>The address workers use as their seed.</summary>
    public Address Address { get; }

    /// <summary>
    /// Binds and joins itself, with mutual TLS when <paramref name="tls"/> is given, logging at the settings'
    /// --log-level (warning by default); a port in use is a one-line error. The data plane's fixed port is tried
    /// first too, so that a taken one is reported before the node starts and logs anything.
    /// </summary>
    public static CoordinatorNode Start(TrainSettings settings, NodeTls? tls = null)
    {
        if (settings.DataPort != 0 && CnnNode.ListenFailure(settings.Host, settings.DataPort) is { } taken)
            throw ClusterBackend.DataPortError(settings.DataPort, settings.Host, taken);
        var options = new CnnNodeOptions
        {
            Role = CnnNode.CoordinatorRole, BindHost = settings.Host, BindPort = settings.Port, PublicHost = settings.PublicHost, Tls = tls, LogLevel = settings.NodeLogLevel,
        };
        IHost host = CnnNode.CreateHost(options);
        try
        {
            CnnNode.StartAsync(host, options).GetAwaiter().GetResult();
        }
        catch (NodeBindException e)
        {
            host.Dispose();
            throw new CnnUserException($"--host {settings.Host} --port {settings.Port}: {e.Message}", e);
        }
        var system = host.Services.GetRequiredService<ActorSystem>();
        var cluster = Akka.Cluster.Cluster.Get(system);
        cluster.JoinAsync(cluster.SelfAddress).GetAwaiter().GetResult();
        return new CoordinatorNode(host, system);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _host.StopAsync(TimeSpan.FromSeconds(5)).GetAwaiter().GetResult();
        _host.Dispose();
    }
}
