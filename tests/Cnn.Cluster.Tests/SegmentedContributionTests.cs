// ParameterServerState with contributions cut into the model's exchange segments (the data plane's path): tails
// first, applied as soon as they cover the batch, then heads. The step must end with LocalTrainer's bits whatever the
// cover and the order; a tail's new weights must already be final when it is applied, while the committed weights
// (what a checkpoint or a joining worker gets) stay at the old version; and a contribution whose numbers are not
// finite must leave nothing behind, even when its tails were already used, and the tails standing by (copies from
// backups, smaller subtrees) must then let the step complete.
using Cnn.Cluster.Tests.Support;
using Cnn.Coordinator.Cluster;
using Cnn.Engine.Models;
using Cnn.Engine.Training;
using Xunit;
using static Cnn.Cluster.Tests.Support.Contributions;

namespace Cnn.Cluster.Tests;

public sealed class SegmentedContributionTests(OneStep step) : IClassFixture<OneStep>
{
    private IReadOnlyList<ExchangeSegment> Segments => step.Model.ExchangeSegments;
    private int Tails => Segments.Count - 1;

    // Tail segment i of node's sum, as a worker sends it (no loss or correct count: those come with the head).
    private ChunkOutcome Tail(ParameterServerState server, TreeNode node, int segment, string worker, Action<float[]>? damage = null)
    {
        GradientSum sum = step.Sum(node);
        damage?.Invoke(sum.Gradients);
        return server.Accept(Header(sum, step.Layout.Count, worker) with { LossSum = 0, Correct = 0 }, sum.Gradients, segment);
    }

    private ChunkOutcome Head(ParameterServerState server, TreeNode node, string worker, Action<float[]>? damage = null)
    {
        GradientSum sum = step.Sum(node);
        damage?.Invoke(sum.Gradients);
        return server.Accept(Header(sum, step.Layout.Count, worker), sum.Gradients, Tails);
    }

    private void AssertCommittedAtStart(ParameterServerState server)
    {
        Assert.Equal(0, server.Version);
        var (w, m, v) = server.CommittedCopy();
        AssertBitIdentical(step.Initial, w, "committed weights");
        AssertBitIdentical(new float[step.Layout.Count], m, "committed m");
        AssertBitIdentical(new float[step.Layout.Count], v, "committed v");
    }

    private void AssertReferenceStep(ParameterServerState server, ChunkOutcome last)
    {
        var applied = Assert.IsType<ChunkOutcome.StepApplied>(last);
        Assert.Equal((0, 1, step.Metrics.LossSum, step.Metrics.Correct, OneStep.Batch), (applied.Step, applied.Version, applied.LossSum, applied.Correct, applied.Samples));
        Assert.Empty(server.AppliedTails);
        AssertBitIdentical(step.Expected, server.Weights, "weights");
        AssertBitIdentical(step.ExpectedM, server.Adam.M, "Adam m");
        AssertBitIdentical(step.ExpectedV, server.Adam.V, "Adam v");
        AssertBitIdentical(step.Expected, server.CommittedCopy().Weights, "committed weights");
    }

    // A tail was applied: its range of the live weights holds the next version's final bits; nothing is committed.
    private void AssertTailApplied(ParameterServerState server, ChunkOutcome outcome, int segment)
    {
        var applied = Assert.IsType<ChunkOutcome.TailApplied>(outcome);
        Assert.Equal((segment, 1L), (applied.Segment, applied.Version));
        Assert.Contains(segment, server.AppliedTails);
        ExchangeSegment r = Segments[segment];
        AssertBitIdentical(step.Expected.AsSpan(r.From, r.Length).ToArray(), server.Weights.AsSpan(r.From, r.Length).ToArray(), $"segment {segment}");
        AssertCommittedAtStart(server);
    }

    public static TheoryData<string> Orders() => ["each contribution whole in turn", "segment by segment", "segment by segment, covers reversed"];

    [Theory]
    [MemberData(nameof(Orders))]
    public void Tails_then_heads_give_LocalTrainers_bits_and_each_tail_is_applied_once_with_its_final_bits(string order)
    {
        Assert.True(Tails >= 1, "seed-cnn is exchanged in segments");
        foreach (TreeNode[] cover in new TreeNode[][] { [new(0, 8)], [new(0, 4), new(4, 4)], [new(6, 2), new(0, 4), new(5, 1), new(4, 1)] })
        {
            ParameterServerState server = step.Server(segmented: true);
            TreeNode[] nodes = order.EndsWith("reversed") ? cover.Reverse().ToArray() : cover;
            var sends = order == "each contribution whole in turn"
                ? nodes.SelectMany(n => Enumerable.Range(0, Tails + 1).Select(s => (Node: n, Segment: s))).ToList()
                : Enumerable.Range(0, Tails + 1).SelectMany(s => nodes.Select(n => (Node: n, Segment: s))).ToList();
            var tailsApplied = new List<int>();
            ChunkOutcome last = new ChunkOutcome.Partial();
            foreach (var (node, segment) in sends)
            {
                last = segment < Tails ? Tail(server, node, segment, $"worker-{node.First}") : Head(server, node, $"worker-{node.First}");
                if (last is ChunkOutcome.TailApplied t)
                {
                    AssertTailApplied(server, last, segment);
                    tailsApplied.Add(t.Segment);
                }
            }

            Assert.Equal(Enumerable.Range(0, Tails), tailsApplied.Order());
            AssertReferenceStep(server, last);
        }
    }

    [Fact]
    public void A_head_that_is_not_finite_withdraws_its_tails_undoes_their_update_and_the_re_dealt_subtree_completes_the_step()
    {
        ParameterServerState server = step.Server(segmented: true);
        TreeNode left = new(0, 4), right = new(4, 4);
        for (int s = 0; s < Tails; s++) Assert.IsType<ChunkOutcome.Partial>(Tail(server, left, s, "worker-1"));
        for (int s = 0; s < Tails; s++) AssertTailApplied(server, Tail(server, right, s, "worker-2"), s);
        Assert.IsType<ChunkOutcome.Accepted>(Head(server, left, "worker-1"));

        var rejected = Assert.IsType<ChunkOutcome.Rejected>(Head(server, right, "worker-2", g => g[5] = float.NaN));

        Assert.True(rejected.NotFinite);
        Assert.Contains("conv2d/kernel", rejected.Reason);
        Assert.Empty(server.AppliedTails);
        AssertBitIdentical(step.Initial, server.Weights, "weights after the withdrawal");
        AssertBitIdentical(new float[step.Layout.Count], server.Adam.M, "m after the withdrawal");
        AssertBitIdentical(new float[step.Layout.Count], server.Adam.V, "v after the withdrawal");
        // The same subtree from another worker: its tails are needed again, then its head completes the step.
        for (int s = 0; s < Tails; s++) AssertTailApplied(server, Tail(server, right, s, "worker-3"), s);
        AssertReferenceStep(server, Head(server, right, "worker-3"));
    }

    [Fact]
    public void A_tail_that_is_not_finite_is_rejected_with_the_parameter_its_head_ignored_and_nothing_changes()
    {
        ParameterServerState server = step.Server(segmented: true);
        int at = step.Layout.Find("dense/kernel")!.Offset + 100;

        var rejected = Assert.IsType<ChunkOutcome.Rejected>(Tail(server, new TreeNode(0, 8), 0, "worker-1", g => g[at] = float.PositiveInfinity));

        Assert.True(rejected.NotFinite);
        Assert.Contains("dense/kernel", rejected.Reason);
        Assert.IsType<ChunkOutcome.Ignored>(Head(server, new TreeNode(0, 8), "worker-1"));
        AssertCommittedAtStart(server);
        AssertBitIdentical(step.Initial, server.Weights, "weights");
        for (int s = 0; s < Tails; s++) AssertTailApplied(server, Tail(server, new TreeNode(0, 8), s, "worker-2"), s);
        AssertReferenceStep(server, Head(server, new TreeNode(0, 8), "worker-2"));
    }

    [Fact]
    public void The_update_uses_the_largest_subtrees_held_smaller_ones_and_copies_stand_by_and_a_resend_is_a_duplicate()
    {
        ParameterServerState server = step.Server(segmented: true);
        for (int s = 0; s < Tails; s++)
        {
            Assert.IsType<ChunkOutcome.Partial>(Tail(server, new TreeNode(0, 1), s, "worker-1"));
            Assert.IsType<ChunkOutcome.Partial>(Tail(server, new TreeNode(0, 4), s, "worker-2"));
            Assert.IsType<ChunkOutcome.Partial>(Tail(server, new TreeNode(2, 2), s, "worker-1")); // inside (0, 4): stands by
            Assert.IsType<ChunkOutcome.Duplicate>(Tail(server, new TreeNode(0, 4), s, "worker-2")); // resent
            AssertTailApplied(server, Tail(server, new TreeNode(4, 4), s, "worker-3"), s);
            Assert.IsType<ChunkOutcome.Partial>(Tail(server, new TreeNode(4, 4), s, "worker-4")); // after the update: stands by
        }
        Assert.IsType<ChunkOutcome.Accepted>(Head(server, new TreeNode(0, 4), "worker-2"));

        ChunkOutcome last = Head(server, new TreeNode(4, 4), "worker-4");

        Assert.False(Assert.IsType<ChunkOutcome.StepApplied>(last).SendWhole);
        AssertReferenceStep(server, last);
    }

    [Fact]
    public void When_a_used_larger_tail_is_withdrawn_the_smaller_ones_it_held_take_its_place()
    {
        ParameterServerState server = step.Server(segmented: true);
        TreeNode[] quarters = [new(0, 2), new(2, 2)];
        for (int s = 0; s < Tails; s++)
        {
            foreach (TreeNode q in quarters) Assert.IsType<ChunkOutcome.Partial>(Tail(server, q, s, "worker-1"));
            Assert.IsType<ChunkOutcome.Partial>(Tail(server, new TreeNode(0, 4), s, "worker-2"));
            AssertTailApplied(server, Tail(server, new TreeNode(4, 4), s, "worker-3"), s);
        }
        Assert.IsType<ChunkOutcome.Accepted>(Head(server, new TreeNode(4, 4), "worker-3"));
        Assert.True(Assert.IsType<ChunkOutcome.Rejected>(Head(server, new TreeNode(0, 4), "worker-2", g => g[3] = float.NegativeInfinity)).NotFinite);
        Assert.Empty(server.AppliedTails);

        Assert.IsType<ChunkOutcome.Accepted>(Head(server, quarters[0], "worker-1"));
        ChunkOutcome last = Head(server, quarters[1], "worker-1");

        Assert.True(Assert.IsType<ChunkOutcome.StepApplied>(last).SendWhole);
        AssertReferenceStep(server, last);
    }

    [Fact]
    public void When_a_used_tail_is_withdrawn_a_backups_copy_that_came_after_the_update_completes_the_step()
    {
        ParameterServerState server = step.Server(segmented: true);
        TreeNode left = new(0, 4), right = new(4, 4);
        for (int s = 0; s < Tails; s++)
        {
            Assert.IsType<ChunkOutcome.Partial>(Tail(server, left, s, "worker-1"));
            AssertTailApplied(server, Tail(server, right, s, "worker-2"), s);
            Assert.IsType<ChunkOutcome.Partial>(Tail(server, right, s, "worker-3")); // a backup's copy, kept in reserve
        }
        Assert.IsType<ChunkOutcome.Accepted>(Head(server, left, "worker-1"));

        Assert.True(Assert.IsType<ChunkOutcome.Rejected>(Head(server, right, "worker-2", g => g[7] = float.NaN)).NotFinite);
        AssertBitIdentical(step.Initial, server.Weights, "weights after the withdrawal");

        // The backup's head: its tails, already here, take the withdrawn ones' place, so every worker gets whole weights.
        ChunkOutcome last = Head(server, right, "worker-3");
        Assert.True(Assert.IsType<ChunkOutcome.StepApplied>(last).SendWhole);
        AssertReferenceStep(server, last);
    }

    [Fact]
    public void Chunked_contributions_are_refused_when_the_run_takes_segments()
    {
        ParameterServerState server = step.Server(segmented: true);
        GradientSum sum = step.Sum(new TreeNode(0, 8));

        var rejected = Assert.IsType<ChunkOutcome.Rejected>(Submit(server, Header(sum, step.Layout.Count), sum.Gradients, Route.Chunks));

        Assert.Contains("segments", rejected.Reason);
        AssertCommittedAtStart(server);
    }

    [Fact]
    public void A_server_with_segments_that_do_not_cover_the_parameters_in_order_is_refused()
    {
        int n = step.Layout.Count;

        Assert.Throws<ArgumentException>(() => new ParameterServerState(OneStep.RunId, step.Layout, (float[])step.Initial.Clone(), new Adam(step.Layout),
            segments: [new ExchangeSegment(100, n, 3), new ExchangeSegment(0, 99, -1)]));
        Assert.Throws<ArgumentException>(() => new ParameterServerState(OneStep.RunId, step.Layout, (float[])step.Initial.Clone(), new Adam(step.Layout),
            segments: [new ExchangeSegment(0, 100, -1), new ExchangeSegment(100, n, 3)]));
    }
}
