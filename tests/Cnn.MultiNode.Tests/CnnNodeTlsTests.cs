// CnnNode with TLS: both configuration paths (the hosted WithCnnNode and the plain Config) switch DotNetty's TLS
// on with validation and mutual authentication, a node with TLS uses akka.ssl.tcp addresses, and seeds of the
// other scheme are refused with a reason instead of a node that can never join.
using Akka.Actor;
using Akka.Configuration;
using Akka.Hosting;
using Cnn.Messages;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Xunit;

namespace Cnn.MultiNode.Tests;

public sealed class CnnNodeTlsTests : IDisposable
{
    private readonly Scratch _scratch = new();
    private readonly NodeTls _tls;

    public CnnNodeTlsTests() =>
        _tls = NodeTls.Load(new NodeTlsFiles { CertificatePath = new TestAuthority("cnn test CA", _scratch.Path("ca")).IssuePkcs12("node") });

    [Fact]
    public async Task A_hosted_node_with_a_certificate_listens_with_mutual_tls_on_an_akka_ssl_tcp_address()
    {
        var options = new CnnNodeOptions { Role = CnnNode.CoordinatorRole, BindHost = "127.0.0.1", BindPort = 0, Tls = _tls };
        using IHost host = new HostBuilder()
            .ConfigureServices(services => services.AddAkka(CnnNode.SystemName, builder => builder.WithCnnNode(options)))
            .Build();
        await host.StartAsync();
        try
        {
            var system = host.Services.GetRequiredService<ActorSystem>();
            AssertTlsSwitches(system.Settings.Config);
            Assert.Equal(CnnNode.TlsScheme, Akka.Cluster.Cluster.Get(system).SelfAddress.Protocol);
        }
        finally
        {
            await host.StopAsync();
        }
    }

    [Fact]
    public void The_plain_configuration_has_the_same_switches_and_leaves_them_off_without_a_certificate()
    {
        AssertTlsSwitches(CnnNode.Config(new CnnNodeOptions { Role = CnnNode.WorkerRole, Tls = _tls }));
        Assert.False(CnnNode.Config(new CnnNodeOptions { Role = CnnNode.WorkerRole }).GetBoolean("akka.remote.dot-netty.tcp.enable-ssl"));
        Assert.Same(_tls.Certificate, CnnNode.SslSetup(_tls).Certificate);
    }

    [Fact]
    public void Seeds_must_use_the_scheme_of_the_node()
    {
        Assert.Equal("akka.ssl.tcp://cnn@coordinator:4053", CnnNode.SeedAddress("coordinator", 4053, tls: true));

        var plainSeed = Assert.Throws<ArgumentException>(() => CnnNode.Config(new CnnNodeOptions
        {
            Role = CnnNode.WorkerRole, Tls = _tls, SeedNodes = [CnnNode.SeedAddress("coordinator", 4053)],
        }));
        var tlsSeed = Assert.Throws<ArgumentException>(() => CnnNode.Config(new CnnNodeOptions
        {
            Role = CnnNode.WorkerRole, SeedNodes = [CnnNode.SeedAddress("coordinator", 4053, tls: true)],
        }));

        Assert.Contains("is a plain TCP address but this node runs TLS", plainSeed.Message);
        Assert.Contains("runs TLS but this node has no certificate", tlsSeed.Message);
        Assert.Equal("akka.ssl.tcp://cnn@coordinator:4053", Cnn.Worker.WorkerOptions.ParseSeed("coordinator:4053", tls: true));
    }

    private static void AssertTlsSwitches(Config config)
    {
        Assert.True(config.GetBoolean("akka.remote.dot-netty.tcp.enable-ssl"));
        Assert.False(config.GetBoolean("akka.remote.dot-netty.tcp.ssl.suppress-validation"));
        Assert.True(config.GetBoolean("akka.remote.dot-netty.tcp.ssl.require-mutual-authentication"));
        Assert.False(config.GetBoolean("akka.remote.dot-netty.tcp.ssl.validate-certificate-hostname"));
    }

    public void Dispose() => _scratch.Dispose();
}
