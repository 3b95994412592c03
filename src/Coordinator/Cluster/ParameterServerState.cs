// The parameter server's logic, without an ActorSystem: it owns the weights, the Adam state and the version
// counter, assembles gradient contributions from chunks, checks them, and when the accepted subtrees cover the
// whole batch it reduces them in tree order (GradientTree.Reduce, the same function the single-process trainer
// uses), applies Adam and moves to the next version. Every decision is returned as an outcome for the actor to
// act on (log, reply, broadcast); nothing a peer sends can change the weights unless it is a complete,
// well-formed, finite contribution for the current step and version.
//
// Segments: on the data plane a contribution may come cut into the model's exchange segments (Model.
// ExchangeSegments): its tails while the worker's last backward pass still runs, its head at the end. A tail
// segment is reduced and its optimizer update applied as soon as the accepted tails cover the batch, and the
// actor sends those new weights at once; the head completes the step. Until then the step is not committed: the
// values a tail update replaced are kept, and are put back if the tail is withdrawn (the head of a contribution
// whose tail was used turned out not finite), so CommittedCopy always gives the weights and moments at Version.
// Leaves give the same bits wherever they are computed, so tails and heads of one subtree may come from
// different workers (a re-dealt subtree). Every finite tail offered is kept until the step ends, the ones the
// update did not use standing by: a head is accepted only after its own tails, so when the heads cover the batch
// the tails held cover it too, and a withdrawn tail's place is taken by a copy or by smaller subtrees.
//
// It does not decide what is computed where (the coordinator does) and does not talk to anyone.
using System.Numerics.Tensors;
using Cnn.Engine.Models;
using Cnn.Engine.Training;
using Cnn.Messages;

namespace Cnn.Coordinator.Cluster;

/// <summary>Everything about a contribution but its numbers: which step, version and subtree, and its totals.</summary>
public sealed record ContributionHeader(
    string RunId, long Step, long Version, int NodeFirst, int NodeCount, int LeafCount, int TotalFloats,
    double LossSum, int Correct, int Samples, string WorkerId, double ComputeMilliseconds)
{
    /// <summary>The header of a chunk's contribution.</summary>
    public static ContributionHeader Of(GradientChunk c) =>
        new(c.RunId, c.Step, c.Version, c.NodeFirst, c.NodeCount, c.LeafCount, c.TotalFloats, c.LossSum, c.Correct, c.Samples, c.WorkerId, c.ComputeMilliseconds);
}

/// <summary>What became of one gradient chunk or contribution.</summary>
public abstract record ChunkOutcome
{
    /// <summary>Kept; the contribution is not complete yet.</summary>
    public sealed record Partial : ChunkOutcome;

    /// <summary>A later chunk of a contribution already rejected or dropped: ignored without a new reason.</summary>
    public sealed record Ignored : ChunkOutcome;

    /// <summary>
    /// A contribution for a subtree that is already covered, in the open step or in the step just applied (a late
    /// copy: the owner of a stolen leaf that began it anyway, or a slow worker whose share was dealt again): dropped.
    /// </summary>
    public sealed record Duplicate(TreeNode Node, string WorkerId) : ChunkOutcome;

    /// <summary>
    /// Dropped, with the reason to log and send back. <paramref name="NotFinite"/>: the numbers themselves are NaN or
    /// infinite, which a faulty worker sends but also every worker once training has diverged.
    /// </summary>
    public sealed record Rejected(string Reason, bool NotFinite = false) : ChunkOutcome;

    /// <summary>A complete contribution was accepted; the step still waits for others.</summary>
    public sealed record Accepted(TreeNode Node, string WorkerId, double ComputeMilliseconds) : ChunkOutcome;

    /// <summary>
    /// Tail segment <paramref name="Segment"/> of the exchange layout is updated: the weights of version
    /// <paramref name="Version"/> (the next one) are final in its range and may be sent.
    /// </summary>
    public sealed record TailApplied(int Segment, long Version) : ChunkOutcome;

    /// <summary>
    /// The contribution completed the batch: the optimizer stepped and the version moved on. <paramref name="SendWhole"/>:
    /// a tail segment was applied only now (its used tail had been withdrawn), so workers need the whole weights, not
    /// just the head.
    /// </summary>
    public sealed record StepApplied(TreeNode Node, string WorkerId, double ComputeMilliseconds, long Step, long Version, double LossSum, int Correct, int Samples,
        bool SendWhole = false) : ChunkOutcome;
}

/// <summary>Weights, optimizer state and the exact reduction of one run (see file header).</summary>
public sealed class ParameterServerState
{
    private readonly ParameterLayout _layout;
    private readonly Dictionary<(TreeNode Node, string Worker), Assembly> _assemblies = [];
    private readonly HashSet<(TreeNode Node, string Worker)> _dropped = [];
    private readonly HashSet<(string, long, long, int, int, string)> _refusedEarly = [];
    private readonly Dictionary<TreeNode, GradientSum> _accepted = [];
    private readonly System.Collections.Concurrent.ConcurrentBag<float[]> _buffers = [];
    private StepPlan? _step;
    private StepPlan? _queued;
    private (StepPlan Plan, long Version)? _applied; // the step applied last, with the version its contributions name
    private readonly IReadOnlyList<ExchangeSegment> _segments;
    private readonly TailSegment[] _tails;
    private float[][]? _saved; // the weights, m and v a tail update replaced (flat layout), until the step commits

    // The finite tails of one segment offered in the open step, by subtree and sender, and the ones its applied
    // update was computed from (none: not applied).
    private sealed class TailSegment
    {
        public Dictionary<(TreeNode Node, string Worker), GradientSum> Parts { get; } = [];
        public List<(TreeNode Node, string Worker)> Used { get; } = [];
        public bool Applied => Used.Count > 0;
    }

    private readonly float[][] _live; // the weights, m and v, in the order of _saved

    private static void CopyRange(float[][] from, float[][] to, ExchangeSegment range)
    {
        for (int k = 0; k < from.Length; k++) from[k].AsSpan(range.From, range.Length).CopyTo(to[k].AsSpan(range.From));
    }

    private sealed record StepPlan(long Step, int BatchSize, int MicroBatch, int LeafCount);

    private sealed class Assembly(float[] buffer, int chunkCount)
    {
        public float[] Buffer { get; } = buffer;
        public bool[] Seen { get; } = new bool[chunkCount];
        public int Received { get; set; }
    }

    /// <summary>
    /// A server for run <paramref name="runId"/> starting from the given weights and optimizer. With
    /// <paramref name="segments"/> (a model's exchange segments, more than one), data-plane contributions come cut into
    /// them (see file header); otherwise they come whole.
    /// </summary>
    public ParameterServerState(string runId, ParameterLayout layout, float[] weights, Adam adam,
        IReadOnlyList<ExchangeSegment>? segments = null)
    {
        _segments = segments is { Count: > 1 } ? segments : [new ExchangeSegment(0, layout.Count, -1)];
        if (_segments[^1].From != 0 || _segments[0].To != layout.Count || _segments.Zip(_segments.Skip(1)).Any(p => p.First.From != p.Second.To))
            throw new ArgumentException("exchange segments must cover the parameters from the end down to 0, in order");
        _tails = Enumerable.Range(0, _segments.Count - 1).Select(_ => new TailSegment()).ToArray();
        if (weights.Length != layout.Count) throw new ArgumentException($"weights have {weights.Length} floats but the model has {layout.Count}");
        RunId = runId;
        _layout = layout;
        Weights = weights;
        Adam = adam;
        _live = [weights, adam.M, adam.V];
    }

    /// <summary>The exchange segments contributions and weights travel in: one, [0, parameters), when they travel whole.</summary>
    public IReadOnlyList<ExchangeSegment> Segments => _segments;

    /// <summary>The run this server belongs to.</summary>
    public string RunId { get; }
    /// <summary>
    /// The weights (flat layout). Version counts the optimizer steps applied. While a step with applied tails is open
    /// (<see cref="AppliedTails"/>), their ranges already hold the next version: use <see cref="CommittedWeights"/> or
    /// <see cref="CommittedCopy"/>.
    /// </summary>
    public float[] Weights { get; }
    /// <summary>The optimizer and its state.</summary>
    public Adam Adam { get; }
    /// <summary>The weights version: the number of optimizer steps applied (Adam.Iterations).</summary>
    public long Version => Adam.Iterations;
    /// <summary>The step being collected, or null.</summary>
    public long? CurrentStep => _step?.Step;

    /// <summary>The tail segments whose update for version <see cref="Version"/> + 1 is applied in the open step.</summary>
    public IEnumerable<int> AppliedTails => Enumerable.Range(0, _tails.Length).Where(i => _tails[i].Applied);

    /// <summary>Copies of the weights, m and v at <see cref="Version"/>, without any applied tail of the open step.</summary>
    public (float[] Weights, float[] M, float[] V) CommittedCopy() => (Committed(0), Committed(1), Committed(2));

    /// <summary>The weights at <see cref="Version"/>: <see cref="Weights"/> itself, or a copy when tails of the open step are applied.</summary>
    public float[] CommittedWeights() => AppliedTails.Any() ? Committed(0) : Weights;

    // A copy of _live[k] with what the applied tails replaced put back.
    private float[] Committed(int k)
    {
        float[] copy = (float[])_live[k].Clone();
        foreach (int segment in AppliedTails) _saved![k].AsSpan(_segments[segment].From, _segments[segment].Length).CopyTo(copy.AsSpan(_segments[segment].From));
        return copy;
    }

    /// <summary>
    /// Opens step <paramref name="step"/> (which must equal the version: one optimizer step per batch) for a
    /// batch of <paramref name="batchSize"/> samples cut into leaves of <paramref name="microBatch"/>.
    /// </summary>
    /// <remarks>
    /// The coordinator may announce the next step while the current one is still open (step = version + 1): it is
    /// then opened in the same call that applies the current step, so no contribution for it can find it closed.
    /// </remarks>
    public void BeginStep(long step, int batchSize, int microBatch)
    {
        var plan = new StepPlan(step, batchSize, microBatch, GradientTree.LeafCount(batchSize, microBatch));
        if (_step is not null && _step.Step == step) return; // a repeated BeginStep (coordinator retry) is harmless
        if (step == Version + 1 && _step is not null && _step.Step == Version)
        {
            _queued = plan;
            return;
        }
        if (step != Version) throw new InvalidOperationException($"step {step} cannot start at weights version {Version}");
        ClearStep();
        _step = plan;
        _refusedEarly.Clear(); // a contribution refused before its step opened may now be sent again
    }

    /// <summary>A gradient buffer of the model's size (thread-safe: data-plane readers rent them).</summary>
    public float[] RentBuffer() => _buffers.TryTake(out float[]? buffer) ? buffer : new float[_layout.Count];

    /// <summary>Gives back a buffer from <see cref="RentBuffer"/> (thread-safe).</summary>
    public void ReturnBuffer(float[] buffer)
    {
        if (buffer.Length == _layout.Count) _buffers.Add(buffer);
    }

    /// <summary>Takes one chunk of a contribution (see <see cref="ChunkOutcome"/>).</summary>
    public ChunkOutcome Accept(GradientChunk chunk)
    {
        var header = ContributionHeader.Of(chunk);
        var key = (new TreeNode(chunk.NodeFirst, chunk.NodeCount), chunk.WorkerId);
        if (Check(header) is { } problem) return problem;
        if (_tails.Length > 0) return Drop(key, "this run takes contributions on the data plane, in the model's exchange segments");
        int chunkCount = TensorChunks.ChunkCount(_layout.Count);
        if (chunk.ChunkCount != chunkCount || chunk.ChunkIndex < 0 || chunk.ChunkIndex >= chunkCount)
            return Drop(key, $"chunk {chunk.ChunkIndex} of {chunk.ChunkCount}, but a gradient has {chunkCount} chunks");
        int expectedOffset = chunk.ChunkIndex * TensorChunks.MaxChunkFloats;
        int expectedBytes = Math.Min(TensorChunks.MaxChunkFloats, _layout.Count - expectedOffset) * 4;
        if (chunk.Offset != expectedOffset || chunk.Data is null || chunk.Data.Length != expectedBytes)
            return Drop(key, $"chunk {chunk.ChunkIndex} has offset {chunk.Offset} and {chunk.Data?.Length ?? 0} bytes; expected offset {expectedOffset} and {expectedBytes} bytes");

        if (!_assemblies.TryGetValue(key, out Assembly? assembly))
        {
            // Honest workers have at most one contribution per leaf in flight, plus the re-dealt copies of late
            // ones; a sender inventing worker ids must not make the server rent a buffer for each.
            if (_assemblies.Count >= 2 * _step!.LeafCount)
                return Drop(key, $"{_assemblies.Count} contributions are being assembled already, the most a batch of {_step.LeafCount} leaves can have");
            assembly = new Assembly(RentBuffer(), chunkCount);
            _assemblies[key] = assembly;
        }
        if (assembly.Seen[chunk.ChunkIndex]) return new ChunkOutcome.Partial(); // a resent chunk: the first stands
        System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(chunk.Data).CopyTo(assembly.Buffer.AsSpan(expectedOffset));
        assembly.Seen[chunk.ChunkIndex] = true;
        if (++assembly.Received < chunkCount) return new ChunkOutcome.Partial();
        _assemblies.Remove(key);
        return Complete(header, assembly.Buffer);
    }

    /// <summary>
    /// Takes segment <paramref name="segment"/> of <see cref="Segments"/> of a contribution (from the data plane), in
    /// <paramref name="gradients"/>' range of that segment; the last segment is the head, which completes it (the whole
    /// contribution when there is one segment). The buffer passes to the server, which returns it to its pool when it
    /// is done with it, whatever the outcome.
    /// </summary>
    public ChunkOutcome Accept(ContributionHeader header, float[] gradients, int segment)
    {
        if (segment < 0 || segment >= _segments.Count) throw new ArgumentOutOfRangeException(nameof(segment), $"segment {segment} of {_segments.Count}");
        if (segment == _tails.Length) return Accept(header, gradients);
        var key = (new TreeNode(header.NodeFirst, header.NodeCount), header.WorkerId);
        TailSegment tail = _tails[segment];
        ExchangeSegment range = _segments[segment];
        ChunkOutcome? problem = Check(header);
        if (problem is null && gradients.Length != _layout.Count)
            problem = Drop(key, $"wrong length: {gradients.Length} floats but the model has {_layout.Count}");
        if (problem is null && tail.Parts.ContainsKey(key)) problem = new ChunkOutcome.Duplicate(key.Item1, key.Item2); // resent: the first stands
        if (problem is null && tail.Parts.Count >= 2 * _step!.LeafCount)
            problem = Drop(key, $"{tail.Parts.Count} tails of segment {segment} are held already, the most a batch of {_step.LeafCount} leaves can have");
        if (problem is null && IndexOfNonFinite(gradients.AsSpan(range.From, range.Length)) is int bad and >= 0)
            problem = Drop(key, $"not finite: {gradients[range.From + bad]} in {SliceAt(range.From + bad)}", notFinite: true);
        if (problem is not null)
        {
            ReturnBuffer(gradients);
            return problem;
        }
        tail.Parts[key] = new GradientSum(key.Item1, gradients, 0, 0, header.Samples);
        // Once applied, later tails stand by in case a used one is withdrawn.
        return !tail.Applied && TryApply(segment) ? new ChunkOutcome.TailApplied(segment, Version + 1) : new ChunkOutcome.Partial();
    }

    // Applies tail segment i's update if the tails held cover the batch: from the largest subtrees held, one copy
    // each (they do not overlap, and cover every leaf any held tail covers). What the update replaces is kept, and
    // the sums go to new buffers so the parts stay as they came for a later cover.
    private bool TryApply(int i)
    {
        TailSegment tail = _tails[i];
        var cover = new List<(TreeNode Node, string Worker)>();
        int covered = 0;
        foreach (var key in tail.Parts.Keys)
        {
            bool inside = cover.Exists(c => c.Node == key.Node);
            foreach (var other in tail.Parts.Keys)
                inside |= other.Node.Count > key.Node.Count && other.Node.First <= key.Node.First && key.Node.End <= other.Node.End;
            if (inside) continue;
            cover.Add(key);
            covered += key.Node.Count;
        }
        if (covered < _step!.LeafCount) return false;
        ExchangeSegment range = _segments[i];
        _saved ??= _live.Select(a => new float[a.Length]).ToArray();
        ReductionPlan plan = GradientTree.Plan(cover.ConvertAll(k => tail.Parts[k]), _step.LeafCount, newBuffer: RentBuffer);
        ReduceAndStep(plan, Adam.StepSize(Adam.Iterations + 1), range, saveTo: _saved); // what it replaces goes to _saved
        foreach (float[] buffer in plan.NewBuffers) ReturnBuffer(buffer);
        tail.Used.AddRange(cover);
        return true;
    }

    // Runs the plan and the optimizer over the range, on this thread. A team of two split them by range until the
    // thirteenth session; with the exchange segments the ranges got small (the head is 18,816 floats of seed-cnn,
    // about 20 us of work), and waking a helper cost more than it saved: 30 to 100 us with a core free, up to a
    // scheduler slice while the workers hold both. Traced (5 alternated runs of `cnn bench --local-workers 2`), the
    // head's update ended a median 230 us after its frame arrived on this thread alone against 380 us with the team,
    // and a tail's 600 against 1,050 us after the last tail.
    private void ReduceAndStep(ReductionPlan plan, float alpha, ExchangeSegment range, float[][]? saveTo = null)
    {
        plan.Execute(range.From, range.To);
        Adam.ApplyRange(Weights, plan.Result.Gradients, plan.Result.Samples, alpha, range.From, range.To, saveTo);
    }

    // Forgets tail segment i's part from one contribution (all parts: null), putting back what the update replaced
    // when it used that part.
    private void Withdraw(int i, (TreeNode, string)? only = null)
    {
        TailSegment tail = _tails[i];
        if (tail.Applied && (only is not { } used || tail.Used.Contains(used)))
        {
            CopyRange(_saved!, _live, _segments[i]);
            tail.Used.Clear();
        }
        if (only is { } key)
        {
            if (tail.Parts.Remove(key, out GradientSum? part)) ReturnBuffer(part.Gradients);
            return;
        }
        foreach (GradientSum part in tail.Parts.Values) ReturnBuffer(part.Gradients);
        tail.Parts.Clear();
    }

    /// <summary>
    /// Takes a whole contribution (from the data plane), or the head of one cut into segments. The buffer passes to
    /// the server, which returns it to its pool when it is done with it, whatever the outcome.
    /// </summary>
    public ChunkOutcome Accept(ContributionHeader header, float[] gradients)
    {
        ChunkOutcome? problem = Check(header);
        if (problem is null && gradients.Length != _layout.Count)
            problem = Drop((new TreeNode(header.NodeFirst, header.NodeCount), header.WorkerId), $"wrong length: {gradients.Length} floats but the model has {_layout.Count}");
        if (problem is not null)
        {
            ReturnBuffer(gradients);
            return problem;
        }
        return Complete(header, gradients);
    }

    // The checks every contribution passes, chunked or whole; null when it may go on. A contribution refused
    // before it is tied to the open step (a late copy, another run, no step, stale) is remembered, so its later
    // chunks are ignored instead of drawing the same reason again.
    private ChunkOutcome? Check(ContributionHeader h)
    {
        var early = (h.RunId, h.Step, h.Version, h.NodeFirst, h.NodeCount, h.WorkerId);
        if (_refusedEarly.Contains(early)) return new ChunkOutcome.Ignored();
        if (IsLateCopy(h))
        {
            RefuseEarly(early);
            return new ChunkOutcome.Duplicate(new TreeNode(h.NodeFirst, h.NodeCount), h.WorkerId);
        }
        string? refusal = h.RunId != RunId ? $"run '{h.RunId}' is not this run ('{RunId}')"
            : _step is null ? $"no step is open (weights version {Version})"
            : h.Step != _step.Step || h.Version != Version ? $"stale: step {h.Step} version {h.Version}, but the server is at step {_step.Step} version {Version}"
            : null;
        if (refusal is not null)
        {
            RefuseEarly(early);
            return new ChunkOutcome.Rejected(refusal);
        }
        var node = new TreeNode(h.NodeFirst, h.NodeCount);
        var key = (node, h.WorkerId);
        if (_dropped.Contains(key)) return new ChunkOutcome.Ignored();
        if (h.LeafCount != _step!.LeafCount)
            return Drop(key, $"leaf count {h.LeafCount} but the batch of step {_step.Step} has {_step.LeafCount} leaves");
        if (h.NodeCount < 1 || !GradientTree.IsNode(node, _step.LeafCount))
            return Drop(key, $"unknown subtree: {node} is not a node of the tree over {_step.LeafCount} leaves");
        // Tree nodes either nest or are apart. One inside an accepted node is covered already; one that holds accepted
        // nodes takes their place when it completes (a stolen leaf and its owner's whole subtree: the same bits).
        foreach (TreeNode taken in _accepted.Keys)
            if (taken.First <= node.First && node.End <= taken.End)
                return DropDuplicate(key, node, h.WorkerId);
        if (h.TotalFloats != _layout.Count)
            return Drop(key, $"wrong length: {h.TotalFloats} floats but the model has {_layout.Count}");
        int expectedSamples = GradientTree.NodeSamples(node, _step.BatchSize, _step.MicroBatch).Count;
        if (h.Samples != expectedSamples)
            return Drop(key, $"{h.Samples} samples but {node} of a batch of {_step.BatchSize} has {expectedSamples}");
        if (!double.IsFinite(h.LossSum)) return Drop(key, "the loss sum is not finite", notFinite: true);
        return null;
    }

    private void RefuseEarly((string, long, long, int, int, string) contribution)
    {
        if (_refusedEarly.Count >= 4096) _refusedEarly.Clear(); // bounded: a flood costs reasons, not memory
        _refusedEarly.Add(contribution);
    }

    // A subtree of the step applied last, named with that step's version and leaf count: every leaf of that step
    // was covered, so this is a copy that came too late, not a worker that is behind.
    private bool IsLateCopy(ContributionHeader h) =>
        h.RunId == RunId && _applied is var (plan, version) && h.Step == plan.Step && h.Version == version && h.LeafCount == plan.LeafCount
        && GradientTree.IsNode(new TreeNode(h.NodeFirst, h.NodeCount), plan.LeafCount);

    private ChunkOutcome Complete(ContributionHeader h, float[] buffer)
    {
        var node = new TreeNode(h.NodeFirst, h.NodeCount);
        ExchangeSegment head = _segments[^1];
        int bad = IndexOfNonFinite(buffer.AsSpan(0, head.To));
        if (bad >= 0)
        {
            float value = buffer[bad];
            ReturnBuffer(buffer);
            return Drop((node, h.WorkerId), $"not finite: {value} in {SliceAt(bad)}", notFinite: true);
        }
        foreach (TreeNode inside in _accepted.Keys.Where(n => node.First <= n.First && n.End <= node.End).ToList())
            if (_accepted.Remove(inside, out GradientSum? replaced)) ReturnBuffer(replaced.Gradients);
        _accepted[node] = new GradientSum(node, buffer, h.LossSum, h.Correct, h.Samples);
        if (_accepted.Values.Sum(p => p.Node.Count) < _step!.LeafCount)
            return new ChunkOutcome.Accepted(node, h.WorkerId, h.ComputeMilliseconds);

        // Every head's tails came before it on its connection and are held (see file header), so a tail whose used
        // part was withdrawn can be applied now, from what stands by; its weights then go out with the head's.
        bool sendWhole = false;
        for (int i = 0; i < _tails.Length; i++)
        {
            if (_tails[i].Applied) continue;
            if (!TryApply(i)) throw new InvalidOperationException($"the heads of step {_step.Step} cover the batch but the tails of segment {i} do not");
            sendWhole = true;
        }
        ReductionPlan plan = GradientTree.Plan(_accepted.Values.ToList(), _step.LeafCount);
        GradientSum root = plan.Result;
        long step = _step.Step;
        _applied = (_step, Version);
        ReduceAndStep(plan, Adam.BeginStep(), head);
        foreach (TailSegment tail in _tails) tail.Used.Clear(); // committed
        var applied = new ChunkOutcome.StepApplied(node, h.WorkerId, h.ComputeMilliseconds, step, Version, root.LossSum, root.Correct, root.Samples, sendWhole);
        ClearStep();
        if (_queued is { } next && next.Step == Version)
        {
            _step = next;
            _refusedEarly.Clear();
        }
        _queued = null;
        return applied;
    }

    /// <summary>Nodes accepted so far in the open step.</summary>
    public IReadOnlyCollection<TreeNode> AcceptedNodes => _accepted.Keys;

    private ChunkOutcome Drop((TreeNode, string) key, string reason, bool notFinite = false)
    {
        if (_assemblies.Remove(key, out Assembly? a)) ReturnBuffer(a.Buffer);
        _dropped.Add(key);
        // Numbers that are not finite condemn the whole contribution: its tails no longer count, and updates made
        // from them are undone (the same tails computed by another worker come again with the re-dealt subtree).
        if (notFinite)
            for (int i = 0; i < _tails.Length; i++) Withdraw(i, key);
        return new ChunkOutcome.Rejected(reason, notFinite);
    }

    private ChunkOutcome DropDuplicate((TreeNode, string) key, TreeNode node, string worker)
    {
        if (_assemblies.Remove(key, out Assembly? a)) ReturnBuffer(a.Buffer);
        _dropped.Add(key);
        return new ChunkOutcome.Duplicate(node, worker);
    }

    private void ClearStep()
    {
        for (int i = 0; i < _tails.Length; i++) Withdraw(i); // an uncommitted step leaves no trace
        foreach (Assembly a in _assemblies.Values) ReturnBuffer(a.Buffer);
        foreach (GradientSum p in _accepted.Values) ReturnBuffer(p.Gradients);
        _assemblies.Clear();
        _accepted.Clear();
        _dropped.Clear();
        _step = null;
    }

    private string SliceAt(int index) => _layout.Slices.First(s => index >= s.Offset && index < s.Offset + s.Size).Name;

    private static int IndexOfNonFinite(ReadOnlySpan<float> values)
    {
        // A finite sum of magnitudes proves there is no NaN or infinity: one vectorised pass in the common case.
        if (float.IsFinite(TensorPrimitives.SumOfMagnitudes(values))) return -1;
        for (int i = 0; i < values.Length; i++) if (!float.IsFinite(values[i])) return i;
        return -1;
    }
}
