// GradientTree: the shape of the fixed summation tree (children split at the largest power of two below the
// count), which (first, count) pairs are nodes, cuts into whole subtrees, and the property everything leans
// on: Reduce over ANY valid cut gives the same bits as the sum over all leaves in tree order. The leaf
// buffers hold values of very different magnitudes, so a change of summation order would change the bits
// (one test shows that a plain left-to-right sum does). Reduce must reject overlapping parts, missing
// leaves, duplicates and non-nodes.
using Cnn.Engine.Tests.Kernels;
using Cnn.Engine.Training;
using Xunit;

namespace Cnn.Engine.Tests.Training;

public sealed class GradientTreeTests
{
    private const int Length = 2000;

    [Theory]
    [InlineData(0, 2, 1)]
    [InlineData(0, 3, 2)]
    [InlineData(0, 4, 2)]
    [InlineData(0, 5, 4)]
    [InlineData(0, 8, 4)]
    [InlineData(0, 9, 8)]
    [InlineData(3, 3, 2)]
    [InlineData(16, 100, 64)]
    public void Children_split_at_the_largest_power_of_two_below_the_count(int first, int count, int left)
    {
        var (l, r) = GradientTree.Children(new TreeNode(first, count));

        Assert.Equal(new TreeNode(first, left), l);
        Assert.Equal(new TreeNode(first + left, count - left), r);
    }

    [Fact]
    public void Children_of_a_leaf_is_an_error()
    {
        Assert.Throws<ArgumentException>(() => GradientTree.Children(new TreeNode(5, 1)));
    }

    private static IEnumerable<TreeNode> AllNodes(TreeNode node)
    {
        yield return node;
        if (node.Count < 2) yield break;
        var (left, right) = GradientTree.Children(node);
        foreach (TreeNode n in AllNodes(left).Concat(AllNodes(right))) yield return n;
    }

    [Fact]
    public void IsNode_is_true_exactly_for_the_nodes_of_the_tree()
    {
        for (int leafCount = 1; leafCount <= 20; leafCount++)
        {
            var nodes = AllNodes(GradientTree.Root(leafCount)).ToHashSet();
            for (int first = -1; first <= leafCount; first++)
                for (int count = -2; first + count <= leafCount + 1; count++) // empty and negative counts are never nodes
                {
                    var node = new TreeNode(first, count);
                    Assert.True(nodes.Contains(node) == GradientTree.IsNode(node, leafCount), $"{node} in a tree of {leafCount} leaves");
                }
        }
    }

    [Fact]
    public void Cut_gives_whole_subtrees_that_cover_every_leaf_in_order()
    {
        for (int leafCount = 1; leafCount <= 20; leafCount++)
            for (int pieces = 1; pieces <= 24; pieces++)
            {
                List<TreeNode> cut = GradientTree.Cut(leafCount, pieces);

                Assert.Equal(Math.Min(pieces, leafCount), cut.Count);
                int next = 0;
                foreach (TreeNode node in cut)
                {
                    Assert.True(GradientTree.IsNode(node, leafCount), $"{node} of Cut({leafCount}, {pieces})");
                    Assert.Equal(next, node.First);
                    next = node.End;
                }
                Assert.Equal(leafCount, next);
            }
    }

    [Fact]
    public void Cut_splits_the_widest_subtree_first()
    {
        Assert.Equal([new TreeNode(0, 2), new TreeNode(2, 2), new TreeNode(4, 4)], GradientTree.Cut(8, 3));
        Assert.Equal([new TreeNode(0, 4), new TreeNode(4, 1)], GradientTree.Cut(5, 2));
    }

    [Fact]
    public void Leaves_and_node_samples_cover_a_batch_with_a_short_last_leaf()
    {
        Assert.Equal(8, GradientTree.LeafCount(60, 8));
        Assert.Equal((56, 4), GradientTree.LeafSamples(7, 60, 8));
        Assert.Equal((0, 32), GradientTree.NodeSamples(new TreeNode(0, 4), 60, 8));
        Assert.Equal((32, 28), GradientTree.NodeSamples(new TreeNode(4, 4), 60, 8));
    }

    // Leaf gradients whose magnitudes span many decades, so float addition order shows in the bits.
    private static float[][] LeafGradients(int leafCount, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, leafCount).Select(_ =>
            Enumerable.Range(0, Length).Select(_ => (float)((rng.NextDouble() - 0.5) * Math.Pow(10, rng.Next(-4, 5)))).ToArray()).ToArray();
    }

    private static GradientSum Leaf(float[][] leaves, int leaf) =>
        new(new TreeNode(leaf, 1), (float[])leaves[leaf].Clone(), 0.25 * leaf + 1, leaf % 3, 8);

    // The tree-order sum written out independently of GradientTree.Reduce.
    private static float[] TreeSum(float[][] leaves, TreeNode node)
    {
        if (node.Count == 1) return (float[])leaves[node.First].Clone();
        var (left, right) = GradientTree.Children(node);
        float[] a = TreeSum(leaves, left), b = TreeSum(leaves, right);
        for (int i = 0; i < a.Length; i++) a[i] += b[i];
        return a;
    }

    // A part as its owner computes it: its leaves reduced inside the subtree.
    private static GradientSum Part(float[][] leaves, TreeNode node, int leafCount) =>
        GradientTree.Reduce(Enumerable.Range(node.First, node.Count).Select(l => Leaf(leaves, l)).ToList(), leafCount, node);

    private static List<TreeNode> RandomCut(TreeNode node, Random rng)
    {
        if (node.Count == 1 || rng.Next(3) == 0) return [node];
        var (left, right) = GradientTree.Children(node);
        return [.. RandomCut(left, rng), .. RandomCut(right, rng)];
    }

    [Theory]
    [InlineData(8)]
    [InlineData(13)]
    [InlineData(1)]
    public void Reduce_over_any_cut_gives_the_bits_of_the_tree_sum_over_all_leaves(int leafCount)
    {
        float[][] leaves = LeafGradients(leafCount, leafCount);
        float[] expected = TreeSum(leaves, GradientTree.Root(leafCount));

        GradientSum all = GradientTree.Reduce(Enumerable.Range(0, leafCount).Select(l => Leaf(leaves, l)).ToList(), leafCount);
        KernelAssert.BitIdentical(expected, all.Gradients, "all leaves");
        Assert.Equal(Enumerable.Range(0, leafCount).Sum(l => 0.25 * l + 1), all.LossSum);
        Assert.Equal(Enumerable.Range(0, leafCount).Sum(l => l % 3), all.Correct);
        Assert.Equal(8 * leafCount, all.Samples);
        Assert.Equal(GradientTree.Root(leafCount), all.Node);

        var rng = new Random(99);
        var cuts = new List<List<TreeNode>> { GradientTree.Cut(leafCount, 2), GradientTree.Cut(leafCount, 3), GradientTree.Cut(leafCount, 5) };
        for (int i = 0; i < 20; i++) cuts.Add(RandomCut(GradientTree.Root(leafCount), rng));
        foreach (List<TreeNode> cut in cuts)
        {
            // Parts may arrive in any order.
            List<GradientSum> parts = cut.Select(node => Part(leaves, node, leafCount)).OrderBy(_ => rng.Next()).ToList();

            GradientSum root = GradientTree.Reduce(parts, leafCount);

            KernelAssert.BitIdentical(expected, root.Gradients, $"cut {string.Join(" + ", cut)}");
            Assert.Equal(all.LossSum, root.LossSum);
        }
    }

    [Theory]
    [InlineData(8)]
    [InlineData(13)]
    public void A_plan_into_new_buffers_gives_the_same_bits_over_any_ranges_and_leaves_the_parts_as_they_were(int leafCount)
    {
        float[][] leaves = LeafGradients(leafCount, leafCount + 1);
        float[] expected = TreeSum(leaves, GradientTree.Root(leafCount));
        var rng = new Random(7);
        for (int i = 0; i < 10; i++)
        {
            List<TreeNode> cut = RandomCut(GradientTree.Root(leafCount), rng);
            List<GradientSum> parts = cut.Select(node => Part(leaves, node, leafCount)).ToList();
            float[][] before = parts.Select(p => (float[])p.Gradients.Clone()).ToArray();
            var given = new List<float[]>();

            ReductionPlan plan = GradientTree.Plan(parts, leafCount, newBuffer: () => { var b = new float[Length]; given.Add(b); return b; });
            int middle = rng.Next(Length);
            plan.Execute(middle, Length); // in two ranges, the later one first, as segments are
            plan.Execute(0, middle);

            KernelAssert.BitIdentical(expected, plan.Result.Gradients, $"cut {string.Join(" + ", cut)}");
            for (int p = 0; p < parts.Count; p++) KernelAssert.BitIdentical(before[p], parts[p].Gradients, $"part {cut[p]} after the plan");
            Assert.Equal(given.Count, plan.NewBuffers.Count());
            Assert.Equal(cut.Count - 1, given.Count);
            Assert.All(plan.NewBuffers, b => Assert.Contains(b, given));
        }
    }

    [Fact]
    public void Reduce_of_the_two_halves_of_eight_leaves_gives_the_bits_of_all_leaves()
    {
        float[][] leaves = LeafGradients(8, 5);

        GradientSum halves = GradientTree.Reduce([Part(leaves, new TreeNode(0, 4), 8), Part(leaves, new TreeNode(4, 4), 8)], 8);
        GradientSum all = GradientTree.Reduce(Enumerable.Range(0, 8).Select(l => Leaf(leaves, l)).ToList(), 8);

        KernelAssert.BitIdentical(all.Gradients, halves.Gradients, "[0..4) + [4..8)");
    }

    [Fact]
    public void A_left_to_right_sum_gives_other_bits_which_is_why_the_tree_is_fixed()
    {
        float[][] leaves = LeafGradients(8, 6);
        float[] tree = TreeSum(leaves, GradientTree.Root(8));
        var sequential = (float[])leaves[0].Clone();
        for (int l = 1; l < 8; l++)
            for (int i = 0; i < Length; i++) sequential[i] += leaves[l][i];

        Assert.False(tree.AsSpan().SequenceEqual(sequential));
    }

    [Fact]
    public void Reduce_rejects_overlapping_parts()
    {
        float[][] leaves = LeafGradients(8, 7);

        var e = Assert.Throws<ArgumentException>(() =>
            GradientTree.Reduce([Part(leaves, GradientTree.Root(8), 8), Part(leaves, new TreeNode(0, 4), 8)], 8));
        Assert.Contains("overlap", e.Message);
    }

    [Fact]
    public void Reduce_rejects_missing_leaves()
    {
        float[][] leaves = LeafGradients(8, 8);

        var e = Assert.Throws<ArgumentException>(() =>
            GradientTree.Reduce([Part(leaves, new TreeNode(0, 4), 8), Part(leaves, new TreeNode(4, 2), 8)], 8));
        Assert.Contains("no contribution covers", e.Message);
    }

    [Fact]
    public void Reduce_rejects_a_part_given_twice()
    {
        float[][] leaves = LeafGradients(4, 9);

        var e = Assert.Throws<ArgumentException>(() =>
            GradientTree.Reduce([Part(leaves, new TreeNode(0, 2), 4), Part(leaves, new TreeNode(0, 2), 4), Part(leaves, new TreeNode(2, 2), 4)], 4));
        Assert.Contains("twice", e.Message);
    }

    [Fact]
    public void Reduce_rejects_a_part_that_is_not_a_node()
    {
        float[][] leaves = LeafGradients(8, 10);
        var notANode = new GradientSum(new TreeNode(1, 2), new float[Length], 0, 0, 16);

        var e = Assert.Throws<ArgumentException>(() =>
            GradientTree.Reduce([Leaf(leaves, 0), notANode, Leaf(leaves, 3), Part(leaves, new TreeNode(4, 4), 8)], 8));
        Assert.Contains("not a node", e.Message);
    }

    [Fact]
    public void Reduce_rejects_a_part_outside_its_target()
    {
        float[][] leaves = LeafGradients(8, 11);

        Assert.Throws<ArgumentException>(() =>
            GradientTree.Reduce([Part(leaves, new TreeNode(0, 4), 8), Part(leaves, new TreeNode(4, 4), 8)], 8, new TreeNode(0, 4)));
    }

    [Theory]
    [InlineData(8, 0, 8, "0+8")]
    [InlineData(8, 0, 4, "0+4")]
    [InlineData(8, 0, 3, "0+2 2+1")]
    [InlineData(8, 3, 8, "3+1 4+4")]
    [InlineData(8, 3, 6, "3+1 4+2")]
    [InlineData(7, 2, 6, "2+2 4+2")]
    [InlineData(7, 6, 7, "6+1")]
    [InlineData(13, 1, 12, "1+1 2+2 4+4 8+4")]
    [InlineData(8, 5, 5, "")]
    public void Cover_returns_the_whole_tree_nodes_that_cover_a_range(int leafCount, int first, int end, string expected)
    {
        string actual = string.Join(" ", GradientTree.Cover(leafCount, first, end).Select(n => $"{n.First}+{n.Count}"));

        Assert.Equal(expected, actual);
    }

    [Fact]
    public void Cover_covers_every_range_of_every_tree_up_to_20_leaves_exactly_with_tree_nodes_in_leaf_order()
    {
        for (int leafCount = 1; leafCount <= 20; leafCount++)
            for (int first = 0; first <= leafCount; first++)
                for (int end = first; end <= leafCount; end++)
                {
                    List<TreeNode> nodes = GradientTree.Cover(leafCount, first, end);

                    int[] covered = nodes.SelectMany(n => Enumerable.Range(n.First, n.Count)).ToArray();
                    Assert.Equal(Enumerable.Range(first, end - first), covered);
                    Assert.All(nodes, n => Assert.True(GradientTree.IsNode(n, leafCount), $"{n} covering [{first}, {end}) of {leafCount}"));
                }
    }

    [Theory]
    [InlineData(8)]
    [InlineData(7)]
    [InlineData(13)]
    public void Without_covers_every_leaf_of_the_nodes_but_one_with_whole_subtrees_in_leaf_order(int leafCount)
    {
        foreach (List<TreeNode> cut in new[] { GradientTree.Cut(leafCount, 1), GradientTree.Cut(leafCount, 2), GradientTree.Cut(leafCount, 3) })
            for (int leaf = 0; leaf < leafCount; leaf++)
            {
                List<TreeNode> nodes = GradientTree.Without(cut, leaf, leafCount);

                int[] covered = nodes.SelectMany(n => Enumerable.Range(n.First, n.Count)).ToArray();
                Assert.Equal(Enumerable.Range(0, leafCount).Where(l => l != leaf), covered);
                Assert.All(nodes, n => Assert.True(GradientTree.IsNode(n, leafCount), $"{n} without leaf {leaf}"));
                Assert.True(nodes.Count <= cut.Count - 1 + (int)Math.Ceiling(Math.Log2(leafCount)), $"{nodes.Count} nodes without leaf {leaf}");
            }
    }

    [Fact]
    public void Without_the_last_leaf_of_a_share_of_four_gives_its_first_half_and_third_leaf()
    {
        Assert.Equal([new TreeNode(0, 4), new TreeNode(4, 2), new TreeNode(6, 1)], GradientTree.Without([new TreeNode(0, 4), new TreeNode(4, 4)], 7, 8));
        Assert.Equal([new TreeNode(4, 1), new TreeNode(6, 2)], GradientTree.Without([new TreeNode(4, 4)], 5, 8));
    }

    [Fact]
    public void Without_rejects_a_node_that_is_not_a_node()
    {
        Assert.Throws<ArgumentException>(() => GradientTree.Without([new TreeNode(1, 2)], 1, 8));
    }
}
