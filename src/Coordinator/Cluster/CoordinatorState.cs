// The coordinator's logic, without an ActorSystem: who the workers are, which of them may join, which subtrees
// of the current batch each one computes, which subtrees are still missing, when a step is late, and which
// evaluation ranges are still out. The batches themselves come from the epoch loop (Runs/TrainingLoop.cs),
// shared with --no-cluster so that both follow one schedule. The actor turns the answers into messages and timers.
//
// Assignment: the leaves of a batch are dealt out as contiguous ranges in proportion to the workers' threads
// (largest remainder), and each range is sent as the few whole tree nodes that cover it, so a worker sums its
// leaves locally and sends one contribution per node. Missing nodes are re-assigned whole, so the parameter
// server sees the same nodes whoever computes them and drops later duplicates.
using Cnn.Engine.Training;
using Cnn.Messages;

namespace Cnn.Coordinator.Cluster;

/// <summary>A worker taken into the run.</summary>
public sealed class WorkerSlot(string id, int threads, object handle, string numerics, IReadOnlyList<int>? cpus = null)
{
    /// <summary>The worker's id (unique in the run).</summary>
    public string Id { get; } = id;
    /// <summary>Threads it computes with.</summary>
    public int Threads { get; } = threads;
    /// <summary>Its numerics fingerprint (the kernel paths it computes with).</summary>
    public string Numerics { get; } = numerics;
    /// <summary>The CPUs its computing threads are pinned to, one per thread, or null when they are not pinned.</summary>
    public IReadOnlyList<int>? Cpus { get; } = cpus;
    /// <summary>The actor that reaches it (IActorRef in the actor; anything in tests).</summary>
    public object Handle { get; set; } = handle;
    /// <summary>Images it computed.</summary>
    public long Images { get; set; }
    /// <summary>Contributions of it the parameter server accepted.</summary>
    public long Contributions { get; set; }
    /// <summary>Total compute time it reported, in milliseconds.</summary>
    public double ComputeMilliseconds { get; set; }
    /// <summary>Steps it took part in.</summary>
    public long Steps { get; set; }
}

/// <summary>The fixed parameters of a run that decide what workers compute and who may join.</summary>
public sealed record RunPlan(string RunId, string Model, int MicroBatch, ulong Seed, string DatasetSha256, string NumericsFingerprint,
    bool AllowFingerprintMismatch = false, bool WorkStealing = false);

/// <summary>A range of an evaluation set given to a worker.</summary>
public sealed record EvaluationPart(int Start, int Count);

/// <summary>The subtrees of one step given to each worker.</summary>
public sealed record StepAssignment(long Step, int[] BatchIds, int LeafCount, IReadOnlyList<(WorkerSlot Worker, List<TreeNode> Nodes)> Work);

/// <summary>Schedule, membership and assignment of a distributed run (see file header).</summary>
public sealed class CoordinatorState
{
    /// <summary>The protocol version this coordinator speaks (shared with the worker).</summary>
    public const int ProtocolVersion = Cnn.Worker.WorkerActor.ProtocolVersion;

    private readonly List<WorkerSlot> _workers = [];
    private readonly Dictionary<TreeNode, WorkerSlot> _owner = [];
    private readonly HashSet<TreeNode> _done = [];
    private readonly Dictionary<WorkerSlot, double> _stepCompute = [];
    private readonly RecentTimes _recentStepSeconds = new(keep: 50, coldFloors: 5); // the first steps include JIT and connection set-up
    private readonly RecentTimes _recentEvaluationSecondsPerImage = new(keep: 10, coldFloors: 10); // the first includes JIT compilation
    private readonly Dictionary<EvaluationPart, WorkerSlot> _evaluationOwner = [];
    private readonly Dictionary<EvaluationPart, (double LossSum, int Correct)> _evaluationDone = [];

    /// <summary>A coordinator for <paramref name="plan"/>.</summary>
    public CoordinatorState(RunPlan plan) => Plan = plan;

    /// <summary>The run's parameters.</summary>
    public RunPlan Plan { get; }
    /// <summary>Workers taken into the run.</summary>
    public IReadOnlyList<WorkerSlot> Workers => _workers;
    /// <summary>The assignment of the step in progress, or null.</summary>
    public StepAssignment? Current { get; private set; }
    /// <summary>Steps applied so far in this session.</summary>
    public long StepsApplied { get; private set; }
    /// <summary>Summed step wall time of this session, in milliseconds.</summary>
    public double StepMilliseconds { get; private set; }
    /// <summary>Summed per-step compute time of the slowest worker of each step, in milliseconds.</summary>
    public double CriticalComputeMilliseconds { get; private set; }
    /// <summary>
    /// Summed per-step mean compute time of the workers that took part in each step, in milliseconds: with equal
    /// threads, what the critical path would be if the work were perfectly balanced.
    /// </summary>
    public double MeanWorkerComputeMilliseconds { get; private set; }

    /// <summary>Checks a worker's registration: the reason to refuse it, or null to accept.</summary>
    public string? Admit(RegisterWorker request)
    {
        if (request.ProtocolVersion != ProtocolVersion)
            return $"protocol version {request.ProtocolVersion} differs from the coordinator's {ProtocolVersion}";
        if (request.Threads < 1) return $"it offers {request.Threads} threads";
        if (!string.Equals(request.DatasetSha256, Plan.DatasetSha256, StringComparison.OrdinalIgnoreCase))
            return $"dataset hash mismatch: the worker has {Short(request.DatasetSha256)} but the coordinator has {Short(Plan.DatasetSha256)}";
        if (request.NumericsFingerprint != Plan.NumericsFingerprint && !Plan.AllowFingerprintMismatch)
            return $"numerics fingerprint mismatch: the worker runs '{request.NumericsFingerprint}' but the coordinator runs '{Plan.NumericsFingerprint}', so results would not be bit-identical";
        return null;
    }

    /// <summary>
    /// What admitting <paramref name="slot"/> costs, to be logged, or null: a worker with other kernels (admitted only
    /// when the run allows it, see <see cref="Admit"/>) makes the weights depend on which leaves it computed.
    /// </summary>
    public string? NumericsWarning(WorkerSlot slot) => slot.Numerics == Plan.NumericsFingerprint ? null
        : $"worker {slot.Id} computes with other kernels ('{slot.Numerics}', this node '{Plan.NumericsFingerprint}'): the run is no longer bit-identical to --no-cluster";

    /// <summary>Adds (or, on re-registration, refreshes) a worker that passed <see cref="Admit"/>.</summary>
    public WorkerSlot Join(RegisterWorker request, object handle)
    {
        WorkerSlot? slot = _workers.Find(w => w.Id == request.WorkerId);
        if (slot is not null)
        {
            slot.Handle = handle;
            return slot;
        }
        // The CPUs only as a list of one per thread: anything else a peer says of them is not a placement.
        int[]? cpus = request.Cpus is { } given && given.Length == request.Threads && given.All(c => c >= 0) ? given : null;
        slot = new WorkerSlot(request.WorkerId, request.Threads, handle, request.NumericsFingerprint, cpus);
        _workers.Add(slot);
        return slot;
    }

    /// <summary>Removes a worker; returns the nodes of the current step it still owed, now re-assigned.</summary>
    public IReadOnlyList<(WorkerSlot Worker, List<TreeNode> Nodes)> Leave(string workerId)
    {
        WorkerSlot? slot = _workers.Find(w => w.Id == workerId);
        if (slot is null) return [];
        _workers.Remove(slot);
        return Reassign(_owner.Where(p => p.Value == slot && !_done.Contains(p.Key)).Select(p => p.Key).ToList(), exclude: null);
    }

    /// <summary>The worker reached through <paramref name="handle"/>, or null.</summary>
    public WorkerSlot? Find(object handle) => _workers.Find(w => Equals(w.Handle, handle));

    /// <summary>Plans step <paramref name="step"/> on the batch <paramref name="batch"/>: the subtrees of each worker.</summary>
    public StepAssignment PlanStep(long step, int[] batch)
    {
        StepAssignment plan = Preview(step, batch);
        _owner.Clear();
        _done.Clear();
        _stepCompute.Clear();
        foreach (var (worker, nodes) in plan.Work)
            foreach (TreeNode node in nodes) _owner[node] = worker;
        Current = plan;
        return plan;
    }

    /// <summary>
    /// Makes <paramref name="sent"/>, an assignment sent ahead (<see cref="Preview"/>), the current step, keeping
    /// every node with the worker it was sent to: those workers may already have computed it, and a different cut
    /// of the tree would overlap their contributions. Only the nodes of workers that have left are re-assigned,
    /// whole; they are returned for sending. Workers that joined since take work from the next step.
    /// </summary>
    public IReadOnlyList<(WorkerSlot Worker, List<TreeNode> Nodes)> Adopt(StepAssignment sent)
    {
        _owner.Clear();
        _done.Clear();
        _stepCompute.Clear();
        Current = sent;
        var orphans = new List<TreeNode>();
        foreach (var (worker, nodes) in sent.Work)
            foreach (TreeNode node in nodes)
            {
                if (_workers.Contains(worker)) _owner[node] = worker;
                else orphans.Add(node);
            }
        return orphans.Count == 0 ? [] : Reassign(orphans, exclude: null);
    }

    /// <summary>The assignment <see cref="PlanStep"/> would make now, without making it (to send work ahead).</summary>
    public StepAssignment Preview(long step, int[] batch)
    {
        if (_workers.Count == 0) throw new InvalidOperationException("no workers");
        int leafCount = GradientTree.LeafCount(batch.Length, Plan.MicroBatch);
        var work = new List<(WorkerSlot, List<TreeNode>)>();
        int[] shares = Shares(leafCount, _workers.Select(w => w.Threads).ToArray());
        int first = 0;
        for (int i = 0; i < _workers.Count; i++)
        {
            if (shares[i] == 0) continue;
            work.Add((_workers[i], GradientTree.Cover(leafCount, first, first + shares[i])));
            first += shares[i];
        }
        return new StepAssignment(step, batch, leafCount, work);
    }

    /// <summary>Records that the parameter server accepted <paramref name="node"/> from <paramref name="workerId"/>.</summary>
    public void Accepted(TreeNode node, string workerId, double computeMilliseconds)
    {
        _done.Add(node);
        WorkerSlot? slot = _workers.Find(w => w.Id == workerId);
        if (slot is null || Current is null) return;
        slot.Contributions++;
        slot.ComputeMilliseconds += computeMilliseconds;
        slot.Images += GradientTree.NodeSamples(node, Current.BatchIds.Length, Plan.MicroBatch).Count;
        _stepCompute[slot] = _stepCompute.GetValueOrDefault(slot) + computeMilliseconds;
    }

    /// <summary>
    /// The step is late: re-assigns the missing nodes of each late worker to the other workers (backup tasks).
    /// The late worker keeps its assignment too; whichever contribution arrives first wins.
    /// </summary>
    public IReadOnlyList<(WorkerSlot Worker, List<TreeNode> Nodes)> LateNodes()
    {
        var missing = _owner.Where(p => !Covered(p.Key)).ToList();
        var result = new List<(WorkerSlot, List<TreeNode>)>();
        foreach (var group in missing.GroupBy(p => p.Value))
            result.AddRange(Reassign(group.Select(p => p.Key).ToList(), exclude: group.Key));
        return result;
    }

    // A node is done when it was accepted, or when accepted nodes inside it cover its leaves: with work stealing an
    // owner sends its share less the stolen leaf as smaller subtrees, and the thief sends the leaf.
    private bool Covered(TreeNode node)
    {
        if (_done.Contains(node)) return true;
        var leaves = new HashSet<int>();
        foreach (TreeNode d in _done)
            if (node.First <= d.First && d.End <= node.End)
                for (int leaf = d.First; leaf < d.End; leaf++) leaves.Add(leaf);
        return leaves.Count == node.Count;
    }

    /// <summary>The current step's optimizer update was applied after <paramref name="seconds"/>.</summary>
    public void StepApplied(double seconds)
    {
        foreach (WorkerSlot w in _stepCompute.Keys) w.Steps++;
        _recentStepSeconds.Add(seconds);
        StepsApplied++;
        StepMilliseconds += seconds * 1000;
        double slowest = 0, total = 0; // one pass, no enumerator boxed: this runs every step
        foreach (double ms in _stepCompute.Values)
        {
            slowest = Math.Max(slowest, ms);
            total += ms;
        }
        CriticalComputeMilliseconds += slowest;
        MeanWorkerComputeMilliseconds += _stepCompute.Count == 0 ? 0 : total / _stepCompute.Count;
        Current = null;
        _owner.Clear();
        _done.Clear();
        _stepCompute.Clear();
    }

    /// <summary>Cuts ids [start, start + count) into ranges dealt to the workers in proportion to their threads.</summary>
    public IReadOnlyList<(WorkerSlot Worker, EvaluationPart Part)> PlanEvaluation(int start, int count)
    {
        if (_workers.Count == 0) throw new InvalidOperationException("no workers");
        _evaluationOwner.Clear();
        _evaluationDone.Clear();
        const int PartSize = 500;
        var parts = new List<EvaluationPart>();
        for (int at = 0; at < count; at += PartSize) parts.Add(new EvaluationPart(start + at, Math.Min(PartSize, count - at)));
        int[] shares = Shares(parts.Count, _workers.Select(w => w.Threads).ToArray());
        var result = new List<(WorkerSlot, EvaluationPart)>();
        int next = 0;
        for (int i = 0; i < _workers.Count; i++)
            for (int j = 0; j < shares[i]; j++, next++)
            {
                _evaluationOwner[parts[next]] = _workers[i];
                result.Add((_workers[i], parts[next]));
            }
        return result;
    }

    /// <summary>Records a range's result; returns the total once every range is in, else null.</summary>
    public (double LossSum, int Correct, int Samples)? EvaluationResult(EvaluationPart part, double lossSum, int correct)
    {
        if (!_evaluationOwner.ContainsKey(part)) return null; // not a range of this evaluation
        _evaluationDone[part] = (lossSum, correct);
        if (_evaluationDone.Count < _evaluationOwner.Count) return null;
        // Sum in range order, so the total does not depend on which worker answered first.
        var ordered = _evaluationDone.OrderBy(p => p.Key.Start).ToList();
        var total = (ordered.Sum(p => p.Value.LossSum), ordered.Sum(p => p.Value.Correct), ordered.Sum(p => p.Key.Count));
        _evaluationOwner.Clear();
        _evaluationDone.Clear();
        return total;
    }

    /// <summary>Ranges of the evaluation in progress still missing, re-dealt to live workers other than their owner when possible.</summary>
    public IReadOnlyList<(WorkerSlot Worker, EvaluationPart Part)> LateEvaluationParts()
    {
        var result = new List<(WorkerSlot, EvaluationPart)>();
        var missing = _evaluationOwner.Where(p => !_evaluationDone.ContainsKey(p.Key)).ToList();
        int turn = 0;
        foreach (var (part, owner) in missing)
        {
            var others = _workers.Where(w => w != owner).ToList();
            WorkerSlot target = others.Count > 0 ? others[turn++ % others.Count] : owner;
            if (!_workers.Contains(target)) continue;
            _evaluationOwner[part] = target;
            result.Add((target, part));
        }
        return result;
    }

    /// <summary>How long a step may take before its missing nodes get backup workers: 3x the median, at least the floor.</summary>
    public TimeSpan Deadline(TimeSpan floor) => _recentStepSeconds.Deadline(floor, scale: 1);

    /// <summary>An evaluation of <paramref name="images"/> images took <paramref name="seconds"/> from dealing to its last range.</summary>
    public void EvaluationFinished(int images, double seconds)
    {
        if (images > 0) _recentEvaluationSecondsPerImage.Add(seconds / images);
    }

    /// <summary>
    /// How long the evaluation in progress (<see cref="PlanEvaluation"/>) may take before its missing ranges go to
    /// other workers: 3x what the median of the recent evaluations took per image, at least the floor; ten floors
    /// before the first (it includes JIT compilation). Evaluations come between steps, so a frozen worker holding a
    /// range stalls the run for this long unless it is declared lost first.
    /// </summary>
    public TimeSpan EvaluationDeadline(TimeSpan floor) =>
        _recentEvaluationSecondsPerImage.Deadline(floor, scale: _evaluationOwner.Keys.Sum(p => p.Count));

    /// <summary>Splits <paramref name="leaves"/> in proportion to <paramref name="threads"/> (largest remainder, ties to the earlier worker).</summary>
    public static int[] Shares(int leaves, int[] threads)
    {
        int total = threads.Sum();
        var shares = new int[threads.Length];
        var remainders = new (double Remainder, int Index)[threads.Length];
        int given = 0;
        for (int i = 0; i < threads.Length; i++)
        {
            double exact = (double)leaves * threads[i] / total;
            shares[i] = (int)Math.Floor(exact);
            given += shares[i];
            remainders[i] = (exact - shares[i], i);
        }
        foreach (var (_, index) in remainders.OrderByDescending(r => r.Remainder).ThenBy(r => r.Index).Take(leaves - given))
            shares[index]++;
        return shares;
    }

    // Gives each node to the live worker (other than `exclude`) with the least work in this step, most threads first.
    private List<(WorkerSlot Worker, List<TreeNode> Nodes)> Reassign(List<TreeNode> nodes, WorkerSlot? exclude)
    {
        var candidates = _workers.Where(w => w != exclude).ToList();
        var result = new Dictionary<WorkerSlot, List<TreeNode>>();
        if (candidates.Count == 0 || Current is null) return [];
        var load = candidates.ToDictionary(w => w, w => _owner.Where(p => p.Value == w && !_done.Contains(p.Key)).Sum(p => p.Key.Count) / (double)w.Threads);
        foreach (TreeNode node in nodes.OrderBy(n => n.First))
        {
            WorkerSlot target = candidates.OrderBy(w => load[w]).ThenByDescending(w => w.Threads).First();
            load[target] += node.Count / (double)target.Threads;
            _owner[node] = target;
            if (!result.TryGetValue(target, out var list)) result[target] = list = [];
            list.Add(node);
        }
        return result.Select(p => (p.Key, p.Value)).ToList();
    }

    private static string Short(string hash) => hash.Length > 12 ? hash[..12] : hash;

    /// <summary>
    /// The last <paramref name="keep"/> durations of one kind, and the deadline they give: 3x their median (the upper
    /// middle of an even count, which errs toward waiting) times <c>scale</c>, at least the floor; before the first,
    /// <paramref name="coldFloors"/> floors. Steps and evaluations share this rule.
    /// </summary>
    /// <remarks>Asked for every step: a ring and a sort buffer of <paramref name="keep"/> each, nothing allocated per call.</remarks>
    private sealed class RecentTimes(int keep, int coldFloors)
    {
        private readonly double[] _seconds = new double[keep]; // a ring: the oldest is overwritten
        private readonly double[] _sorted = new double[keep];
        private int _count, _next;

        public void Add(double seconds)
        {
            _seconds[_next] = seconds;
            _next = (_next + 1) % keep;
            _count = Math.Min(_count + 1, keep);
        }

        public TimeSpan Deadline(TimeSpan floor, double scale)
        {
            if (_count == 0) return floor * coldFloors;
            Array.Copy(_seconds, _sorted, _count);
            Array.Sort(_sorted, 0, _count);
            return TimeSpan.FromSeconds(Math.Max(floor.TotalSeconds, 3 * _sorted[_count / 2] * scale));
        }
    }
}
