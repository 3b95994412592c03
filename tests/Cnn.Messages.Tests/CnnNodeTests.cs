// Tests for CnnNode: the hosted configuration (WithCnnNode) and the plain one (CnnNode.Config) give the same
// values for every setting this project chooses, and those values are the documented ones; wire messages go to
// CnnMessageSerializer and everything else to Hyperion with unsafe types refused; options are validated with
// one-line reasons; seed addresses are formatted for the "cnn" system.
using System.Runtime.Serialization;
using Akka.Actor;
using Akka.Cluster;
using Akka.Configuration;
using Akka.Serialization;
using Xunit;

namespace Cnn.Messages.Tests;

public sealed class CnnNodeTests
{
    public sealed record LocalNote(string Text, int Count, double[] Values);

    private static readonly CnnNodeOptions Coordinator = new()
    {
        Role = CnnNode.CoordinatorRole,
        BindHost = "127.0.0.1",
        BindPort = 0,
        PublicHost = "localhost",
        // Not started: the seed is only read back from the configuration.
        SeedNodes = [CnnNode.SeedAddress("127.0.0.1", 1)],
    };

    // key, how to read it, the value this project chose
    private static readonly (string Key, Func<Config, string, object?> Read, object Expected)[] Chosen =
    [
        ("akka.remote.dot-netty.tcp.hostname", (c, k) => c.GetString(k), "127.0.0.1"),
        ("akka.remote.dot-netty.tcp.port", (c, k) => c.GetInt(k), 0),
        ("akka.remote.dot-netty.tcp.public-hostname", (c, k) => c.GetString(k), "localhost"),
        ("akka.remote.dot-netty.tcp.maximum-frame-size", (c, k) => c.GetByteSize(k), 262_144L),
        ("akka.remote.dot-netty.tcp.send-buffer-size", (c, k) => c.GetByteSize(k), 524_288L),
        ("akka.remote.dot-netty.tcp.receive-buffer-size", (c, k) => c.GetByteSize(k), 524_288L),
        ("akka.remote.watch-failure-detector.heartbeat-interval", (c, k) => c.GetTimeSpan(k), TimeSpan.FromSeconds(1)),
        ("akka.remote.watch-failure-detector.acceptable-heartbeat-pause", (c, k) => c.GetTimeSpan(k), TimeSpan.FromSeconds(4)),
        ("akka.cluster.roles", (c, k) => string.Join(",", c.GetStringList(k)), "coordinator"),
        ("akka.cluster.seed-nodes", (c, k) => string.Join(",", c.GetStringList(k)), "akka.tcp://cnn@127.0.0.1:1"),
        ("akka.cluster.min-nr-of-members", (c, k) => c.GetInt(k), 1),
        ("akka.scheduler.tick-duration", (c, k) => c.GetTimeSpan(k), TimeSpan.FromMilliseconds(50)),
        ("akka.cluster.seed-node-timeout", (c, k) => c.GetTimeSpan(k), TimeSpan.FromSeconds(1)),
        ("akka.cluster.retry-unsuccessful-join-after", (c, k) => c.GetTimeSpan(k), TimeSpan.FromSeconds(1)),
        ("akka.cluster.periodic-tasks-initial-delay", (c, k) => c.GetTimeSpan(k), TimeSpan.FromMilliseconds(100)),
        ("akka.cluster.gossip-interval", (c, k) => c.GetTimeSpan(k), TimeSpan.FromMilliseconds(200)),
        ("akka.cluster.leader-actions-interval", (c, k) => c.GetTimeSpan(k), TimeSpan.FromMilliseconds(200)),
        ("akka.cluster.unreachable-nodes-reaper-interval", (c, k) => c.GetTimeSpan(k), TimeSpan.FromMilliseconds(500)),
        ("akka.cluster.failure-detector.heartbeat-interval", (c, k) => c.GetTimeSpan(k), TimeSpan.FromSeconds(1)),
        ("akka.cluster.failure-detector.acceptable-heartbeat-pause", (c, k) => c.GetTimeSpan(k), TimeSpan.FromSeconds(4)),
        ("akka.cluster.downing-provider-class", (c, k) => Type.GetType(c.GetString(k))?.FullName, "Akka.Cluster.SBR.SplitBrainResolverProvider"),
        ("akka.cluster.split-brain-resolver.active-strategy", (c, k) => c.GetString(k), "keep-oldest"),
        ("akka.cluster.split-brain-resolver.keep-oldest.down-if-alone", (c, k) => c.GetBoolean(k), false),
        ("akka.cluster.split-brain-resolver.stable-after", (c, k) => c.GetTimeSpan(k), TimeSpan.FromSeconds(5)),
        ("akka.cluster.split-brain-resolver.down-all-when-unstable", (c, k) => c.GetBoolean(k), true),
        ("akka.actor.serializers.hyperion", (c, k) => c.GetString(k), "Akka.Serialization.HyperionSerializer, Akka.Serialization.Hyperion"),
        ("akka.actor.serialization-settings.hyperion.disallow-unsafe-type", (c, k) => c.GetBoolean(k), true),
        ("akka.loglevel", (c, k) => c.GetString(k), "INFO"),
        ("akka.log-dead-letters", (c, k) => c.GetInt(k), 10),
        ("akka.log-dead-letters-during-shutdown", (c, k) => c.GetBoolean(k), false),
    ];

    [Fact]
    public async Task The_hosted_and_the_plain_configuration_agree_on_every_chosen_setting()
    {
        using var hosted = HostedNode.Start(Coordinator);
        var plain = ActorSystem.Create(CnnNode.SystemName, CnnNode.Config(Coordinator));
        HostedNode.AwaitClusterDaemon(plain);
        try
        {
            AssertChosenSettings(hosted.System, plain);
        }
        finally
        {
            await plain.Terminate();
        }
    }

    private static void AssertChosenSettings(ActorSystem hosted, ActorSystem plain)
    {
        foreach (var (key, read, expected) in Chosen)
        {
            Assert.True(Equals(expected, read(hosted.Settings.Config, key)), $"hosted {key} = {read(hosted.Settings.Config, key)}");
            Assert.True(Equals(expected, read(plain.Settings.Config, key)), $"plain {key} = {read(plain.Settings.Config, key)}");
        }
        Assert.IsType<ClusterActorRefProvider>(((ExtendedActorSystem)hosted).Provider);
        Assert.IsType<ClusterActorRefProvider>(((ExtendedActorSystem)plain).Provider);
        Assert.Equal("cnn", hosted.Name);
        Assert.Equal("cnn", plain.Name);
    }

    [Fact]
    public void The_coordinator_downs_an_unreachable_worker_well_before_the_split_brain_resolver_could_decide()
    {
        // Both read stable-after as configured: the grace must leave the resolver nothing to decide about a worker
        // (CnnNode.UnreachableWorkerDownAfter), with at least as long again for the downed node's removal.
        TimeSpan stableAfter = CnnNode.Config(Coordinator).GetTimeSpan("akka.cluster.split-brain-resolver.stable-after");
        Assert.Equal(CnnNode.StableAfter, stableAfter);
        Assert.True(CnnNode.UnreachableWorkerDownAfter > TimeSpan.Zero && CnnNode.UnreachableWorkerDownAfter * 2 <= stableAfter,
            $"UnreachableWorkerDownAfter {CnnNode.UnreachableWorkerDownAfter} against stable-after {stableAfter}");
    }

    [Fact]
    public async Task Both_configurations_send_wire_messages_through_MessagePack_and_everything_else_through_Hyperion()
    {
        using var hosted = HostedNode.Start(Coordinator);
        var plain = ActorSystem.Create(CnnNode.SystemName, CnnNode.Config(Coordinator));
        HostedNode.AwaitClusterDaemon(plain);
        try
        {
            foreach (var system in new[] { hosted.System, plain })
            {
                Assert.IsType<CnnMessageSerializer>(system.Serialization.FindSerializerForType(typeof(WeightsChunk)));
                Assert.IsType<HyperionSerializer>(system.Serialization.FindSerializerForType(typeof(LocalNote)));
                Assert.IsType<HyperionSerializer>(system.Serialization.FindSerializerForType(typeof(Dictionary<string, int>)));
            }
        }
        finally
        {
            await plain.Terminate();
        }
    }

    [Fact]
    public void A_record_that_is_not_a_wire_message_round_trips_through_Hyperion()
    {
        using var node = new HostedNode();
        var note = new LocalNote("piped result", 3, [0.5, -0.0, double.NaN]);

        var serializer = node.System.Serialization.FindSerializerFor(note);
        var back = (LocalNote)serializer.FromBinary(serializer.ToBinary(note), typeof(LocalNote));

        Assert.IsType<HyperionSerializer>(serializer);
        Assert.Equal(note.Text, back.Text);
        Assert.Equal(note.Count, back.Count);
        Assert.Equal(note.Values, back.Values);
    }

    [Fact]
    public void Hyperion_refuses_to_deserialize_a_known_unsafe_type()
    {
        using var node = new HostedNode();
        var serializer = Assert.IsType<HyperionSerializer>(node.System.Serialization.FindSerializerForType(typeof(object)));
        var bytes = serializer.ToBinary(new DirectoryInfo(Path.GetTempPath()));
        Assert.True(serializer.Settings.DisallowUnsafeType);

        var error = Assert.Throws<SerializationException>(() => serializer.FromBinary(bytes, typeof(DirectoryInfo)));

        Assert.Contains("Unsafe Type Deserialization Detected", error.Message);
    }

    [Theory]
    [InlineData("parameter-server", "127.0.0.1", 0, null, "Role must be \"coordinator\" or \"worker\"")]
    [InlineData("worker", " ", 0, null, "BindHost is empty")]
    [InlineData("worker", "127.0.0.1", 70_000, null, "BindPort 70000 is not a TCP port")]
    [InlineData("worker", "0.0.0.0", 2552, null, "set PublicHost")]
    [InlineData("worker", "::", 2552, null, "set PublicHost")]
    [InlineData("worker", "127.0.0.1", 0, "akka.tcp://other@10.0.0.1:2552", "is not an address of this system")]
    [InlineData("worker", "127.0.0.1", 0, "10.0.0.1:2552", "use CnnNode.SeedAddress(host, port)")]
    public void Inconsistent_options_are_refused_with_the_reason(string role, string bindHost, int bindPort, string? seed, string reason)
    {
        var options = new CnnNodeOptions
        {
            Role = role,
            BindHost = bindHost,
            BindPort = bindPort,
            SeedNodes = seed is null ? [] : [seed],
        };

        var plain = Assert.Throws<ArgumentException>(() => CnnNode.Config(options));
        var hosted = Assert.Throws<ArgumentException>(() => new Akka.Hosting.AkkaConfigurationBuilder(
            new Microsoft.Extensions.DependencyInjection.ServiceCollection(), CnnNode.SystemName).WithCnnNode(options));

        Assert.Contains(reason, plain.Message);
        Assert.Equal(plain.Message, hosted.Message);
    }

    [Fact]
    public void A_wildcard_bind_address_is_fine_with_a_public_host()
    {
        var config = CnnNode.Config(new CnnNodeOptions { Role = CnnNode.WorkerRole, BindHost = "0.0.0.0", BindPort = 2553, PublicHost = "node7.lan" });

        Assert.Equal("0.0.0.0", config.GetString("akka.remote.dot-netty.tcp.hostname"));
        Assert.Equal("node7.lan", config.GetString("akka.remote.dot-netty.tcp.public-hostname"));
    }

    [Theory]
    [InlineData("127.0.0.1", 2552, "akka.tcp://cnn@127.0.0.1:2552")]
    [InlineData("coordinator.lan", 4053, "akka.tcp://cnn@coordinator.lan:4053")]
    [InlineData("::1", 2552, "akka.tcp://cnn@[::1]:2552")]
    public void SeedAddress_names_the_cnn_system_on_the_given_host_and_port(string host, int port, string expected)
    {
        Assert.Equal(expected, CnnNode.SeedAddress(host, port));
    }

    [Theory]
    [InlineData("", 2552)]
    [InlineData("host", 0)]
    [InlineData("host", 65_536)]
    public void SeedAddress_refuses_a_missing_host_or_a_port_nobody_can_listen_on(string host, int port)
    {
        Assert.ThrowsAny<ArgumentException>(() => CnnNode.SeedAddress(host, port));
    }

    [Fact]
    public void Unknown_types_never_reach_the_MessagePack_serializer()
    {
        using var node = new HostedNode();
        var serializer = (CnnMessageSerializer)node.System.Serialization.FindSerializerForType(typeof(ICnnMessage));

        Assert.Throws<SerializationException>(() => serializer.ToBinary(new LocalNote("x", 1, [])));
    }

    [Fact]
    public void A_bind_failure_is_found_however_deep_Akka_Hosting_wraps_it_and_a_taken_port_is_reported_before_starting()
    {
        var refused = new System.Net.Sockets.SocketException((int)System.Net.Sockets.SocketError.AddressAlreadyInUse);
        Exception wrapped = new AggregateException(new AggregateException(new InvalidOperationException("starting",
            new AggregateException(new TimeoutException(), new Exception("remoting", refused)))));

        Assert.Same(refused, CnnNode.SocketFailure(wrapped));
        Assert.Null(CnnNode.SocketFailure(new AggregateException(new TimeoutException("no socket here"))));
        Assert.Null(CnnNode.SocketFailure(null));

        var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        taken.Start();
        try
        {
            int port = ((System.Net.IPEndPoint)taken.LocalEndpoint).Port;
            System.Net.Sockets.SocketException? failure = CnnNode.ListenFailure("127.0.0.1", port);
            Assert.NotNull(failure);
            Assert.Equal(System.Net.Sockets.SocketError.AddressAlreadyInUse, failure.SocketErrorCode);
            var error = new NodeBindException("127.0.0.1", port, failure);
            Assert.StartsWith($"cannot listen on 127.0.0.1:{port} (", error.Message);
            Assert.DoesNotContain('\n', error.Message);
        }
        finally
        {
            taken.Stop();
        }
        Assert.Null(CnnNode.ListenFailure("127.0.0.1", 0)); // any free port can always be bound
    }
}
