// The worker host's configuration: every setting comes from a command-line flag or from the environment
// variable of the same meaning (the ones docker-compose.yml passes); a flag wins over the variable. Validation
// turns every mistake into one line that names the flag and the variable.
using System.Net;
using Cnn.Engine;
using Cnn.Engine.Data;

namespace Cnn.Worker;

/// <summary>Settings of a worker process.</summary>
public sealed record WorkerOptions
{
    /// <summary>Environment variable names, one per setting.</summary>
    public static class Env
    {
        /// <summary>Comma-separated seed nodes (host:port or akka.tcp://cnn@host:port); the first is the coordinator.</summary>
        public const string Seeds = "CNN_SEED_NODES";
        /// <summary>Address remoting binds to.</summary>
        public const string BindHost = "CNN_BIND_HOST";
        /// <summary>Port remoting binds to (0: any free port).</summary>
        public const string BindPort = "CNN_BIND_PORT";
        /// <summary>Host name the other nodes reach this one by.</summary>
        public const string PublicHost = "CNN_PUBLIC_HOST";
        /// <summary>Directory of the four MNIST IDX files.</summary>
        public const string Data = "CNN_DATA_DIR";
        /// <summary>Threads to compute with.</summary>
        public const string Threads = "CNN_THREADS";
        /// <summary>CPUs to pin the computing threads to, one per thread (for example 0, or 2,3); unset: not pinned.</summary>
        public const string Cpus = "CNN_CPUS";
        /// <summary>This worker's id (default: host name and process id).</summary>
        public const string WorkerId = "CNN_WORKER_ID";
        /// <summary>The node's TLS certificate (PEM or PKCS#12); setting it turns mutual TLS on. The coordinator reads it too.</summary>
        public const string TlsCertificate = "CNN_TLS_CERT";
        /// <summary>The PEM private key of the certificate, when not inside it.</summary>
        public const string TlsKey = "CNN_TLS_KEY";
        /// <summary>Password of a PKCS#12 certificate or of an encrypted PEM key.</summary>
        public const string TlsPassword = "CNN_TLS_PASSWORD";
        /// <summary>The CA certificates to trust (default: those bundled with the certificate).</summary>
        public const string TlsAuthority = "CNN_TLS_CA";
        /// <summary>Akka log level of the node: error, warning, info (the worker's default) or debug.</summary>
        public const string LogLevel = "CNN_LOG_LEVEL";
    }

    /// <summary>The names a node's log level is given by (--log-level, CNN_LOG_LEVEL), least verbose first.</summary>
    public static IReadOnlyList<string> LogLevelNames { get; } = ["error", "warning", "info", "debug"];

    /// <summary>
    /// The Akka log level named <paramref name="name"/> (one of <see cref="LogLevelNames"/>, any case), or a one-line
    /// error that names <paramref name="source"/>. (Akka's own parser also takes "off", which would hide errors.)
    /// </summary>
    public static Akka.Event.LogLevel ParseLogLevel(string name, string source) =>
        LogLevelNames.Contains(name.Trim().ToLowerInvariant()) ? Akka.Event.Logging.LogLevelFor(name.Trim())
            : throw new CnnUserException($"{source}: '{name}' is not a log level (expected {string.Join(", ", LogLevelNames)})");

    /// <summary>Flag and environment variable of a TLS setting, as error messages name them (both hosts use the same).</summary>
    public static string TlsSetting(Messages.TlsFile file) => file switch
    {
        Messages.TlsFile.Certificate => $"--tls-cert / {Env.TlsCertificate}",
        Messages.TlsFile.Key => $"--tls-key / {Env.TlsKey}",
        Messages.TlsFile.Password => $"--tls-password / {Env.TlsPassword}",
        _ => $"--tls-ca / {Env.TlsAuthority}",
    };

    /// <summary>
    /// The TLS files from flags or environment variables (a flag wins), or null when no certificate is given (TLS off).
    /// A key, password or CA without a certificate is a mistake, not "off".
    /// </summary>
    public static Messages.NodeTlsFiles? TlsFiles(string? certificate, string? key, string? password, string? authority)
    {
        if (certificate is null)
        {
            string? stray = key is not null ? TlsSetting(Messages.TlsFile.Key) : password is not null ? TlsSetting(Messages.TlsFile.Password)
                : authority is not null ? TlsSetting(Messages.TlsFile.Authority) : null;
            if (stray is not null) throw new CnnUserException($"{stray} is set but {TlsSetting(Messages.TlsFile.Certificate)} is not: TLS needs the node's certificate");
            return null;
        }
        return new Messages.NodeTlsFiles { CertificatePath = certificate, KeyPath = key, Password = password, AuthorityPath = authority };
    }

    /// <summary>Loads the TLS files; a missing or unusable file is a one-line CnnUserException naming its flag and variable.</summary>
    public static Messages.NodeTls? LoadTls(Messages.NodeTlsFiles? files)
    {
        if (files is null) return null;
        try
        {
            return Messages.NodeTls.Load(files);
        }
        catch (Messages.NodeTlsException e)
        {
            throw new CnnUserException($"{TlsSetting(e.File)}: {e.Message}", e);
        }
    }

    /// <summary>Seed node addresses; the first is the coordinator's.</summary>
    public required IReadOnlyList<string> Seeds { get; init; }
    /// <summary>Bind address.</summary>
    public string BindHost { get; init; } = "127.0.0.1";
    /// <summary>Bind port.</summary>
    public int BindPort { get; init; }
    /// <summary>Public host name, or null.</summary>
    public string? PublicHost { get; init; }
    /// <summary>Data directory.</summary>
    public string DataDirectory { get; init; } = MnistFetcher.DefaultCacheDirectory;
    /// <summary>Compute threads.</summary>
    public int Threads { get; init; } = Environment.ProcessorCount;
    /// <summary>The CPUs the computing threads are pinned to, one per thread, or null (Engine ThreadAffinity; Linux only).</summary>
    public IReadOnlyList<int>? Cpus { get; init; }

    /// <summary>
    /// Reads a list of CPU numbers like "0" or "2,3" (null or empty: none); CnnUserException naming
    /// <paramref name="source"/> when an entry is not a CPU number.
    /// </summary>
    public static IReadOnlyList<int>? ParseCpus(string? text, string source)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        return text.Split(',', StringSplitOptions.TrimEntries).Select(part =>
            int.TryParse(part, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int cpu) && cpu < Cnn.Engine.Training.ThreadAffinity.MaxCpus ? cpu
            : throw new CnnUserException($"{source}: '{part}' is not a CPU number (expected a list like 0 or 2,3, one per thread)")).ToArray();
    }
    /// <summary>Worker id.</summary>
    public string WorkerId { get; init; } = $"{Dns.GetHostName()}-{Environment.ProcessId}";
    /// <summary>TLS files, or null for plain TCP.</summary>
    public Messages.NodeTlsFiles? Tls { get; init; }
    /// <summary>Akka log level of the node, on standard error.</summary>
    public Akka.Event.LogLevel LogLevel { get; init; } = Akka.Event.LogLevel.InfoLevel;

    /// <summary>
    /// Parses a seed given as host:port or as a full address into an address of the cluster's scheme: akka.tcp, or
    /// akka.ssl.tcp when <paramref name="tls"/> (a full address of the other scheme is refused).
    /// </summary>
    public static string ParseSeed(string seed, bool tls)
    {
        string s = seed.Trim();
        string scheme = tls ? Messages.CnnNode.TlsScheme : Messages.CnnNode.TcpScheme;
        if (s.StartsWith("akka.", StringComparison.Ordinal) && s.Contains("://", StringComparison.Ordinal))
        {
            if (!s.StartsWith(scheme + "://", StringComparison.Ordinal))
                throw new CnnUserException($"--seed / {Env.Seeds}: '{seed}' is not an {scheme} address{(tls ? ", and this worker runs TLS" : "; give a certificate (--tls-cert) to join a TLS cluster")}");
            if (!Uri.TryCreate("tcp://" + s[(scheme.Length + 3)..], UriKind.Absolute, out Uri? uri) || uri.Port <= 0 || uri.UserInfo != Messages.CnnNode.SystemName)
                throw new CnnUserException($"--seed / {Env.Seeds}: '{seed}' is not an address like {scheme}://{Messages.CnnNode.SystemName}@host:port");
            return s;
        }
        int colon = s.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(s[(colon + 1)..], out int port) || port is < 1 or > 65535 || Uri.CheckHostName(s[..colon].Trim('[', ']')) == UriHostNameType.Unknown)
            throw new CnnUserException($"--seed / {Env.Seeds}: '{seed}' is not host:port (for example coordinator:4053)");
        return Messages.CnnNode.SeedAddress(s[..colon].Trim('[', ']'), port, tls);
    }

    /// <summary>
    /// False when <paramref name="directory"/> exists but cannot be listed: it would look empty, and the worker would
    /// try to download MNIST into it instead of saying what is wrong.
    /// </summary>
    public static bool CanList(string directory)
    {
        if (!Directory.Exists(directory)) return true;
        try
        {
            _ = Directory.EnumerateFileSystemEntries(directory).Any();
            return true;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>Checks the settings; throws CnnUserException with one line naming the flag and variable at fault.</summary>
    public void Validate()
    {
        if (Seeds.Count == 0) throw new CnnUserException($"no seed nodes: give --seed host:port or set {Env.Seeds} (the coordinator's address)");
        if (Uri.CheckHostName(BindHost) == UriHostNameType.Unknown)
            throw new CnnUserException($"--host / {Env.BindHost}: '{BindHost}' is not a host name or IP address");
        if (BindPort is < 0 or > 65535) throw new CnnUserException($"--port / {Env.BindPort}: {BindPort} is not a port (0 to 65535)");
        if ((BindHost == "0.0.0.0" || BindHost == "::") && string.IsNullOrWhiteSpace(PublicHost))
            throw new CnnUserException($"--host {BindHost} listens on every interface: give --public-host / {Env.PublicHost} so other nodes can reach this one");
        if (Threads < 1) throw new CnnUserException($"--threads / {Env.Threads}: {Threads} must be at least 1");
        if (Cpus is not null && Cpus.Count != Threads)
            throw new CnnUserException($"--cpus / {Env.Cpus}: {Cpus.Count} CPUs for {Threads} threads (give one per thread)");
        if (Cpus?.GroupBy(c => c).FirstOrDefault(g => g.Count() > 1) is { } twice)
            throw new CnnUserException($"--cpus / {Env.Cpus}: CPU {twice.Key} is given twice (give each thread a CPU of its own)");
        if (!Directory.Exists(DataDirectory) && File.Exists(DataDirectory))
            throw new CnnUserException($"--data / {Env.Data}: '{DataDirectory}' is a file, expected the directory of the MNIST IDX files");
        if (!CanList(DataDirectory))
            throw new CnnUserException($"--data / {Env.Data}: '{DataDirectory}' cannot be read (permission denied)");
    }
}
