// The parameter server's logic, without an ActorSystem: it owns the weights, the Adam state and the version
// counter, assembles gradient contributions from chunks, checks them, and when the accepted subtrees cover the
// whole batch it reduces them in tree order (GradientTree.Reduce, the same function the single-process trainer
// uses), applies Adam and moves to the next version. Every decision is returned as an outcome for the actor to
// act on (log, reply, broadcast); nothing a peer sends can change the weights unless it is a complete,
// well-formed, finite contribution for the current step and version.
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

    /// <summary>A complete contribution for a subtree that is already covered: dropped.</summary>
    public sealed record Duplicate(TreeNode Node, string WorkerId) : ChunkOutcome;

    /// <summary>
    /// Dropped, with the reason to log and send back. <paramref name="NotFinite"/>: the numbers themselves are NaN or
    /// infinite, which a faulty worker sends but also every worker once training has diverged.
    /// </summary>
    public sealed record Rejected(string Reason, bool NotFinite = false) : ChunkOutcome;

    /// <summary>A complete contribution was accepted; the step still waits for others.</summary>
    public sealed record Accepted(TreeNode Node, string WorkerId, double ComputeMilliseconds) : ChunkOutcome;

    /// <summary>The contribution completed the batch: the optimizer stepped and the version moved on.</summary>
    public sealed record StepApplied(TreeNode Node, string WorkerId, double ComputeMilliseconds, long Step, long Version, double LossSum, int Correct, int Samples)
        : ChunkOutcome;
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
    private readonly ThreadTeam? _team;
    private StepPlan? _queued;

    private sealed record StepPlan(long Step, int BatchSize, int MicroBatch, int LeafCount);

    private sealed class Assembly(float[] buffer, int chunkCount)
    {
        public float[] Buffer { get; } = buffer;
        public bool[] Seen { get; } = new bool[chunkCount];
        public int Received { get; set; }
    }

    /// <summary>
    /// A server for run <paramref name="runId"/> starting from the given weights and optimizer. With a
    /// <paramref name="team"/>, the reduction and the optimizer step are split across its threads by index range,
    /// which changes no bit: both are element-wise.
    /// </summary>
    public ParameterServerState(string runId, ParameterLayout layout, float[] weights, Adam adam, ThreadTeam? team = null)
    {
        _team = team;
        if (weights.Length != layout.Count) throw new ArgumentException($"weights have {weights.Length} floats but the model has {layout.Count}");
        RunId = runId;
        _layout = layout;
        Weights = weights;
        Adam = adam;
    }

    /// <summary>The run this server belongs to.</summary>
    public string RunId { get; }
    /// <summary>The weights (flat layout). Version counts the optimizer steps applied.</summary>
    public float[] Weights { get; }
    /// <summary>The optimizer and its state.</summary>
    public Adam Adam { get; }
    /// <summary>The weights version: the number of optimizer steps applied (Adam.Iterations).</summary>
    public long Version => Adam.Iterations;
    /// <summary>The step being collected, or null.</summary>
    public long? CurrentStep => _step?.Step;

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
    /// Takes a whole contribution (from the data plane). The buffer passes to the server, which returns it to its
    /// pool when it is done with it, whatever the outcome.
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
    // before it is tied to the open step (another run, no step, stale) is remembered, so its later chunks are
    // ignored instead of drawing the same reason again.
    private ChunkOutcome? Check(ContributionHeader h)
    {
        var early = (h.RunId, h.Step, h.Version, h.NodeFirst, h.NodeCount, h.WorkerId);
        if (_refusedEarly.Contains(early)) return new ChunkOutcome.Ignored();
        string? refusal = h.RunId != RunId ? $"run '{h.RunId}' is not this run ('{RunId}')"
            : _step is null ? $"no step is open (weights version {Version})"
            : h.Step != _step.Step || h.Version != Version ? $"stale: step {h.Step} version {h.Version}, but the server is at step {_step.Step} version {Version}"
            : null;
        if (refusal is not null)
        {
            if (_refusedEarly.Count >= 4096) _refusedEarly.Clear(); // bounded: a flood costs reasons, not memory
            _refusedEarly.Add(early);
            return new ChunkOutcome.Rejected(refusal);
        }
        var node = new TreeNode(h.NodeFirst, h.NodeCount);
        var key = (node, h.WorkerId);
        if (_dropped.Contains(key)) return new ChunkOutcome.Ignored();
        if (h.LeafCount != _step!.LeafCount)
            return Drop(key, $"leaf count {h.LeafCount} but the batch of step {_step.Step} has {_step.LeafCount} leaves");
        if (h.NodeCount < 1 || !GradientTree.IsNode(node, _step.LeafCount))
            return Drop(key, $"unknown subtree: {node} is not a node of the tree over {_step.LeafCount} leaves");
        if (_accepted.ContainsKey(node)) return DropDuplicate(key, node, h.WorkerId);
        foreach (TreeNode taken in _accepted.Keys)
            if (node.First < taken.End && taken.First < node.End)
                return Drop(key, $"{node} overlaps {taken}, which is already accepted");
        if (h.TotalFloats != _layout.Count)
            return Drop(key, $"wrong length: {h.TotalFloats} floats but the model has {_layout.Count}");
        int expectedSamples = GradientTree.NodeSamples(node, _step.BatchSize, _step.MicroBatch).Count;
        if (h.Samples != expectedSamples)
            return Drop(key, $"{h.Samples} samples but {node} of a batch of {_step.BatchSize} has {expectedSamples}");
        if (!double.IsFinite(h.LossSum)) return Drop(key, "the loss sum is not finite", notFinite: true);
        return null;
    }

    private ChunkOutcome Complete(ContributionHeader h, float[] buffer)
    {
        var node = new TreeNode(h.NodeFirst, h.NodeCount);
        int bad = IndexOfNonFinite(buffer);
        if (bad >= 0)
        {
            string where = _layout.Slices.First(s => bad >= s.Offset && bad < s.Offset + s.Size).Name;
            float value = buffer[bad];
            ReturnBuffer(buffer);
            return Drop((node, h.WorkerId), $"not finite: {value} in {where}", notFinite: true);
        }
        _accepted[node] = new GradientSum(node, buffer, h.LossSum, h.Correct, h.Samples);
        if (_accepted.Values.Sum(p => p.Node.Count) < _step!.LeafCount)
            return new ChunkOutcome.Accepted(node, h.WorkerId, h.ComputeMilliseconds);

        ReductionPlan plan = GradientTree.Plan(_accepted.Values.ToList(), _step.LeafCount);
        GradientSum root = plan.Result;
        long step = _step.Step;
        float alpha = Adam.BeginStep();
        void ReduceAndStep(int from, int to)
        {
            plan.Execute(from, to);
            Adam.ApplyRange(Weights, root.Gradients, root.Samples, alpha, from, to);
        }
        if (_team is null) ReduceAndStep(0, Weights.Length);
        else _team.ForEachRange(Weights.Length, ReduceAndStep);
        var applied = new ChunkOutcome.StepApplied(node, h.WorkerId, h.ComputeMilliseconds, step, Version, root.LossSum, root.Correct, root.Samples);
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
        foreach (Assembly a in _assemblies.Values) ReturnBuffer(a.Buffer);
        foreach (GradientSum p in _accepted.Values) ReturnBuffer(p.Gradients);
        _assemblies.Clear();
        _accepted.Clear();
        _dropped.Clear();
        _step = null;
    }

    private static int IndexOfNonFinite(float[] values)
    {
        // A finite sum of magnitudes proves there is no NaN or infinity: one vectorised pass in the common case.
        if (float.IsFinite(TensorPrimitives.SumOfMagnitudes(values))) return -1;
        for (int i = 0; i < values.Length; i++) if (!float.IsFinite(values[i])) return i;
        return -1;
    }
}
