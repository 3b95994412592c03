// A coordinator process and two worker processes on loopback addresses train a fixed number of steps and end
// with exactly the weights of the single-process run: the exactness contract of DESIGN.md across real process
// boundaries, over Akka.Remote plus the TCP data plane, with and without mutual TLS. deploy/local-cluster.sh,
// the compose topology as processes, gives the same bits.
using System.Diagnostics;
using Xunit;

namespace Cnn.MultiNode.Tests;

[Collection(ProcessCollection.Name)]
public sealed class MultiProcessTrainingTests(ClusterRuns runs)
{
    [Fact]
    public void A_coordinator_and_two_worker_processes_end_with_the_weights_of_the_no_cluster_run()
    {
        string reference = runs.ReferenceWeightsSha256;
        string outDirectory = runs.Scratch.Path("cluster");
        using NodeProcess coordinator = runs.StartCoordinator(outDirectory, workers: 2, out int port, extra: ["--log-level", "info"]);
        using NodeProcess worker1 = runs.StartWorker(1, port);
        using NodeProcess worker2 = runs.StartWorker(2, port);

        int code = coordinator.WaitForExit(ClusterRuns.RunTimeout);

        Assert.True(code == 0, $"the coordinator exited with {code}\n{coordinator}\n{worker1}\n{worker2}");
        var run = ClusterRuns.RunJson(outDirectory);
        Assert.Equal(reference, run.GetProperty("weightsSha256").GetString());
        Assert.Equal(20, run.GetProperty("steps").GetInt32());
        Assert.Equal(2, run.GetProperty("workers").GetInt32());
        var cluster = run.GetProperty("cluster");
        Assert.StartsWith("tcp data plane", cluster.GetProperty("transport").GetString());
        // The weights down and one gradient up a step; with work stealing, some steps carry a stolen leaf and the
        // owner's share in smaller subtrees, each a whole tensor too.
        Assert.InRange(cluster.GetProperty("tensorBytesPerStepPerWorker").GetInt64(), 2 * 373_288, 4 * 373_288);
        Assert.InRange(cluster.GetProperty("stolenLeavesPerStep").GetDouble(), 0, 1);
        Assert.Contains("[cluster] worker worker-1 joined", coordinator.Out);
        Assert.Contains("[cluster] worker worker-2 joined", coordinator.Out);
        // --log-level info: the node's log, to its last line, goes to standard error, never among the results.
        Assert.Contains("Worker worker-1 joined from akka.tcp://", coordinator.Error);
        Assert.DoesNotMatch(@"(?m)^\[(DEBUG|INFO|WARNING|ERROR)\]", coordinator.Out);
    }

    [Fact]
    public void A_worker_with_other_kernels_is_refused_and_admitted_with_allow_mixed_numerics()
    {
        // A worker process with narrower vectors than this machine's default runs other kernel paths, so it
        // reports another numerics fingerprint: 128-bit vectors (ARM64's width) where this machine has wider ones,
        // else no SIMD at all.
        var otherKernels = System.Numerics.Vector<float>.Count > 4
            ? new Dictionary<string, string> { ["DOTNET_PreferredVectorBitWidth"] = "128" }
            : new Dictionary<string, string> { ["DOTNET_EnableHWIntrinsic"] = "0" };

        // By default the coordinator refuses it, and the worker exits with 3 and says why.
        using (NodeProcess strict = runs.StartCoordinator(runs.Scratch.Path("mixed-refused"), workers: 1, out int strictPort))
        using (NodeProcess refused = runs.StartWorker(2, strictPort, otherKernels))
        {
            Assert.True(refused.WaitForExit(ClusterRuns.RunTimeout) == 3, $"the worker was not refused\n{strict}\n{refused}");
            Assert.Contains("numerics fingerprint mismatch", refused.Error);
            Assert.True(strict.WaitForOutput("[cluster] refused worker worker-2: numerics fingerprint mismatch", TimeSpan.FromSeconds(10)), strict.ToString());
        }

        // With --allow-mixed-numerics it trains beside a worker of this machine's kernels, and the run says so.
        string outDirectory = runs.Scratch.Path("mixed");
        using NodeProcess coordinator = runs.StartCoordinator(outDirectory, workers: 2, out int port, ["--allow-mixed-numerics"]);
        using NodeProcess worker1 = runs.StartWorker(1, port);
        using NodeProcess worker2 = runs.StartWorker(2, port, otherKernels);

        int code = coordinator.WaitForExit(ClusterRuns.RunTimeout);

        Assert.True(code == 0, $"the coordinator exited with {code}\n{coordinator}\n{worker1}\n{worker2}");
        Assert.Contains("[cluster] worker worker-2 computes with other kernels", coordinator.Out);
        Assert.DoesNotContain("worker worker-1 computes with other kernels", coordinator.Out);
        var run = ClusterRuns.RunJson(outDirectory);
        Assert.Equal(20, run.GetProperty("steps").GetInt32());
        var numerics = run.GetProperty("workerStats").EnumerateArray().ToDictionary(w => w.GetProperty("id").GetString()!, w => w.GetProperty("numerics").GetString());
        Assert.Equal(run.GetProperty("machine").GetProperty("numerics").GetString(), numerics["worker-1"]);
        Assert.NotEqual(numerics["worker-1"], numerics["worker-2"]);
        Assert.True(run.GetProperty("workerStats").EnumerateArray().All(w => w.GetProperty("images").GetInt64() > 0), "both workers computed");
    }

    [Fact]
    public void A_cluster_with_mutual_tls_trains_to_the_same_weights_with_pkcs12_and_pem_certificates()
    {
        string reference = runs.ReferenceWeightsSha256;
        // Certificates as a user makes them, with deploy/certs.sh.
        string certificates = TestMaterial.DeployCertificates(runs.Scratch.Path("tls-ok"), "coordinator", "worker-1", "worker-2");
        string coordinatorCertificate = Path.Combine(certificates, "coordinator.p12");
        string worker1Certificate = Path.Combine(certificates, "worker-1.p12");
        (string worker2Certificate, string worker2Key) = (Path.Combine(certificates, "worker-2.pem"), Path.Combine(certificates, "worker-2.key"));
        string caPem = Path.Combine(certificates, "ca.pem");
        string outDirectory = runs.Scratch.Path("cluster-tls");

        // The coordinator from its flag, the workers from the variables docker-compose.tls.yml sets: a PKCS#12
        // bundle alone, and PEM certificate, key and CA.
        using NodeProcess coordinator = runs.StartCoordinator(outDirectory, workers: 2, out int port, ["--tls-cert", coordinatorCertificate]);
        using NodeProcess worker1 = runs.StartWorker(1, port, new Dictionary<string, string> { ["CNN_TLS_CERT"] = worker1Certificate });
        using NodeProcess worker2 = runs.StartWorker(2, port, new Dictionary<string, string>
        {
            ["CNN_TLS_CERT"] = worker2Certificate, ["CNN_TLS_KEY"] = worker2Key, ["CNN_TLS_CA"] = caPem,
        });

        int code = coordinator.WaitForExit(ClusterRuns.RunTimeout);

        Assert.True(code == 0, $"the coordinator exited with {code}\n{coordinator}\n{worker1}\n{worker2}");
        var run = ClusterRuns.RunJson(outDirectory);
        Assert.Equal(reference, run.GetProperty("weightsSha256").GetString());
        Assert.StartsWith("tls data plane", run.GetProperty("cluster").GetProperty("transport").GetString());
        Assert.Contains("akka.ssl.tcp://cnn@127.0.0.1:", coordinator.Out);
        Assert.Contains("mutual TLS as CN=worker-2", worker2.Out);
    }

    [Fact]
    public async Task The_local_cluster_script_runs_the_compose_topology_as_processes_and_exits_with_the_coordinators_code()
    {
        string reference = runs.ReferenceWeightsSha256;
        string outDirectory = runs.Scratch.Path("script");
        await RunScriptAsync(["--workers", "2", "--threads-per-worker", "1", "--no-build", "--", .. runs.TrainOptions, "--out", outDirectory]);

        Assert.Equal(reference, ClusterRuns.RunJson(outDirectory).GetProperty("weightsSha256").GetString());
        Assert.True(File.Exists(Path.Combine(outDirectory, "logs", "worker-1.log")) && File.Exists(Path.Combine(outDirectory, "logs", "worker-2.log")));
        // Pinned, where each of the two threads can have a CPU of its own: worker 2 on the second CPU this process may use.
        IReadOnlyList<int>? allowed = Cnn.Engine.Training.ThreadAffinity.AllowedCpus();
        string worker2 = File.ReadAllText(Path.Combine(outDirectory, "logs", "worker-2.log"));
        Assert.Contains(allowed is { Count: >= 2 } ? $"cnn-worker worker-2: 1 threads on CPUs {allowed[1]}," : "cnn-worker worker-2: 1 threads,", worker2);
        // and run.json says so: the CPUs each worker process registered with.
        var cpus = ClusterRuns.RunJson(outDirectory).GetProperty("workerStats").EnumerateArray().ToDictionary(
            w => w.GetProperty("id").GetString()!, w => w.GetProperty("cpus") is { ValueKind: System.Text.Json.JsonValueKind.Array } list ? string.Join(",", list.EnumerateArray()) : "null");
        Assert.Equal(allowed is { Count: >= 2 } ? $"{allowed[0]}|{allowed[1]}" : "null|null", $"{cpus["worker-1"]}|{cpus["worker-2"]}");
    }

    [Theory]
    [InlineData(new[] { "--workers", "2", "--pin-threads", "maybe" }, "local-cluster.sh: --pin-threads 'maybe' must be on or off")]
    [InlineData(new[] { "--workers", "2", "--threads-per-worker", "0" }, "local-cluster.sh: --threads-per-worker 0 is not a positive number")]
    [InlineData(new[] { "--workers", "2", "--", "--no-cluster" }, "local-cluster.sh: '--no-cluster' is set by this script")]
    public async Task The_local_cluster_script_refuses_bad_options_with_one_line_before_it_starts_anything(string[] args, string expected)
    {
        var (code, output, errors) = await StartScriptAsync(args);

        Assert.Equal(2, code);
        Assert.Equal("", output);
        Assert.StartsWith(expected, Assert.Single(errors.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
    }

    // `--bench`: the coordinator runs `cnn bench --workers 2` on the same topology. One JSON object, alone on the
    // script's standard output, with the cluster of two worker processes, --no-cluster on their two threads in the
    // same process, the same weights after the same steps on both sides, and the per-repeat figures behind the ratio:
    // as many alternating pairs as --repeats asks for, the ratio the median of theirs.
    [Fact]
    public async Task The_local_cluster_script_benchmarks_the_process_topology_against_no_cluster_in_one_run()
    {
        string output = await RunScriptAsync(["--bench", "--workers", "2", "--threads-per-worker", "1", "--pin-threads", "off", "--no-build", "--", "--json", "--repeats", "3",
            "--data", runs.DataDirectory]);

        using var result = System.Text.Json.JsonDocument.Parse(output); // nothing else on standard output
        var r = result.RootElement;
        Assert.Equal("coordinator and 2 worker processes", r.GetProperty("topology").GetString());
        Assert.Equal((2, 1, 2), (r.GetProperty("workers").GetInt32(), r.GetProperty("threadsPerWorker").GetInt32(), r.GetProperty("threads").GetInt32()));
        Assert.True(r.GetProperty("sameWeights").GetBoolean(), "the cluster and --no-cluster sides ended with different weights");
        double[] cluster = r.GetProperty("training").GetProperty("runs").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        double[] local = r.GetProperty("noClusterTraining").GetProperty("runs").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        Assert.Equal(3, cluster.Length);
        Assert.Equal(3, local.Length);
        Assert.Equal(3, r.GetProperty("training").GetProperty("repeats").GetInt32());
        double[] ratios = cluster.Zip(local, (c, l) => c / l).Order().ToArray();
        Assert.Equal(ratios[1], r.GetProperty("ratio").GetDouble(), 12);
        Assert.StartsWith("tcp data plane", r.GetProperty("cluster").GetProperty("transport").GetString());
        Assert.InRange(r.GetProperty("cluster").GetProperty("tensorBytesPerStepPerWorker").GetInt64(), 2 * 373_288, 4 * 373_288);
    }

    // Runs deploy/local-cluster.sh with `args` and none of the caller's CNN_* variables; asserts that it exits with 0
    // within the run timeout and returns its standard output.
    private static async Task<string> RunScriptAsync(string[] args)
    {
        var (code, output, errors) = await StartScriptAsync(args);
        Assert.True(code == 0, $"local-cluster.sh {string.Join(' ', args)}: exit {code?.ToString() ?? "none (killed)"}\n{output}\n{errors}");
        return output;
    }

    // Runs deploy/local-cluster.sh with `args` and none of the caller's CNN_* variables: its exit code (null when
    // it did not end within the run timeout and was killed), standard output and standard error.
    private static async Task<(int? Code, string Output, string Errors)> StartScriptAsync(string[] args)
    {
        var info = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in (string[])[Programs.File("deploy/local-cluster.sh"), .. args]) info.ArgumentList.Add(a);
        foreach (string key in info.Environment.Keys.Where(k => k.StartsWith("CNN_", StringComparison.Ordinal)).ToList()) info.Environment.Remove(key);
        EnsureReleaseBuildFor(info);
        using var script = Process.Start(info)!;
        Task<string> stdout = script.StandardOutput.ReadToEndAsync(), stderr = script.StandardError.ReadToEndAsync();

        bool exited = script.WaitForExit(ClusterRuns.RunTimeout);
        if (!exited) script.Kill(entireProcessTree: true);

        string output = await stdout, errors = await stderr;
        return (exited ? script.ExitCode : null, output, errors);
    }

    // The script runs the Release build, as its users do. A Release test run has just built it; a Debug one
    // lets the script build it when it is missing or older than the sources.
    private static void EnsureReleaseBuildFor(ProcessStartInfo info)
    {
        if (Programs.Configuration != "Release") info.ArgumentList.Remove("--no-build");
    }
}
