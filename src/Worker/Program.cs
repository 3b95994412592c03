// The worker host: `dotnet Cnn.Worker.dll --seed coordinator:4053 [--host H --port P --public-host N --data DIR
// --threads T --cpus C,C --id ID --log-level L] [--tls-cert F [--tls-key F] [--tls-password P] [--tls-ca F]]`, or the same through CNN_*
// environment variables (docker-compose passes those; a flag wins). A certificate turns on mutual TLS for
// remoting and the data plane, with the cluster's CA as the only trust (see Messages/NodeTls.cs). Loads its
// own copy of the data, joins the cluster through the seed nodes (Akka retries the join; the worker actor
// retries its registration with backoff and logs what it waits for), then computes until it is stopped.
// When the cluster downs the node (its coordinator was lost) or removes it (a member quarantined it, or a restarted
// coordinator answers NotAMember), it starts a new ActorSystem and joins again, with backoff, so a coordinator
// restarted with --resume gets its workers back without a hand on them, and a worker frozen long enough to be
// downed is back at work seconds after it wakes.
// Exit codes: 0 stopped, 2 bad configuration or data, 3 refused by the coordinator (wrong data or numerics) or
// by TLS (Akka shuts a node down when a TLS handshake it started fails).
using System.CommandLine;
using Akka.Actor;
using Akka.Hosting;
using Akka.Remote;
using Cnn.Engine;
using Cnn.Engine.Data;
using Cnn.Engine.Kernels;
using Cnn.Messages;
using Cnn.Worker;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

try
{
    return await WorkerProgram.RunAsync(args);
}
catch (CnnUserException e)
{
    Console.Error.WriteLine($"cnn-worker: {e.Message}");
    return 2;
}

/// <summary>The worker process.</summary>
internal static class WorkerProgram
{
    public static async Task<int> RunAsync(string[] args)
    {
        static string? Env(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? v : null;
        var seed = new Option<string[]>("--seed") { Description = $"Seed node host:port, repeatable; the first is the coordinator [{WorkerOptions.Env.Seeds}]", AllowMultipleArgumentsPerToken = true };
        var host = new Option<string?>("--host") { Description = $"Address to bind [{WorkerOptions.Env.BindHost}]" };
        var port = new Option<string?>("--port") { Description = $"Port to bind, 0 for any [{WorkerOptions.Env.BindPort}]" };
        var publicHost = new Option<string?>("--public-host") { Description = $"Host name other nodes reach this one by [{WorkerOptions.Env.PublicHost}]" };
        var data = new Option<string?>("--data") { Description = $"Directory of the MNIST IDX files [{WorkerOptions.Env.Data}]" };
        var threads = new Option<string?>("--threads") { Description = $"Compute threads [{WorkerOptions.Env.Threads}]" };
        var cpus = new Option<string?>("--cpus") { Description = $"CPUs to pin the compute threads to, one per thread, like 0 or 2,3 (Linux; default: not pinned) [{WorkerOptions.Env.Cpus}]" };
        var id = new Option<string?>("--id") { Description = $"Worker id [{WorkerOptions.Env.WorkerId}]" };
        var tlsCert = new Option<string?>("--tls-cert") { Description = $"This node's certificate, PEM or PKCS#12; turns mutual TLS on [{WorkerOptions.Env.TlsCertificate}]" };
        var tlsKey = new Option<string?>("--tls-key") { Description = $"PEM private key of the certificate, when not in the certificate file [{WorkerOptions.Env.TlsKey}]" };
        var tlsPassword = new Option<string?>("--tls-password") { Description = $"Password of the PKCS#12 file or the encrypted key [{WorkerOptions.Env.TlsPassword}]" };
        var tlsCa = new Option<string?>("--tls-ca") { Description = $"CA certificates to trust (default: those in the certificate file) [{WorkerOptions.Env.TlsAuthority}]" };
        var logLevel = new Option<string?>("--log-level") { Description = $"Akka log level on standard error: {string.Join(", ", WorkerOptions.LogLevelNames)} (default: info) [{WorkerOptions.Env.LogLevel}]" };
        var root = new RootCommand("cnn-worker: a Cnn.Distributed worker node") { seed, host, port, publicHost, data, threads, cpus, id, tlsCert, tlsKey, tlsPassword, tlsCa, logLevel };
        ParseResult parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            Console.Error.WriteLine($"cnn-worker: {parse.Errors[0].Message}");
            return 2;
        }
        if (parse.Action is not null && parse.GetResult(seed) is null && args.Any(a => a is "--help" or "-h" or "-?" or "--version"))
            return await parse.InvokeAsync();

        string[] seeds = parse.GetValue(seed) is { Length: > 0 } given ? given : (Env(WorkerOptions.Env.Seeds)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) ?? []);
        NodeTlsFiles? tlsFiles = WorkerOptions.TlsFiles(parse.GetValue(tlsCert) ?? Env(WorkerOptions.Env.TlsCertificate), parse.GetValue(tlsKey) ?? Env(WorkerOptions.Env.TlsKey),
            parse.GetValue(tlsPassword) ?? Env(WorkerOptions.Env.TlsPassword), parse.GetValue(tlsCa) ?? Env(WorkerOptions.Env.TlsAuthority));
        var options = new WorkerOptions
        {
            Seeds = seeds.Select(s => WorkerOptions.ParseSeed(s, tlsFiles is not null)).ToList(),
            BindHost = parse.GetValue(host) ?? Env(WorkerOptions.Env.BindHost) ?? "127.0.0.1",
            BindPort = Int(parse.GetValue(port) ?? Env(WorkerOptions.Env.BindPort), 0, $"--port / {WorkerOptions.Env.BindPort}"),
            PublicHost = parse.GetValue(publicHost) ?? Env(WorkerOptions.Env.PublicHost),
            DataDirectory = parse.GetValue(data) ?? Env(WorkerOptions.Env.Data) ?? MnistFetcher.DefaultCacheDirectory,
            Threads = Int(parse.GetValue(threads) ?? Env(WorkerOptions.Env.Threads), Environment.ProcessorCount, $"--threads / {WorkerOptions.Env.Threads}"),
            Cpus = WorkerOptions.ParseCpus(parse.GetValue(cpus) ?? Env(WorkerOptions.Env.Cpus), $"--cpus / {WorkerOptions.Env.Cpus}"),
            WorkerId = parse.GetValue(id) ?? Env(WorkerOptions.Env.WorkerId) ?? $"{System.Net.Dns.GetHostName()}-{Environment.ProcessId}",
            Tls = tlsFiles,
            LogLevel = WorkerOptions.ParseLogLevel(parse.GetValue(logLevel) ?? Env(WorkerOptions.Env.LogLevel) ?? "info", $"--log-level / {WorkerOptions.Env.LogLevel}"),
        };
        options.Validate();
        NodeTls? tls = WorkerOptions.LoadTls(options.Tls);

        if (!MnistFetcher.HasAll(options.DataDirectory))
        {
            Console.WriteLine($"cnn-worker: MNIST not found in {options.DataDirectory}; fetching it");
            await MnistFetcher.FetchAsync(options.DataDirectory, Console.Out, CancellationToken.None);
        }
        var (train, test) = MnistDataset.LoadDirectory(options.DataDirectory);
        var workerData = new WorkerData(new MnistSource(train), new MnistSource(test), WorkerDataHash.Of(train.Sha256(), test.Sha256()));

        Akka.Actor.Address coordinator = Akka.Actor.Address.Parse(options.Seeds[0]);
        var nodeOptions = new CnnNodeOptions
        {
            Role = CnnNode.WorkerRole, BindHost = options.BindHost, BindPort = options.BindPort, PublicHost = options.PublicHost, SeedNodes = options.Seeds, Tls = tls,
            LogLevel = options.LogLevel,
        };
        var stopping = new TaskCompletionSource();
        Console.CancelKeyPress += (_, e) => { e.Cancel = true; stopping.TrySetResult(); };
        AppDomain.CurrentDomain.ProcessExit += (_, _) => stopping.TrySetResult();
        // SIGTERM (docker stop, scaling down) is a request to stop, not a lost cluster: seen here before the
        // runtime's own handling shuts the ActorSystem down.
        using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, context =>
        {
            context.Cancel = true; // the loop below stops the node and returns 0
            stopping.TrySetResult();
        });
        var backoff = TimeSpan.FromSeconds(1);
        // One ActorSystem per membership: when the cluster downs this node (the coordinator was lost and the Split
        // Brain Resolver kept the oldest side), the system ends by itself and a new one joins through the seeds
        // again, so a restarted coordinator (--resume) finds its workers without anyone restarting them.
        System.Diagnostics.Stopwatch? bindFailing = null; // since the first of the current run of failed binds
        for (bool first = true; ; first = false)
        {
            using IHost node = CnnNode.CreateHost(nodeOptions);
            try
            {
                await CnnNode.StartAsync(node, nodeOptions);
                bindFailing = null;
            }
            catch (NodeBindException e)
            {
                // At start a taken port is a configuration mistake. When joining again, the previous node of this
                // process may still hold its fixed port (docker-compose gives every worker 4053) for a moment.
                bindFailing ??= System.Diagnostics.Stopwatch.StartNew();
                if (first || bindFailing.Elapsed > TimeSpan.FromSeconds(30))
                    throw new CnnUserException($"--host / {WorkerOptions.Env.BindHost} {options.BindHost}, --port / {WorkerOptions.Env.BindPort} {options.BindPort}: {e.Message}", e);
                Console.WriteLine($"cnn-worker {options.WorkerId}: {e.Message}; trying again in {backoff.TotalSeconds:0}s");
                if (await Task.WhenAny(Task.Delay(backoff), stopping.Task) == stopping.Task) return 0;
                continue;
            }
            var system = node.Services.GetRequiredService<ActorSystem>();
            var refused = new TaskCompletionSource<WorkerRefused>();
            var removed = new TaskCompletionSource<string>();
            var listener = system.ActorOf(Props.Create(() => new NodeEventListener(refused, removed)));
            system.EventStream.Subscribe(listener, typeof(WorkerRefused));
            system.EventStream.Subscribe(listener, typeof(ThisActorSystemQuarantinedEvent));
            system.EventStream.Subscribe(listener, typeof(NotAMember));
            var settings = new WorkerSettings(options.WorkerId, options.Threads, coordinator, Numerics.Fingerprint, WorkerActor.ProtocolVersion, tls, options.Cpus);
            system.ActorOf(WorkerActor.Props(settings, workerData), "worker");
            Console.WriteLine($"cnn-worker {options.WorkerId}: {options.Threads} threads{(options.Cpus is { } pinned ? $" on CPUs {string.Join(",", pinned)}" : "")}, data {options.DataDirectory}, seeds {string.Join(", ", options.Seeds)}, "
                + (tls is null ? "TLS off" : $"mutual TLS as {tls.Description}"));

            var started = System.Diagnostics.Stopwatch.StartNew();
            Task finished = await Task.WhenAny(refused.Task, stopping.Task, removed.Task, system.WhenTerminated);
            if (finished == refused.Task)
            {
                Console.Error.WriteLine($"cnn-worker {options.WorkerId}: refused by the coordinator: {refused.Task.Result.Reason}");
                await node.StopAsync(TimeSpan.FromSeconds(5));
                return 3;
            }
            string? reason = CoordinatedShutdown.Get(system).ShutdownReason?.GetType().Name;
            if (finished == removed.Task && !stopping.Task.IsCompleted)
            {
                // The node cannot leave gracefully (nobody hears it): it downs itself, which ends the ActorSystem at once.
                reason = removed.Task.Result;
                var cluster = Akka.Cluster.Cluster.Get(system);
                cluster.Down(cluster.SelfAddress);
                await Task.WhenAny(system.WhenTerminated, stopping.Task, Task.Delay(TimeSpan.FromSeconds(10)));
            }
            if (finished == stopping.Task || stopping.Task.IsCompleted || reason == "ClrExitReason")
            {
                await node.StopAsync(TimeSpan.FromSeconds(10));
                return 0;
            }
            if (reason == "TlsHandshakeFailureReason")
            {
                Console.Error.WriteLine($"cnn-worker {options.WorkerId}: the TLS handshake with the cluster failed (see the warning above: the certificates are not from the same CA?)");
                return 3;
            }
            if (started.Elapsed > TimeSpan.FromSeconds(30)) backoff = TimeSpan.FromSeconds(1);
            Console.WriteLine($"cnn-worker {options.WorkerId}: left the cluster ({reason ?? "the node stopped"}); joining again in {backoff.TotalSeconds:0}s");
            await node.StopAsync(TimeSpan.FromSeconds(5));
            if (await Task.WhenAny(Task.Delay(backoff), stopping.Task) == stopping.Task) return 0;
            backoff = TimeSpan.FromSeconds(Math.Min(backoff.TotalSeconds * 2, 10));
        }
    }

    private static int Int(string? text, int fallback, string what) =>
        text is null ? fallback : int.TryParse(text, out int v) ? v : throw new CnnUserException($"{what}: '{text}' is not a whole number");

    // The node's events that end its membership: the coordinator refused the worker, or the node is no longer in the
    // coordinator's cluster. A member quarantined it, which is final for this ActorSystem (its peers drop everything
    // from it) and how a node the cluster removed while it could not hear (a frozen process: the coordinator downs a
    // worker's node unreachable for CnnNode.UnreachableWorkerDownAfter) first learns of it. Or the coordinator answered
    // its registration NotAMember: a coordinator restarted with --resume is a new cluster, which the old node cannot
    // join. Either way this comes seconds before the node's own Split Brain Resolver would down it.
    private sealed class NodeEventListener : ReceiveActor
    {
        public NodeEventListener(TaskCompletionSource<WorkerRefused> refused, TaskCompletionSource<string> removed)
        {
            Receive<WorkerRefused>(m => refused.TrySetResult(m));
            Receive<ThisActorSystemQuarantinedEvent>(m => removed.TrySetResult($"{m.RemoteAddress} quarantined it: the cluster removed this node"));
            Receive<NotAMember>(m => removed.TrySetResult($"the coordinator does not take it: {m.Reason}"));
        }
    }
}
