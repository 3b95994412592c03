// NodeTls in-process: loading PEM and PKCS#12 material with one-line errors that name the file, the CA check
// every peer goes through, and the data plane's mutual TLS (a trusted worker's frames get through; a plain TCP
// client and a client from another CA are refused, and the listener is told why). deploy/certs.sh output is
// loaded too when openssl is on the machine.
using System.Diagnostics;
using Cnn.Messages;
using Cnn.Tests.Shared;
using Xunit;

namespace Cnn.MultiNode.Tests;

public sealed class NodeTlsTests : IDisposable
{
    private readonly Scratch _scratch = new();
    private readonly TestAuthority _ca;
    private readonly TestAuthority _stranger;

    public NodeTlsTests()
    {
        _ca = new TestAuthority("cnn test CA", _scratch.Path("ca"));
        _stranger = new TestAuthority("another CA", _scratch.Path("stranger"));
    }

    [Fact]
    public void A_pkcs12_bundle_alone_is_enough_its_ca_is_the_one_trusted()
    {
        NodeTls tls = NodeTls.Load(new NodeTlsFiles { CertificatePath = _ca.IssuePkcs12("node") });

        Assert.Equal("CN=node", tls.Certificate.Subject);
        Assert.True(tls.Certificate.HasPrivateKey);
        Assert.Equal("CN=cnn test CA", Assert.Single(tls.Authorities).Subject);
    }

    [Fact]
    public void Pem_certificate_key_and_ca_files_load_and_check_a_peer_from_the_same_ca()
    {
        (string certificate, string key) = _ca.IssuePem("node");
        NodeTls tls = NodeTls.Load(new NodeTlsFiles { CertificatePath = certificate, KeyPath = key, AuthorityPath = _ca.CaPemPath });
        NodeTls peer = NodeTls.Load(new NodeTlsFiles { CertificatePath = _ca.IssuePkcs12("peer") });

        Assert.Null(tls.Check(peer.Certificate));
    }

    [Fact]
    public void A_peer_from_another_ca_or_without_a_certificate_is_not_trusted_and_the_reason_says_whose_it_is()
    {
        NodeTls tls = NodeTls.Load(new NodeTlsFiles { CertificatePath = _ca.IssuePkcs12("node") });
        NodeTls stranger = NodeTls.Load(new NodeTlsFiles { CertificatePath = _stranger.IssuePkcs12("stranger") });

        Assert.StartsWith("certificate 'CN=stranger' issued by 'CN=another CA' is not trusted", tls.Check(stranger.Certificate));
        Assert.Equal("it presented no certificate", tls.Check(null));
    }

    [Fact]
    public void Unusable_files_are_one_line_errors_naming_the_setting_and_the_file()
    {
        (string certificate, string key) = _ca.IssuePem("node");
        string missing = _scratch.Path("missing.p12");

        var noFile = Assert.Throws<NodeTlsException>(() => NodeTls.Load(new NodeTlsFiles { CertificatePath = missing }));
        var noKey = Assert.Throws<NodeTlsException>(() => NodeTls.Load(new NodeTlsFiles { CertificatePath = certificate, AuthorityPath = _ca.CaPemPath }));
        var noCa = Assert.Throws<NodeTlsException>(() => NodeTls.Load(new NodeTlsFiles { CertificatePath = certificate, KeyPath = key }));
        var wrongCa = Assert.Throws<NodeTlsException>(() => NodeTls.Load(new NodeTlsFiles { CertificatePath = certificate, KeyPath = key, AuthorityPath = _stranger.CaPemPath }));
        var wrongPassword = Assert.Throws<NodeTlsException>(() => NodeTls.Load(new NodeTlsFiles { CertificatePath = _ca.IssuePkcs12("p"), Password = "not it" }));

        Assert.Equal((TlsFile.Certificate, $"'{missing}': no such file"), (noFile.File, noFile.Message));
        Assert.Equal(TlsFile.Key, noKey.File);
        Assert.Equal(TlsFile.Authority, noCa.File);
        Assert.Contains("bundles no CA certificate", noCa.Message);
        Assert.Equal(TlsFile.Authority, wrongCa.File);
        Assert.Contains("does not chain to the trusted CA", wrongCa.Message);
        Assert.Equal(TlsFile.Password, wrongPassword.File);
        Assert.All([noFile, noKey, noCa, wrongCa, wrongPassword], e => Assert.DoesNotContain('\n', e.Message));
    }

    [Fact]
    public async Task The_data_plane_carries_frames_over_mutual_tls_between_nodes_of_one_ca()
    {
        NodeTls server = NodeTls.Load(new NodeTlsFiles { CertificatePath = _ca.IssuePkcs12("coordinator") });
        NodeTls client = NodeTls.Load(new NodeTlsFiles { CertificatePath = _ca.IssuePkcs12("worker") });
        var accepted = new TaskCompletionSource<FrameConnection>();
        var refusals = new List<string>();
        using var listener = new FrameListener("127.0.0.1", 0, c => accepted.TrySetResult(c), server, (_, reason) => { lock (refusals) refusals.Add(reason); });

        using FrameConnection worker = FrameConnection.Connect("127.0.0.1", listener.Port, "run-1", "worker-1", TimeSpan.FromSeconds(10), client);
        using FrameConnection side = await accepted.Task.WaitAsync(TimeSpan.FromSeconds(10));
        float[] gradient = [1.5f, -2f, 3.25f];
        worker.Write(new FrameHeader(FrameKind.Gradient, 4, 3, 0, 1, 8, 64, 10, 1.25, 2.5, 0), gradient);

        Assert.Equal(("run-1", "worker-1"), side.ReadHello(side.ReadHeader()));
        FrameHeader header = side.ReadHeader();
        var received = new float[3];
        side.ReadTensor(header, received);
        Assert.Equal((FrameKind.Gradient, 4L, 3L), (header.Kind, header.Step, header.Version));
        Assert.Equal(gradient, received);
        Assert.True(worker.IsEncrypted && side.IsEncrypted);
        Assert.Empty(refusals);
    }

    [Fact]
    public async Task Both_ends_of_a_tls_connection_keep_their_sockets_blocking()
    {
        // The handshakes run through SslStream's synchronous calls, so neither socket is switched to non-blocking mode
        // (Shared/SocketMode), as for a plain connection (Cnn.Messages.Tests' FrameConnectionTests).
        NodeTls server = NodeTls.Load(new NodeTlsFiles { CertificatePath = _ca.IssuePkcs12("coordinator") });
        NodeTls client = NodeTls.Load(new NodeTlsFiles { CertificatePath = _ca.IssuePkcs12("worker") });
        var accepted = new TaskCompletionSource<FrameConnection>();
        using var listener = new FrameListener("127.0.0.1", 0, c => accepted.TrySetResult(c), server);

        using FrameConnection worker = FrameConnection.Connect("127.0.0.1", listener.Port, "run-1", "worker-1", TimeSpan.FromSeconds(10), client);
        using FrameConnection side = await accepted.Task.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.True(worker.IsEncrypted && side.IsEncrypted);
        Assert.False(SocketMode.IsNonBlocking(worker.Socket));
        Assert.False(SocketMode.IsNonBlocking(side.Socket));
        Assert.Equal(("run-1", "worker-1"), side.ReadHello(side.ReadHeader())); // and the connection works
    }

    [Fact]
    public void A_tls_handshake_that_gets_no_answer_times_out_naming_the_address()
    {
        // A listener that accepts the connection but never speaks TLS: the handshake's read would wait forever.
        NodeTls client = NodeTls.Load(new NodeTlsFiles { CertificatePath = _ca.IssuePkcs12("worker") });
        var silent = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        silent.Start();
        try
        {
            int port = ((System.Net.IPEndPoint)silent.LocalEndpoint).Port;
            var watch = Stopwatch.StartNew();

            var e = Assert.Throws<TimeoutException>(() => FrameConnection.Connect("127.0.0.1", port, "run-1", "worker-1", TimeSpan.FromMilliseconds(500), client));

            Assert.Contains($"no TLS handshake with the data plane at 127.0.0.1:{port}", e.Message, StringComparison.Ordinal);
            Assert.InRange(watch.Elapsed, TimeSpan.FromMilliseconds(400), TimeSpan.FromSeconds(5));
        }
        finally
        {
            silent.Stop();
        }
    }

    [Fact]
    public void The_data_plane_refuses_a_plain_tcp_client_and_a_client_from_another_ca_and_says_why()
    {
        NodeTls server = NodeTls.Load(new NodeTlsFiles { CertificatePath = _ca.IssuePkcs12("coordinator") });
        NodeTls stranger = NodeTls.Load(new NodeTlsFiles { CertificatePath = _stranger.IssuePkcs12("stranger") });
        int accepted = 0;
        var refusals = new System.Collections.Concurrent.BlockingCollection<string>();
        using var listener = new FrameListener("127.0.0.1", 0, c => { Interlocked.Increment(ref accepted); c.Dispose(); }, server, (_, reason) => refusals.Add(reason));

        // A plain client's hello is not a TLS record: the handshake fails and nothing reaches the callback.
        string? plainReason;
        using (var plain = FrameConnection.Connect("127.0.0.1", listener.Port, "run-1", "plain", TimeSpan.FromSeconds(10)))
            Assert.True(refusals.TryTake(out plainReason, TimeSpan.FromSeconds(15)), "the plain client was not reported");

        // The stranger refuses the server's certificate too; either side may end the handshake first.
        Assert.ThrowsAny<Exception>(() =>
        {
            using FrameConnection c = FrameConnection.Connect("127.0.0.1", listener.Port, "run-1", "stranger", TimeSpan.FromSeconds(10), stranger);
            c.ReadHeader();
        });
        Assert.True(refusals.TryTake(out string? strangerReason, TimeSpan.FromSeconds(15)), "the stranger was not reported");

        Assert.Equal(0, accepted);
        Assert.Contains("TLS handshake failed", plainReason);
        Assert.True(strangerReason!.Contains("CN=stranger", StringComparison.Ordinal) || strangerReason.Contains("TLS handshake failed", StringComparison.Ordinal), strangerReason);
    }

    [Fact]
    public void Certificates_from_deploy_certs_sh_load_when_openssl_is_installed()
    {
        // deploy/certs.sh needs openssl; .ci/run installs it where it is missing, so its absence is a failure here.
        string dir = TestMaterial.DeployCertificates(_scratch.Path("certs"), "coordinator", "worker");

        NodeTls coordinator = NodeTls.Load(new NodeTlsFiles { CertificatePath = Path.Combine(dir, "coordinator.p12") });
        NodeTls worker = NodeTls.Load(new NodeTlsFiles
        {
            CertificatePath = Path.Combine(dir, "worker.pem"), KeyPath = Path.Combine(dir, "worker.key"), AuthorityPath = Path.Combine(dir, "ca.pem"),
        });

        Assert.Null(coordinator.Check(worker.Certificate));
        Assert.Null(worker.Check(coordinator.Certificate));
    }

    public void Dispose() => _scratch.Dispose();
}
