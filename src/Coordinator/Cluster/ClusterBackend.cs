// The cluster backend of the epoch loop: the same ITrainingBackend as --no-cluster, but every step goes to the
// coordinator actor, which deals the batch's subtrees to the workers; the parameter server reduces them in tree
// order and applies Adam to the very arrays this backend was given. Between two steps no message is in flight
// that could change them, so Weights and Adam are read directly for checkpoints and hashes.
//
// The loop's thread blocks on each request (Ask); failures (no workers left, the parameter server stopped)
// surface as RunFailedException with the coordinator's reason.
using Akka.Actor;
using Cnn.Coordinator.Runs;
using Cnn.Engine;
using Cnn.Engine.Data;
using Cnn.Engine.Kernels;
using Cnn.Engine.Models;
using Cnn.Engine.Training;
using Cnn.Messages;

namespace Cnn.Coordinator.Cluster;

/// <summary>
/// How tensors travel: the TCP data plane (bound to BindHost, default the node's host, on DataPort, 0 = any; with
/// mutual TLS when Tls is set) or chunked Akka messages. On the data plane, WorkStealing lets a worker that has sent its
/// share of a step compute the last leaf of a slower worker's share (Cluster/StealBoard.cs).
/// </summary>
public sealed record ClusterTransport(bool DataPlane, string? BindHost = null, int DataPort = 0, NodeTls? Tls = null, bool WorkStealing = false)
{
    /// <summary>The default: the data plane on any free port of the node's address.</summary>
    public static ClusterTransport Tcp { get; } = new(true);

    /// <summary>Tensors as chunked MessagePack messages through Akka.Remote.</summary>
    public static ClusterTransport Akka { get; } = new(false);
}

/// <summary>Trains through the coordinator and parameter server actors (see file header).</summary>
public sealed class ClusterBackend : ITrainingBackend
{
    private readonly IActorRef _coordinator;
    private readonly TrainingData _data;
    private readonly TimeSpan _requestTimeout;
    private readonly DataPlaneServer? _dataPlane;
    private readonly string _transport;
    private (int[] Batch, long Step)? _announced;
    private readonly List<RunEvent> _events = [];
    private long _currentStep;

    /// <summary>The one-line error for a data-plane port that cannot be listened on.</summary>
    public static CnnUserException DataPortError(int port, string host, System.Net.Sockets.SocketException e) =>
        new($"--data-port {port}: cannot listen on {host} ({e.Message})");

    /// <summary>
    /// Starts the coordinator (and its parameter server) in <paramref name="system"/> for a run of <paramref name="model"/>
    /// from <paramref name="weights"/> and <paramref name="adam"/>.
    /// </summary>
    public ClusterBackend(ActorSystem system, Model model, float[] weights, Adam adam, TrainingData data, int microBatch, ulong seed,
        int workers, TimeSpan deadlineFloor, Action<string> events, ClusterTransport transport, bool allowFingerprintMismatch = false)
    {
        // The run id doubles as the data plane's token: random, and told only to accepted workers.
        string runId = $"run-{Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16))}";
        var plan = new RunPlan(runId, model.Name, microBatch, seed, WorkerDataSha(data), Numerics.Fingerprint, allowFingerprintMismatch,
            transport.DataPlane && transport.WorkStealing);
        var server = new ParameterServerState(runId, model.Parameters, weights, adam, transport.DataPlane ? model.ExchangeSegments : null);
        if (transport.DataPlane)
        {
            Address self = Akka.Cluster.Cluster.Get(system).SelfAddress;
            try
            {
                _dataPlane = new DataPlaneServer(transport.BindHost ?? self.Host!, transport.DataPort, self.Host!, server, system.Log, transport.Tls,
                    plan.WorkStealing);
            }
            catch (System.Net.Sockets.SocketException e)
            {
                throw DataPortError(transport.DataPort, transport.BindHost ?? self.Host!, e);
            }
        }
        _transport = _dataPlane is null ? "akka.remote (MessagePack chunks)" : $"{(_dataPlane.IsEncrypted ? "tls" : "tcp")} data plane at {_dataPlane.Endpoint}";
        _coordinator = system.ActorOf(CoordinatorActor.Props(new CoordinatorState(plan), server, _dataPlane, deadlineFloor, Record(events)), WorkerNames.Coordinator);
        _data = data;
        _requestTimeout = TimeSpan.FromMinutes(10);
        Weights = weights;
        Adam = adam;
        Workers = workers;
        RunId = runId;
    }

    /// <summary>Cluster events so far, each with the step in progress when it happened (run.json records them).</summary>
    public IReadOnlyList<RunEvent> Events
    {
        get
        {
            lock (_events) return _events.ToList();
        }
    }

    /// <summary>The run id workers are accepted into.</summary>
    public string RunId { get; }

    /// <inheritdoc/>
    public int Workers { get; }

    /// <inheritdoc/>
    public int Threads { get; private set; }

    /// <inheritdoc/>
    public float[] Weights { get; }

    /// <inheritdoc/>
    public Adam Adam { get; }

    /// <summary>The coordinator actor.</summary>
    public IActorRef Coordinator => _coordinator;

    /// <summary>The dataset hash workers must present: training and test files together.</summary>
    public static string WorkerDataSha(TrainingData data) => Cnn.Worker.WorkerDataHash.Of(data.Train.Sha256(), data.Test.Sha256());

    // Events come from the coordinator's thread; each is kept with the step the loop is running.
    private Action<string> Record(Action<string> events) => what =>
    {
        lock (_events) _events.Add(new RunEvent(Interlocked.Read(ref _currentStep), what));
        events(what);
    };

    /// <summary>Blocks until <paramref name="count"/> workers joined; throws RunFailedException naming the missing ones after <paramref name="timeout"/>.</summary>
    public IReadOnlyList<string> WaitForWorkers(int count, TimeSpan timeout)
    {
        var ready = Ask<CoordinatorActor.WorkersReady>(new CoordinatorActor.WaitForWorkers(count, timeout), timeout + TimeSpan.FromSeconds(5));
        Threads = ready.Threads;
        return ready.WorkerIds;
    }

    /// <inheritdoc/>
    public StepMetrics Step(int[] batchIds, long step)
    {
        Interlocked.Exchange(ref _currentStep, step);
        (int[] Batch, long Step)? next = _announced is { } a && a.Step == step + 1 ? a : null;
        _announced = null;
        return Ask<CoordinatorActor.StepDone>(new CoordinatorActor.RunStep(step, batchIds, next?.Batch), _requestTimeout).Metrics;
    }

    /// <inheritdoc/>
    public void Announce(int[] nextBatchIds, long nextStep) => _announced = (nextBatchIds, nextStep);

    /// <inheritdoc/>
    public LossAndAccuracy Evaluate(IDataSource data, int[] ids)
    {
        EvaluationSet set = ReferenceEquals(data, _data.TestSource) ? EvaluationSet.Test
            : ReferenceEquals(data, _data.TrainSource) ? EvaluationSet.Validation
            : throw new ArgumentException("the cluster evaluates only the run's validation and test sets");
        if (ids.Length == 0) return new LossAndAccuracy(0, 0, 0);
        for (int i = 1; i < ids.Length; i++)
            if (ids[i] != ids[0] + i) throw new ArgumentException("the cluster evaluates contiguous id ranges");
        // Workers drop a range outside their set, and the evaluation would be re-dealt for ever.
        if (ids[0] < 0 || ids[^1] >= data.Count) throw new ArgumentOutOfRangeException(nameof(ids), $"ids {ids[0]}..{ids[^1]} are outside the {set} set of {data.Count}");
        return Ask<CoordinatorActor.EvaluationDone>(new CoordinatorActor.RunEvaluation(set, ids[0], ids.Length), _requestTimeout).Result;
    }

    /// <summary>Per-worker statistics and the step-time split of this session.</summary>
    public CoordinatorActor.Stats Stats() => Ask<CoordinatorActor.Stats>(new CoordinatorActor.StatsRequest(), TimeSpan.FromSeconds(30));

    /// <inheritdoc/>
    public BackendReport Report() => Report(null);

    /// <summary>
    /// The report of the steps applied since <paramref name="baseline"/> (from <see cref="Stats"/>), or of the whole
    /// session when it is null: step-time split and bytes over those steps only (the worker list stays cumulative).
    /// </summary>
    public BackendReport Report(CoordinatorActor.Stats? baseline)
    {
        CoordinatorActor.Stats stats = Stats();
        long applied = stats.Steps - (baseline?.Steps ?? 0), steps = Math.Max(1, applied);
        double step = (stats.StepMilliseconds - (baseline?.StepMilliseconds ?? 0)) / steps;
        double compute = (stats.CriticalComputeMilliseconds - (baseline?.CriticalComputeMilliseconds ?? 0)) / steps;
        double workerMean = (stats.MeanWorkerComputeMilliseconds - (baseline?.MeanWorkerComputeMilliseconds ?? 0)) / steps;
        // Per step a worker receives the new weights and sends one gradient per subtree it computed.
        long tensorBytes = Weights.Length * 4L;
        long ContributionsBefore(WorkerStat w) => baseline?.Workers.FirstOrDefault(b => b.Id == w.Id)?.Contributions ?? 0;
        double contributionsPerWorkerStep = stats.Workers.Count == 0 ? 1 : stats.Workers.Average(w => (double)(w.Contributions - ContributionsBefore(w)) / steps);
        long bytes = tensorBytes + (long)Math.Round(contributionsPerWorkerStep * tensorBytes);
        return new BackendReport(stats.Workers, applied, step, compute, workerMean, Math.Max(0, step - compute), step > 0 ? Math.Max(0, step - compute) / step : 0,
            bytes, _transport, Events, (double)(stats.StolenLeaves - (baseline?.StolenLeaves ?? 0)) / steps);
    }

    private T Ask<T>(object request, TimeSpan timeout)
    {
        object reply = BlockOn(_coordinator.Ask(request, timeout));
        return reply switch
        {
            T result => result,
            CoordinatorActor.RunFailed failed => throw new RunFailedException(failed.Reason),
            _ => throw new InvalidOperationException($"unexpected reply {reply.GetType().Name} to {request.GetType().Name}"),
        };
    }

    // Waits for the reply without spinning. Task.Wait first spins, yielding its core up to 25 times; with both cores
    // computing, each yield lasts until the next scheduler tick, so the loop's thread took turns with the
    // computations for the whole step (traced: about 2,900 time slices in 5 s, runnable 70% of the time, where a
    // blocking wait takes about 550).
    private static object BlockOn(Task<object> ask)
    {
        if (!ask.IsCompleted)
        {
            var replied = new ManualResetEventSlim(false, spinCount: 0); // never given a WaitHandle: nothing to dispose
            ask.ContinueWith(static (_, state) => ((ManualResetEventSlim)state!).Set(), replied,
                CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            replied.Wait();
        }
        return ask.GetAwaiter().GetResult();
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _coordinator.GracefulStop(TimeSpan.FromSeconds(5)).Wait(TimeSpan.FromSeconds(6));
        _dataPlane?.Dispose();
    }
}
