// The fixed summation tree of DESIGN.md's exactness property. A batch of B samples is cut into leaves of
// `microBatch` samples (the last may be shorter); leaves are summed over a fixed binary tree over leaf ids:
// a node covering `count` leaves splits into a left child of the largest power of two below `count` and a
// right child of the rest. Whoever computes a set of whole subtrees sums inside them with Reduce, and whoever
// completes the root calls Reduce on the subtree sums: the float additions happen in the same order whatever
// the number of threads, workers or failures, so the bits are the same.
using Cnn.Engine.Kernels;

namespace Cnn.Engine.Training;

/// <summary>A node of the reduction tree: leaves [First, First + Count).</summary>
public readonly record struct TreeNode(int First, int Count)
{
    /// <summary>One past the last leaf.</summary>
    public int End => First + Count;

    /// <inheritdoc/>
    public override string ToString() => Count == 1 ? $"leaf {First}" : $"leaves {First}..{End - 1}";
}

/// <summary>The sum of the gradients, loss and correct count of the leaves under one tree node.</summary>
public sealed class GradientSum
{
    /// <summary>A sum over <paramref name="node"/>. The buffer is owned by the sum and may be reused by Reduce.</summary>
    public GradientSum(TreeNode node, float[] gradients, double lossSum, int correct, int samples)
    {
        Node = node;
        Gradients = gradients;
        LossSum = lossSum;
        Correct = correct;
        Samples = samples;
    }

    /// <summary>The tree node covered.</summary>
    public TreeNode Node { get; }
    /// <summary>Summed gradients (flat parameter layout, not divided by the batch).</summary>
    public float[] Gradients { get; }
    /// <summary>Summed loss.</summary>
    public double LossSum { get; }
    /// <summary>Correct predictions.</summary>
    public int Correct { get; }
    /// <summary>Samples covered.</summary>
    public int Samples { get; }
}

/// <summary>The tree and its reduction.</summary>
public static class GradientTree
{
    /// <summary>Leaves in a batch of <paramref name="batch"/> samples.</summary>
    public static int LeafCount(int batch, int microBatch) => (batch + microBatch - 1) / microBatch;

    /// <summary>Samples [start, start + count) of the batch that leaf <paramref name="leaf"/> covers.</summary>
    public static (int Start, int Count) LeafSamples(int leaf, int batch, int microBatch)
    {
        int start = leaf * microBatch;
        return (start, Math.Min(microBatch, batch - start));
    }

    /// <summary>Samples [start, start + count) under <paramref name="node"/>.</summary>
    public static (int Start, int Count) NodeSamples(TreeNode node, int batch, int microBatch)
    {
        int start = node.First * microBatch;
        return (start, Math.Min(node.Count * microBatch, batch - start));
    }

    /// <summary>The root over <paramref name="leafCount"/> leaves.</summary>
    public static TreeNode Root(int leafCount) => new(0, leafCount);

    /// <summary>The two children of an inner node.</summary>
    public static (TreeNode Left, TreeNode Right) Children(TreeNode node)
    {
        if (node.Count < 2) throw new ArgumentException($"{node} is a leaf and has no children.");
        int left = 1 << (31 - System.Numerics.BitOperations.LeadingZeroCount((uint)(node.Count - 1)));
        return (new TreeNode(node.First, left), new TreeNode(node.First + left, node.Count - left));
    }

    /// <summary>True when <paramref name="node"/> is a node of the tree over <paramref name="leafCount"/> leaves.</summary>
    public static bool IsNode(TreeNode node, int leafCount)
    {
        TreeNode at = Root(leafCount);
        while (true)
        {
            if (at == node) return true;
            if (at.Count < 2 || node.First < at.First || node.End > at.End) return false;
            var (left, right) = Children(at);
            at = node.First < right.First ? left : right;
        }
    }

    /// <summary>
    /// Cuts the tree into at least <paramref name="pieces"/> whole subtrees (fewer only when there are fewer
    /// leaves), by splitting the largest subtree first; the result is in leaf order.
    /// </summary>
    public static List<TreeNode> Cut(int leafCount, int pieces)
    {
        var nodes = new List<TreeNode> { Root(leafCount) };
        while (nodes.Count < pieces)
        {
            int widest = 0;
            for (int i = 1; i < nodes.Count; i++) if (nodes[i].Count > nodes[widest].Count) widest = i;
            if (nodes[widest].Count < 2) break;
            var (left, right) = Children(nodes[widest]);
            nodes[widest] = left;
            nodes.Insert(widest + 1, right);
        }
        return nodes;
    }

    /// <summary>The fewest whole tree nodes covering leaves [first, end) of a tree over <paramref name="leafCount"/> leaves.</summary>
    public static List<TreeNode> Cover(int leafCount, int first, int end)
    {
        var nodes = new List<TreeNode>();
        void Visit(TreeNode node)
        {
            if (node.End <= first || node.First >= end) return;
            if (node.First >= first && node.End <= end)
            {
                nodes.Add(node);
                return;
            }
            var (left, right) = Children(node);
            Visit(left);
            Visit(right);
        }
        if (end > first) Visit(Root(leafCount));
        return nodes;
    }

    /// <summary>
    /// The whole subtrees that cover the leaves of <paramref name="nodes"/> (nodes of the tree over
    /// <paramref name="leafCount"/> leaves, in leaf order) but <paramref name="leaf"/>, in leaf order: the node that
    /// holds it is replaced by the <see cref="Cover"/> of its leaves on either side.
    /// </summary>
    public static List<TreeNode> Without(IReadOnlyList<TreeNode> nodes, int leaf, int leafCount)
    {
        var result = new List<TreeNode>(nodes.Count + 4);
        foreach (TreeNode node in nodes)
        {
            if (!IsNode(node, leafCount)) throw new ArgumentException($"{node} is not a node of the tree over {leafCount} leaves");
            if (leaf < node.First || leaf >= node.End)
            {
                result.Add(node);
                continue;
            }
            result.AddRange(Cover(leafCount, node.First, leaf));
            result.AddRange(Cover(leafCount, leaf + 1, node.End));
        }
        return result;
    }

    /// <summary>
    /// Sums <paramref name="parts"/>, which must be nodes of the tree over <paramref name="leafCount"/> leaves that
    /// exactly cover <paramref name="target"/>, in tree order. Buffers of the parts may be overwritten. Throws
    /// ArgumentException when the parts overlap, miss leaves or are not tree nodes.
    /// </summary>
    public static GradientSum Reduce(IReadOnlyList<GradientSum> parts, int leafCount, TreeNode? target = null)
    {
        ReductionPlan plan = Plan(parts, leafCount, target);
        plan.Execute(0, plan.Result.Gradients.Length);
        return plan.Result;
    }

    /// <summary>
    /// The additions <see cref="Reduce"/> performs, in order, without performing them: every element goes through
    /// the same sequence of additions, so threads may execute the plan over disjoint index ranges and the sum is
    /// bit-identical to the single-threaded one. By default the sums overwrite the parts' buffers; with
    /// <paramref name="newBuffer"/>, each inner sum goes to a buffer it gives (<see cref="ReductionPlan.NewBuffers"/>)
    /// and the parts stay as they are, with the same bits in the result.
    /// </summary>
    public static ReductionPlan Plan(IReadOnlyList<GradientSum> parts, int leafCount, TreeNode? target = null, Func<float[]>? newBuffer = null)
    {
        TreeNode root = target ?? Root(leafCount);
        var byNode = new Dictionary<TreeNode, GradientSum>(parts.Count);
        foreach (GradientSum part in parts)
        {
            if (!IsNode(part.Node, leafCount)) throw new ArgumentException($"{part.Node} is not a node of the tree over {leafCount} leaves.");
            if (!byNode.TryAdd(part.Node, part)) throw new ArgumentException($"{part.Node} was given twice.");
        }
        int used = 0;
        var adds = new List<(float[] Into, float[] Left, float[] Right)>();
        GradientSum result = Combine(root, byNode, ref used, adds, newBuffer);
        if (used != parts.Count) throw new ArgumentException($"the parts overlap: {parts.Count - used} of them lie inside others.");
        return new ReductionPlan(result, adds);
    }

    private static GradientSum Combine(TreeNode node, Dictionary<TreeNode, GradientSum> byNode, ref int used, List<(float[] Into, float[] Left, float[] Right)> adds,
        Func<float[]>? newBuffer)
    {
        if (byNode.TryGetValue(node, out GradientSum? part))
        {
            used++;
            return part;
        }
        if (node.Count < 2) throw new ArgumentException($"no contribution covers {node}.");
        var (leftNode, rightNode) = Children(node);
        GradientSum left = Combine(leftNode, byNode, ref used, adds, newBuffer);
        GradientSum right = Combine(rightNode, byNode, ref used, adds, newBuffer);
        if (left.Gradients.Length != right.Gradients.Length)
            throw new ArgumentException($"{leftNode} has {left.Gradients.Length} gradients but {rightNode} has {right.Gradients.Length}.");
        float[] into = newBuffer?.Invoke() ?? left.Gradients;
        if (into.Length != left.Gradients.Length) throw new ArgumentException($"a new buffer of {into.Length} floats for sums of {left.Gradients.Length}");
        adds.Add((into, left.Gradients, right.Gradients));
        return new GradientSum(node, into, left.LossSum + right.LossSum, left.Correct + right.Correct, left.Samples + right.Samples);
    }
}

/// <summary>The ordered element-wise additions of a tree reduction (see <see cref="GradientTree.Plan"/>).</summary>
public sealed class ReductionPlan
{
    private readonly List<(float[] Into, float[] Left, float[] Right)> _adds;

    internal ReductionPlan(GradientSum result, List<(float[] Into, float[] Left, float[] Right)> adds)
    {
        Result = result;
        _adds = adds;
    }

    /// <summary>The buffers the plan's newBuffer gave, holding the inner sums (empty for an in-place plan).</summary>
    public IEnumerable<float[]> NewBuffers => _adds.Where(a => a.Into != a.Left).Select(a => a.Into);

    /// <summary>The sum, whose gradients are complete once every index range has been executed.</summary>
    public GradientSum Result { get; }

    /// <summary>Performs every addition of the plan on elements [from, to).</summary>
    public void Execute(int from, int to)
    {
        foreach (var (into, left, right) in _adds)
        {
            if (into != left) left.AsSpan(from, to - from).CopyTo(into.AsSpan(from));
            Accumulate.Add(into.AsSpan(from, to - from), right.AsSpan(from, to - from));
        }
    }
}
