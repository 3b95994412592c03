// Bad configuration of either host ends in one line on stderr that names the flag (and variable) at fault, and
// exit code 2, before anything joins or trains: no seeds, an unparsable address, a certificate file that is
// missing or unusable, a data directory that cannot be read. (The coordinator is the seed node, so it has no
// seeds to get wrong.) Data is valid unless the case is about data, so each case fails for its own reason.
using Cnn.Worker;
using Xunit;

namespace Cnn.MultiNode.Tests;

[Collection(ProcessCollection.Name)]
public sealed class BadConfigurationTests(ClusterRuns runs)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private const string Missing = "/nonexistent/cnn/node.p12";

    public static TheoryData<string, string[], string[], string> WorkerCases => new()
    {
        // case name, arguments, environment KEY=VALUE pairs, a fragment of the error line
        { "no seeds", [], [], $"no seed nodes: give --seed host:port or set {WorkerOptions.Env.Seeds}" },
        { "seed without a port", ["--seed", "coordinator"], [], "--seed / CNN_SEED_NODES: 'coordinator' is not host:port" },
        { "seed of another system", [], [$"{WorkerOptions.Env.Seeds}=akka.tcp://other@10.0.0.1:4053"], "is not an address like akka.tcp://cnn@host:port" },
        { "unparsable bind address", ["--seed", "127.0.0.1:4053", "--host", "no such host!"], [], "--host / CNN_BIND_HOST: 'no such host!' is not a host name or IP address" },
        { "port out of range", ["--seed", "127.0.0.1:4053"], [$"{WorkerOptions.Env.BindPort}=70000"], "--port / CNN_BIND_PORT: 70000 is not a port" },
        { "missing certificate flag", ["--seed", "127.0.0.1:4053", "--tls-cert", Missing], [], $"--tls-cert / CNN_TLS_CERT: '{Missing}': no such file" },
        { "missing certificate variable", ["--seed", "127.0.0.1:4053"], [$"{WorkerOptions.Env.TlsCertificate}={Missing}"], $"--tls-cert / CNN_TLS_CERT: '{Missing}': no such file" },
        { "key without certificate", ["--seed", "127.0.0.1:4053", "--tls-key", "node.key"], [], "--tls-key / CNN_TLS_KEY is set but --tls-cert / CNN_TLS_CERT is not" },
        { "certificate that is not one", ["--seed", "127.0.0.1:4053", "--tls-cert", "DATA/train-labels-idx1-ubyte"], [], "--tls-cert / CNN_TLS_CERT: 'DATA/train-labels-idx1-ubyte' is neither PEM nor a PKCS#12 file" },
        { "data directory that is a file", ["--seed", "127.0.0.1:4053", "--data", "DATA/train-images-idx3-ubyte"], [], "--data / CNN_DATA_DIR: 'DATA/train-images-idx3-ubyte' is a file" },
        { "data directory with damaged files", ["--seed", "127.0.0.1:4053", "--data", "DAMAGED"], [], "DAMAGED/train-images-idx3-ubyte" },
        { "unknown log level flag", ["--seed", "127.0.0.1:4053", "--log-level", "loud"], [], "--log-level / CNN_LOG_LEVEL: 'loud' is not a log level (expected error, warning, info, debug)" },
        { "CPU that is not a number", ["--seed", "127.0.0.1:4053", "--cpus", "0,x"], [], "--cpus / CNN_CPUS: 'x' is not a CPU number (expected a list like 0 or 2,3, one per thread)" },
        { "CPUs not one per thread", ["--seed", "127.0.0.1:4053", "--threads", "2"], [$"{WorkerOptions.Env.Cpus}=0"], "--cpus / CNN_CPUS: 1 CPUs for 2 threads (give one per thread)" },
        { "CPU given twice", ["--seed", "127.0.0.1:4053", "--threads", "2", "--cpus", "1,1"], [], "--cpus / CNN_CPUS: CPU 1 is given twice (give each thread a CPU of its own)" },
        { "unknown log level variable", ["--seed", "127.0.0.1:4053"], [$"{WorkerOptions.Env.LogLevel}=verbose"], "--log-level / CNN_LOG_LEVEL: 'verbose' is not a log level" },
    };

    // Both commands that run a coordinator node for worker processes: `cnn train --workers` and `cnn bench --workers`.
    public static TheoryData<string, string, string[], string[], string> CoordinatorCases()
    {
        var data = new TheoryData<string, string, string[], string[], string>();
        foreach (string command in (string[])["train", "bench"])
        {
            data.Add(command, "unparsable bind address", ["--host", "no such host!"], [], "--host 'no such host!' is not a host name or IP address");
            data.Add(command, "port out of range", ["--port", "70000"], [], "--port 70000 is not a port");
            data.Add(command, "missing certificate flag", ["--tls-cert", Missing], [], $"--tls-cert / CNN_TLS_CERT: '{Missing}': no such file");
            data.Add(command, "missing certificate variable", [], [$"{WorkerOptions.Env.TlsCertificate}={Missing}"], $"--tls-cert / CNN_TLS_CERT: '{Missing}': no such file");
            data.Add(command, "missing CA file", ["--tls-cert", "CERT", "--tls-ca", "/nonexistent/ca.pem"], [], "--tls-ca / CNN_TLS_CA: '/nonexistent/ca.pem': no such file");
            data.Add(command, "data directory that is a file", ["--data", "DATA/train-images-idx3-ubyte"], [], "DATA/train-images-idx3-ubyte");
            data.Add(command, "data directory with damaged files", ["--data", "DAMAGED"], [], "DAMAGED/train-images-idx3-ubyte");
            data.Add(command, "unknown log level variable", [], [$"{WorkerOptions.Env.LogLevel}=loud"], "--log-level / CNN_LOG_LEVEL: 'loud' is not a log level (expected error, warning, info, debug)");
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(WorkerCases))]
    public void The_worker_refuses_bad_configuration_with_one_line_and_exit_code_2(string name, string[] args, string[] environment, string expected)
    {
        using NodeProcess worker = NodeProcess.Start($"worker ({name})", Programs.Worker,
            [.. Substitute(args), .. args.Contains("--data") ? [] : (string[])["--data", runs.DataDirectory]], Environment(environment));

        int code = worker.WaitForExit(Timeout);

        Assert.True(code == 2, $"{name}: exit code {code}\n{worker}");
        string line = Assert.Single(worker.ErrorLines);
        Assert.StartsWith("cnn-worker: ", line);
        Assert.Contains(Substitute([expected])[0], line);
    }

    [Theory]
    [MemberData(nameof(CoordinatorCases))]
    public void The_coordinator_refuses_bad_configuration_with_one_line_and_exit_code_2(string command, string name, string[] args, string[] environment, string expected)
    {
        string outDirectory = runs.Scratch.Path($"bad-{Guid.NewGuid():N}");
        string[] given = Substitute(args);
        using NodeProcess coordinator = NodeProcess.Start($"coordinator ({command}, {name})", Programs.Coordinator,
            [command, "--workers", "1", .. command == "train" ? ["--out", outDirectory, "--max-steps", "1"] : (string[])[],
             .. given.Contains("--port") ? [] : (string[])["--port", TestMaterial.FreePort().ToString()],
             .. given.Contains("--data") ? [] : (string[])["--data", runs.DataDirectory], .. given],
            Environment(environment));

        int code = coordinator.WaitForExit(Timeout);

        Assert.True(code == 2, $"{name}: exit code {code}\n{coordinator}");
        string line = Assert.Single(coordinator.ErrorLines);
        Assert.StartsWith("error: ", line);
        Assert.Contains(Substitute([expected])[0], line);
        Assert.DoesNotContain("listening", coordinator.Out);
    }

    [Fact]
    public void A_port_in_use_is_one_line_naming_the_flag_for_both_hosts_and_leaves_no_run_directory()
    {
        // Held for the whole test, so the port cannot be free when the programs bind it.
        var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        taken.Start();
        try
        {
            string port = ((System.Net.IPEndPoint)taken.LocalEndpoint).Port.ToString();
            foreach (string flag in (string[])["--port", "--data-port"])
            {
                string outDirectory = runs.Scratch.Path($"port-in-use-{Guid.NewGuid():N}");
                using NodeProcess coordinator = NodeProcess.Start($"coordinator ({flag} in use)", Programs.Coordinator,
                    ["train", "--workers", "1", "--host", "127.0.0.1", "--out", outDirectory, "--max-steps", "1", "--data", runs.DataDirectory,
                     .. flag == "--port" ? (string[])["--port", port] : ["--port", TestMaterial.FreePort().ToString(), "--data-port", port]]);

                int code = coordinator.WaitForExit(Timeout);

                Assert.True(code == 2, $"{flag} in use: exit code {code}\n{coordinator}");
                string line = Assert.Single(coordinator.ErrorLines);
                Assert.StartsWith($"error: {(flag == "--port" ? "--host 127.0.0.1 --port" : "--data-port")} {port}: cannot listen on 127.0.0.1", line);
                Assert.Contains("in use", line);
                Assert.DoesNotContain("   at ", coordinator.Out + coordinator.Error);
                Assert.False(Directory.Exists(outDirectory), $"{flag} in use left {outDirectory}");
            }

            using NodeProcess worker = NodeProcess.Start("worker (--port in use)", Programs.Worker,
                ["--seed", "127.0.0.1:4053", "--host", "127.0.0.1", "--port", port, "--data", runs.DataDirectory]);
            Assert.True(worker.WaitForExit(Timeout) == 2, worker.ToString());
            string workerLine = Assert.Single(worker.ErrorLines);
            Assert.StartsWith($"cnn-worker: --host / {WorkerOptions.Env.BindHost} 127.0.0.1, --port / {WorkerOptions.Env.BindPort} {port}: cannot listen on 127.0.0.1:{port}", workerLine);
            Assert.DoesNotContain("   at ", worker.Out + worker.Error);
        }
        finally
        {
            taken.Stop();
        }
    }

    [Fact]
    public void The_coordinator_refuses_a_certificate_outside_a_multi_node_run_but_ignores_the_variables_there()
    {
        string certificate = new TestAuthority("cnn test CA", runs.Scratch.Path("tls-local")).IssuePkcs12("coordinator");
        using NodeProcess flag = NodeProcess.Start("coordinator (--tls-cert, --no-cluster)", Programs.Coordinator,
            ["train", "--no-cluster", "--tls-cert", certificate, "--data", runs.DataDirectory, "--out", runs.Scratch.Path("local-tls"), "--max-steps", "1"]);
        Assert.Equal(2, flag.WaitForExit(Timeout));
        Assert.Contains("--tls-cert applies to a multi-node run (--workers N)", Assert.Single(flag.ErrorLines));

        // A shell that exports CNN_TLS_* for its nodes can still train locally.
        using NodeProcess variable = NodeProcess.Start("coordinator (CNN_TLS_CERT, --no-cluster)", Programs.Coordinator,
            ["train", "--no-cluster", "--threads", "1", "--data", runs.DataDirectory, "--out", runs.Scratch.Path("local-env"), "--max-steps", "1"],
            new Dictionary<string, string> { [WorkerOptions.Env.TlsCertificate] = Missing });
        Assert.True(variable.WaitForExit(ClusterRuns.RunTimeout) == 0, variable.ToString());
    }

    [Fact]
    public void An_unreadable_data_directory_is_refused_by_both_hosts_before_anything_is_fetched()
    {
        // Root reads everything, so as root the programs run as `nobody` (through runuser); the directory would
        // otherwise look empty and the hosts would go and download MNIST into it.
        if (OperatingSystem.IsWindows()) return; // POSIX permissions; the multi-node tests run on Linux
        string[] launcher = [];
        if (System.Environment.IsPrivilegedProcess)
        {
            if (!File.Exists("/usr/sbin/runuser") && !File.Exists("/sbin/runuser")) return;
            launcher = ["runuser", "-u", "nobody", "--", "env", "HOME=/tmp", "DOTNET_CLI_HOME=/tmp"];
        }
        string dir = runs.Scratch.Path("unreadable");
        Directory.CreateDirectory(dir);
        File.SetUnixFileMode(runs.Scratch.Root, (UnixFileMode)0b111_101_101);
        File.SetUnixFileMode(dir, UnixFileMode.None);
        using NodeProcess worker = NodeProcess.Start("worker (unreadable data)", Programs.Worker, ["--seed", "127.0.0.1:4053", "--data", dir], launcher: launcher);
        using NodeProcess coordinator = NodeProcess.Start("coordinator (unreadable data)", Programs.Coordinator,
            ["train", "--workers", "1", "--data", dir, "--out", Path.Combine("/tmp", $"cnn-unreadable-{Guid.NewGuid():N}")], launcher: launcher);
        int workerCode, coordinatorCode;
        try
        {
            workerCode = worker.WaitForExit(Timeout);
            coordinatorCode = coordinator.WaitForExit(Timeout);
        }
        finally
        {
            File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        Assert.True(workerCode == 2, worker.ToString());
        Assert.True(coordinatorCode == 2, coordinator.ToString());
        Assert.Equal($"cnn-worker: --data / CNN_DATA_DIR: '{dir}' cannot be read (permission denied)", Assert.Single(worker.ErrorLines));
        Assert.Equal($"error: --data {dir}: the directory cannot be read (permission denied)", Assert.Single(coordinator.ErrorLines));
        Assert.DoesNotContain("fetching", worker.Out);
    }

    // DATA: the valid dataset; DAMAGED: a directory of the four file names holding garbage; CERT: a valid
    // certificate (for cases about the other files).
    private string[] Substitute(string[] values) => values.Select(v => v
        .Replace("DATA/", runs.DataDirectory + "/", StringComparison.Ordinal)
        .Replace("DAMAGED", DamagedData(), StringComparison.Ordinal)
        .Replace("CERT", v == "CERT" ? Certificate() : "CERT", StringComparison.Ordinal)).ToArray();

    private string DamagedData()
    {
        string dir = runs.Scratch.Path("damaged");
        if (!Directory.Exists(dir))
        {
            Directory.CreateDirectory(dir);
            foreach (string file in (string[])["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"])
                File.WriteAllText(Path.Combine(dir, file), "this is not an IDX file");
        }
        return dir;
    }

    private string Certificate()
    {
        string path = runs.Scratch.Path("tls-bad/coordinator.p12");
        return File.Exists(path) ? path : new TestAuthority("cnn test CA", runs.Scratch.Path("tls-bad")).IssuePkcs12("coordinator");
    }

    private static Dictionary<string, string> Environment(string[] pairs) =>
        pairs.Select(p => p.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);
}
