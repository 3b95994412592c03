// ParameterServerState without an ActorSystem: the exact reduction and everything it refuses. The gradient sums
// are real ones (OneStep: seed-cnn, a batch of 64 in 8 leaves, computed by the engine as a worker computes them),
// so "the same bits as LocalTrainer" is checked on the numbers training actually produces. Every rejection must
// come with a reason and leave the weights, Adam state and version untouched, and the step must still complete
// afterwards with the reference bits, which shows nothing of the refused contribution stayed behind.
using Cnn.Cluster.Tests.Support;
using Cnn.Coordinator.Cluster;
using Cnn.Engine.Training;
using Cnn.Messages;
using Xunit;
using static Cnn.Cluster.Tests.Support.Contributions;

namespace Cnn.Cluster.Tests;

public sealed class ParameterServerStateTests(OneStep step) : IClassFixture<OneStep>
{
    private static readonly TreeNode Root = new(0, 8);
    private static readonly TreeNode[] LeafNodes = Enumerable.Range(0, 8).Select(i => new TreeNode(i, 1)).ToArray();

    private int Floats => step.Layout.Count;

    private ChunkOutcome Send(ParameterServerState server, TreeNode node, Route route, string worker = "worker-1",
        Func<ContributionHeader, ContributionHeader>? edit = null, Action<float[]>? damage = null)
    {
        GradientSum sum = step.Sum(node);
        ContributionHeader h = Header(sum, Floats, worker);
        if (edit is not null) h = edit(h);
        damage?.Invoke(sum.Gradients);
        return Submit(server, h, sum.Gradients, route);
    }

    // The step has not moved: weights, Adam state and version are the initial ones.
    private void AssertUntouched(ParameterServerState server)
    {
        Assert.Equal(0, server.Version);
        AssertBitIdentical(step.Initial, server.Weights, "weights");
        AssertBitIdentical(new float[Floats], server.Adam.M, "Adam m");
        AssertBitIdentical(new float[Floats], server.Adam.V, "Adam v");
    }

    private void AssertReferenceStep(ParameterServerState server, ChunkOutcome last)
    {
        var applied = Assert.IsType<ChunkOutcome.StepApplied>(last);
        Assert.Equal(0, applied.Step);
        Assert.Equal(1, applied.Version);
        Assert.Equal(step.Metrics.LossSum, applied.LossSum);
        Assert.Equal(step.Metrics.Correct, applied.Correct);
        Assert.Equal(OneStep.Batch, applied.Samples);
        Assert.Equal(1, server.Version);
        Assert.Null(server.CurrentStep);
        AssertBitIdentical(step.Expected, server.Weights, "weights");
        AssertBitIdentical(step.ExpectedM, server.Adam.M, "Adam m");
        AssertBitIdentical(step.ExpectedV, server.Adam.V, "Adam v");
    }

    // Sends the nodes, all accepted but the last, which must complete the step with LocalTrainer's bits.
    private void Complete(ParameterServerState server, Route route, string worker, params TreeNode[] nodes)
    {
        for (int i = 0; i < nodes.Length - 1; i++) Assert.IsType<ChunkOutcome.Accepted>(Send(server, nodes[i], route, worker));
        AssertReferenceStep(server, Send(server, nodes[^1], route, worker));
    }

    private void AssertRejected(ParameterServerState server, ChunkOutcome outcome, params string[] reasonParts)
    {
        var rejected = Assert.IsType<ChunkOutcome.Rejected>(outcome);
        foreach (string part in reasonParts) Assert.Contains(part, rejected.Reason);
        AssertUntouched(server);
    }

    public static TheoryData<string, Route> Covers()
    {
        var data = new TheoryData<string, Route>();
        foreach (string cover in PartitionNames)
            foreach (Route route in Enum.GetValues<Route>())
                data.Add(cover, route);
        return data;
    }

    private static readonly string[] PartitionNames =
        ["root", "halves", "halves reversed", "leaves in order", "leaves reversed", "leaves shuffled", "quarters and leaves mixed"];

    private static TreeNode[] Partition(string name) => name switch
    {
        "root" => [Root],
        "halves" => [new(0, 4), new(4, 4)],
        "halves reversed" => [new(4, 4), new(0, 4)],
        "leaves in order" => LeafNodes,
        "leaves reversed" => LeafNodes.Reverse().ToArray(),
        "leaves shuffled" => LeafNodes.OrderBy(n => (n.First * 5 + 3) % 8).ToArray(),
        "quarters and leaves mixed" => [new(6, 2), new(0, 4), new(5, 1), new(4, 1)],
        _ => throw new ArgumentException(name),
    };

    [Theory]
    [MemberData(nameof(Covers))]
    public void The_weights_after_a_step_are_bit_identical_to_LocalTrainers_whatever_the_cover_and_arrival_order(string cover, Route route)
    {
        ParameterServerState server = step.Server();

        Complete(server, route, "worker-1", Partition(cover));
    }

    [Fact]
    public void Chunks_of_all_eight_leaves_from_eight_workers_interleaved_in_shuffled_order_give_LocalTrainers_bits()
    {
        ParameterServerState server = step.Server();
        var chunks = LeafNodes
            .SelectMany(leaf => { GradientSum sum = step.Sum(leaf); return Chunks(Header(sum, Floats, $"worker-{leaf.First}"), sum.Gradients); })
            .ToList();
        var random = new Random(11);
        List<GradientChunk> shuffled = chunks.OrderBy(_ => random.Next()).ToList();

        List<ChunkOutcome> outcomes = shuffled.Select(server.Accept).ToList();

        Assert.Equal(7, outcomes.Count(o => o is ChunkOutcome.Accepted));
        Assert.Equal(chunks.Count - 8, outcomes.Count(o => o is ChunkOutcome.Partial));
        AssertReferenceStep(server, outcomes[^1]);
    }

    [Fact]
    public void A_step_completes_only_when_the_accepted_subtrees_cover_every_leaf()
    {
        ParameterServerState server = step.Server();
        TreeNode[] nodes = [new(0, 4), new(4, 2), new(6, 1)];

        foreach (TreeNode node in nodes)
        {
            var accepted = Assert.IsType<ChunkOutcome.Accepted>(Send(server, node, Route.Whole));
            Assert.Equal(node, accepted.Node);
            Assert.Equal("worker-1", accepted.WorkerId);
            Assert.Equal(0, server.CurrentStep);
            AssertUntouched(server);
        }
        Assert.Equal(nodes.ToHashSet(), server.AcceptedNodes.ToHashSet());

        AssertReferenceStep(server, Send(server, new TreeNode(7, 1), Route.Whole));
        Assert.Empty(server.AcceptedNodes);
    }

    [Fact]
    public void A_repeated_BeginStep_for_the_open_step_keeps_what_was_accepted()
    {
        ParameterServerState server = step.Server();
        Assert.IsType<ChunkOutcome.Accepted>(Send(server, new TreeNode(0, 4), Route.Whole));

        server.BeginStep(0, OneStep.Batch, OneStep.MicroBatch);

        Assert.Equal([new TreeNode(0, 4)], server.AcceptedNodes);
        AssertReferenceStep(server, Send(server, new TreeNode(4, 4), Route.Whole));
    }

    [Fact]
    public void BeginStep_for_a_step_other_than_the_weights_version_throws()
    {
        ParameterServerState server = step.Server(beginStep: false);

        var e = Assert.Throws<InvalidOperationException>(() => server.BeginStep(1, OneStep.Batch, OneStep.MicroBatch));
        Assert.Contains("step 1 cannot start at weights version 0", e.Message);
    }

    [Theory]
    [InlineData(Route.Whole)]
    [InlineData(Route.Chunks)]
    public void A_contribution_for_another_run_is_rejected_and_changes_nothing(Route route)
    {
        ParameterServerState server = step.Server();

        ChunkOutcome outcome = Send(server, Root, route, edit: h => h with { RunId = "run-other" });

        AssertRejected(server, outcome, "run 'run-other' is not this run");
        Complete(server, route, "worker-1", Root);
    }

    [Theory]
    [InlineData(Route.Whole)]
    [InlineData(Route.Chunks)]
    public void A_contribution_with_no_step_open_is_rejected_and_changes_nothing(Route route)
    {
        ParameterServerState server = step.Server(beginStep: false);

        ChunkOutcome outcome = Send(server, Root, route);

        AssertRejected(server, outcome, "no step is open");
        server.BeginStep(0, OneStep.Batch, OneStep.MicroBatch);
        Complete(server, route, "worker-1", Root);
    }

    [Theory]
    [InlineData(Route.Whole, 1, 1)]
    [InlineData(Route.Whole, 0, 1)]
    [InlineData(Route.Whole, 1, 0)]
    [InlineData(Route.Whole, -1, -1)]
    [InlineData(Route.Chunks, 1, 1)]
    [InlineData(Route.Chunks, 0, 1)]
    [InlineData(Route.Chunks, 1, 0)]
    public void A_contribution_for_a_stale_or_future_step_or_version_is_rejected_and_changes_nothing(Route route, long stepNumber, long version)
    {
        ParameterServerState server = step.Server();

        ChunkOutcome outcome = Send(server, Root, route, edit: h => h with { Step = stepNumber, Version = version });

        AssertRejected(server, outcome, "stale", $"step {stepNumber} version {version}");
        Complete(server, route, "worker-1", Root);
    }

    [Theory]
    [InlineData(Route.Whole)]
    [InlineData(Route.Chunks)]
    public void A_late_copy_for_the_step_just_applied_is_dropped_as_a_duplicate_and_changes_nothing(Route route)
    {
        ParameterServerState server = step.Server();
        Complete(server, route, "worker-1", new TreeNode(0, 4), new TreeNode(4, 4));

        // Every leaf of step 0 was covered: what still comes for it is a copy (a stolen leaf's owner, a re-dealt share).
        ChunkOutcome betweenSteps = Send(server, new TreeNode(0, 4), route, "worker-2");
        server.BeginStep(1, OneStep.Batch, OneStep.MicroBatch);
        ChunkOutcome duringTheNextStep = Send(server, new TreeNode(7, 1), route, "worker-2");

        Assert.Equal(new ChunkOutcome.Duplicate(new TreeNode(0, 4), "worker-2"), betweenSteps);
        Assert.Equal(new ChunkOutcome.Duplicate(new TreeNode(7, 1), "worker-2"), duringTheNextStep);
        Assert.Empty(server.AcceptedNodes);
        AssertBitIdentical(step.Expected, server.Weights, "weights");
        Assert.Equal(1, server.Version);
    }

    [Theory]
    [InlineData(Route.Whole)]
    [InlineData(Route.Chunks)]
    public void A_contribution_for_the_step_just_applied_that_is_not_one_of_its_subtrees_is_rejected_and_changes_nothing(Route route)
    {
        ParameterServerState server = step.Server();
        Complete(server, route, "worker-1", new TreeNode(0, 4), new TreeNode(4, 4));
        server.BeginStep(1, OneStep.Batch, OneStep.MicroBatch);

        ChunkOutcome otherVersion = Send(server, new TreeNode(0, 4), route, "worker-2", h => h with { Version = 1 });
        ChunkOutcome notANode = Send(server, new TreeNode(0, 4), route, "worker-2", h => h with { NodeFirst = 1, NodeCount = 2 });
        ChunkOutcome otherLeafCount = Send(server, new TreeNode(0, 4), route, "worker-2", h => h with { LeafCount = 16 });

        Assert.Contains("stale: step 0 version 1, but the server is at step 1 version 1", Assert.IsType<ChunkOutcome.Rejected>(otherVersion).Reason);
        Assert.Contains("stale: step 0 version 0", Assert.IsType<ChunkOutcome.Rejected>(notANode).Reason);
        Assert.Contains("stale: step 0 version 0", Assert.IsType<ChunkOutcome.Rejected>(otherLeafCount).Reason);
        Assert.Empty(server.AcceptedNodes);
        AssertBitIdentical(step.Expected, server.Weights, "weights");
    }

    [Theory]
    [InlineData(Route.Whole, 4)]
    [InlineData(Route.Whole, 16)]
    [InlineData(Route.Chunks, 7)]
    public void A_contribution_with_the_wrong_leaf_count_is_rejected_and_changes_nothing(Route route, int leafCount)
    {
        ParameterServerState server = step.Server();

        ChunkOutcome outcome = Send(server, Root, route, edit: h => h with { LeafCount = leafCount });

        AssertRejected(server, outcome, $"leaf count {leafCount}", "8 leaves");
        Complete(server, route, "worker-2", Root);
    }

    [Theory]
    [InlineData(Route.Whole, 1, 2)]
    [InlineData(Route.Whole, 0, 3)]
    [InlineData(Route.Whole, 2, 4)]
    [InlineData(Route.Whole, 7, 2)]
    [InlineData(Route.Whole, 0, 9)]
    [InlineData(Route.Whole, -1, 1)]
    [InlineData(Route.Whole, 0, 0)]
    [InlineData(Route.Chunks, 3, 2)]
    public void A_subtree_that_is_not_a_node_of_the_tree_is_rejected_as_unknown_and_changes_nothing(Route route, int first, int count)
    {
        ParameterServerState server = step.Server();

        ChunkOutcome outcome = Send(server, Root, route, edit: h => h with { NodeFirst = first, NodeCount = count });

        AssertRejected(server, outcome, "unknown subtree");
        Complete(server, route, "worker-1", Root);
    }

    [Theory]
    [InlineData(Route.Whole, 2, 2)]
    [InlineData(Route.Whole, 3, 1)]
    [InlineData(Route.Chunks, 0, 2)]
    [InlineData(Route.Chunks, 0, 4)]
    public void A_subtree_inside_an_accepted_one_is_a_duplicate_and_changes_nothing(Route route, int first, int count)
    {
        ParameterServerState server = step.Server();
        Assert.IsType<ChunkOutcome.Accepted>(Send(server, new TreeNode(0, 4), route, "worker-1"));

        ChunkOutcome outcome = Send(server, new TreeNode(first, count), route, "worker-2");

        Assert.Equal(new ChunkOutcome.Duplicate(new TreeNode(first, count), "worker-2"), outcome);
        AssertUntouched(server);
        Assert.Equal([new TreeNode(0, 4)], server.AcceptedNodes);
        Complete(server, route, "worker-3", new TreeNode(4, 4));
    }

    // A stolen leaf and the owner's whole subtree, when the owner began the leaf before it heard of the theft.
    [Theory]
    [InlineData(Route.Whole)]
    [InlineData(Route.Chunks)]
    public void A_subtree_that_holds_accepted_ones_takes_their_place_and_the_step_is_the_same(Route route)
    {
        ParameterServerState server = step.Server();
        Assert.IsType<ChunkOutcome.Accepted>(Send(server, new TreeNode(7, 1), route, "thief"));
        Assert.IsType<ChunkOutcome.Accepted>(Send(server, new TreeNode(4, 2), route, "thief"));

        Assert.IsType<ChunkOutcome.Accepted>(Send(server, new TreeNode(4, 4), route, "owner"));

        AssertUntouched(server);
        Assert.Equal([new TreeNode(4, 4)], server.AcceptedNodes);
        Complete(server, route, "worker-3", new TreeNode(0, 4));
    }

    [Theory]
    [InlineData(Route.Whole, -1)]
    [InlineData(Route.Whole, 1)]
    [InlineData(Route.Chunks, 1)]
    public void A_contribution_whose_TotalFloats_is_not_the_models_is_rejected_and_changes_nothing(Route route, int delta)
    {
        ParameterServerState server = step.Server();

        ChunkOutcome outcome = Send(server, Root, route, edit: h => h with { TotalFloats = h.TotalFloats + delta });

        AssertRejected(server, outcome, "wrong length", $"{Floats + delta} floats but the model has {Floats}");
        Complete(server, route, "worker-2", Root);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(1)]
    public void A_whole_gradient_of_the_wrong_length_is_rejected_and_changes_nothing(int delta)
    {
        ParameterServerState server = step.Server();
        GradientSum sum = step.Sum(Root);
        float[] gradients = new float[Floats + delta];
        Array.Copy(sum.Gradients, gradients, Math.Min(Floats, gradients.Length));

        ChunkOutcome outcome = server.Accept(Header(sum, Floats), gradients);

        AssertRejected(server, outcome, "wrong length", $"{Floats + delta} floats");
        Complete(server, Route.Whole, "worker-2", Root);
    }

    public static TheoryData<string> GeometryFaults() => ["chunk count", "index below 0", "index past the end", "offset", "short data", "long data", "no data"];

    [Theory]
    [MemberData(nameof(GeometryFaults))]
    public void A_chunk_with_the_wrong_geometry_is_rejected_the_rest_of_its_contribution_ignored_and_nothing_changes(string fault)
    {
        ParameterServerState server = step.Server();
        GradientSum sum = step.Sum(Root);
        List<GradientChunk> chunks = Chunks(Header(sum, Floats), sum.Gradients);
        GradientChunk bad = chunks[1];
        chunks[1] = fault switch
        {
            "chunk count" => bad with { ChunkCount = bad.ChunkCount - 1 },
            "index below 0" => bad with { ChunkIndex = -1 },
            "index past the end" => bad with { ChunkIndex = bad.ChunkCount },
            "offset" => bad with { Offset = bad.Offset + 1 },
            "short data" => bad with { Data = bad.Data[..^4] },
            "long data" => bad with { Data = [.. bad.Data, 0, 0, 0, 0] },
            "no data" => bad with { Data = null! },
            _ => throw new ArgumentException(fault),
        };

        List<ChunkOutcome> outcomes = chunks.Select(server.Accept).ToList();

        Assert.IsType<ChunkOutcome.Partial>(outcomes[0]);
        AssertRejected(server, outcomes[1], "chunk");
        Assert.All(outcomes.Skip(2), o => Assert.IsType<ChunkOutcome.Ignored>(o));
        Complete(server, Route.Chunks, "worker-2", Root);
    }

    public static TheoryData<string> ChunkedFaults() =>
        ["another run", "no step open", "stale version", "wrong leaf count", "unknown subtree", "wrong TotalFloats", "wrong sample count", "non-finite loss"];

    // ChunkOutcome.Ignored promises that the later chunks of a refused contribution are "ignored without a new
    // reason": one refused contribution is one logged warning and one ContributionRejected, not one per chunk.
    [Theory]
    [MemberData(nameof(ChunkedFaults))]
    public void A_refused_chunked_contribution_draws_one_reason_and_its_later_chunks_are_ignored(string fault)
    {
        ParameterServerState server = step.Server(beginStep: fault != "no step open");
        GradientSum sum = step.Sum(Root);
        ContributionHeader h = Header(sum, Floats);
        h = fault switch
        {
            "another run" => h with { RunId = "run-other" },
            "no step open" => h,
            "stale version" => h with { Version = 1 },
            "wrong leaf count" => h with { LeafCount = 4 },
            "unknown subtree" => h with { NodeFirst = 1, NodeCount = 2 },
            "wrong TotalFloats" => h with { TotalFloats = Floats + 1 },
            "wrong sample count" => h with { Samples = 1 },
            "non-finite loss" => h with { LossSum = double.NaN },
            _ => throw new ArgumentException(fault),
        };

        List<ChunkOutcome> outcomes = Chunks(h, sum.Gradients).Select(server.Accept).ToList();

        Assert.IsType<ChunkOutcome.Rejected>(outcomes[0]);
        Assert.True(outcomes.Skip(1).All(o => o is ChunkOutcome.Ignored),
            $"{fault}: expected one Rejected then Ignored for the other {outcomes.Count - 1} chunks, got: {string.Join(", ", outcomes.Select(o => o.GetType().Name))}");
        AssertUntouched(server);
    }

    [Fact]
    public void First_chunks_under_ever_new_worker_ids_are_refused_once_a_batch_worth_is_being_assembled_and_the_step_still_completes()
    {
        ParameterServerState server = step.Server();
        GradientSum sum = step.Sum(Root);
        for (int i = 0; i < 2 * 8; i++)
            Assert.IsType<ChunkOutcome.Partial>(server.Accept(Chunks(Header(sum, Floats, $"stranger-{i}"), sum.Gradients)[0]));

        AssertRejected(server, server.Accept(Chunks(Header(sum, Floats, "stranger-16"), sum.Gradients)[0]), "16 contributions are being assembled already");

        // The contributions being assembled still complete (the cap refuses new ones, it drops nothing).
        List<ChunkOutcome> rest = Chunks(Header(sum, Floats, "stranger-0"), sum.Gradients).Skip(1).Select(server.Accept).ToList();
        AssertReferenceStep(server, rest[^1]);
    }

    [Fact]
    public void A_chunk_resent_with_other_bytes_changes_nothing_the_first_copy_stands()
    {
        ParameterServerState server = step.Server();
        GradientSum sum = step.Sum(Root);
        List<GradientChunk> chunks = Chunks(Header(sum, Floats), sum.Gradients);
        GradientChunk forged = chunks[0] with { Data = new byte[chunks[0].Data.Length] };

        Assert.IsType<ChunkOutcome.Partial>(server.Accept(chunks[0]));
        Assert.IsType<ChunkOutcome.Partial>(server.Accept(forged));
        List<ChunkOutcome> rest = chunks.Skip(1).Select(server.Accept).ToList();

        AssertReferenceStep(server, rest[^1]);
    }

    [Theory]
    [InlineData(Route.Whole, 63)]
    [InlineData(Route.Whole, 0)]
    [InlineData(Route.Chunks, 65)]
    public void A_contribution_with_the_wrong_sample_count_is_rejected_and_changes_nothing(Route route, int samples)
    {
        ParameterServerState server = step.Server();

        ChunkOutcome outcome = Send(server, Root, route, edit: h => h with { Samples = samples });

        AssertRejected(server, outcome, $"{samples} samples", "has 64");
        Complete(server, route, "worker-2", Root);
    }

    [Theory]
    [InlineData(Route.Whole, float.NaN, "conv2d/kernel", 0)]
    [InlineData(Route.Whole, float.PositiveInfinity, "dense_1/bias", 9)]
    [InlineData(Route.Whole, float.NegativeInfinity, "conv2d_1/kernel", 18_000)]
    [InlineData(Route.Chunks, float.NaN, "dense/kernel", 20_000)]
    [InlineData(Route.Chunks, float.PositiveInfinity, "conv2d_2/bias", 63)]
    public void A_gradient_with_NaN_or_infinity_is_rejected_with_a_reason_naming_the_parameter(Route route, float value, string parameter, int index)
    {
        ParameterServerState server = step.Server();
        int at = step.Layout.Find(parameter)!.Offset + index;

        ChunkOutcome outcome = Send(server, new TreeNode(4, 4), route, damage: g => g[at] = value);

        AssertRejected(server, outcome, "not finite", parameter);
        Assert.Empty(server.AcceptedNodes);
        Complete(server, route, "worker-2", new TreeNode(4, 4), new TreeNode(0, 4));
    }

    [Theory]
    [InlineData(Route.Whole, double.NaN)]
    [InlineData(Route.Whole, double.PositiveInfinity)]
    [InlineData(Route.Chunks, double.NegativeInfinity)]
    public void A_contribution_with_a_non_finite_loss_is_rejected_and_changes_nothing(Route route, double loss)
    {
        ParameterServerState server = step.Server();

        ChunkOutcome outcome = Send(server, Root, route, edit: h => h with { LossSum = loss });

        AssertRejected(server, outcome, "loss sum is not finite");
        Complete(server, route, "worker-2", Root);
    }

    [Theory]
    [InlineData(Route.Whole)]
    [InlineData(Route.Chunks)]
    public void A_duplicate_of_an_accepted_subtree_is_dropped_as_Duplicate_and_changes_nothing(Route route)
    {
        ParameterServerState server = step.Server();
        Assert.IsType<ChunkOutcome.Accepted>(Send(server, new TreeNode(0, 4), route, "worker-1"));

        // A backup worker's copy, with other numbers (they must not leak in), and a resend of the original.
        var fromBackup = Assert.IsType<ChunkOutcome.Duplicate>(
            Send(server, new TreeNode(0, 4), route, "worker-2", edit: h => h with { LossSum = 1e6 }, damage: g => Array.Fill(g, 1e3f)));
        var resent = Assert.IsType<ChunkOutcome.Duplicate>(Send(server, new TreeNode(0, 4), route, "worker-1"));

        Assert.Equal((new TreeNode(0, 4), "worker-2"), (fromBackup.Node, fromBackup.WorkerId));
        Assert.Equal((new TreeNode(0, 4), "worker-1"), (resent.Node, resent.WorkerId));
        Assert.Equal([new TreeNode(0, 4)], server.AcceptedNodes);
        AssertUntouched(server);
        Complete(server, route, "worker-3", new TreeNode(4, 4));
    }

    [Fact]
    public void A_duplicate_arriving_while_the_original_is_still_in_chunks_is_dropped_when_the_original_completes_first()
    {
        ParameterServerState server = step.Server();
        GradientSum original = step.Sum(new TreeNode(0, 4)), backup = step.Sum(new TreeNode(0, 4));
        List<GradientChunk> slow = Chunks(Header(backup, Floats, "worker-slow"), backup.Gradients);
        List<GradientChunk> fast = Chunks(Header(original, Floats, "worker-fast"), original.Gradients);

        Assert.IsType<ChunkOutcome.Partial>(server.Accept(slow[0]));
        Assert.IsType<ChunkOutcome.Accepted>(Decisive(fast.Select(server.Accept).ToList()));
        List<ChunkOutcome> rest = slow.Skip(1).Select(server.Accept).ToList();

        Assert.IsType<ChunkOutcome.Duplicate>(rest[0]);
        Assert.All(rest.Skip(1), o => Assert.IsType<ChunkOutcome.Ignored>(o));
        Complete(server, Route.Chunks, "worker-fast", new TreeNode(4, 4));
    }
}
