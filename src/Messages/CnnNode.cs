// The Akka configuration every node of a Cnn.Distributed cluster runs with, coordinator and workers alike.
//
// One call, builder.WithCnnNode(options), sets remoting (DotNetty TCP, explicit frame and socket buffer sizes),
// clustering (role, seed nodes, failure detector, fast join and gossip, Split Brain Resolver) and serialization
// (CnnMessageSerializer for ICnnMessage, Hyperion with unsafe types refused for everything else). Typed
// Akka.Hosting options are used where they exist, HOCON where they do not. CnnNode.Config(options) renders the
// same settings as one HOCON document for ActorSystem.Create, for tests and tools that run without a host;
// a test checks that both paths give the same values.
//
// TLS is off unless CnnNodeOptions.Tls is set; then remoting runs DotNetty's TLS with mutual authentication:
// enable-ssl = on, ssl.suppress-validation = off, ssl.require-mutual-authentication = on, and the peer's
// certificate checked against the cluster's CA by NodeTls.AkkaValidator (host names are not checked:
// ssl.validate-certificate-hostname = off, see NodeTls). Addresses then use the akka.ssl.tcp scheme.
//
// The sizes and timings below must be the same on every node of a deployment, so they are constants, not
// options. It deliberately does not set up loggers (the host picks them with ConfigureLoggers) or any actor.
using System.Globalization;
using System.Net;
using Akka.Cluster.Hosting;
using Akka.Cluster.Hosting.SBR;
using Akka.Configuration;
using Akka.Event;
using Akka.Hosting;
using Akka.Remote.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Cnn.Messages;

/// <summary>Where a node listens, what it is and whom it joins.</summary>
public sealed record CnnNodeOptions
{
    /// <summary><see cref="CnnNode.CoordinatorRole"/> or <see cref="CnnNode.WorkerRole"/>.</summary>
    public required string Role { get; init; }

    /// <summary>Address remoting binds to. A wildcard (0.0.0.0, ::) requires <see cref="PublicHost"/>.</summary>
    public string BindHost { get; init; } = "127.0.0.1";

    /// <summary>TCP port remoting binds to; 0 takes any free port (read it back from the cluster's SelfAddress).</summary>
    public int BindPort { get; init; }

    /// <summary>Host name other nodes reach this one by, when it differs from <see cref="BindHost"/>.</summary>
    public string? PublicHost { get; init; }

    /// <summary>
    /// Seed node addresses (<see cref="CnnNode.SeedAddress"/>), normally just the coordinator's. Empty: the node
    /// joins nobody by itself, and the caller joins with <c>Cluster.Get(system).Join(address)</c>, which is how a
    /// coordinator bound to port 0 joins itself.
    /// </summary>
    public IReadOnlyList<string> SeedNodes { get; init; } = [];

    /// <summary>Akka log level; warnings and errors always get through at the default, Info.</summary>
    public LogLevel LogLevel { get; init; } = LogLevel.InfoLevel;

    /// <summary>Mutual TLS for remoting (and, through the hosts, the data plane); null: plain TCP.</summary>
    public NodeTls? Tls { get; init; }
}

/// <summary>The Akka.NET configuration shared by every node: remoting, clustering and serialization.</summary>
public static class CnnNode
{
    /// <summary>Name of the ActorSystem on every node; it is part of every address.</summary>
    public const string SystemName = "cnn";

    /// <summary>Role of the node that hosts the Coordinator and the ParameterServer (the seed node).</summary>
    public const string CoordinatorRole = "coordinator";

    /// <summary>Role of a node that computes gradients.</summary>
    public const string WorkerRole = "worker";

    /// <summary>Largest remoting frame (akka.remote.dot-netty.tcp.maximum-frame-size), identical on every node.</summary>
    public const int MaximumFrameSizeBytes = 262_144;

    /// <summary>
    /// Socket send and receive buffer size, identical on every node: a whole seed-cnn tensor (373,288 bytes)
    /// fits in flight. The kernel may clamp it to net.core.wmem_max / rmem_max.
    /// </summary>
    public const int SocketBufferBytes = 524_288;

    // Cluster failure detector, tuned for a LAN: a heartbeat a second, a node is suspected after about 4 s of
    // silence (GC pauses of a training process are far shorter). The per-step deadline notices a slow worker
    // before this does; this notices a dead one.
    private static readonly TimeSpan HeartbeatInterval = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan AcceptableHeartbeatPause = TimeSpan.FromSeconds(4);

    // Short join and gossip intervals so that a local cluster is Up well within 2 s of process start (Akka's
    // defaults wait 1 s before the first gossip, gossip once a second and retry a failed join after 10 s).
    // Gossip at this rate is cheap for the handful of nodes a run has. A worker process that starts before its
    // coordinator listens (deploy/local-cluster.sh starts them together; a restarted coordinator) finds the
    // address unreachable, and remoting then drops everything sent there while the address is gated: 1 s
    // instead of Akka's 5 s, so such a worker joins about a second after the coordinator is up, not five. Akka
    // advises against less than a second (a storm of reconnects).
    // The scheduler's wheel turns every 50 ms instead of 10: every turn wakes the runtime's timer thread and then a
    // pool thread, about 300 times a second for the three nodes of a local cluster, each taking a core from a
    // computation. The shortest timer the cluster sets is the 200 ms gossip, and nothing times a step that finely.
    private const string ClusterTimingHocon = """
        akka.scheduler.tick-duration = 50ms
        akka.remote.retry-gate-closed-for = 1s
        akka.cluster {
          seed-node-timeout = 1s
          retry-unsuccessful-join-after = 1s
          periodic-tasks-initial-delay = 100ms
          gossip-interval = 200ms
          leader-actions-interval = 200ms
          unreachable-nodes-reaper-interval = 500ms
          min-nr-of-members = 1
        }
        """;

    // Split Brain Resolver: keep-oldest. The oldest member is the coordinator (the only seed node, so it is Up
    // before any worker), and it owns the run: weights, Adam state, schedule and checkpoints. Workers are
    // stateless and can be replaced, so on a partition the side without the coordinator downs itself.
    // down-if-alone is OFF on purpose: with it on, a coordinator cut off from all workers would down itself and
    // leave the workers as a headless cluster, which is the opposite of what we want; with it off, a coordinator
    // crash downs the workers too, whose systems then terminate and rejoin the resumed coordinator.
    // stable-after 5 s: decide quickly on a LAN, but only after the membership has settled for a while.
    private const bool DownIfAlone = false;

    /// <summary>The Split Brain Resolver's stable-after: how long the unreachable set must stay the same before it downs anyone.</summary>
    public static readonly TimeSpan StableAfter = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long a worker's node may stay unreachable before the coordinator downs it, well inside <see cref="StableAfter"/>.
    /// Left to the resolver alone, a worker frozen for about as long as detection plus stable-after (10 s here: a
    /// long GC pause, a stopped container, a VM migration) comes back just as the resolver decides. On waking, its
    /// own failure detector has heard nobody for that long, so it marks every other node unreachable. The resolver
    /// reads those observations together with the others' of the worker as nodes that are "indirectly connected"
    /// (a cycle in the reachability graph), and its answer is to down every node of the cycle: the coordinator
    /// with it, ending the run. Seen once in CI, the coordinator logging that it downed itself. A worker holds no
    /// state (the coordinator has already given its work to the others when it became unreachable), so the
    /// coordinator downs it after this grace instead: it is removed seconds before the resolver could decide, and
    /// its host joins again from a new node as soon as it wakes and is answered as quarantined (Worker/Program.cs).
    /// The grace lets a worker that was only slow to answer heartbeats (a loaded machine) come back as it is.
    /// </summary>
    public static readonly TimeSpan UnreachableWorkerDownAfter = TimeSpan.FromSeconds(2);

    // Declared after StableAfter: static fields are initialised in the order they are written.
    private static readonly string SplitBrainHocon = $$"""
        akka.cluster.split-brain-resolver {
          stable-after = {{Millis(StableAfter)}}
          down-all-when-unstable = on
        }
        """;

    // Hyperion instead of Newtonsoft for every type no other serializer is bound to (70 ms per tensor-sized
    // message with JSON); disallow-unsafe-type refuses the known gadget types on deserialization. Akka picks
    // the most specific binding, so ICnnMessage still goes to CnnMessageSerializer.
    private const string HyperionHocon = """
        akka.actor {
          serializers.hyperion = "Akka.Serialization.HyperionSerializer, Akka.Serialization.Hyperion"
          serialization-bindings {
            "System.Object" = hyperion
          }
          serialization-settings.hyperion.disallow-unsafe-type = true
        }
        """;

    // Akka's own reaction to SIGTERM and process exit (run its coordinated shutdown) would stop every node of the
    // process at the first signal, the local cluster's workers in the middle of a step. The programs decide
    // instead: `cnn train` finishes the step and saves a checkpoint, a worker host leaves the cluster and exits 0.
    private const string ShutdownHocon = "akka.coordinated-shutdown.run-by-clr-shutdown-hook = off";

    /// <summary>Address scheme of remoting without TLS.</summary>
    public const string TcpScheme = "akka.tcp";

    /// <summary>Address scheme of remoting with TLS.</summary>
    public const string TlsScheme = "akka.ssl.tcp";

    /// <summary>
    /// The seed node address of a node of this system: <c>akka.tcp://cnn@host:port</c>, or
    /// <c>akka.ssl.tcp://cnn@host:port</c> when the cluster runs TLS.
    /// </summary>
    public static string SeedAddress(string host, int port, bool tls = false)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(host);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(port);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65_535);
        var bracketed = host.Contains(':') && !host.StartsWith('[') ? $"[{host}]" : host;
        return $"{(tls ? TlsScheme : TcpScheme)}://{SystemName}@{bracketed}:{port.ToString(CultureInfo.InvariantCulture)}";
    }

    /// <summary>
    /// A host running one node configured by <see cref="WithCnnNode"/>. The host does not react to SIGINT or SIGTERM
    /// (the default console lifetime would stop the node on them): the program that embeds the node decides what a
    /// signal means, e.g. `cnn train` finishes its step and saves a checkpoint while its local workers keep working.
    /// </summary>
    public static IHost CreateHost(CnnNodeOptions options) => new HostBuilder()
        .ConfigureServices(services =>
        {
            services.AddSingleton<IHostLifetime, EmbeddedLifetime>();
            services.AddAkka(SystemName, builder => builder.WithCnnNode(options));
        })
        .Build();

    /// <summary>
    /// Starts <paramref name="host"/> (made by <see cref="CreateHost"/> from <paramref name="options"/>). A port that
    /// cannot be bound is a <see cref="NodeBindException"/> with the operating system's reason, not Akka's nested
    /// stack traces: a fixed port is tried with a plain socket first (so Akka never logs the failure), and a bind that
    /// fails anyway (the port taken in between) is recognised in the exception Akka.Hosting throws.
    /// </summary>
    public static async Task StartAsync(IHost host, CnnNodeOptions options)
    {
        if (options.BindPort != 0 && ListenFailure(options.BindHost, options.BindPort) is { } taken)
            throw new NodeBindException(options.BindHost, options.BindPort, taken);
        try
        {
            await host.StartAsync();
        }
        catch (Exception e) when (SocketFailure(e) is { } failure)
        {
            throw new NodeBindException(options.BindHost, options.BindPort, failure);
        }
    }

    /// <summary>Why a listener cannot be bound to <paramref name="host"/>:<paramref name="port"/> now, or null when it can (or the host does not resolve here).</summary>
    public static System.Net.Sockets.SocketException? ListenFailure(string host, int port)
    {
        if (BindAddress(host) is not { } address) return null; // Akka reports an unresolvable host itself
        var listener = new System.Net.Sockets.TcpListener(address, port);
        try
        {
            listener.Start();
            return null;
        }
        catch (System.Net.Sockets.SocketException e)
        {
            return e;
        }
        finally
        {
            listener.Stop();
        }
    }

    /// <summary>The address a listener on <paramref name="host"/> binds: the literal, or the first the name resolves to; null when it does not resolve.</summary>
    public static IPAddress? BindAddress(string host)
    {
        if (IPAddress.TryParse(host, out IPAddress? literal)) return literal;
        try
        {
            return Dns.GetHostAddresses(host).FirstOrDefault();
        }
        catch (System.Net.Sockets.SocketException)
        {
            return null;
        }
    }

    /// <summary>The socket error somewhere in <paramref name="e"/>'s causes (Akka wraps it in several AggregateExceptions), or null.</summary>
    public static System.Net.Sockets.SocketException? SocketFailure(Exception? e) => e switch
    {
        null => null,
        System.Net.Sockets.SocketException socket => socket,
        AggregateException many => many.InnerExceptions.Select(SocketFailure).FirstOrDefault(s => s is not null),
        _ => SocketFailure(e.InnerException),
    };

    private sealed class EmbeddedLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    /// <summary>
    /// Configures this node: remoting, clustering with its role and seed nodes, the Split Brain Resolver,
    /// CnnMessageSerializer for <see cref="ICnnMessage"/> and Hyperion for everything else. The ActorSystem must be
    /// named <see cref="SystemName"/> (<c>services.AddAkka(CnnNode.SystemName, b => b.WithCnnNode(options))</c>).
    /// </summary>
    /// <exception cref="ArgumentException">The options are inconsistent; the message says which one and why.</exception>
    public static AkkaConfigurationBuilder WithCnnNode(this AkkaConfigurationBuilder builder, CnnNodeOptions options)
    {
        ArgumentNullException.ThrowIfNull(builder);
        Validate(options);

        var remote = new RemoteOptions
        {
            HostName = options.BindHost,
            Port = options.BindPort,
            PublicHostName = options.PublicHost,
            MaxFrameSize = MaximumFrameSizeBytes,
            SendBufferSize = SocketBufferBytes,
            ReceiveBufferSize = SocketBufferBytes,
            WatchFailureDetector = new PhiAccrualFailureDetectorOptions
            {
                HeartbeatInterval = HeartbeatInterval,
                AcceptableHeartbeatPause = AcceptableHeartbeatPause,
            },
        };
        if (options.Tls is { } tls)
        {
            remote.EnableSsl = true;
            remote.Ssl = new SslOptions
            {
                X509Certificate = tls.Certificate,
                SuppressValidation = false,
                RequireMutualAuthentication = true,
                ValidateCertificateHostname = false,
                CustomValidator = tls.AkkaValidator,
            };
        }

        builder
            .WithRemoting(remote)
            .WithClustering(new ClusterOptions
            {
                Roles = [options.Role],
                SeedNodes = [.. options.SeedNodes],
                MinimumNumberOfMembers = 1,
                SplitBrainResolver = new KeepOldestOption { DownIfAlone = DownIfAlone },
                FailureDetector = new PhiAccrualFailureDetectorOptions
                {
                    HeartbeatInterval = HeartbeatInterval,
                    AcceptableHeartbeatPause = AcceptableHeartbeatPause,
                },
            })
            .WithCustomSerializer(CnnMessageSerializer.SerializerName, [typeof(ICnnMessage)],
                system => new CnnMessageSerializer(system))
            .AddHocon(ConfigurationFactory.ParseString(string.Join('\n',
                ClusterTimingHocon, SplitBrainHocon, HyperionHocon, ShutdownHocon, LoggingHocon(options.LogLevel))), HoconAddMode.Prepend);
        return builder;
    }

    /// <summary>
    /// The same configuration as <see cref="WithCnnNode"/> as one HOCON document, with the serializer bound by
    /// configuration, for <c>ActorSystem.Create(CnnNode.SystemName, CnnNode.Config(options))</c> without a host.
    /// With TLS the document holds the ssl switches, but the certificate and the CA check are objects, not
    /// HOCON: pass <see cref="SslSetup"/> too (<c>BootstrapSetup.Create().WithConfig(config).And(CnnNode.SslSetup(tls))</c>).
    /// </summary>
    /// <exception cref="ArgumentException">The options are inconsistent; the message says which one and why.</exception>
    public static Config Config(CnnNodeOptions options)
    {
        Validate(options);
        var seeds = string.Join(", ", options.SeedNodes.Select(Quote));
        var remoteAndCluster = $$"""
            akka.actor.provider = cluster
            akka.remote.dot-netty.tcp {
              hostname = {{Quote(options.BindHost)}}
              port = {{options.BindPort.ToString(CultureInfo.InvariantCulture)}}
              public-hostname = {{Quote(options.PublicHost ?? "")}}
              maximum-frame-size = {{MaximumFrameSizeBytes.ToString(CultureInfo.InvariantCulture)}}b
              send-buffer-size = {{SocketBufferBytes.ToString(CultureInfo.InvariantCulture)}}b
              receive-buffer-size = {{SocketBufferBytes.ToString(CultureInfo.InvariantCulture)}}b
            }
            akka.remote.dot-netty.tcp.enable-ssl = {{(options.Tls is null ? "off" : "on")}}
            akka.remote.dot-netty.tcp.ssl {
              suppress-validation = off
              require-mutual-authentication = on
              validate-certificate-hostname = off
            }
            akka.remote.watch-failure-detector {
              heartbeat-interval = {{Millis(HeartbeatInterval)}}
              acceptable-heartbeat-pause = {{Millis(AcceptableHeartbeatPause)}}
            }
            akka.cluster {
              roles = [{{Quote(options.Role)}}]
              seed-nodes = [{{seeds}}]
              downing-provider-class = "Akka.Cluster.SBR.SplitBrainResolverProvider, Akka.Cluster"
              split-brain-resolver.active-strategy = keep-oldest
              split-brain-resolver.keep-oldest.down-if-alone = {{(DownIfAlone ? "on" : "off")}}
              failure-detector {
                heartbeat-interval = {{Millis(HeartbeatInterval)}}
                acceptable-heartbeat-pause = {{Millis(AcceptableHeartbeatPause)}}
              }
            }
            akka.actor {
              serializers.{{CnnMessageSerializer.SerializerName}} = "{{typeof(CnnMessageSerializer).FullName}}, {{typeof(CnnMessageSerializer).Assembly.GetName().Name}}"
              serialization-bindings {
                "{{typeof(ICnnMessage).FullName}}, {{typeof(ICnnMessage).Assembly.GetName().Name}}" = {{CnnMessageSerializer.SerializerName}}
              }
            }
            """;
        return ConfigurationFactory.ParseString(string.Join('\n',
            remoteAndCluster, ClusterTimingHocon, SplitBrainHocon, HyperionHocon, ShutdownHocon, LoggingHocon(options.LogLevel)));
    }

    /// <summary>The TLS objects HOCON cannot hold (the certificate and the CA check), for <see cref="Config"/> users.</summary>
    public static Akka.Remote.Transport.DotNetty.DotNettySslSetup SslSetup(NodeTls tls)
    {
        ArgumentNullException.ThrowIfNull(tls);
        return new(tls.Certificate, suppressValidation: false, requireMutualAuthentication: true, validateCertificateHostname: false, tls.AkkaValidator);
    }

    // Dead letters are normal while nodes stop (messages to actors already gone): never log those, and only
    // the first few otherwise. Remote lifecycle events (association failed, gated, disassociated) are what every
    // stopping peer causes; the coordinator reports lost workers itself, in one line each, so Akka's own
    // multi-line reports of the same event are off.
    // The minimal logger Akka uses before the loggers start and after they stop is ours too, on standard error.
    private static string LoggingHocon(LogLevel level) => $"""
        akka.loglevel = {Logging.StringFor(level)}
        akka.stdout-loglevel = {Logging.StringFor(level)}
        akka.stdout-logger-class = "Cnn.Messages.CnnStartupLogger, Cnn.Messages"
        akka.log-dead-letters = 10
        akka.remote.log-remote-lifecycle-events = off
        akka.loggers = ["Cnn.Messages.CnnLogger, Cnn.Messages"]
        akka.log-dead-letters-during-shutdown = off
        """;

    private static void Validate(CnnNodeOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Role is not (CoordinatorRole or WorkerRole))
            throw new ArgumentException(
                $"Role must be \"{CoordinatorRole}\" or \"{WorkerRole}\", not \"{options.Role}\"", nameof(options));
        if (string.IsNullOrWhiteSpace(options.BindHost))
            throw new ArgumentException("BindHost is empty: give the address remoting listens on, e.g. 127.0.0.1", nameof(options));
        if (options.BindPort is < 0 or > 65_535)
            throw new ArgumentException($"BindPort {options.BindPort} is not a TCP port (0 takes any free one)", nameof(options));
        if (IPAddress.TryParse(options.BindHost, out var address)
            && (address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any))
            && string.IsNullOrWhiteSpace(options.PublicHost))
            throw new ArgumentException(
                $"BindHost {options.BindHost} listens on every interface: set PublicHost to the address other nodes reach this one by",
                nameof(options));
        string scheme = options.Tls is null ? TcpScheme : TlsScheme;
        foreach (var seed in options.SeedNodes)
        {
            if (seed is not null && options.Tls is null && seed.StartsWith($"{TlsScheme}://", StringComparison.Ordinal))
                throw new ArgumentException($"seed node \"{seed}\" runs TLS but this node has no certificate (set Tls)", nameof(options));
            if (seed is not null && options.Tls is not null && seed.StartsWith($"{TcpScheme}://", StringComparison.Ordinal))
                throw new ArgumentException($"seed node \"{seed}\" is a plain TCP address but this node runs TLS: use CnnNode.SeedAddress(host, port, tls: true)", nameof(options));
            if (seed is null || !seed.StartsWith($"{scheme}://{SystemName}@", StringComparison.Ordinal))
                throw new ArgumentException(
                    $"seed node \"{seed}\" is not an address of this system: use CnnNode.SeedAddress(host, port)", nameof(options));
        }
    }

    private static string Quote(string value) =>
        "\"" + value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";

    private static string Millis(TimeSpan t) => ((long)t.TotalMilliseconds).ToString(CultureInfo.InvariantCulture) + "ms";
}

/// <summary>A node could not listen at its address (the port is taken, or the address is not this machine's).</summary>
public sealed class NodeBindException(string host, int port, System.Net.Sockets.SocketException cause)
    : Exception($"cannot listen on {host}:{port.ToString(CultureInfo.InvariantCulture)} ({cause.Message})", cause)
{
    /// <summary>The address that was asked for.</summary>
    public string Host { get; } = host;

    /// <summary>The port that was asked for.</summary>
    public int Port { get; } = port;
}
