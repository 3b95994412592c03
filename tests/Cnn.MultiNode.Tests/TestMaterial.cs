// What the multi-node tests run on: a throw-away directory, free loopback ports, a small deterministic MNIST-like
// dataset written as real IDX files (so every process goes through the same loading and hashing as with MNIST),
// and certificate authorities made with CertificateRequest (no openssl needed), written as PEM and PKCS#12.
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Cnn.MultiNode.Tests;

/// <summary>A temp directory deleted with everything in it on Dispose.</summary>
public sealed class Scratch : IDisposable
{
    /// <summary>The directory (created).</summary>
    public string Root { get; } = Directory.CreateTempSubdirectory("cnn-multinode-").FullName;

    /// <summary>A path inside the directory (not created).</summary>
    public string Path(string name) => System.IO.Path.Combine(Root, name);

    /// <inheritdoc/>
    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>Test data and ports.</summary>
public static class TestMaterial
{
    /// <summary>A TCP port free on every loopback address at the time of asking.</summary>
    public static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Any, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    /// <summary>
    /// Runs deploy/certs.sh --out <paramref name="dir"/> for <paramref name="names"/> (a dev CA and node certificates,
    /// as a user makes them) and returns <paramref name="dir"/>. openssl is required: .ci/run installs it where missing.
    /// </summary>
    public static string DeployCertificates(string dir, params string[] names)
    {
        Xunit.Assert.True(File.Exists("/usr/bin/openssl") || File.Exists("/usr/local/bin/openssl"), "openssl is not installed: deploy/certs.sh cannot run (apt-get install -y openssl)");
        var info = new System.Diagnostics.ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in (string[])[Programs.File("deploy/certs.sh"), "--out", dir, .. names]) info.ArgumentList.Add(a);
        using var script = System.Diagnostics.Process.Start(info)!;
        Task<string> error = script.StandardError.ReadToEndAsync();
        script.StandardOutput.ReadToEnd();
        script.WaitForExit();
        Xunit.Assert.True(script.ExitCode == 0, $"deploy/certs.sh failed: {error.Result}");
        return dir;
    }

    /// <summary>
    /// Starts a coordinator through <paramref name="start"/>(port, data port) on two free ports and returns it once it
    /// listens (or has ended: the test's assertions report why). A port chosen free can be taken by another process
    /// before the coordinator binds it (the test assemblies run side by side and open connections all the time); the
    /// coordinator then exits with "cannot listen on", and it is started again on other ports.
    /// </summary>
    public static NodeProcess StartListening(Func<int, int, NodeProcess> start, out int port)
    {
        for (int attempt = 1; ; attempt++)
        {
            port = FreePort();
            int dataPort = FreePort();
            if (dataPort == port) continue;
            NodeProcess coordinator = start(port, dataPort);
            if (coordinator.WaitForOutput("Coordinator listening at", TimeSpan.FromSeconds(60)) || attempt == 5
                || !coordinator.Error.Contains("cannot listen on", StringComparison.Ordinal))
                return coordinator;
            coordinator.Dispose();
        }
    }

    /// <summary>
    /// Writes the four IDX files of a 28x28 dataset into <paramref name="dir"/>: each image a bright bar whose row
    /// depends on its label, plus noise from a fixed LCG, so it is learnable and identical on every run.
    /// </summary>
    public static string WriteSyntheticMnist(string dir, int train = 1280, int test = 256)
        => Cnn.Tests.Shared.SyntheticMnist.Write(dir, train, test, seed: 20261127);
}

/// <summary>A certificate authority for tests, issuing node certificates like deploy/certs.sh does.</summary>
public sealed class TestAuthority
{
    private readonly X509Certificate2 _ca; // with its private key
    private readonly string _dir;

    /// <summary>A new CA named <paramref name="name"/> whose files go to <paramref name="dir"/>.</summary>
    public TestAuthority(string name, string dir)
    {
        _dir = dir;
        Directory.CreateDirectory(dir);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        _ca = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        CaPemPath = System.IO.Path.Combine(dir, "ca.pem");
        File.WriteAllText(CaPemPath, _ca.ExportCertificatePem());
    }

    /// <summary>The CA certificate as PEM.</summary>
    public string CaPemPath { get; }

    /// <summary>Issues a node certificate and writes NAME.p12 (certificate, key and this CA; empty password).</summary>
    public string IssuePkcs12(string name)
    {
        using X509Certificate2 node = Issue(name, out _);
        string path = System.IO.Path.Combine(_dir, $"{name}.p12");
        var bundle = new X509Certificate2Collection { node, X509CertificateLoader.LoadCertificate(_ca.RawData) };
        File.WriteAllBytes(path, bundle.Export(X509ContentType.Pkcs12, "")!);
        return path;
    }

    /// <summary>Issues a node certificate and writes NAME.pem and NAME.key; returns both paths.</summary>
    public (string Certificate, string Key) IssuePem(string name)
    {
        using X509Certificate2 node = Issue(name, out string keyPem);
        string certificate = System.IO.Path.Combine(_dir, $"{name}.pem"), key = System.IO.Path.Combine(_dir, $"{name}.key");
        File.WriteAllText(certificate, node.ExportCertificatePem());
        File.WriteAllText(key, keyPem);
        return (certificate, key);
    }

    private X509Certificate2 Issue(string name, out string keyPem)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false));
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName(name);
        names.AddDnsName("localhost");
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(_ca, true, false));
        byte[] serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F;
        using X509Certificate2 issued = request.Create(_ca, DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddDays(7), serial);
        keyPem = key.ExportPkcs8PrivateKeyPem();
        return issued.CopyWithPrivateKey(key);
    }
}
