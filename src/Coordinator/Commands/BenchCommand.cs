// `cnn bench [--threads N] [--json] [--model M] [--data DIR] [--repeats R]`: the engine's throughput as the project
// measures it.
//   training:  LocalTrainer.Step at batch 64 (forward, backward, tree reduction and Adam), 20 warm-up steps, then
//              the median of 5 repeats (--repeats) of 60 steps, in images/s;
//   inference: LeafComputer.Predict on 1,000 images, one warm-up call, then the median of 5 calls;
//   memory:    peak resident set (VmHWM from /proc/self/status) and the managed heap after the runs.
// With --local-workers N the same figures are measured through an in-process cluster of N workers
// (--threads-per-worker T each, default 1): training through the coordinator, the data plane and the parameter
// server with the next step sent ahead as `cnn train` does, inference as a distributed evaluation of 1,000 test
// images (all of them when the test set is smaller). In the same run and alternating repeat by repeat (9 pairs of 60
// steps, or --repeats; more pairs narrow the median on a host whose speed drifts within a run), --no-cluster with N
// x T threads is measured too, and the median of the per-repeat ratios (each cluster repeat against the --no-cluster
// repeat right after it) is printed, with a distribution-free 95% confidence interval of that median
// (MedianInterval; from 6 pairs on), the cluster's step-time split and bytes per step over the measured repeats, and
// the process's CPU time per step of each path (every thread, user and kernel): what the cluster's exchange costs in
// CPU beside the same computation, which on two cores is time the computation does not get. It drifts with the
// host's speed as the ratio does (docs/performance.md, thirty-third session). Both paths first warm up, in
// alternation, for at least 200 steps and then until two rounds of 50 steps of each in a row take less than 10 ms of
// JIT compilation (at most 2,000 steps each): a cluster process JITs Akka and the data plane at the start, and for
// its first 5 to 10 seconds the runtime's background recompilation takes 25 to 40% of a 2-core machine (measured per
// thread). 200 steps were not enough: 1.4 s of compilation still fell into the repeats. The figure is the steady
// state a run of minutes sees (the first-step time is measured separately); the output says how long the warm-up
// took and how much the JIT compiled during the repeats.
// With --workers N (and the multi-node options of `cnn train --workers N`) the cluster is a coordinator node in
// this process and N worker processes that join it, as `deploy/local-cluster.sh --bench` starts them; --no-cluster
// then runs with as many threads as the workers have in total. Everything else is measured the same way, but the
// JIT figures are this process's only: the workers' compilation is out of its sight, and so is their CPU time (the
// CPU time per step is not printed). They start with the coordinator, and its warm-up took 950 steps (over 10 s) in
// the run inspected.
// Real MNIST is used when --data (default: the cache) holds all four files, otherwise deterministic synthetic
// images of the model's input size; the output says which. The median, not the mean, because the machine is
// shared and a neighbour's burst should not move the figure.
//
// Deliberately not here: kernel-level timings (tests/Cnn.Benchmarks, BenchmarkDotNet) and fetching data.
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Cnn.Coordinator.Cluster;
using Cnn.Coordinator.Runs;
using Cnn.Engine;
using Cnn.Engine.Data;
using Cnn.Engine.IO;
using Cnn.Engine.Kernels;
using Cnn.Engine.Models;
using Cnn.Engine.Training;
using Cnn.Messages;

namespace Cnn.Coordinator.Commands;

/// <summary>The <c>bench</c> command.</summary>
public static class BenchCommand
{
    private const int BatchSize = 64;
    private const int MicroBatch = 8;
    private const int WarmupSteps = 20;
    private const int Repeats = 5;
    private const int StepsPerRepeat = 60;
    private const int ClusterWarmupSteps = 200;
    private const int ClusterWarmupRound = 50;
    private const int ClusterWarmupMaxSteps = 2000;
    private static readonly TimeSpan QuietJit = TimeSpan.FromMilliseconds(10);
    private const int ClusterRepeats = 9;
    private const int InferenceBatch = 1000;
    private const int SyntheticCount = 4096;

    /// <summary>The command, writing to <paramref name="io"/>.</summary>
    public static Command Create(CliOutput io)
    {
        Option<string> model = SummaryCommand.ModelOption();
        var threads = new Option<int>("--threads") { Description = "Threads computing leaves", DefaultValueFactory = _ => Environment.ProcessorCount };
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of a table" };
        var data = new Option<string>("--data") { Description = "Directory of the four IDX files (synthetic data when incomplete)", DefaultValueFactory = _ => MnistFetcher.DefaultCacheDirectory };
        var localWorkers = new Option<int?>("--local-workers") { Description = "Measure through an in-process cluster of N workers, beside --no-cluster with the same threads" };
        var threadsPerWorker = new Option<int?>("--threads-per-worker") { Description = "Threads of each local worker (default 1)" };
        var repeats = new Option<int?>("--repeats") { Description = $"Timed repeats of {StepsPerRepeat} training steps (default {Repeats}; {ClusterRepeats} alternating pairs in the cluster modes)" };
        var multiNode = new MultiNodeOptions("Measure through a coordinator node that waits for N worker processes (deploy/local-cluster.sh --bench), beside --no-cluster with their threads");
        Option<string> workStealing = TrainCommand.WorkStealingOption();
        Option<string?> pinThreads = TrainCommand.PinThreadsOption();
        var command = new Command("bench", "Measure training and inference throughput and peak memory.") { model, threads, json, data, localWorkers, threadsPerWorker, repeats, workStealing, pinThreads };
        foreach (Option option in multiNode.All) command.Options.Add(option);
        command.SetAction(parse =>
        {
            int threadCount = parse.GetValue(threads);
            if (threadCount < 1) throw new CnnUserException($"--threads must be at least 1, got {threadCount}");
            int? repeatCount = parse.GetValue(repeats);
            if (repeatCount < 1) throw new CnnUserException($"--repeats must be at least 1, got {repeatCount}");
            // Every mode takes `cnn train`'s settings and its checks (TrainSettings.ValidateMode), so both commands
            // refuse the same options with the same line (a cluster option without a cluster, for one); a bench's local
            // workers default to 1 thread.
            bool cluster = parse.GetValue(localWorkers) is not null || multiNode.Workers(parse) is not null;
            int? perWorker = parse.GetValue(threadsPerWorker);
            TrainSettings settings = multiNode.ReadInto(new TrainSettings
            {
                Model = parse.GetValue(model)!, DataDirectory = parse.GetValue(data)!, BatchSize = BatchSize, MicroBatch = MicroBatch, NoCluster = !cluster,
                LocalWorkers = parse.GetValue(localWorkers), ThreadsPerWorker = perWorker ?? (parse.GetValue(localWorkers) is null ? null : 1),
                WorkStealing = parse.GetValue(workStealing) == "on",
                PinThreads = parse.GetValue(pinThreads),
            }, parse);
            settings.ValidateMode();
            if (cluster)
            {
                Model benchModel = Presets.Create(settings.Model);
                int pairs = repeatCount ?? ClusterRepeats;
                ClusterBenchResult measured = settings.Mode == TrainingMode.Remote
                    ? MeasureRemote(benchModel, settings, io.Error, pairs)
                    : MeasureCluster(benchModel, settings.LocalWorkerCount, settings.LocalThreadsPerWorker, settings.DataDirectory,
                        TimeSpan.FromSeconds(settings.JoinTimeoutSeconds), settings.NodeLogLevel, pairs, settings.WorkStealing, settings.PinsThreads);
                if (parse.GetValue(json)) io.Out.WriteLine(JsonSerializer.Serialize(measured, RunJson.Options));
                else PrintCluster(measured, io.Out);
                return 0;
            }
            BenchResult result = Measure(Presets.Create(parse.GetValue(model)!), threadCount, parse.GetValue(data)!, repeatCount ?? Repeats);
            if (parse.GetValue(json)) io.Out.WriteLine(JsonSerializer.Serialize(result, RunJson.Options));
            else Print(result, io.Out);
            return 0;
        });
        return command;
    }

    /// <summary>Runs the measurements of the file header.</summary>
    public static BenchResult Measure(Model model, int threads, string dataDirectory, int repeats = Repeats)
    {
        (IDataSource source, string dataKind) = LoadData(model, dataDirectory);
        float[] weights = model.Parameters.Initialize(1);
        var adam = new Adam(model.Parameters);
        using var trainer = new LocalTrainer(model, weights, adam, threads, MicroBatch, seed: 1);

        var batches = new BatchCycle(source.Count);
        long step = 0;
        for (int i = 0; i < WarmupSteps; i++) trainer.Step(source, batches.Next(), step++);
        var training = new double[repeats];
        for (int r = 0; r < repeats; r++)
        {
            int[][] planned = Enumerable.Range(0, StepsPerRepeat).Select(_ => batches.Next()).ToArray();
            long start = Stopwatch.GetTimestamp();
            foreach (int[] batch in planned) trainer.Step(source, batch, step++);
            training[r] = StepsPerRepeat * BatchSize / Stopwatch.GetElapsedTime(start).TotalSeconds;
        }

        var x = new float[InferenceBatch * model.InputShape.Size];        // (1000, input size)
        var labels = new int[InferenceBatch];
        var probabilities = new float[InferenceBatch * model.Classes];    // (1000, classes)
        source.Gather(Enumerable.Range(0, InferenceBatch).Select(i => i % source.Count).ToArray(), x, labels);
        trainer.Computer.Predict(weights, x, InferenceBatch, probabilities);
        var inference = new double[Repeats];
        for (int r = 0; r < Repeats; r++)
        {
            long start = Stopwatch.GetTimestamp();
            trainer.Computer.Predict(weights, x, InferenceBatch, probabilities);
            inference[r] = InferenceBatch / Stopwatch.GetElapsedTime(start).TotalSeconds;
        }

        return new BenchResult(
            model.Name, threads, dataKind, dataDirectory,
            new ThroughputResult(BatchSize, WarmupSteps, repeats, StepsPerRepeat, Median(training), training),
            new ThroughputResult(InferenceBatch, 1, Repeats, 1, Median(inference), inference),
            new MemoryResult(PeakResidentBytes(), GC.GetGCMemoryInfo().HeapSizeBytes),
            MachineInfo.Current);
    }

    /// <summary>The --local-workers measurement (see file header).</summary>
    public static ClusterBenchResult MeasureCluster(Model model, int workers, int threadsPerWorker, string dataDirectory, TimeSpan joinTimeout,
        Akka.Event.LogLevel logLevel = Akka.Event.LogLevel.WarningLevel, int repeats = ClusterRepeats, bool workStealing = true, bool pinThreads = true)
    {
        TrainingData data = LoadMnist(model, dataDirectory, "--local-workers");
        long processStart = Stopwatch.GetTimestamp();
        var cluster = LocalCluster.StartAsync(model, data.TrainSource, MicroBatch, logLevel).GetAwaiter().GetResult(); // warmed up as `cnn train`'s
        try
        {
            return MeasureThrough(model, data, cluster.CoordinatorSystem, ClusterTransport.Tcp with { WorkStealing = workStealing }, workers,
                $"local cluster{(workStealing ? ", work stealing" : "")}{(pinThreads ? "" : ", threads not pinned")}", processStart, repeats, workersInProcess: true, backend =>
            {
                cluster.AddWorkersAsync(workers, threadsPerWorker, new Cnn.Worker.WorkerData(data.TrainSource, data.TestSource, ClusterBackend.WorkerDataSha(data)),
                    Numerics.Fingerprint, pinThreads).GetAwaiter().GetResult();
                backend.WaitForWorkers(workers, joinTimeout);
            });
        }
        finally
        {
            cluster.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    /// <summary>The --workers measurement: a coordinator node bound as <paramref name="settings"/> say, and worker processes (see file header).</summary>
    public static ClusterBenchResult MeasureRemote(Model model, TrainSettings settings, TextWriter progress, int repeats = ClusterRepeats)
    {
        TrainingData data = LoadMnist(model, settings.DataDirectory, "--workers");
        NodeTls? tls = Cnn.Worker.WorkerOptions.LoadTls(settings.Tls);
        long processStart = Stopwatch.GetTimestamp();
        // The node logs at --log-level, warnings and errors by default, on standard error: the output is the measurement (--json too).
        using CoordinatorNode node = CoordinatorNode.Start(settings, tls);
        progress.WriteLine($"cnn bench: coordinator listening at {node.Address}{(tls is null ? "" : " with mutual TLS")}; waiting up to {settings.JoinTimeoutSeconds:0}s for {settings.Workers} workers");
        return MeasureThrough(model, data, node.System, new ClusterTransport(true, settings.Host, settings.DataPort, tls, settings.WorkStealing), settings.Workers!.Value,
            $"coordinator and {settings.Workers} worker processes{(tls is null ? "" : ", mutual TLS")}{(settings.WorkStealing ? ", work stealing" : "")}", processStart, repeats,
            workersInProcess: false, backend => backend.WaitForWorkers(settings.Workers.Value, TimeSpan.FromSeconds(settings.JoinTimeoutSeconds)));
    }

    private static TrainingData LoadMnist(Model model, string dataDirectory, string mode)
    {
        if (!MnistFetcher.HasAll(dataDirectory)) throw new CnnUserException($"cnn bench {mode} needs MNIST in {dataDirectory}: run `cnn data fetch` or give --data");
        return TrainingData.Load(dataDirectory, model, 0.2, TextWriter.Null);
    }

    // Both cluster measurements once the coordinator's ActorSystem is up: `join` brings the workers in, then the
    // cluster and --no-cluster with the workers' threads in total are measured as the file header says.
    private static ClusterBenchResult MeasureThrough(Model model, TrainingData data, Akka.Actor.ActorSystem system, ClusterTransport transport, int workers,
        string topology, long processStart, int repeats, bool workersInProcess, Action<ClusterBackend> join)
    {
        float[] clusterWeights = model.Parameters.Initialize(1), localWeights = model.Parameters.Initialize(1);
        using var backend = new ClusterBackend(system, model, clusterWeights, new Adam(model.Parameters), data, MicroBatch, 1, workers,
            TimeSpan.FromSeconds(1), _ => { }, transport);
        join(backend);
        int[] workerThreads = backend.Stats().Workers.Select(w => w.Threads).ToArray();
        using var local = new LocalBackend(model, localWeights, new Adam(model.Parameters), data.TrainSource, workerThreads.Sum(), MicroBatch, 1);

        var clusterBatches = new BatchCycle(data.TrainCount);
        var localBatches = new BatchCycle(data.TrainCount);
        long clusterStep = 0, localStep = 0;
        double firstStepSeconds = 0;
        double RunSteps(ITrainingBackend b, BatchCycle batches, ref long step, int count)
        {
            long start = Stopwatch.GetTimestamp();
            for (int i = 0; i < count; i++)
            {
                int[] batch = batches.Next();
                // Announce only steps that will be asked for: an announced step is computed and applied.
                if (i + 1 < count) b.Announce(batches.Peek(), step + 1);
                b.Step(batch, step++);
            }
            return count * BatchSize / Stopwatch.GetElapsedTime(start).TotalSeconds;
        }
        RunSteps(backend, clusterBatches, ref clusterStep, 1);
        firstStepSeconds = Stopwatch.GetElapsedTime(processStart).TotalSeconds;
        RunSteps(backend, clusterBatches, ref clusterStep, ClusterWarmupSteps - 1);
        RunSteps(local, localBatches, ref localStep, ClusterWarmupSteps);
        // Two quiet rounds in a row: after one, methods may still be waiting for the tiering delay.
        for (int quiet = 0; quiet < 2 && localStep < ClusterWarmupMaxSteps;)
        {
            TimeSpan jitBefore = System.Runtime.JitInfo.GetCompilationTime();
            RunSteps(backend, clusterBatches, ref clusterStep, ClusterWarmupRound);
            RunSteps(local, localBatches, ref localStep, ClusterWarmupRound);
            quiet = System.Runtime.JitInfo.GetCompilationTime() - jitBefore < QuietJit ? quiet + 1 : 0;
        }
        long warmupSteps = localStep;
        CoordinatorActor.Stats baseline = backend.Stats();
        TimeSpan jitAtStart = System.Runtime.JitInfo.GetCompilationTime();
        var clusterRuns = new double[repeats];
        var localRuns = new double[repeats];
        TimeSpan clusterCpu = TimeSpan.Zero, localCpu = TimeSpan.Zero; // the whole process's, every thread
        for (int r = 0; r < repeats; r++)
        {
            TimeSpan before = Environment.CpuUsage.TotalTime;
            clusterRuns[r] = RunSteps(backend, clusterBatches, ref clusterStep, StepsPerRepeat);
            TimeSpan between = Environment.CpuUsage.TotalTime;
            localRuns[r] = RunSteps(local, localBatches, ref localStep, StepsPerRepeat);
            clusterCpu += between - before;
            localCpu += Environment.CpuUsage.TotalTime - between;
        }
        // With worker processes, most of the cluster's CPU time is theirs, which this process does not see.
        CpuPerStep? cpu = workersInProcess
            ? new CpuPerStep(clusterCpu.TotalMilliseconds / (repeats * StepsPerRepeat), localCpu.TotalMilliseconds / (repeats * StepsPerRepeat))
            : null;
        double jitDuringRepeats = (System.Runtime.JitInfo.GetCompilationTime() - jitAtStart).TotalMilliseconds;
        BackendReport report = backend.Report(baseline);

        int[] ids = Enumerable.Range(0, Math.Min(InferenceBatch, data.TestSource.Count)).ToArray();
        backend.Evaluate(data.TestSource, ids);
        var inference = new double[Repeats];
        for (int r = 0; r < Repeats; r++)
        {
            long start = Stopwatch.GetTimestamp();
            backend.Evaluate(data.TestSource, ids);
            inference[r] = ids.Length / Stopwatch.GetElapsedTime(start).TotalSeconds;
        }
        double clusterMedian = Median(clusterRuns), localMedian = Median(localRuns);
        double[] ratios = clusterRuns.Zip(localRuns, (c, l) => c / l).ToArray();
        return new ClusterBenchResult(model.Name, topology, workers, workerThreads.Max(), workerThreads.Sum(),
            new ThroughputResult(BatchSize, (int)warmupSteps, repeats, StepsPerRepeat, clusterMedian, clusterRuns),
            new ThroughputResult(BatchSize, (int)warmupSteps, repeats, StepsPerRepeat, localMedian, localRuns),
            Median(ratios), MedianInterval.Of(ratios),
            new ThroughputResult(ids.Length, 1, Repeats, 1, Median(inference), inference),
            firstStepSeconds, report,
            Checkpoint.WeightsSha256(clusterWeights) == Checkpoint.WeightsSha256(localWeights) && clusterStep == localStep,
            new MemoryResult(PeakResidentBytes(), GC.GetGCMemoryInfo().HeapSizeBytes), MachineInfo.Current, jitDuringRepeats, cpu);
    }

    /// <summary>Writes the table of a cluster bench (the --json output is the record itself).</summary>
    internal static void PrintCluster(ClusterBenchResult r, TextWriter output)
    {
        static string N(double value) => value.ToString("N0", CultureInfo.InvariantCulture);
        static string F(double value) => value.ToString("F2", CultureInfo.InvariantCulture);
        static string P(double value) => value.ToString("P1", CultureInfo.InvariantCulture);
        output.WriteLine($"cnn bench: {r.Model}, {r.Topology}, {r.Workers} workers x {r.ThreadsPerWorker} threads vs --no-cluster --threads {r.Threads}, MNIST, same run, repeats alternating");
        output.WriteLine($"training   cluster    {N(r.Training.ImagesPerSecond),8} images/s  ({string.Join(" ", r.Training.Runs.Select(N))})");
        output.WriteLine($"training   no-cluster {N(r.NoClusterTraining.ImagesPerSecond),8} images/s  ({string.Join(" ", r.NoClusterTraining.Runs.Select(N))})");
        output.WriteLine($"warm-up    {r.Training.WarmupCalls:N0} steps each, until two rounds of {ClusterWarmupRound} steps of each took under {QuietJit.TotalMilliseconds:F0} ms of JIT compilation; {F(r.JitMillisecondsDuringRepeats)} ms of it during the {r.Training.Repeats} x {StepsPerRepeat} measured steps each");
        string interval = r.RatioInterval is { } i ? $"; 95 % confidence interval of the median {P(i.Low)} to {P(i.High)}" : "";
        output.WriteLine($"ratio      {P(r.Ratio)} of --no-cluster (median of the {r.Training.Repeats} repeat pairs{interval}); weights after the same steps identical: {(r.SameWeights ? "yes" : "NO")}");
        output.WriteLine($"inference  cluster    {N(r.Inference.ImagesPerSecond),8} images/s  (distributed evaluation of {r.Inference.Batch:N0} images)");
        output.WriteLine($"step       {F(r.Cluster.MeanStepMilliseconds)} ms: {F(r.Cluster.MeanComputeMilliseconds)} ms compute on the critical path (the workers' mean {F(r.Cluster.MeanWorkerComputeMilliseconds)}), {F(r.Cluster.MeanCommunicationMilliseconds)} ms communication ({P(r.Cluster.CommunicationShare)}); {N(r.Cluster.TensorBytesPerStepPerWorker)} tensor bytes per step per worker ({r.Cluster.Transport}); {F(r.Cluster.StolenLeavesPerStep)} leaves stolen per step");
        if (r.Cpu is { } cpu)
            output.WriteLine($"cpu        {F(cpu.ClusterMilliseconds)} ms of this process's CPU time a cluster step, {F(cpu.NoClusterMilliseconds)} ms a --no-cluster step ({(cpu.ClusterMilliseconds / cpu.NoClusterMilliseconds - 1).ToString("+0.0 %;-0.0 %", CultureInfo.InvariantCulture)}: the cluster's threads beside the computation, and kernel time)");
        output.WriteLine($"start-up   first step done {F(r.FirstStepSeconds)} s after the coordinator node started");
        output.WriteLine($"memory     peak RSS of this process {(r.Memory.PeakResidentBytes is long b ? (b / 1048576.0).ToString("F1", CultureInfo.InvariantCulture) + " MB" : "n/a")}");
    }

    private static void Print(BenchResult r, TextWriter output)
    {
        static string N(double value) => value.ToString("N0", CultureInfo.InvariantCulture);
        static string Mb(long? bytes) => bytes is long b ? (b / 1048576.0).ToString("F1", CultureInfo.InvariantCulture) + " MB" : "n/a";
        string data = r.Data == "mnist" ? $"MNIST from {r.DataDirectory}" : $"synthetic data ({SyntheticCount:N0} random images; no MNIST in {r.DataDirectory})";
        output.WriteLine($"cnn bench: {r.Model}, threads {r.Threads}, {data}");
        output.WriteLine($"machine:   {r.Machine.ProcessorCount} processors, AVX-512F: {(r.Machine.Avx512F ? "yes" : "no")}, {r.Machine.Framework}");
        output.WriteLine($"kernels:   {r.Machine.Numerics}"); // says whether Vector512 runs (v512), and which GEMM path
        output.WriteLine($"training   batch {r.Training.Batch,-5} {N(r.Training.ImagesPerSecond),8} images/s  (median of {r.Training.Repeats} x {r.Training.CallsPerRepeat} steps after {r.Training.WarmupCalls} warm-up: {string.Join(" ", r.Training.Runs.Select(N))})");
        output.WriteLine($"inference  batch {r.Inference.Batch,-5} {N(r.Inference.ImagesPerSecond),8} images/s  (median of {r.Inference.Repeats} after {r.Inference.WarmupCalls} warm-up: {string.Join(" ", r.Inference.Runs.Select(N))})");
        output.WriteLine($"memory     peak RSS {Mb(r.Memory.PeakResidentBytes)}, managed heap {Mb(r.Memory.ManagedHeapBytes)}");
    }

    private static (IDataSource Source, string Name) LoadData(Model model, string directory)
    {
        if (MnistFetcher.HasAll(directory))
        {
            (MnistDataset train, _) = MnistDataset.LoadDirectory(directory);
            TrainingData.CheckShape(directory, "training", train, model);
            return (new MnistSource(train), "mnist");
        }
        TensorShape shape = model.InputShape;
        if (shape.IsFlat || shape.Channels != 1) throw new CnnUserException($"model '{model.Name}' takes {shape}: synthetic data is grayscale images only; give --data");
        var rng = new Rng(0xBE7C);
        var images = new byte[SyntheticCount * shape.Size];
        var labels = new byte[SyntheticCount];
        for (int i = 0; i < images.Length; i++) images[i] = (byte)rng.NextInt(256);
        for (int i = 0; i < labels.Length; i++) labels[i] = (byte)(i % 10);
        var dataset = new MnistDataset("synthetic", images, labels, SyntheticCount, shape.Height, shape.Width);
        return (new MnistSource(dataset), "synthetic");
    }

    private static double Median(double[] values)
    {
        double[] sorted = values.Order().ToArray();
        int middle = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
    }

    /// <summary>VmHWM of /proc/self/status in bytes, or null where there is no /proc.</summary>
    public static long? PeakResidentBytes()
    {
        const string path = "/proc/self/status";
        if (!File.Exists(path)) return null;
        foreach (string line in File.ReadLines(path))
        {
            if (!line.StartsWith("VmHWM:", StringComparison.Ordinal)) continue;
            string[] parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return long.Parse(parts[1], CultureInfo.InvariantCulture) * 1024;
        }
        return null;
    }

    /// <summary>Batches of a shuffled order, reshuffled when it runs out, so repeats never wait on anything but steps.</summary>
    private sealed class BatchCycle(int count)
    {
        private int _epoch;
        private int _next;
        private int[] _order = EpochSchedule.Order(1, 0, count);
        private int[]? _peeked;

        public int[] Peek() => _peeked ??= Take();

        public int[] Next()
        {
            int[] batch = _peeked ?? Take();
            _peeked = null;
            return batch;
        }

        private int[] Take()
        {
            if (_next + BatchSize > _order.Length)
            {
                _order = EpochSchedule.Order(1, ++_epoch, count);
                _next = 0;
            }
            int[] batch = _order.AsSpan(_next, Math.Min(BatchSize, _order.Length)).ToArray();
            _next += BatchSize;
            return batch;
        }
    }
}

/// <summary>What `cnn bench --local-workers` measures (see file header).</summary>
/// <remarks>ThreadsPerWorker is the most any worker has; Threads, the workers' total, is what --no-cluster ran with.</remarks>
public sealed record ClusterBenchResult(string Model, string Topology, int Workers, int ThreadsPerWorker, int Threads, ThroughputResult Training, ThroughputResult NoClusterTraining,
    double Ratio, MedianInterval? RatioInterval, ThroughputResult Inference, double FirstStepSeconds, BackendReport Cluster, bool SameWeights, MemoryResult Memory, MachineInfo Machine,
    double JitMillisecondsDuringRepeats, CpuPerStep? Cpu);

/// <summary>
/// The process's CPU time (every thread, user and kernel) per measured step of the cluster and of --no-cluster, in
/// milliseconds: what the cluster spends beside the same computation. Only for a local cluster, whose nodes all run
/// in this process.
/// </summary>
public sealed record CpuPerStep(double ClusterMilliseconds, double NoClusterMilliseconds);

/// <summary>The result of <c>cnn bench</c>.</summary>
/// <param name="Model">Model measured.</param>
/// <param name="Threads">Threads used.</param>
/// <param name="Data">"mnist", or "synthetic" when <paramref name="DataDirectory"/> lacks MNIST.</param>
/// <param name="DataDirectory">Where MNIST was looked for.</param>
/// <param name="Training">Training throughput.</param>
/// <param name="Inference">Inference throughput.</param>
/// <param name="Memory">Memory use.</param>
/// <param name="Machine">The machine.</param>
public sealed record BenchResult(string Model, int Threads, string Data, string DataDirectory, ThroughputResult Training, ThroughputResult Inference, MemoryResult Memory, MachineInfo Machine);

/// <summary>One throughput measurement.</summary>
/// <param name="Batch">Images per call.</param>
/// <param name="WarmupCalls">Untimed calls (training steps or predictions) before the repeats.</param>
/// <param name="Repeats">Timed repeats.</param>
/// <param name="CallsPerRepeat">Calls per repeat.</param>
/// <param name="ImagesPerSecond">Median over the repeats.</param>
/// <param name="Runs">Images per second of each repeat.</param>
public sealed record ThroughputResult(int Batch, int WarmupCalls, int Repeats, int CallsPerRepeat, double ImagesPerSecond, double[] Runs);

/// <summary>Memory figures.</summary>
/// <param name="PeakResidentBytes">Peak resident set size (VmHWM), or null where unavailable.</param>
/// <param name="ManagedHeapBytes">Managed heap size after the runs.</param>
public sealed record MemoryResult(long? PeakResidentBytes, long ManagedHeapBytes);
