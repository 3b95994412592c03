// The options of a coordinator node that waits for worker processes, shared by `cnn train --workers N` and
// `cnn bench --workers N`: the address it binds (and the one workers reach it by), the tensor data plane's port,
// how long to wait for the workers, and mutual TLS from the flags or, in multi-node mode only, from the CNN_TLS_*
// variables the worker host reads too (a deployment sets them once for every node). Elsewhere the variables are
// ignored, so a shell that exports them can still train locally. --log-level (CNN_LOG_LEVEL in multi-node mode)
// applies to the local cluster's nodes as well.
using System.CommandLine;
using Cnn.Coordinator.Runs;
using Cnn.Worker;

namespace Cnn.Coordinator.Commands;

/// <summary>The multi-node options of a command (see file header).</summary>
internal sealed class MultiNodeOptions
{
    /// <summary>The environment variables read in multi-node mode; flags win over them.</summary>
    public static IReadOnlyList<string> EnvironmentVariables { get; } =
        [WorkerOptions.Env.TlsCertificate, WorkerOptions.Env.TlsKey, WorkerOptions.Env.TlsPassword, WorkerOptions.Env.TlsAuthority, WorkerOptions.Env.LogLevel];

    private readonly Option<int?> _workers;
    private readonly Option<string> _host = new("--host") { Description = "Multi-node: address the coordinator binds", DefaultValueFactory = _ => "127.0.0.1" };
    private readonly Option<int> _port = new("--port") { Description = "Multi-node: port the coordinator binds", DefaultValueFactory = _ => 4053 };
    private readonly Option<string?> _publicHost = new("--public-host") { Description = "Multi-node: host name workers reach the coordinator by" };
    private readonly Option<double> _joinTimeout = new("--join-timeout") { Description = "Seconds to wait for the workers", DefaultValueFactory = _ => 60 };
    private readonly Option<int> _dataPort = new("--data-port") { Description = "Multi-node: port of the tensor data plane", DefaultValueFactory = _ => 4054 };
    private readonly Option<string?>[] _tls =
    [
        new("--tls-cert") { Description = $"Multi-node: this node's certificate, PEM or PKCS#12; turns mutual TLS on [{WorkerOptions.Env.TlsCertificate}]" },
        new("--tls-key") { Description = $"Multi-node: PEM private key of the certificate, when not in the certificate file [{WorkerOptions.Env.TlsKey}]" },
        new("--tls-password") { Description = $"Multi-node: password of the PKCS#12 file or the encrypted key [{WorkerOptions.Env.TlsPassword}]" },
        new("--tls-ca") { Description = $"Multi-node: CA certificates to trust (default: those in the certificate file) [{WorkerOptions.Env.TlsAuthority}]" },
    ];

    private readonly Option<string?> _logLevel = new("--log-level")
    {
        Description = $"Cluster modes: Akka log level of the nodes, on standard error: {string.Join(", ", WorkerOptions.LogLevelNames)} (default: warning) [{WorkerOptions.Env.LogLevel}, multi-node only]",
    };

    /// <summary>The options, with <paramref name="workersDescription"/> for --workers.</summary>
    public MultiNodeOptions(string workersDescription) => _workers = new Option<int?>("--workers") { Description = workersDescription };

    /// <summary>Every option, to add to a command.</summary>
    public IEnumerable<Option> All => [_workers, _host, _port, _publicHost, _joinTimeout, _dataPort, .. _tls, _logLevel];

    /// <summary>--workers, or null when not given (not multi-node mode).</summary>
    public int? Workers(ParseResult parse) => parse.GetValue(_workers);

    /// <summary><paramref name="settings"/> with the multi-node values of <paramref name="parse"/>.</summary>
    public TrainSettings ReadInto(TrainSettings settings, ParseResult parse)
    {
        static string? Env(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? v : null;
        bool multiNode = Workers(parse) is not null;
        string?[] tls = _tls.Select((o, i) => parse.GetValue(o) ?? (multiNode ? Env(EnvironmentVariables[i]) : null)).ToArray();
        return settings with
        {
            Workers = Workers(parse),
            Host = parse.GetValue(_host)!,
            Port = parse.GetValue(_port),
            PublicHost = parse.GetValue(_publicHost),
            JoinTimeoutSeconds = parse.GetValue(_joinTimeout),
            DataPort = parse.GetValue(_dataPort),
            Tls = WorkerOptions.TlsFiles(tls[0], tls[1], tls[2], tls[3]),
            LogLevel = parse.GetValue(_logLevel) ?? (multiNode ? Env(WorkerOptions.Env.LogLevel) : null),
        };
    }
}
