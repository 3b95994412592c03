// Computes whole subtrees of a batch on a team of threads: every leaf on one thread (forward and backward
// through that thread's ModelRunner, into the leaf's own gradient buffer), then each subtree summed in tree
// order. The local trainer asks for the root; a cluster worker asks for the subtrees it was assigned. Both
// get the same bits for the same subtree. Also runs evaluation and prediction over chunks, in parallel.
//
// A worker on the data plane also asks for its tails early: the model's exchange segments (Model.
// ExchangeSegments) beyond the head are final once every leaf's backward pass has produced that layer's parameter
// gradients, so each is summed in tree order and handed out right then, while the earlier layers' backward
// passes still run (DESIGN.md: send the last layers' gradients while the first layers' backward is running).
// The additions are the same ones, per element, in the same order, so the bits do not change.
//
// Buffers: one gradient buffer per leaf, kept between calls. Results of Compute are views of them and stay
// valid until the next Compute call.
using Cnn.Engine.Data;
using Cnn.Engine.Models;

namespace Cnn.Engine.Training;

/// <summary>Parallel leaf computation, evaluation and prediction for one model (see file header).</summary>
public sealed class LeafComputer : IDisposable
{
    /// <summary>Samples per evaluation or prediction chunk (one chunk per thread at a time).</summary>
    public const int ChunkSize = 32;

    private readonly ThreadTeam _team;
    private readonly ModelRunner[] _runners;
    private readonly List<float[]> _leafBuffers = [];
    private long _computeCalls;

    /// <summary>
    /// A computer for <paramref name="model"/> on <paramref name="threads"/> threads; with <paramref name="cpus"/> (one per
    /// thread), its team's threads are pinned to them, and <see cref="Cpus"/> tells the caller its own.
    /// </summary>
    public LeafComputer(Model model, int threads, int microBatch, IReadOnlyList<int>? cpus = null)
    {
        if (microBatch <= 0) throw new CnnUserException($"--micro-batch must be positive, got {microBatch}");
        Model = model;
        MicroBatch = microBatch;
        _team = new ThreadTeam(threads, cpus);
        Cpus = cpus;
        _runners = Enumerable.Range(0, threads).Select(_ => new ModelRunner(model, Math.Max(microBatch, ChunkSize))).ToArray();
    }

    /// <summary>The model.</summary>
    public Model Model { get; }
    /// <summary>Samples per leaf.</summary>
    public int MicroBatch { get; }
    /// <summary>The CPU of each thread of the team, the caller's first (null: not pinned).</summary>
    public IReadOnlyList<int>? Cpus { get; }

    /// <summary>Threads used.</summary>
    public int Threads => _team.Size;

    /// <summary>
    /// The gradient sums of <paramref name="subtrees"/> of the batch <paramref name="batchIds"/> (global sample ids,
    /// in batch order). Valid until the next call.
    /// </summary>
    /// <remarks>
    /// With <paramref name="tailReady"/>, each tail segment of <see cref="Model.ExchangeSegments"/> is summed as soon
    /// as it is final and handed to tailReady(segment index, sums of the subtrees in order; their buffers hold the
    /// segment's range, and the loss fields are zero), during the backward passes; the sums returned then hold only the
    /// head segment's range, the tails' ranges having been summed already (the buffers hold both).
    /// With <paramref name="mayStartLast"/>, it is asked (on the computing thread) just before the last of two or more
    /// leaves starts; when it says no, that leaf is left out, and the sums returned (and the tails handed out) are those of
    /// the whole subtrees that cover the other leaves (<see cref="GradientTree.Without"/>). <paramref name="sameWeights"/>:
    /// <paramref name="weights"/> is the array of the previous call, unchanged since. <paramref name="abandon"/>, when
    /// given, is asked before every layer of every leaf (on the computing threads); once it says yes, the call stops and
    /// throws <see cref="OperationCanceledException"/>, and nothing more is handed out.
    /// </remarks>
    public IReadOnlyList<GradientSum> Compute(float[] weights, IDataSource data, int[] batchIds, IReadOnlyList<TreeNode> subtrees, long step, ulong seed,
        Action<int, IReadOnlyList<GradientSum>>? tailReady = null, Func<int, bool>? mayStartLast = null, bool sameWeights = false, Func<bool>? abandon = null)
    {
        int leafCount = GradientTree.LeafCount(batchIds.Length, MicroBatch);
        var leaves = new List<int>();
        var claimed = new bool[leafCount];
        foreach (TreeNode node in subtrees)
        {
            if (!GradientTree.IsNode(node, leafCount)) throw new ArgumentException($"{node} is not a node of the tree over {leafCount} leaves");
            for (int leaf = node.First; leaf < node.End; leaf++)
            {
                // Each leaf owns one buffer: a leaf asked for twice would be computed into it twice, concurrently.
                if (claimed[leaf]) throw new ArgumentException($"the subtrees overlap at leaf {leaf}");
                claimed[leaf] = true;
                leaves.Add(leaf);
            }
        }
        while (_leafBuffers.Count < leafCount) _leafBuffers.Add(new float[Model.Parameters.Count]);
        var sums = new GradientSum[leaves.Count];
        // Weights are fixed during one call, and between calls when the caller says so (the kernels' transposes are kept).
        long version = sameWeights ? Interlocked.Read(ref _computeCalls) : Interlocked.Increment(ref _computeCalls);
        // With tailReady: every tail segment of the model's exchange layout is summed and handed out as soon as all
        // leaves have passed its node in their backward passes, on the thread of the leaf that passed it last.
        IReadOnlyList<ExchangeSegment> segments = tailReady is null ? [new ExchangeSegment(0, Model.Parameters.Count, -1)] : Model.ExchangeSegments;
        int tails = segments.Count - 1;
        var waiting = new int[tails];
        Array.Fill(waiting, leaves.Count);
        // The tails' plans add the same buffers in the same order as the final ones below; only the loss fields, which
        // a tail does not carry, come later.
        List<ReductionPlan>? tailPlans = tails == 0 ? null
            : PlanSubtrees(subtrees, leaves.Select(l => new GradientSum(new TreeNode(l, 1), _leafBuffers[l], 0, 0, 0)).ToArray(), leafCount);
        List<GradientSum>? tailSums = tailPlans?.ConvertAll(p => p.Result); // the plans' result buffers, the same for every tail
        void Passed(int segment)
        {
            if (Interlocked.Decrement(ref waiting[segment]) != 0) return;
            foreach (ReductionPlan plan in tailPlans!) plan.Execute(segments[segment].From, segments[segment].To);
            tailReady!(segment, tailSums!);
        }
        Action<int>? ready = tailPlans is null ? null : finishedNode =>
        {
            int segment = 0;
            while (segment < tails && segments[segment].Node != finishedNode) segment++;
            if (segment < tails) Passed(segment);
        };
        // The last leaf may be given away (work stealing): then the subtrees are the ones that cover the others, and a
        // tail waits for one leaf fewer. No tail can be final before that: each still waits for the last leaf.
        IReadOnlyList<TreeNode> nodes = subtrees;
        int skipped = -1;
        _team.Run(leaves.Count, (item, member) =>
        {
            int leaf = leaves[item];
            if (item == leaves.Count - 1 && item > 0 && mayStartLast is not null && !mayStartLast(leaf))
            {
                skipped = item;
                nodes = GradientTree.Without(subtrees, leaf, leafCount);
                if (tailPlans is null) return;
                tailPlans = PlanSubtrees(nodes, leaves.Where(l => l != leaf).Select(l => new GradientSum(new TreeNode(l, 1), _leafBuffers[l], 0, 0, 0)).ToArray(), leafCount);
                tailSums = tailPlans.ConvertAll(p => p.Result);
                for (int segment = 0; segment < tails; segment++) Passed(segment);
                return;
            }
            var (start, count) = GradientTree.LeafSamples(leaf, batchIds.Length, MicroBatch);
            float[] gradients = _leafBuffers[leaf];
            LossAndAccuracy r = _runners[member].TrainLeaf(weights, data, batchIds.AsSpan(start, count), gradients, step, seed, version, ready, abandon);
            sums[item] = new GradientSum(new TreeNode(leaf, 1), gradients, r.LossSum, r.Correct, r.Samples);
        });
        List<ReductionPlan> plans = PlanSubtrees(nodes, skipped < 0 ? sums : sums.Where((_, i) => i != skipped).ToArray(), leafCount);
        ForEachRange(segments[^1].To, (from, to) =>
        {
            foreach (ReductionPlan plan in plans) plan.Execute(from, to);
        });
        return plans.Select(p => p.Result).ToList();
    }

    // One plan per subtree over its leaves' sums, which lie in `parts` in subtree order.
    private static List<ReductionPlan> PlanSubtrees(IReadOnlyList<TreeNode> subtrees, GradientSum[] parts, int leafCount)
    {
        var plans = new List<ReductionPlan>(subtrees.Count);
        int at = 0;
        foreach (TreeNode node in subtrees)
        {
            plans.Add(GradientTree.Plan(new ArraySegment<GradientSum>(parts, at, node.Count), leafCount, node));
            at += node.Count;
        }
        return plans;
    }

    /// <summary>
    /// Runs <paramref name="body"/>(from, to) over disjoint ranges covering [0, <paramref name="length"/>), one per
    /// thread, for element-wise work (reductions, the optimizer) whose results do not depend on the split.
    /// </summary>
    public void ForEachRange(int length, Action<int, int> body) => _team.ForEachRange(length, body);

    /// <summary>Inference-mode loss and accuracy over <paramref name="ids"/>, summed chunk by chunk in order.</summary>
    public LossAndAccuracy Evaluate(float[] weights, IDataSource data, int[] ids)
    {
        int chunks = (ids.Length + ChunkSize - 1) / ChunkSize;
        var results = new LossAndAccuracy[chunks];
        _team.Run(chunks, (chunk, member) =>
        {
            int start = chunk * ChunkSize;
            results[chunk] = _runners[member].Evaluate(weights, data, ids.AsSpan(start, Math.Min(ChunkSize, ids.Length - start)));
        });
        double loss = 0;
        int correct = 0;
        foreach (LossAndAccuracy r in results)
        {
            loss += r.LossSum;
            correct += r.Correct;
        }
        return new LossAndAccuracy(loss, correct, ids.Length);
    }

    /// <summary>Class probabilities (batch, classes) for inputs x (batch, input size).</summary>
    public void Predict(float[] weights, float[] x, int batch, float[] probabilities)
    {
        int inSize = Model.InputShape.Size, classes = Model.Classes;
        int chunks = (batch + ChunkSize - 1) / ChunkSize;
        _team.Run(chunks, (chunk, member) =>
        {
            int start = chunk * ChunkSize, count = Math.Min(ChunkSize, batch - start);
            _runners[member].Predict(weights, x.AsSpan(start * inSize, count * inSize), count, probabilities.AsSpan(start * classes, count * classes));
        });
    }

    /// <summary>
    /// Computes one leaf of the first <paramref name="microBatch"/> samples of <paramref name="data"/> with freshly
    /// initialised weights on one thread, and throws the result away: afterwards the JIT has compiled the training
    /// path of <paramref name="model"/> (a model holds no per-call state, so it may be in use elsewhere). Returns at
    /// once when <paramref name="data"/> holds fewer samples than a leaf.
    /// </summary>
    public static void WarmUp(Model model, IDataSource data, int microBatch)
    {
        if (microBatch <= 0 || data.Count < microBatch) return;
        using var computer = new LeafComputer(model, 1, microBatch);
        computer.Compute(model.Parameters.Initialize(0), data, Enumerable.Range(0, microBatch).ToArray(), [new TreeNode(0, 1)], 0, 0);
    }

    /// <inheritdoc/>
    public void Dispose() => _team.Dispose();
}
