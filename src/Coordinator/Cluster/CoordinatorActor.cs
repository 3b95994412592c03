// The coordinator actor: admits workers (dataset hash, numerics fingerprint, protocol version), deals out the
// subtrees of each batch the epoch loop hands it, watches the step deadline and re-assigns late or lost work as
// backup tasks, deals out evaluation ranges, and answers the loop when the parameter server has applied a step.
// The logic lives in CoordinatorState; this class moves messages and timers.
//
// Requests from the loop (ClusterBackend) are local messages; each is answered with a result or RunFailed.
//
// Divergence: the parameter server refuses NaN or infinite contributions, which protects the weights from one
// faulty worker, and the deadline then deals that work to another worker. When a second worker (or the only one)
// also computes non-finite numbers for the same subtree, the numbers are what they are: training has diverged, and
// the run fails with that reason instead of re-dealing the step forever.
// Membership: a registration counts only from a node that is a member of this cluster (joining or up), so that
// every worker in the run is watched by the cluster's failure detector and Split Brain Resolver. A node that is
// not, such as a worker's node from before a coordinator restart that still reaches this address, is answered
// NotAMember (logged once per node): the worker's host then starts a new node, and the worker registers from it.
// A worker's node that stays unreachable for CnnNode.UnreachableWorkerDownAfter is downed by the coordinator itself,
// so that the Split Brain Resolver never has to decide about a worker that may wake up (see that constant).
// Supervision: the parameter server is a child; if it stops, the run fails with a message (its weights
// cannot be rebuilt here, a restart goes through --resume).
using System.Diagnostics;
using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using Cnn.Coordinator.Runs;
using Cnn.Engine.Models;
using Cnn.Engine.Training;
using Cnn.Messages;

namespace Cnn.Coordinator.Cluster;

/// <summary>The coordinator (see file header).</summary>
public sealed class CoordinatorActor : ReceiveActor, IWithTimers
{
    /// <summary>Loop to coordinator: answer <see cref="WorkersReady"/> once <c>Count</c> workers are in, or fail after Timeout.</summary>
    public sealed record WaitForWorkers(int Count, TimeSpan Timeout);
    /// <summary>Enough workers have joined.</summary>
    public sealed record WorkersReady(IReadOnlyList<string> WorkerIds, int Threads);
    /// <summary>
    /// Loop to coordinator: run step <c>Step</c> on the batch <c>BatchIds</c>; NextBatchIds, when known, is the batch of
    /// the step after it, which the coordinator sends out ahead so that workers start it the moment its weights arrive.
    /// </summary>
    public sealed record RunStep(long Step, int[] BatchIds, int[]? NextBatchIds = null);
    /// <summary>The step is applied.</summary>
    public sealed record StepDone(long Step, StepMetrics Metrics);
    /// <summary>Loop to coordinator: evaluate ids [Start, Start + Count) of a set with the current weights.</summary>
    public sealed record RunEvaluation(EvaluationSet Set, int Start, int Count);
    /// <summary>The evaluation's total.</summary>
    public sealed record EvaluationDone(LossAndAccuracy Result);
    /// <summary>The request cannot be completed, and why.</summary>
    public sealed record RunFailed(string Reason);
    /// <summary>Loop to coordinator: reply with <see cref="Stats"/>.</summary>
    public sealed record StatsRequest;
    /// <summary>Per-worker statistics and the session's step time split.</summary>
    public sealed record Stats(IReadOnlyList<WorkerStat> Workers, long Steps, double StepMilliseconds, double CriticalComputeMilliseconds,
        double MeanWorkerComputeMilliseconds, long StolenLeaves = 0);

    private sealed record DeadlineTick(long Step);
    private sealed record AloneTick;
    private sealed record EvaluationTick(long EvaluationId);
    private sealed record JoinTimeout;
    private sealed record DownTick(UniqueAddress Node);

    private readonly CoordinatorState _state;
    private readonly IActorRef _parameterServer;
    private readonly TimeSpan _deadlineFloor;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly HashSet<Address> _ignoredNodes = [];
    private readonly Action<string> _events;
    private (IActorRef ReplyTo, int Count)? _waiting;
    private IActorRef? _stepReplyTo;
    private long _stepStarted;
    private StepAssignment? _prefetched;      // the next step, already sent to the workers
    private StepDone? _early;                 // a step applied before the loop asked for it
    private IActorRef? _evaluationReplyTo;
    private EvaluateRange? _evaluationTemplate;
    private long _evaluationId;
    private long _evaluationStarted;          // Stopwatch timestamp of the evaluation in progress
    private long _version;
    private readonly Dictionary<string, (RegisterWorker Request, IActorRef Handle)> _registrations = [];
    private readonly Dictionary<TreeNode, HashSet<string>> _notFinite = []; // (open step) workers whose contribution for a node was NaN/Inf
    private readonly Dictionary<Address, (RegisterWorker Request, IActorRef Handle)> _suspended = [];
    private string? _alone;                                   // why the run waits for a worker, or null
    private (RunStep Request, IActorRef ReplyTo)? _heldStep;
    private (RunEvaluation Request, IActorRef ReplyTo)? _heldEvaluation;

    /// <summary>How long a run without any worker waits for one to (re)join before it fails.</summary>
    public static readonly TimeSpan AloneTimeout = TimeSpan.FromSeconds(60);
    private readonly string _dataPlaneEndpoint;
    private long _stolenLeaves; // leaves the parameter server granted to thieves (work stealing), as of the last step

    /// <summary>
    /// A coordinator for <paramref name="state"/>'s run with a parameter server made from <paramref name="server"/>;
    /// tensors go through <paramref name="dataPlane"/> when given, else as chunked Akka messages.
    /// </summary>
    public CoordinatorActor(CoordinatorState state, ParameterServerState server, DataPlaneServer? dataPlane, TimeSpan deadlineFloor, Action<string> events)
    {
        _dataPlaneEndpoint = dataPlane?.Endpoint ?? "";
        _state = state;
        _deadlineFloor = deadlineFloor;
        _events = events;
        _version = server.Version;
        _parameterServer = Context.ActorOf(ParameterServerActor.Props(server, Self, dataPlane?.Steals), WorkerNames.ParameterServer);
        Context.Watch(_parameterServer);
        dataPlane?.Attach(_parameterServer);

        Receive<RegisterWorker>(OnRegister);
        Receive<WaitForWorkers>(OnWaitForWorkers);
        Receive<JoinTimeout>(_ => OnJoinTimeout());
        Receive<RunStep>(OnRunStep);
        Receive<ParameterServerActor.NodeAccepted>(m =>
        {
            if (_state.Current?.Step == m.Step) _state.Accepted(m.Node, m.WorkerId, m.ComputeMilliseconds);
        });
        Receive<ParameterServerActor.StepApplied>(OnStepApplied);
        Receive<ParameterServerActor.NotFiniteRejected>(OnNotFinite);
        Receive<ParameterServerActor.WorkerConnectionLost>(m =>
        {
            // The data plane saw the worker's connection close (a killed process resets it at once): that is faster
            // than the failure detector. The worker comes back by registering again if it is still alive.
            if (_state.Workers.FirstOrDefault(w => w.Id == m.WorkerId) is { } worker) Lose(worker, "its data plane connection closed");
        });
        Receive<DeadlineTick>(OnDeadline);
        Receive<AloneTick>(_ => OnAloneTimeout());
        Receive<RunEvaluation>(OnRunEvaluation);
        Receive<EvaluationResult>(OnEvaluationResult);
        Receive<EvaluationTick>(OnEvaluationDeadline);
        Receive<StatsRequest>(_ => Sender.Tell(new Stats(
            _state.Workers.Select(w => new WorkerStat(w.Id, w.Threads, w.Images, w.Contributions, w.Steps == 0 ? 0 : w.ComputeMilliseconds / w.Steps, w.Numerics, w.Cpus)).ToList(),
            _state.StepsApplied, _state.StepMilliseconds, _state.CriticalComputeMilliseconds, _state.MeanWorkerComputeMilliseconds, _stolenLeaves)));
        Receive<ParameterServerActor.SnapshotRequest>(m => _parameterServer.Forward(m));
        Receive<ClusterEvent.UnreachableMember>(m =>
        {
            OnMemberLost(m.Member, "unreachable", suspend: true);
            if (m.Member.HasRole(CnnNode.WorkerRole))
                Timers.StartSingleTimer(DownKey(m.Member.UniqueAddress), new DownTick(m.Member.UniqueAddress), CnnNode.UnreachableWorkerDownAfter);
        });
        Receive<ClusterEvent.ReachableMember>(m =>
        {
            Timers.Cancel(DownKey(m.Member.UniqueAddress));
            OnMemberBack(m.Member);
        });
        Receive<DownTick>(OnDownTick);
        Receive<ClusterEvent.MemberRemoved>(m =>
        {
            OnMemberLost(m.Member, "removed from the cluster", suspend: false);
            _suspended.Remove(m.Member.Address);
        });
        Receive<ClusterEvent.IMemberEvent>(_ => { });
        Receive<Terminated>(OnTerminated);
    }

    /// <inheritdoc/>
    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>Props for the coordinator.</summary>
    public static Props Props(CoordinatorState state, ParameterServerState server, DataPlaneServer? dataPlane, TimeSpan deadlineFloor, Action<string> events) =>
        Akka.Actor.Props.Create(() => new CoordinatorActor(state, server, dataPlane, deadlineFloor, events));

    /// <inheritdoc/>
    protected override void PreStart() =>
        Akka.Cluster.Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents,
            typeof(ClusterEvent.UnreachableMember), typeof(ClusterEvent.ReachableMember), typeof(ClusterEvent.MemberRemoved));

    /// <inheritdoc/>
    protected override void PostStop() => Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);

    private void OnRegister(RegisterWorker request)
    {
        if (!IsMember(Sender.Path.Address))
        {
            if (_ignoredNodes.Add(Sender.Path.Address))
                _log.Info("Answered the registration of worker {0} from {1} NotAMember: that node is not a member of this cluster (its host joins again from a new node)",
                    request.WorkerId, Sender.Path.Address);
            Sender.Tell(new NotAMember(request.WorkerId, $"node {Sender.Path.Address} is not a member of the coordinator's cluster"));
            return;
        }
        string? refusal = _state.Admit(request);
        if (refusal is not null)
        {
            _log.Warning("Refused worker {0} at {1}: {2}", request.WorkerId, Sender.Path.Address, refusal);
            _events($"refused worker {request.WorkerId}: {refusal}");
            Sender.Tell(new WorkerRefused(request.WorkerId, refusal));
            return;
        }
        bool known = _state.Workers.Any(w => w.Id == request.WorkerId);
        WorkerSlot slot = _state.Join(request, Sender);
        _registrations[request.WorkerId] = (request, Sender);
        Context.Watch(Sender);
        Sender.Tell(new WorkerAccepted(_state.Plan.RunId, request.WorkerId, _state.Plan.Model, _state.Plan.MicroBatch, _state.Plan.Seed, _dataPlaneEndpoint,
            _state.Plan.WorkStealing && _dataPlaneEndpoint.Length > 0));
        if (!known)
        {
            _log.Info("Worker {0} joined from {1} with {2} threads ({3} workers)", slot.Id, Sender.Path.Address, slot.Threads, _state.Workers.Count);
            _events($"worker {slot.Id} joined ({slot.Threads} threads{(slot.Cpus is { } cpus ? $" on CPUs {string.Join(",", cpus)}" : "")})");
            if (_state.NumericsWarning(slot) is { } warning)
            {
                _log.Warning("{0}", warning);
                _events(warning);
            }
        }
        if (_alone is not null) ResumeWithWorkers();
        if (_waiting is { } w && _state.Workers.Count >= w.Count)
        {
            Timers.Cancel("join");
            w.ReplyTo.Tell(new WorkersReady(_state.Workers.Select(x => x.Id).ToList(), _state.Workers.Sum(x => x.Threads)));
            _waiting = null;
        }
    }

    // True for this process's own actors (in-process tests) and for nodes that are joining or up in this cluster.
    private bool IsMember(Address address) =>
        address.HasLocalScope || Akka.Cluster.Cluster.Get(Context.System).State.Members
            .Any(m => m.Address == address && m.Status is MemberStatus.Joining or MemberStatus.WeaklyUp or MemberStatus.Up);

    private void OnWaitForWorkers(WaitForWorkers request)
    {
        if (_state.Workers.Count >= request.Count)
        {
            Sender.Tell(new WorkersReady(_state.Workers.Select(w => w.Id).ToList(), _state.Workers.Sum(w => w.Threads)));
            return;
        }
        _waiting = (Sender, request.Count);
        Timers.StartSingleTimer("join", new JoinTimeout(), request.Timeout);
    }

    private void OnJoinTimeout()
    {
        if (_waiting is not { } w) return;
        string have = _state.Workers.Count == 0 ? "none" : string.Join(", ", _state.Workers.Select(x => x.Id));
        w.ReplyTo.Tell(new RunFailed($"waited for {w.Count} workers but only {_state.Workers.Count} joined ({have}); {w.Count - _state.Workers.Count} missing"));
        _waiting = null;
    }

    private void OnRunStep(RunStep request)
    {
        if (_early is { } done && done.Step == request.Step)
        {
            // The step ran ahead of the loop (it was sent out early): answer now and start the next one.
            Sender.Tell(done);
            _early = null;
            if (request.NextBatchIds is { } following && _state.Workers.Count > 0) Dispatch(request.Step + 1, following);
            return;
        }
        if (_state.Workers.Count == 0)
        {
            _heldStep = (request, Sender);
            WaitForAnyWorker($"step {request.Step}: no workers are left");
            return;
        }
        _stepReplyTo = Sender;
        if (_state.Current?.Step != request.Step) Dispatch(request.Step, request.BatchIds);
        if (request.NextBatchIds is { } next) Prefetch(request.Step + 1, next);
    }

    // Plans a step, opens it at the parameter server, sends every worker its subtrees and starts the deadline.
    private void Dispatch(long step, int[] batch)
    {
        _stepStarted = Stopwatch.GetTimestamp();
        StepAssignment plan = _state.PlanStep(step, batch);
        _parameterServer.Tell(new ParameterServerActor.BeginStep(step, batch.Length, _state.Plan.MicroBatch));
        foreach (var (worker, nodes) in plan.Work) Send(worker, plan, nodes);
        Timers.StartSingleTimer("deadline", new DeadlineTick(step), _state.Deadline(_deadlineFloor));
    }

    // Sends the next step's work before the current step ends: workers hold it until its weights arrive, and the
    // parameter server opens it in the same turn that applies the current step.
    private void Prefetch(long step, int[] batch)
    {
        StepAssignment preview = _state.Preview(step, batch);
        _parameterServer.Tell(new ParameterServerActor.BeginStep(step, batch.Length, _state.Plan.MicroBatch));
        foreach (var (worker, nodes) in preview.Work) Send(worker, preview, nodes);
        _prefetched = preview;
    }

    // Through the parameter server, which puts the work on the worker's data plane connection when it has one.
    private void Send(WorkerSlot worker, StepAssignment plan, List<TreeNode> nodes) =>
        _parameterServer.Tell(new ParameterServerActor.DeliverWork(worker.Id, (IActorRef)worker.Handle, new ComputeGradients(_state.Plan.RunId,
            plan.Step, plan.Step, plan.BatchIds, _state.Plan.MicroBatch, nodes.Select(n => n.First).ToArray(), nodes.Select(n => n.Count).ToArray())));

    private void OnNotFinite(ParameterServerActor.NotFiniteRejected m)
    {
        if (_state.Current?.Step != m.Step) return;
        if (!_notFinite.TryGetValue(m.Node, out HashSet<string>? workers)) _notFinite[m.Node] = workers = [];
        workers.Add(m.WorkerId);
        if (workers.Count < Math.Min(2, _state.Workers.Count)) return; // one worker may be faulty: its work is re-dealt
        Fail(RunFailedException.Diverged(m.Step, $"workers {string.Join(" and ", workers.Order())} computed numbers that are not finite for leaves {m.Node} ({m.Reason})"));
    }

    private void OnStepApplied(ParameterServerActor.StepApplied applied)
    {
        if (_state.Current?.Step != applied.Step) return;
        _notFinite.Clear();
        Timers.Cancel("deadline");
        _state.StepApplied(Stopwatch.GetElapsedTime(_stepStarted).TotalSeconds);
        _version = applied.Version;
        _stolenLeaves = applied.StolenLeaves;
        var done = new StepDone(applied.Step, new StepMetrics(applied.LossSum, applied.Correct, applied.Samples));
        if (_stepReplyTo is not null)
        {
            _stepReplyTo.Tell(done);
            _stepReplyTo = null;
        }
        else
        {
            _early = done;
        }
        if (_prefetched is { } next && next.Step == applied.Step + 1)
        {
            _prefetched = null;
            Promote(next);
        }
    }

    // The step sent ahead becomes the current one, with the assignment that was sent: the workers may already
    // have computed their nodes. Nodes of workers lost since are re-assigned whole to the others.
    private void Promote(StepAssignment sent)
    {
        if (_state.Workers.Count == 0) return;
        _stepStarted = Stopwatch.GetTimestamp();
        foreach (var (worker, nodes) in _state.Adopt(sent))
        {
            _events($"step {sent.Step}: {string.Join(", ", nodes)} re-assigned to worker {worker.Id}");
            Send(worker, sent, nodes);
        }
        Timers.StartSingleTimer("deadline", new DeadlineTick(sent.Step), _state.Deadline(_deadlineFloor));
    }

    private void OnDeadline(DeadlineTick tick)
    {
        if (_state.Current is not { } plan || plan.Step != tick.Step) return;
        var backups = _state.LateNodes();
        foreach (var (worker, nodes) in backups)
        {
            _log.Warning("Step {0} is late: {1} re-assigned to worker {2} as backup", plan.Step, string.Join(", ", nodes), worker.Id);
            _events($"step {plan.Step}: {string.Join(", ", nodes)} re-assigned to worker {worker.Id}");
            Send(worker, plan, nodes);
        }
        Timers.StartSingleTimer("deadline", new DeadlineTick(tick.Step), _state.Deadline(_deadlineFloor));
    }

    private void OnRunEvaluation(RunEvaluation request)
    {
        if (_state.Workers.Count == 0)
        {
            _heldEvaluation = (request, Sender);
            WaitForAnyWorker("evaluation: no workers are left");
            return;
        }
        _evaluationReplyTo = Sender;
        _evaluationId++;
        _evaluationTemplate = new EvaluateRange(_state.Plan.RunId, _evaluationId, _version, request.Set, 0, 0);
        _evaluationStarted = Stopwatch.GetTimestamp();
        foreach (var (worker, part) in _state.PlanEvaluation(request.Start, request.Count))
            ((IActorRef)worker.Handle).Tell(_evaluationTemplate with { Start = part.Start, Count = part.Count });
        Timers.StartSingleTimer("evaluation", new EvaluationTick(_evaluationId), _state.EvaluationDeadline(_deadlineFloor));
    }

    private void OnEvaluationResult(EvaluationResult result)
    {
        if (result.EvaluationId != _evaluationId || _evaluationReplyTo is null) return;
        if (_state.EvaluationResult(new EvaluationPart(result.Start, result.Count), result.LossSum, result.Correct) is { } total)
        {
            Timers.Cancel("evaluation");
            _state.EvaluationFinished(total.Samples, Stopwatch.GetElapsedTime(_evaluationStarted).TotalSeconds);
            _evaluationReplyTo.Tell(new EvaluationDone(new LossAndAccuracy(total.LossSum, total.Correct, total.Samples)));
            _evaluationReplyTo = null;
        }
    }

    private void OnEvaluationDeadline(EvaluationTick tick)
    {
        if (tick.EvaluationId != _evaluationId || _evaluationReplyTo is null || _evaluationTemplate is null) return;
        foreach (var (worker, part) in _state.LateEvaluationParts())
        {
            _log.Warning("Evaluation {0} is late: ids {1}..{2} re-assigned to worker {3}", tick.EvaluationId, part.Start, part.Start + part.Count - 1, worker.Id);
            ((IActorRef)worker.Handle).Tell(_evaluationTemplate with { Start = part.Start, Count = part.Count });
        }
        Timers.StartSingleTimer("evaluation", new EvaluationTick(_evaluationId), _state.EvaluationDeadline(_deadlineFloor));
    }

    // An unreachable worker loses its work at once (the others take it over), but is only suspended: a node that
    // was merely slow to answer heartbeats (a loaded machine) comes back if it is reachable again within
    // CnnNode.UnreachableWorkerDownAfter, after which it is downed. A worker removed from the cluster is gone for good.
    private void OnMemberLost(Member member, string how, bool suspend)
    {
        foreach (WorkerSlot worker in _state.Workers.Where(w => ((IActorRef)w.Handle).Path.Address == member.Address).ToList())
        {
            if (suspend && _registrations.TryGetValue(worker.Id, out var registration)) _suspended[member.Address] = registration;
            Lose(worker, how);
        }
    }

    private void OnMemberBack(Member member)
    {
        if (!_suspended.Remove(member.Address, out var registration)) return;
        _state.Join(registration.Request, registration.Handle);
        _log.Info("Worker {0} is reachable again and takes work from the next step", registration.Request.WorkerId);
        _events($"worker {registration.Request.WorkerId} is reachable again");
    }

    // A worker's node unreachable for CnnNode.UnreachableWorkerDownAfter is downed here, before the Split Brain Resolver
    // could decide about it (the reason is at that constant). Its work went to the others when it became unreachable.
    private void OnDownTick(DownTick tick)
    {
        var cluster = Akka.Cluster.Cluster.Get(Context.System);
        Member? member = cluster.State.Unreachable.FirstOrDefault(m => m.UniqueAddress.Equals(tick.Node));
        if (member is null || member.Status is MemberStatus.Down or MemberStatus.Exiting) return; // already on its way out
        string worker = _suspended.TryGetValue(member.Address, out var registration) ? $"worker {registration.Request.WorkerId}'s node" : "worker node";
        _log.Warning("Downing {0} {1}: unreachable for {2:0} s; its host joins again from a new node", worker, member.Address,
            CnnNode.UnreachableWorkerDownAfter.TotalSeconds);
        _events($"downed {worker} {member.Address} (unreachable for {CnnNode.UnreachableWorkerDownAfter.TotalSeconds:0} s)");
        cluster.Down(member.Address);
    }

    private static string DownKey(UniqueAddress node) => $"down {node}";

    private void OnTerminated(Terminated terminated)
    {
        if (terminated.ActorRef.Equals(_parameterServer))
        {
            string reason = "the parameter server stopped";
            _stepReplyTo?.Tell(new RunFailed(reason));
            _evaluationReplyTo?.Tell(new RunFailed(reason));
            Context.Stop(Self);
            return;
        }
        if (_state.Find(terminated.ActorRef) is { } worker) Lose(worker, "stopped");
    }

    // Every worker is gone (killed, or its node downed while it rejoins from a new one, as after a coordinator
    // restart): the run waits for one to join instead of failing, and fails only after AloneTimeout.
    private void WaitForAnyWorker(string why)
    {
        if (_alone is null)
        {
            _log.Warning("{0}; waiting up to {1:0}s for a worker to join", why, AloneTimeout.TotalSeconds);
            _events($"no workers left; waiting up to {AloneTimeout.TotalSeconds:0}s for one to join");
            Timers.StartSingleTimer("alone", new AloneTick(), AloneTimeout);
        }
        _alone = why;
    }

    private void ResumeWithWorkers()
    {
        _alone = null;
        Timers.Cancel("alone");
        if (_heldStep is { } held)
        {
            _heldStep = null;
            Self.Tell(held.Request, held.ReplyTo);
        }
        else if (_state.Current is { } plan)
        {
            // The step in progress lost all its workers: its missing nodes go to the worker that joined.
            foreach (var (target, nodes) in _state.LateNodes())
            {
                _events($"step {plan.Step}: {string.Join(", ", nodes)} re-assigned to worker {target.Id}");
                Send(target, plan, nodes);
            }
            Timers.StartSingleTimer("deadline", new DeadlineTick(plan.Step), _state.Deadline(_deadlineFloor));
        }
        if (_heldEvaluation is { } evaluation)
        {
            _heldEvaluation = null;
            Self.Tell(evaluation.Request, evaluation.ReplyTo);
        }
        else if (_evaluationReplyTo is not null && _evaluationTemplate is not null)
        {
            foreach (var (target, part) in _state.LateEvaluationParts())
                ((IActorRef)target.Handle).Tell(_evaluationTemplate with { Start = part.Start, Count = part.Count });
        }
    }

    private void OnAloneTimeout()
    {
        if (_alone is not { } why || _state.Workers.Count > 0) return;
        Fail($"{why}, and none joined within {AloneTimeout.TotalSeconds:0}s");
        _alone = null;
    }

    // Answers every request the loop is waiting on with RunFailed.
    private void Fail(string reason)
    {
        Timers.Cancel("deadline");
        _stepReplyTo?.Tell(new RunFailed(reason));
        _stepReplyTo = null;
        _heldStep?.ReplyTo.Tell(new RunFailed(reason));
        _heldStep = null;
        _evaluationReplyTo?.Tell(new RunFailed(reason));
        _evaluationReplyTo = null;
        _heldEvaluation?.ReplyTo.Tell(new RunFailed(reason));
        _heldEvaluation = null;
    }

    private void Lose(WorkerSlot worker, string how)
    {
        var reassigned = _state.Leave(worker.Id);
        _parameterServer.Tell(new ParameterServerActor.DropWorker(worker.Id));
        _log.Warning("Lost worker {0} ({1}); {2} workers left", worker.Id, how, _state.Workers.Count);
        _events($"lost worker {worker.Id} ({how})");
        if (_state.Workers.Count == 0)
        {
            WaitForAnyWorker($"lost worker {worker.Id} ({how}) and no workers are left");
            return;
        }
        if (_state.Current is { } plan)
            foreach (var (target, nodes) in reassigned)
            {
                _events($"step {plan.Step}: {string.Join(", ", nodes)} re-assigned to worker {target.Id}");
                Send(target, plan, nodes);
            }
        if (_evaluationReplyTo is not null && _evaluationTemplate is not null)
            foreach (var (target, part) in _state.LateEvaluationParts())
                ((IActorRef)target.Handle).Tell(_evaluationTemplate with { Start = part.Start, Count = part.Count });
    }
}

/// <summary>What run.json records of one worker; Cpus: the CPUs its computing threads were pinned to, or null when not pinned.</summary>
public sealed record WorkerStat(string Id, int Threads, long Images, long Contributions, double MeanComputeMillisecondsPerStep, string Numerics,
    IReadOnlyList<int>? Cpus = null);

/// <summary>Actor names on the coordinator node.</summary>
public static class WorkerNames
{
    /// <summary>The coordinator actor.</summary>
    public const string Coordinator = Cnn.Worker.WorkerActor.CoordinatorName;
    /// <summary>The parameter server actor (a child of the coordinator).</summary>
    public const string ParameterServer = Cnn.Worker.WorkerActor.ParameterServerName;
}
