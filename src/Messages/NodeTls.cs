// Mutual TLS for a node: its certificate with the private key, and the CA certificates it trusts. One NodeTls
// protects both channels between nodes: Akka.Remote (CnnNode.WithCnnNode turns on DotNetty's TLS with mutual
// authentication and hands it Validate as the certificate check) and the tensor data plane (FrameConnection
// and FrameListener wrap their sockets in SslStream with the same certificate and the same check).
//
// The check is the cluster's own CA, not the operating system's trust store: a peer is accepted when its
// certificate chains to one of Authorities and is within its validity period. Host names are not checked,
// because nodes are addressed by IP or by container names that are not known when certificates are made;
// the CA is what says "this is one of our nodes". Revocation is not checked (a dev CA has no CRL).
//
// Files: the certificate is PEM (optionally with its key and CA certificates after it) or PKCS#12 (.p12/.pfx,
// optionally carrying the CA). The CA file is PEM or DER; without one, the CA certificates bundled with the
// node's certificate are trusted, so a PKCS#12 from deploy/certs.sh is the only setting TLS needs.
//
// Deliberately not here: flags and environment variables (the hosts map TlsFile to their own names).
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Akka.Event;
using Akka.Remote.Transport.DotNetty;

namespace Cnn.Messages;

/// <summary>Which TLS setting a problem is about.</summary>
public enum TlsFile
{
    /// <summary>The node's certificate (PEM or PKCS#12).</summary>
    Certificate,
    /// <summary>The PEM private key of the certificate.</summary>
    Key,
    /// <summary>The password of a PKCS#12 file or an encrypted PEM key.</summary>
    Password,
    /// <summary>The CA certificates to trust.</summary>
    Authority,
}

/// <summary>A TLS file that cannot be used; the message is one line and names the file.</summary>
public sealed class NodeTlsException(TlsFile file, string message) : Exception(message)
{
    /// <summary>The setting at fault.</summary>
    public TlsFile File { get; } = file;
}

/// <summary>Where a node's TLS material is.</summary>
public sealed record NodeTlsFiles
{
    /// <summary>The node's certificate: PEM (may hold the key and CA certificates too) or PKCS#12.</summary>
    public required string CertificatePath { get; init; }
    /// <summary>PEM private key, when not inside <see cref="CertificatePath"/>.</summary>
    public string? KeyPath { get; init; }
    /// <summary>Password of the PKCS#12 file or of an encrypted PEM key. Never serialized: run settings are stored in checkpoints.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public string? Password { get; init; }
    /// <summary>CA certificates to trust (PEM or DER); null: those bundled with the certificate.</summary>
    public string? AuthorityPath { get; init; }
}

/// <summary>A node's certificate and the CAs it trusts (see file header).</summary>
public sealed class NodeTls
{
    private NodeTls(X509Certificate2 certificate, X509Certificate2Collection authorities)
    {
        Certificate = certificate;
        Authorities = authorities;
    }

    /// <summary>This node's certificate, with its private key.</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>The CA certificates a peer's certificate must chain to.</summary>
    public X509Certificate2Collection Authorities { get; }

    /// <summary>One line for logs: subject, issuer and expiry.</summary>
    public string Description => $"{Certificate.Subject} issued by {Certificate.Issuer}, valid until {Certificate.NotAfter.ToUniversalTime():yyyy-MM-dd}";

    /// <summary>Loads and checks the files; throws <see cref="NodeTlsException"/> naming the one at fault.</summary>
    public static NodeTls Load(NodeTlsFiles files)
    {
        ArgumentNullException.ThrowIfNull(files);
        byte[] certificateBytes = Read(TlsFile.Certificate, files.CertificatePath);
        if (files.KeyPath is not null) Read(TlsFile.Key, files.KeyPath);
        bool pem = IsPem(certificateBytes);
        (X509Certificate2 certificate, X509Certificate2Collection bundled) = pem ? LoadPem(files) : LoadPkcs12(files, certificateBytes);

        X509Certificate2Collection authorities;
        if (files.AuthorityPath is not null)
        {
            authorities = LoadAuthorities(files.AuthorityPath);
        }
        else
        {
            authorities = [.. bundled.Where(IsAuthority)];
            if (authorities.Count == 0)
                throw new NodeTlsException(TlsFile.Authority,
                    $"no CA to trust: '{files.CertificatePath}' bundles no CA certificate, so give the CA that signed the cluster's certificates");
        }
        var tls = new NodeTls(certificate, authorities);
        if (tls.Check(certificate) is { } problem)
            throw new NodeTlsException(files.AuthorityPath is null ? TlsFile.Certificate : TlsFile.Authority,
                $"'{files.CertificatePath}' does not chain to the trusted CA{(files.AuthorityPath is null ? "" : $" in '{files.AuthorityPath}'")}: {problem}");
        return tls;
    }

    /// <summary>Null when <paramref name="peer"/> chains to a trusted CA and is valid now, otherwise why not.</summary>
    public string? Check(X509Certificate? peer)
    {
        if (peer is null) return "it presented no certificate";
        X509Certificate2 certificate = peer as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(peer.GetRawCertData());
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(Authorities);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.VerificationTime = DateTime.Now;
        if (chain.Build(certificate)) return null;
        string status = string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation.Trim()).Where(s => s.Length > 0).Distinct());
        return $"certificate '{certificate.Subject}' issued by '{certificate.Issuer}' is not trusted ({(status.Length > 0 ? status : "no chain to a trusted CA")})";
    }

    /// <summary>The certificate check for Akka.Remote's TLS: logs every refusal as a warning on the node that refuses.</summary>
    public CertificateValidationCallback AkkaValidator => (certificate, _, remotePeer, errors, log) =>
    {
        string? problem = errors.HasFlag(SslPolicyErrors.RemoteCertificateNotAvailable) ? "it presented no certificate" : Check(certificate);
        if (problem is null) return true;
        log.Warning("TLS: refused the connection of {0}: {1}", remotePeer, problem);
        return false;
    };

    /// <summary>Options for the server end of an SslStream: this certificate, a client certificate required and checked.</summary>
    public SslServerAuthenticationOptions ServerOptions(Action<string> refused) => new()
    {
        ServerCertificate = Certificate,
        ClientCertificateRequired = true,
        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
        RemoteCertificateValidationCallback = (_, certificate, _, errors) => Accept(certificate, errors, refused),
    };

    /// <summary>Options for the client end of an SslStream: this certificate offered, the server's checked.</summary>
    public SslClientAuthenticationOptions ClientOptions(string targetHost, Action<string> refused) => new()
    {
        TargetHost = targetHost,
        ClientCertificates = [Certificate],
        LocalCertificateSelectionCallback = (_, _, _, _, _) => Certificate,
        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
        RemoteCertificateValidationCallback = (_, certificate, _, errors) => Accept(certificate, errors, refused),
    };

    // The operating system's verdict (errors) is replaced by the check against our CA, except a missing certificate.
    private bool Accept(X509Certificate? certificate, SslPolicyErrors errors, Action<string> refused)
    {
        string? problem = errors.HasFlag(SslPolicyErrors.RemoteCertificateNotAvailable) ? "it presented no certificate" : Check(certificate);
        if (problem is null) return true;
        refused(problem);
        return false;
    }

    private static byte[] Read(TlsFile file, string path)
    {
        if (string.IsNullOrWhiteSpace(path)) throw new NodeTlsException(file, "the file name is empty");
        try
        {
            return System.IO.File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new NodeTlsException(file, $"'{path}': no such file");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new NodeTlsException(file, $"'{path}': cannot read it ({e.Message.ReplaceLineEndings(" ")})");
        }
    }

    private static bool IsPem(byte[] bytes) => System.Text.Encoding.ASCII.GetString(bytes, 0, Math.Min(bytes.Length, 4096)).Contains("-----BEGIN", StringComparison.Ordinal);

    private static (X509Certificate2, X509Certificate2Collection) LoadPem(NodeTlsFiles files)
    {
        var all = new X509Certificate2Collection();
        try
        {
            all.ImportFromPemFile(files.CertificatePath);
        }
        catch (CryptographicException e)
        {
            throw new NodeTlsException(TlsFile.Certificate, $"'{files.CertificatePath}': not a PEM certificate ({e.Message.ReplaceLineEndings(" ")})");
        }
        if (all.Count == 0) throw new NodeTlsException(TlsFile.Certificate, $"'{files.CertificatePath}' holds no CERTIFICATE block");
        string keyPath = files.KeyPath ?? files.CertificatePath;
        try
        {
            X509Certificate2 certificate = files.Password is { Length: > 0 } password
                ? X509Certificate2.CreateFromEncryptedPemFile(files.CertificatePath, password, keyPath)
                : X509Certificate2.CreateFromPemFile(files.CertificatePath, keyPath);
            return (certificate, [.. all.Skip(1)]);
        }
        catch (CryptographicException e)
        {
            if (files.KeyPath is null)
                throw new NodeTlsException(TlsFile.Key, $"'{files.CertificatePath}' holds no usable private key: give the key file too ({e.Message.ReplaceLineEndings(" ")})");
            throw new NodeTlsException(files.Password is { Length: > 0 } ? TlsFile.Password : TlsFile.Key,
                $"'{files.KeyPath}' is not the private key of '{files.CertificatePath}', or it is encrypted and the password is wrong ({e.Message.ReplaceLineEndings(" ")})");
        }
    }

    private static (X509Certificate2, X509Certificate2Collection) LoadPkcs12(NodeTlsFiles files, byte[] bytes)
    {
        X509Certificate2Collection all;
        try
        {
            all = X509CertificateLoader.LoadPkcs12Collection(bytes, files.Password ?? "", X509KeyStorageFlags.EphemeralKeySet);
        }
        catch (CryptographicException e)
        {
            throw new NodeTlsException(files.Password is null ? TlsFile.Certificate : TlsFile.Password,
                $"'{files.CertificatePath}' is neither PEM nor a PKCS#12 file this password opens ({e.Message.ReplaceLineEndings(" ")})");
        }
        X509Certificate2? certificate = all.FirstOrDefault(c => c.HasPrivateKey)
            ?? throw new NodeTlsException(TlsFile.Certificate, $"'{files.CertificatePath}' holds no certificate with a private key");
        return (certificate, [.. all.Where(c => !ReferenceEquals(c, certificate))]);
    }

    private static X509Certificate2Collection LoadAuthorities(string path)
    {
        byte[] bytes = Read(TlsFile.Authority, path);
        var authorities = new X509Certificate2Collection();
        try
        {
            if (IsPem(bytes)) authorities.ImportFromPemFile(path);
            else authorities.Add(X509CertificateLoader.LoadCertificate(bytes));
        }
        catch (CryptographicException e)
        {
            throw new NodeTlsException(TlsFile.Authority, $"'{path}': not a PEM or DER certificate ({e.Message.ReplaceLineEndings(" ")})");
        }
        if (authorities.Count == 0) throw new NodeTlsException(TlsFile.Authority, $"'{path}' holds no CERTIFICATE block");
        return authorities;
    }

    private static bool IsAuthority(X509Certificate2 certificate) =>
        certificate.Extensions.OfType<X509BasicConstraintsExtension>().Any(b => b.CertificateAuthority) || certificate.SubjectName.RawData.AsSpan().SequenceEqual(certificate.IssuerName.RawData);
}
