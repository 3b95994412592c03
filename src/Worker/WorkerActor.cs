// The worker actor. Stateless apart from its copy of the weights and the dataset (DESIGN.md): it can die at
// any moment and a replacement joins with nothing to recover.
//
//   Registering: once the coordinator's node is Up in this node's view (the coordinator takes members only),
//                sends RegisterWorker to it, retrying with backoff, until accepted or refused.
//   Ready:       with a data plane (the usual case), its connection's thread (WorkerDataPlane.cs) reads the weights
//                and each step's work and computes the step there, off the actor, sending the contribution on the
//                same connection in the model's exchange segments, with work stealing (Messages/StealProtocol.cs);
//                the actor hears of each weights version and of a lost connection. Over Akka (no data plane, or
//                work that came that way): assembles weights from chunks (double-buffered: a new version can
//                arrive while the previous one is in use), computes the subtrees it is given with the engine, off
//                the actor's thread, and sends one contribution per subtree to the parameter server in chunks.
//                Either way it evaluates ranges for the coordinator; one computation at a time uses the engine.
// Requests (over Akka) for a weights version it does not have yet are stashed until the version arrives; requests
// for an older version are dropped (the step is over). While a computation runs, new requests wait in the stash.
using System.Collections.Concurrent;
using System.Diagnostics;
using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using Cnn.Engine.Data;
using Cnn.Engine.Models;
using Cnn.Engine.Training;
using Cnn.Messages;

namespace Cnn.Worker;

/// <summary>The data a worker node holds: the training file (training and validation ids) and the test file.</summary>
public sealed record WorkerData(IDataSource Train, IDataSource Test, string Sha256);

/// <summary>The dataset hash a worker presents at registration: the training and test files' hashes, combined.</summary>
public static class WorkerDataHash
{
    /// <summary>SHA-256 over "trainSha:testSha".</summary>
    public static string Of(string trainSha256, string testSha256) =>
        Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.ASCII.GetBytes(trainSha256 + ":" + testSha256)));
}

/// <summary>
/// How a worker identifies itself and whom it works for; with <paramref name="Tls"/> its data plane connection runs
/// mutual TLS. <paramref name="Cpus"/>: one CPU per thread to pin the computing threads to (the first for the
/// thread that computes the steps), or null to leave them to the scheduler.
/// </summary>
public sealed record WorkerSettings(string WorkerId, int Threads, Address Coordinator, string NumericsFingerprint, int ProtocolVersion, NodeTls? Tls = null,
    IReadOnlyList<int>? Cpus = null);

/// <summary>The worker actor (see file header).</summary>
public sealed class WorkerActor : ReceiveActor, IWithStash, IWithTimers
{
    /// <summary>
    /// Bumped when a message's meaning changes; the coordinator refuses a worker of another version. 2: the data
    /// plane carries contributions and weights in the model's exchange segments. 3: work stealing on the data plane.
    /// </summary>
    public const int ProtocolVersion = 3;

    /// <summary>The name of the coordinator actor on the coordinator node.</summary>
    public const string CoordinatorName = "coordinator";

    /// <summary>The name of the parameter server actor, a child of the coordinator.</summary>
    public const string ParameterServerName = "parameter-server";

    private sealed record RegisterTick;
    private sealed record Computed(long Version, IReadOnlyList<GradientChunk> Chunks, Exception? Failure);
    /// <summary>The data-plane thread holds the whole weights of Version (the actor holds them too from now on).</summary>
    internal sealed record WeightsArrived(FrameConnection Connection, long Version, float[] Weights);
    /// <summary>The data-plane connection is gone (a read or a write failed, or the peer broke the frame format).</summary>
    internal sealed record DataPlaneLost(FrameConnection Connection, string Reason);
    /// <summary>A computation on the data-plane thread failed with something other than the connection: a bug.</summary>
    internal sealed record ComputeFailed(Exception Failure);
    private sealed record Evaluated(EvaluateRange Request, LossAndAccuracy Result, Exception? Failure);

    private readonly WorkerSettings _settings;
    private readonly WorkerData _data;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private static readonly TimeSpan FirstRetry = TimeSpan.FromMilliseconds(200);
    // A registration is a few hundred bytes, and a coordinator restarted with --resume answers one from an old node
    // NotAMember, which sends the host to a new node: the wait between tries bounds how long a worker stays on the old.
    private static readonly TimeSpan LastRetry = TimeSpan.FromSeconds(1);
    private TimeSpan _retry = FirstRetry;
    private LeafComputer? _computer;
    private string _runId = "";
    private ulong _seed;
    private ActorSelection? _parameterServer;
    private float[] _weights = [];       // (parameters) the version in use by computations
    private long _version = -1;
    private (long Version, float[] Weights)? _pending; // a newer version, applied when no computation runs
    private readonly ConcurrentBag<float[]> _spare = []; // (parameters) free weight buffers
    private int _parameterCount;
    private float[]? _assembling;        // (parameters) chunked weights being assembled (Akka transport)
    private long _assemblingVersion = -1;
    private TensorAssembler? _assembler;
    private FrameConnection? _dataPlane;
    private WorkerDataPlane? _dataPlaneLoop; // the thread of _dataPlane
    private bool _workStealing;
    private bool _busy;
    private readonly object _computeGate = new(); // held by whichever computation (data plane, Akka, evaluation) uses _computer
    private readonly IReadOnlyList<int>? _cpus;   // the CPUs the computing threads are pinned to, or null

    /// <summary>A worker with <paramref name="data"/> that registers with the coordinator in <paramref name="settings"/>.</summary>
    public WorkerActor(WorkerSettings settings, WorkerData data)
    {
        _settings = settings;
        _data = data;
        _cpus = UsableCpus();
        Registering();
    }

    /// <inheritdoc/>
    public IStash Stash { get; set; } = null!;

    /// <inheritdoc/>
    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>Props for a worker.</summary>
    public static Props Props(WorkerSettings settings, WorkerData data) => Akka.Actor.Props.Create(() => new WorkerActor(settings, data));

    /// <summary>The weights version in use (for tests).</summary>
    internal long Version => _version;

    /// <inheritdoc/>
    protected override void PreStart() =>
        // The coordinator takes registrations from members of its cluster only, so the first one is sent when the
        // coordinator's node is Up in this node's view (this node has joined), then retried with backoff.
        Akka.Cluster.Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents, typeof(ClusterEvent.MemberUp));

    /// <inheritdoc/>
    protected override void PostStop()
    {
        Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);
        _dataPlane?.Dispose();
        _computer?.Dispose();
    }

    private void Registering()
    {
        Receive<RegisterTick>(_ =>
        {
            _log.Info("Worker {0}: registering with the coordinator at {1}", _settings.WorkerId, _settings.Coordinator);
            Coordinator().Tell(new RegisterWorker(_settings.WorkerId, _settings.Threads, _data.Sha256, _settings.NumericsFingerprint, _settings.ProtocolVersion,
                _cpus?.ToArray()));
            Timers.StartSingleTimer("register", new RegisterTick(), _retry);
            _retry = TimeSpan.FromMilliseconds(Math.Min(_retry.TotalMilliseconds * 2, LastRetry.TotalMilliseconds));
        });
        Receive<ClusterEvent.MemberUp>(m =>
        {
            if (m.Member.Address != _settings.Coordinator) return;
            Timers.Cancel("register");
            _retry = FirstRetry;
            Self.Tell(new RegisterTick());
        });
        Receive<WorkerAccepted>(OnAccepted);
        Receive<WorkerRefused>(m =>
        {
            Timers.Cancel("register");
            _log.Error("Worker {0}: the coordinator refused this worker: {1}", _settings.WorkerId, m.Reason);
            Context.System.EventStream.Publish(m);
        });
        Receive<NotAMember>(m =>
        {
            // Registering again from this node cannot succeed: the host starts a new one (Worker/Program.cs).
            Timers.Cancel("register");
            _log.Warning("Worker {0}: the coordinator does not take this node: {1}; joining again from a new node", _settings.WorkerId, m.Reason);
            Context.System.EventStream.Publish(m);
        });
        ReceiveAny(_ => Stash.Stash());
    }

    private void OnAccepted(WorkerAccepted accepted)
    {
        Timers.Cancel("register");
        // Registration retries can be answered more than once: a repeat for the run this worker is in changes nothing.
        bool sameRun = _computer is not null && _runId == accepted.RunId && _computer.MicroBatch == accepted.MicroBatch && _computer.Model.Name == accepted.Model;
        if (sameRun && (_dataPlane is not null || accepted.DataPlaneEndpoint.Length == 0) && _version >= 0)
        {
            Become(Ready);
            Stash.UnstashAll();
            return;
        }
        if (_computer is null || _runId != accepted.RunId || _computer.MicroBatch != accepted.MicroBatch || _computer.Model.Name != accepted.Model)
        {
            _computer?.Dispose();
            Model model = Presets.Create(accepted.Model, _data.Train.SampleShape);
            _computer = new LeafComputer(model, _settings.Threads, accepted.MicroBatch, _cpus);
            _parameterCount = model.Parameters.Count;
            _spare.Clear();
            _weights = [];
            _version = -1;
            _pending = null;
            _dataPlane?.Dispose();
            _dataPlane = null;
        }
        _runId = accepted.RunId;
        _seed = accepted.Seed;
        _workStealing = accepted.WorkStealing;
        _parameterServer = Context.ActorSelection(new RootActorPath(Sender.Path.Address) / "user" / CoordinatorName / ParameterServerName);
        if (_dataPlane is null && accepted.DataPlaneEndpoint.Length > 0) ConnectDataPlane(accepted.DataPlaneEndpoint);
        else if (accepted.DataPlaneEndpoint.Length == 0) _parameterServer.Tell(new WeightsRequest(_runId, _settings.WorkerId, _version));
        _log.Info("Worker {0}: accepted into run {1} ({2}, micro-batch {3}, {4} threads, tensors via {5})", _settings.WorkerId, _runId, accepted.Model,
            accepted.MicroBatch, _settings.Threads, _dataPlane is null ? "akka" : accepted.DataPlaneEndpoint);
        Become(Ready);
        Stash.UnstashAll();
    }

    // Connects to the parameter server's data plane (with mutual TLS when the node has a certificate) and starts
    // the thread that reads weights and each step's work from it, and computes the steps (WorkerDataPlane.cs).
    private void ConnectDataPlane(string endpoint)
    {
        int colon = endpoint.LastIndexOf(':');
        var connection = FrameConnection.Connect(endpoint[..colon], int.Parse(endpoint[(colon + 1)..], System.Globalization.CultureInfo.InvariantCulture),
            _runId, _settings.WorkerId, TimeSpan.FromSeconds(10), _settings.Tls);
        _dataPlane = connection;
        var loop = new WorkerDataPlane(connection, _workStealing, Self, _spare, _computer!, _computeGate, _data.Train, _seed, _runId,
            _settings.WorkerId, _log);
        _dataPlaneLoop = loop;
        new Thread(loop.Run) { IsBackground = true, Name = $"cnn-worker-{_settings.WorkerId}-data-plane" }.Start();
    }

    // The CPUs the settings name, when this process may use them all; else none, said once: a thread whose pinning
    // the system refuses would stay unpinned beside its pinned team-mates.
    private IReadOnlyList<int>? UsableCpus()
    {
        if (_settings.Cpus is not { } cpus || ThreadAffinity.MayUseAll(cpus)) return _settings.Cpus;
        _log.Warning("Worker {0}: this process may not run on all of CPUs {1}; its compute threads are left unpinned", _settings.WorkerId, string.Join(",", cpus));
        return null;
    }

    /// <summary>
    /// Compiles the data-plane thread's loop now (WorkerDataPlane.Run), so that a node that calls this while it starts
    /// does not compile it when its first weights arrive.
    /// </summary>
    public static void PrepareDataPlaneReader() => WorkerDataPlane.Prepare();

    /// <summary>A free weights buffer of <paramref name="count"/> floats from <paramref name="spare"/>, or a new one.</summary>
    internal static float[] Rent(ConcurrentBag<float[]> spare, int count) =>
        spare.TryTake(out float[]? b) && b.Length == count ? b : new float[count];

    private void Ready()
    {
        Receive<WorkerAccepted>(OnAccepted); // a restarted coordinator takes the worker back
        Receive<RegisterTick>(_ => { });
        Receive<ClusterEvent.MemberUp>(_ => { });
        Receive<WeightsChunk>(OnWeightsChunk);
        Receive<WeightsArrived>(m =>
        {
            if (m.Connection == _dataPlane) OnWeights(m.Version, m.Weights);
            else _spare.Add(m.Weights); // read from an older connection (another run): stale
        });
        Receive<DataPlaneLost>(m =>
        {
            if (m.Connection != _dataPlane) return; // an older connection
            _log.Warning("Worker {0}: lost the data plane connection ({1}); registering again", _settings.WorkerId, m.Reason);
            _dataPlane.Dispose();
            _dataPlane = null;
            _dataPlaneLoop = null;
            Become(Registering);
            _retry = FirstRetry;
            Self.Tell(new RegisterTick());
        });
        Receive<ComputeFailed>(m => throw new InvalidOperationException($"worker {_settings.WorkerId} failed to compute", m.Failure));
        Receive<ComputeGradients>(OnCompute);
        Receive<Computed>(OnComputed);
        Receive<EvaluateRange>(OnEvaluate);
        Receive<Evaluated>(OnEvaluated);
        Receive<ContributionRejected>(m => _log.Warning("Worker {0}: step {1} version {2} subtree {3}+{4} rejected: {5}",
            _settings.WorkerId, m.Step, m.Version, m.NodeFirst, m.NodeCount, m.Reason));
        Receive<WorkerRefused>(m => _log.Error("Worker {0}: the coordinator refused this worker: {1}", _settings.WorkerId, m.Reason));
    }

    private void OnWeightsChunk(WeightsChunk chunk)
    {
        if (chunk.RunId != _runId || chunk.Version <= _version || chunk.TotalFloats != _parameterCount) return;
        if (chunk.Version != _assemblingVersion)
        {
            if (chunk.Version < _assemblingVersion) return;
            _assemblingVersion = chunk.Version;
            _assembling ??= Rent(_spare, _parameterCount);
            _assembler = new TensorAssembler(_assembling);
        }
        if (!_assembler!.Add(chunk.ChunkIndex, chunk.ChunkCount, chunk.Offset, chunk.TotalFloats, chunk.Data, out string? error))
        {
            _log.Warning("Worker {0}: bad weights chunk {1} of version {2}: {3}", _settings.WorkerId, chunk.ChunkIndex, chunk.Version, error);
            return;
        }
        if (!_assembler.IsComplete) return;
        float[] complete = _assembling!;
        _assembling = null;
        _assembler = null;
        OnWeights(chunk.Version, complete);
    }

    // A complete weights version arrived (either transport): it waits as pending until no computation uses the
    // current buffer, then replaces it.
    private void OnWeights(long version, float[] weights)
    {
        if (version <= _version || (_pending is { } p && version <= p.Version))
        {
            _spare.Add(weights);
            return;
        }
        if (_pending is { } older) _spare.Add(older.Weights);
        _pending = (version, weights);
        if (!_busy) ApplyPending();
    }

    private void ApplyPending()
    {
        if (_pending is not { } next) return;
        if (_weights.Length > 0) _spare.Add(_weights);
        _weights = next.Weights;
        _version = next.Version;
        _pending = null;
        Stash.UnstashAll();
    }

    // Work that came over Akka: without a data plane, or from a parameter server that dealt it before this worker's
    // connection joined, or could not write it there. The contribution goes on the data plane when there is one (the
    // parameter server then takes no other), else back over Akka, in chunks.
    private void OnCompute(ComputeGradients request)
    {
        if (request.RunId != _runId || request.Version < _version) return; // an old step: it is over
        if (Invalid(request, _computer!, _data.Train.Count) is { } problem)
        {
            _log.Warning("Worker {0}: dropped ComputeGradients for step {1} version {2}: {3}", _settings.WorkerId, request.Step, request.Version, problem);
            return;
        }
        if (_busy || request.Version > _version)
        {
            Stash.Stash();
            return;
        }
        _busy = true;
        LeafComputer computer = _computer!;
        float[] weights = _weights;
        string workerId = _settings.WorkerId, runId = _runId;
        ulong seed = _seed;
        IDataSource train = _data.Train;
        object gate = _computeGate;
        WorkerDataPlane? dataPlane = _dataPlaneLoop;
        Task.Run(() =>
        {
            try
            {
                if (dataPlane is not null)
                {
                    dataPlane.ComputeWorkFromAkka(request, weights);
                    return new Computed(request.Version, [], null);
                }
                long started = Stopwatch.GetTimestamp();
                var nodes = request.NodeFirst.Zip(request.NodeCount, (f, c) => new TreeNode(f, c)).ToList();
                int leafCount = GradientTree.LeafCount(request.BatchIds.Length, request.MicroBatch);
                IReadOnlyList<GradientSum> sums;
                lock (gate) sums = computer.Compute(weights, train, request.BatchIds, nodes, request.Step, seed);
                double ms = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                var chunks = new List<GradientChunk>();
                foreach (GradientSum sum in sums)
                {
                    int count = TensorChunks.ChunkCount(sum.Gradients.Length);
                    for (int i = 0; i < count; i++)
                    {
                        byte[] data = TensorChunks.Slice(sum.Gradients, i, out int offset);
                        chunks.Add(new GradientChunk(runId, request.Step, request.Version, sum.Node.First, sum.Node.Count, leafCount, i, count, offset,
                            sum.Gradients.Length, data, sum.LossSum, sum.Correct, sum.Samples, workerId, ms / sums.Count));
                    }
                }
                return new Computed(request.Version, chunks, null);
            }
            catch (Exception e)
            {
                return new Computed(request.Version, [], e);
            }
        }).PipeTo(Self);
    }

    private void OnComputed(Computed done)
    {
        _busy = false;
        if (done.Failure is IOException or System.Net.Sockets.SocketException or ObjectDisposedException)
            _log.Warning("Worker {0}: could not send gradients of version {1}: {2}", _settings.WorkerId, done.Version, done.Failure.Message);
        else if (done.Failure is not null) throw new InvalidOperationException($"worker {_settings.WorkerId} failed to compute", done.Failure);
        if (_pending is null) // with a newer version already here, the step is over and the result is stale
            foreach (GradientChunk chunk in done.Chunks) _parameterServer!.Tell(chunk);
        if (_pending is not null) ApplyPending();
        else Stash.UnstashAll();
    }

    private void OnEvaluate(EvaluateRange request)
    {
        if (request.RunId != _runId || request.Version < _version) return;
        IDataSource set = request.Set == EvaluationSet.Test ? _data.Test : _data.Train;
        if (request.Start < 0 || request.Count < 1 || request.Start > set.Count - request.Count || !Enum.IsDefined(request.Set))
        {
            _log.Warning("Worker {0}: dropped EvaluateRange {1}: ids {2}+{3} are outside the {4} set of {5}", _settings.WorkerId, request.EvaluationId,
                request.Start, request.Count, request.Set, set.Count);
            return;
        }
        if (_busy || request.Version > _version)
        {
            Stash.Stash();
            return;
        }
        _busy = true;
        LeafComputer computer = _computer!;
        float[] weights = _weights;
        IDataSource source = request.Set == EvaluationSet.Test ? _data.Test : _data.Train;
        object gate = _computeGate;
        Task.Run(() =>
        {
            try
            {
                int[] ids = Enumerable.Range(request.Start, request.Count).ToArray();
                lock (gate) return new Evaluated(request, computer.Evaluate(weights, source, ids), null);
            }
            catch (Exception e)
            {
                return new Evaluated(request, default, e);
            }
        }).PipeTo(Self, Sender);
    }

    private void OnEvaluated(Evaluated done)
    {
        _busy = false;
        if (done.Failure is not null) throw new InvalidOperationException($"worker {_settings.WorkerId} failed to evaluate", done.Failure);
        Sender.Tell(new EvaluationResult(done.Request.RunId, done.Request.EvaluationId, done.Request.Start, done.Request.Count,
            done.Result.LossSum, done.Result.Correct, _settings.WorkerId));
        if (_pending is not null) ApplyPending();
        else Stash.UnstashAll();
    }

    /// <summary>Why <paramref name="r"/> cannot be computed with <paramref name="computer"/> on a training set of <paramref name="trainCount"/>, or null. Nothing a peer sends may crash the worker.</summary>
    internal static string? Invalid(ComputeGradients r, LeafComputer computer, int trainCount)
    {
        if (r.BatchIds is null || r.NodeFirst is null || r.NodeCount is null) return "missing fields";
        if (r.MicroBatch != computer.MicroBatch) return $"micro-batch {r.MicroBatch} but this run uses {computer.MicroBatch}";
        if (r.BatchIds.Length == 0 || r.NodeFirst.Length == 0 || r.NodeFirst.Length != r.NodeCount.Length) return "empty batch or subtree list";
        foreach (int id in r.BatchIds) if (id < 0 || id >= trainCount) return $"sample id {id} is outside the training set of {trainCount}";
        int leafCount = GradientTree.LeafCount(r.BatchIds.Length, r.MicroBatch);
        for (int i = 0; i < r.NodeFirst.Length; i++)
            if (r.NodeCount[i] < 1 || !GradientTree.IsNode(new TreeNode(r.NodeFirst[i], r.NodeCount[i]), leafCount))
                return $"leaves {r.NodeFirst[i]}+{r.NodeCount[i]} are not a subtree of a batch of {leafCount} leaves";
        return null;
    }

    private ActorSelection Coordinator() => Context.ActorSelection(new RootActorPath(_settings.Coordinator) / "user" / CoordinatorName);
}
