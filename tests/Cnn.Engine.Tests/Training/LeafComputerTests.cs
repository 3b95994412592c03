// LeafComputer: the exactness property inside one process. Computing the root directly, or any cut of the
// tree into subtrees (as workers would be assigned them) followed by GradientTree.Reduce, gives the same
// bits; so does any thread count, and recomputing a leaf. Batches whose last leaf is short included.
// Evaluation gives the same result on any thread count. With a tail callback (the cluster's exchange), every tail
// segment is handed out once, while the backward passes still run, already holding the bits of the finished sum.
// WarmUp (run beside the local cluster's start-up) shares the model without changing another computation's bits.
// A computation abandoned part-way (a stolen leaf whose step is over) stops at a layer boundary, hands nothing more
// out, and leaves the computer giving the same bits afterwards.
using Cnn.Engine.Data;
using Cnn.Engine.Models;
using Cnn.Engine.Tests.Kernels;
using Cnn.Engine.Training;
using Xunit;

namespace Cnn.Engine.Tests.Training;

public sealed class LeafComputerTests
{
    private static readonly ArraySource Data = SyntheticData.Images(256, seed: 3);

    private static (float[] Gradients, double Loss, int Correct) Root(LeafComputer computer, float[] w, int[] ids)
    {
        int leafCount = GradientTree.LeafCount(ids.Length, computer.MicroBatch);
        GradientSum root = computer.Compute(w, Data, ids, [GradientTree.Root(leafCount)], step: 4, seed: 9)[0];
        return ((float[])root.Gradients.Clone(), root.LossSum, root.Correct);
    }

    // The parts a set of workers would send, copied (Compute's results are views valid until its next call),
    // then reduced by the "parameter server".
    private static GradientSum ViaCut(LeafComputer computer, float[] w, int[] ids, List<TreeNode> cut)
    {
        int leafCount = GradientTree.LeafCount(ids.Length, computer.MicroBatch);
        var parts = computer.Compute(w, Data, ids, cut, step: 4, seed: 9)
            .Select(p => new GradientSum(p.Node, (float[])p.Gradients.Clone(), p.LossSum, p.Correct, p.Samples)).ToList();
        return GradientTree.Reduce(parts, leafCount);
    }

    [Theory]
    [InlineData("seed-cnn", 64)]
    [InlineData("seed-cnn", 60)]
    [InlineData("seed-resnet", 24)]
    public void Compute_over_any_cut_then_Reduce_gives_the_bits_of_the_root(string preset, int batch)
    {
        Model model = Presets.Create(preset);
        float[] w = model.Parameters.Initialize(21);
        int[] ids = EpochSchedule.Order(5, 0, Data.Count).Take(batch).ToArray();
        using var computer = new LeafComputer(model, threads: 2, microBatch: 8);
        var (expected, loss, correct) = Root(computer, w, ids);
        int leafCount = GradientTree.LeafCount(batch, 8);

        var cuts = new List<List<TreeNode>> { GradientTree.Cut(leafCount, 2), GradientTree.Cut(leafCount, 3), GradientTree.Cut(leafCount, leafCount) };
        foreach (List<TreeNode> cut in cuts)
        {
            GradientSum sum = ViaCut(computer, w, ids, cut);

            KernelAssert.BitIdentical(expected, sum.Gradients, $"{preset}, batch {batch}, cut {string.Join(" + ", cut)}");
            Assert.Equal(loss, sum.LossSum);
            Assert.Equal(correct, sum.Correct);
            Assert.Equal(batch, sum.Samples);
        }
    }

    [Fact]
    public void Compute_gives_the_same_bits_on_one_two_and_three_threads_and_when_recomputed()
    {
        Model model = Presets.Create("seed-cnn");
        float[] w = model.Parameters.Initialize(22);
        int[] ids = EpochSchedule.Order(6, 0, Data.Count).Take(64).ToArray();
        using var one = new LeafComputer(model, threads: 1, microBatch: 8);
        using var two = new LeafComputer(model, threads: 2, microBatch: 8);
        using var three = new LeafComputer(model, threads: 3, microBatch: 8);

        var (expected, loss, _) = Root(one, w, ids);

        KernelAssert.BitIdentical(expected, Root(two, w, ids).Gradients, "2 threads");
        KernelAssert.BitIdentical(expected, Root(three, w, ids).Gradients, "3 threads");
        KernelAssert.BitIdentical(expected, Root(three, w, ids).Gradients, "3 threads, recomputed");
        Assert.Equal(loss, Root(two, w, ids).Loss);
    }

    [Theory]
    [InlineData("seed-cnn", 64, 1)]
    [InlineData("seed-cnn", 64, 2)]
    [InlineData("seed-cnn", 60, 3)]
    [InlineData("seed-resnet", 24, 1)]
    [InlineData("seed-resnet", 24, 2)]
    public void Tails_handed_out_during_the_backward_passes_hold_the_final_bits_of_their_segments(string preset, int batch, int threads)
    {
        Model model = Presets.Create(preset);
        float[] w = model.Parameters.Initialize(23), other = model.Parameters.Initialize(24);
        int[] ids = EpochSchedule.Order(7, 0, Data.Count).Take(batch).ToArray();
        int leafCount = GradientTree.LeafCount(batch, 8);
        IReadOnlyList<ExchangeSegment> segments = model.ExchangeSegments;
        using var computer = new LeafComputer(model, threads, microBatch: 8);
        foreach (List<TreeNode> cut in new[] { GradientTree.Cut(leafCount, 1), GradientTree.Cut(leafCount, 2), GradientTree.Cut(leafCount, 3) })
        {
            var expected = computer.Compute(w, Data, ids, cut, step: 4, seed: 9).Select(p => (float[])p.Gradients.Clone()).ToList();
            computer.Compute(other, Data, ids, cut, step: 4, seed: 9); // so a tail handed out too early would hold other numbers
            var handedOut = new List<(int Segment, List<float[]> Sums)>();

            var sums = computer.Compute(w, Data, ids, cut, step: 4, seed: 9, tailReady: (segment, tails) =>
            {
                Assert.Equal(cut, tails.Select(t => t.Node));
                lock (handedOut) handedOut.Add((segment, tails.Select(t => t.Gradients.AsSpan(segments[segment].From, segments[segment].Length).ToArray()).ToList()));
            });

            Assert.Equal(Enumerable.Range(0, segments.Count - 1), handedOut.Select(h => h.Segment).Order());
            foreach (var (segment, tails) in handedOut)
                for (int n = 0; n < cut.Count; n++)
                    KernelAssert.BitIdentical(expected[n].AsSpan(segments[segment].From, segments[segment].Length).ToArray(), tails[n],
                        $"{preset}, {threads} threads, {cut[n]} of {cut.Count}, segment {segment} when handed out");
            for (int n = 0; n < cut.Count; n++)
                KernelAssert.BitIdentical(expected[n], sums[n].Gradients, $"{preset}, {threads} threads, {cut[n]} of {cut.Count}, returned");
        }
    }

    // Work stealing: the owner gives its last leaf away just before starting it; what it returns and hands out, with the
    // leaf computed elsewhere, reduces to the bits of the whole batch.
    [Theory]
    [InlineData("seed-cnn", 64, 1)]
    [InlineData("seed-cnn", 64, 2)]
    [InlineData("seed-cnn", 60, 1)]
    [InlineData("seed-resnet", 24, 1)]
    public void A_last_leaf_given_away_leaves_sums_and_tails_of_the_rest_that_reduce_with_it_to_the_bits_of_the_root(string preset, int batch, int threads)
    {
        Model model = Presets.Create(preset);
        float[] w = model.Parameters.Initialize(26);
        int[] ids = EpochSchedule.Order(8, 0, Data.Count).Take(batch).ToArray();
        int leafCount = GradientTree.LeafCount(batch, 8);
        IReadOnlyList<ExchangeSegment> segments = model.ExchangeSegments;
        using var owner = new LeafComputer(model, threads, microBatch: 8);
        using var thief = new LeafComputer(model, 1, microBatch: 8);
        var (expected, loss, correct) = Root(owner, w, ids);
        List<TreeNode> share = GradientTree.Cut(leafCount, 2);
        int last = leafCount - 1;
        var asked = new List<int>();
        var tailNodes = new List<TreeNode>[segments.Count - 1];
        float[][] tails = segments.Take(segments.Count - 1).Select(_ => new float[model.Parameters.Count]).ToArray();

        var kept = owner.Compute(w, Data, ids, share, step: 4, seed: 9, tailReady: (segment, sums) =>
            {
                tailNodes[segment] = sums.Select(t => t.Node).ToList();
                GradientSum tail = GradientTree.Reduce([.. sums.Select(t => new GradientSum(t.Node, (float[])t.Gradients.Clone(), 0, 0, 0)),
                    thief.Compute(w, Data, ids, [new TreeNode(last, 1)], 4, 9)[0]], leafCount);
                tail.Gradients.AsSpan(segments[segment].From, segments[segment].Length).CopyTo(tails[segment].AsSpan(segments[segment].From));
            },
            mayStartLast: leaf =>
            {
                lock (asked) asked.Add(leaf);
                return false;
            }).Select(p => new GradientSum(p.Node, (float[])p.Gradients.Clone(), p.LossSum, p.Correct, p.Samples)).ToList();
        GradientSum stolen = thief.Compute(w, Data, ids, [new TreeNode(last, 1)], 4, 9)[0];
        GradientSum sum = GradientTree.Reduce([.. kept, stolen], leafCount);

        Assert.Equal([last], asked);
        Assert.Equal(GradientTree.Without(share, last, leafCount), kept.Select(p => p.Node));
        Assert.All(tailNodes, nodes => Assert.Equal(kept.Select(p => p.Node), nodes));
        ExchangeSegment head = segments[^1];
        KernelAssert.BitIdentical(expected.AsSpan(head.From, head.Length).ToArray(), sum.Gradients.AsSpan(head.From, head.Length).ToArray(), $"{preset}, head");
        for (int segment = 0; segment < segments.Count - 1; segment++)
            KernelAssert.BitIdentical(expected.AsSpan(segments[segment].From, segments[segment].Length).ToArray(),
                tails[segment].AsSpan(segments[segment].From, segments[segment].Length).ToArray(), $"{preset}, tail {segment}");
        Assert.Equal(loss, sum.LossSum);
        Assert.Equal(correct, sum.Correct);
        Assert.Equal(batch, sum.Samples);
    }

    [Fact]
    public void A_last_leaf_kept_is_computed_as_usual_and_a_single_leaf_is_never_offered()
    {
        Model model = Presets.Create("seed-cnn");
        float[] w = model.Parameters.Initialize(27);
        int[] ids = EpochSchedule.Order(9, 0, Data.Count).Take(64).ToArray();
        using var computer = new LeafComputer(model, 1, microBatch: 8);
        var (expected, _, _) = Root(computer, w, ids);
        var asked = new List<int>();

        GradientSum root = Assert.Single(computer.Compute(w, Data, ids, [GradientTree.Root(8)], 4, 9, mayStartLast: leaf => { asked.Add(leaf); return true; }));
        float[] kept = (float[])root.Gradients.Clone();
        computer.Compute(w, Data, ids, [new TreeNode(3, 1)], 4, 9, mayStartLast: leaf => { asked.Add(leaf); return false; });

        Assert.Equal([7], asked);
        Assert.Equal(new TreeNode(0, 8), root.Node);
        KernelAssert.BitIdentical(expected, kept, "kept");
    }

    [Theory]
    [InlineData("seed-cnn", 1, 1)]   // before the first layer
    [InlineData("seed-cnn", 1, 6)]   // in the forward pass
    [InlineData("seed-cnn", 1, 14)]  // in the backward pass, after the tails' layers
    [InlineData("seed-cnn", 2, 9)]
    [InlineData("seed-resnet", 1, 12)]
    public void An_abandoned_computation_stops_at_a_layer_and_leaves_the_next_one_exact(string preset, int threads, int askedBeforeYes)
    {
        Model model = Presets.Create(preset);
        float[] w = model.Parameters.Initialize(23);
        int[] ids = EpochSchedule.Order(8, 0, Data.Count).Take(16).ToArray();
        using var fresh = new LeafComputer(model, threads, microBatch: 8);
        using var computer = new LeafComputer(model, threads, microBatch: 8);
        var (expected, loss, _) = Root(fresh, w, ids);

        int asked = 0, handedOut = 0, answeredYes = 0;
        bool Abandon()
        {
            bool yes = Interlocked.Increment(ref asked) > askedBeforeYes;
            if (yes) Interlocked.Increment(ref answeredYes);
            return yes;
        }
        var e = Assert.Throws<OperationCanceledException>(() => computer.Compute(w, Data, ids, [new TreeNode(0, 2)], step: 4, seed: 9,
            tailReady: (_, _) => Interlocked.Increment(ref handedOut), abandon: Abandon));

        Assert.Contains("abandoned", e.Message);
        Assert.InRange(answeredYes, 1, threads); // each thread stops at its next layer boundary
        Assert.True(asked < 2 * 2 * model.Nodes.Count, $"asked {asked} times: the computation went on after the answer");
        if (askedBeforeYes < model.Nodes.Count) Assert.Equal(0, handedOut); // stopped in the forward passes: no tail was final
        var (again, lossAgain, _) = Root(computer, w, ids);
        KernelAssert.BitIdentical(expected, again, $"{preset}, {threads} threads, after abandoning at question {askedBeforeYes + 1}");
        Assert.Equal(loss, lossAgain);
    }

    [Fact]
    public void Compute_rejects_a_subtree_that_is_not_a_node()
    {
        Model model = Presets.Create("seed-cnn");
        using var computer = new LeafComputer(model, threads: 1, microBatch: 8);

        Assert.Throws<ArgumentException>(() =>
            computer.Compute(model.Parameters.Initialize(1), Data, Enumerable.Range(0, 64).ToArray(), [new TreeNode(1, 2)], 0, 0));
    }

    [Fact]
    public void Compute_of_overlapping_subtrees_is_refused()
    {
        // A request naming a subtree twice, or a subtree and one of its parts, must not return a wrong sum: the
        // leaves share one buffer each and Reduce sums in place, so the second sum would reuse overwritten leaves.
        Model model = Presets.Create("seed-cnn");
        float[] w = model.Parameters.Initialize(24);
        int[] ids = Enumerable.Range(0, 64).ToArray();
        using var computer = new LeafComputer(model, threads: 1, microBatch: 8);

        var e = Assert.Throws<ArgumentException>(() => computer.Compute(w, Data, ids, [GradientTree.Root(8), new TreeNode(0, 4)], 4, 9));

        Assert.Contains("overlap", e.Message);
    }

    [Fact]
    public void Evaluate_gives_the_same_result_on_any_thread_count()
    {
        Model model = Presets.Create("seed-cnn");
        float[] w = model.Parameters.Initialize(23);
        int[] ids = Enumerable.Range(0, 100).ToArray();
        using var one = new LeafComputer(model, threads: 1, microBatch: 8);
        using var two = new LeafComputer(model, threads: 2, microBatch: 8);

        LossAndAccuracy a = one.Evaluate(w, Data, ids), b = two.Evaluate(w, Data, ids);

        Assert.Equal(a, b);
        Assert.Equal(100, a.Samples);
        Assert.True(a.LossSum > 0);
    }

    [Theory]
    [InlineData("seed-cnn")]
    [InlineData("seed-resnet")]
    public async Task WarmUp_beside_a_computation_on_the_same_model_leaves_its_bits_unchanged(string preset)
    {
        // `cnn train` warms the engine up on its model while the local cluster starts; the model is shared.
        Model model = Presets.Create(preset);
        float[] w = model.Parameters.Initialize(25);
        int[] ids = Enumerable.Range(0, 32).ToArray();
        using var computer = new LeafComputer(model, threads: 1, microBatch: 8);
        var (expected, loss, _) = Root(computer, w, ids);

        Task warm = Task.Run(() => { for (int i = 0; i < 3; i++) LeafComputer.WarmUp(model, Data, 8); });
        var results = new List<(float[] Gradients, double Loss)>();
        do
        {
            var (g, l, _) = Root(computer, w, ids);
            results.Add((g, l));
        }
        while (!warm.IsCompleted);
        await warm;

        foreach (var (g, l) in results)
        {
            KernelAssert.BitIdentical(expected, g, $"{preset} beside WarmUp");
            Assert.Equal(loss, l);
        }
    }

    [Fact]
    public void WarmUp_with_fewer_samples_than_a_leaf_does_nothing()
    {
        LeafComputer.WarmUp(Presets.Create("seed-cnn"), SyntheticData.Images(4, seed: 1), microBatch: 8);
        LeafComputer.WarmUp(Presets.Create("seed-cnn"), Data, microBatch: 0);
    }

    [Fact]
    public void A_micro_batch_that_is_not_positive_is_a_user_error()
    {
        Assert.Throws<CnnUserException>(() => new LeafComputer(Presets.Create("seed-cnn"), 1, 0));
    }
}
