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
        /// <summary>This worker's id (default: host name and process id).</summary>
        public const string WorkerId = "CNN_WORKER_ID";
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
    /// <summary>Worker id.</summary>
    public string WorkerId { get; init; } = $"{Dns.GetHostName()}-{Environment.ProcessId}";

    /// <summary>Parses a seed given as host:port or as a full akka.tcp address into an akka.tcp address.</summary>
    public static string ParseSeed(string seed)
    {
        string s = seed.Trim();
        if (s.StartsWith("akka.tcp://", StringComparison.Ordinal))
        {
            if (!Uri.TryCreate(s.Replace("akka.tcp://", "tcp://", StringComparison.Ordinal), UriKind.Absolute, out Uri? uri) || uri.Port <= 0 || uri.UserInfo != Messages.CnnNode.SystemName)
                throw new CnnUserException($"--seed / {Env.Seeds}: '{seed}' is not an address like akka.tcp://{Messages.CnnNode.SystemName}@host:port");
            return s;
        }
        int colon = s.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(s[(colon + 1)..], out int port) || port is < 1 or > 65535 || Uri.CheckHostName(s[..colon].Trim('[', ']')) == UriHostNameType.Unknown)
            throw new CnnUserException($"--seed / {Env.Seeds}: '{seed}' is not host:port (for example coordinator:4053)");
        return Messages.CnnNode.SeedAddress(s[..colon].Trim('[', ']'), port);
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
        if (!Directory.Exists(DataDirectory) && File.Exists(DataDirectory))
            throw new CnnUserException($"--data / {Env.Data}: '{DataDirectory}' is a file, expected the directory of the MNIST IDX files");
    }
}
