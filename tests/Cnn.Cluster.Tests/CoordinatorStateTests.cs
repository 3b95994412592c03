// CoordinatorState without an ActorSystem: who may join, how the leaves of a batch are dealt out as whole tree
// nodes in proportion to threads, what is re-assigned when a step is late or a worker is lost, and how evaluation
// ranges are dealt out and summed. Worker handles are plain strings here (the actor uses IActorRefs).
using Cnn.Coordinator.Cluster;
using Cnn.Engine.Training;
using Cnn.Messages;
using Xunit;

namespace Cnn.Cluster.Tests;

public sealed class CoordinatorStateTests
{
    private const string Sha = "5e9f0c8a1d2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5";
    private const string Fingerprint = "avx512f/fma/v1";
    private static readonly RunPlan Plan = new("run-1", "seed-cnn", MicroBatch: 8, Seed: 1, Sha, Fingerprint);

    private static RegisterWorker Register(string id, int threads = 1, string sha = Sha, string fingerprint = Fingerprint, int protocol = CoordinatorState.ProtocolVersion) =>
        new(id, threads, sha, fingerprint, protocol);

    // A state with workers w1, w2, ... of the given threads, each reached through the handle "handle-wN".
    private static CoordinatorState WithWorkers(params int[] threads)
    {
        var state = new CoordinatorState(Plan);
        for (int i = 0; i < threads.Length; i++)
        {
            RegisterWorker request = Register($"w{i + 1}", threads[i]);
            Assert.Null(state.Admit(request));
            state.Join(request, $"handle-w{i + 1}");
        }
        return state;
    }

    private static int[] Batch(int size) => Enumerable.Range(100, size).ToArray();

    // Every leaf of [0, leafCount) appears in exactly one of the nodes, and each node is a node of the tree.
    private static void AssertExactCover(IEnumerable<TreeNode> nodes, int leafCount)
    {
        var covered = new int[leafCount];
        foreach (TreeNode node in nodes)
        {
            Assert.True(GradientTree.IsNode(node, leafCount), $"{node} is not a node of the tree over {leafCount} leaves");
            for (int leaf = node.First; leaf < node.End; leaf++) covered[leaf]++;
        }
        for (int leaf = 0; leaf < leafCount; leaf++)
            Assert.True(covered[leaf] == 1, $"leaf {leaf} is covered {covered[leaf]} times");
    }

    // run.json's workerStats say where each worker's threads ran: the CPUs a registration names, one per thread, or
    // null. A list that is not one CPU per thread says nothing a reader could trust, so it is recorded as null.
    [Theory]
    [InlineData(2, new[] { 2, 3 }, new[] { 2, 3 })]
    [InlineData(1, null, null)]
    [InlineData(2, new[] { 0 }, null)]
    [InlineData(1, new[] { 0, 1 }, null)]
    [InlineData(1, new[] { -1 }, null)]
    public void Join_records_the_cpus_a_worker_names_only_as_one_per_thread(int threads, int[]? cpus, int[]? recorded)
    {
        var state = new CoordinatorState(Plan);

        WorkerSlot slot = state.Join(Register("w1", threads) with { Cpus = cpus }, "handle-1");

        Assert.Equal(recorded, slot.Cpus);
    }

    [Fact]
    public void Admit_accepts_a_worker_with_the_coordinators_dataset_numerics_and_protocol()
    {
        var state = new CoordinatorState(Plan);

        Assert.Null(state.Admit(Register("w1", threads: 2)));
        Assert.Null(state.Admit(Register("w2", sha: Sha.ToUpperInvariant())));
    }

    [Fact]
    public void Admit_refuses_a_dataset_hash_mismatch_with_a_reason_naming_it()
    {
        string? reason = new CoordinatorState(Plan).Admit(Register("w1", sha: new string('0', 64)));

        Assert.NotNull(reason);
        Assert.Contains("dataset hash mismatch", reason);
        Assert.Contains("000000000000", reason);
        Assert.Contains(Sha[..12], reason);
    }

    [Fact]
    public void Admit_refuses_a_numerics_fingerprint_mismatch_unless_the_run_allows_it()
    {
        RegisterWorker other = Register("w1", fingerprint: "sse2/v1");

        string? reason = new CoordinatorState(Plan).Admit(other);
        string? allowed = new CoordinatorState(Plan with { AllowFingerprintMismatch = true }).Admit(other);

        Assert.NotNull(reason);
        Assert.Contains("numerics fingerprint mismatch", reason);
        Assert.Contains("sse2/v1", reason);
        Assert.Contains(Fingerprint, reason);
        Assert.Null(allowed);
    }

    [Fact]
    public void A_worker_admitted_with_other_kernels_gets_a_warning_and_one_with_the_same_kernels_none()
    {
        var state = new CoordinatorState(Plan with { AllowFingerprintMismatch = true });
        WorkerSlot same = state.Join(Register("w1"), "handle-1");
        WorkerSlot other = state.Join(Register("w2", fingerprint: "sse2/v1"), "handle-2");

        Assert.Null(state.NumericsWarning(same));
        string? warning = state.NumericsWarning(other);
        Assert.NotNull(warning);
        Assert.StartsWith("worker w2 computes with other kernels ('sse2/v1', this node '" + Fingerprint + "')", warning);
        Assert.Equal((Fingerprint, "sse2/v1"), (same.Numerics, other.Numerics));
    }

    [Fact]
    public void Admit_refuses_another_protocol_version_with_a_reason_naming_both_versions()
    {
        string? reason = new CoordinatorState(Plan).Admit(Register("w1", protocol: CoordinatorState.ProtocolVersion + 1));

        Assert.Equal($"protocol version {CoordinatorState.ProtocolVersion + 1} differs from the coordinator's {CoordinatorState.ProtocolVersion}", reason);
    }

    [Fact]
    public void Admit_refuses_a_worker_that_offers_no_threads()
    {
        Assert.Contains("0 threads", new CoordinatorState(Plan).Admit(Register("w1", threads: 0)));
    }

    [Fact]
    public void A_worker_registering_again_keeps_its_slot_and_gets_its_new_handle()
    {
        CoordinatorState state = WithWorkers(2, 1);

        WorkerSlot again = state.Join(Register("w1", threads: 2), "handle-w1-restarted");

        Assert.Equal(2, state.Workers.Count);
        Assert.Same(state.Workers[0], again);
        Assert.Same(again, state.Find("handle-w1-restarted"));
        Assert.Null(state.Find("handle-w1"));
    }

    [Theory]
    [InlineData(8, new[] { 1 }, new[] { 8 })]
    [InlineData(8, new[] { 1, 1 }, new[] { 4, 4 })]
    [InlineData(8, new[] { 1, 1, 1 }, new[] { 3, 3, 2 })]
    [InlineData(8, new[] { 2, 1 }, new[] { 5, 3 })]
    [InlineData(8, new[] { 1, 3 }, new[] { 2, 6 })]
    [InlineData(7, new[] { 1, 1, 1, 1 }, new[] { 2, 2, 2, 1 })]
    [InlineData(4, new[] { 1, 1, 1, 1, 1 }, new[] { 1, 1, 1, 1, 0 })]
    [InlineData(1, new[] { 1, 3 }, new[] { 0, 1 })]
    [InlineData(10, new[] { 3, 2, 2 }, new[] { 4, 3, 3 })]
    public void Shares_are_proportional_to_threads_by_largest_remainder_with_ties_to_the_earlier_worker(int leaves, int[] threads, int[] expected)
    {
        Assert.Equal(expected, CoordinatorState.Shares(leaves, threads));
    }

    [Fact]
    public void Shares_always_sum_to_the_leaves_and_stay_within_one_of_the_exact_proportion()
    {
        var random = new Random(4);
        for (int trial = 0; trial < 2000; trial++)
        {
            int[] threads = Enumerable.Range(0, random.Next(1, 9)).Select(_ => random.Next(1, 17)).ToArray();
            int leaves = random.Next(0, 200);

            int[] shares = CoordinatorState.Shares(leaves, threads);

            Assert.Equal(leaves, shares.Sum());
            for (int i = 0; i < threads.Length; i++)
            {
                double exact = (double)leaves * threads[i] / threads.Sum();
                Assert.True(shares[i] >= Math.Floor(exact) && shares[i] <= Math.Ceiling(exact),
                    $"{leaves} leaves over threads [{string.Join(", ", threads)}]: worker {i} got {shares[i]}, exact share {exact}");
            }
        }
    }

    public static TheoryData<int[], int> Plans() => new()
    {
        { new[] { 1 }, 64 },
        { new[] { 1, 1 }, 64 },
        { new[] { 1, 1, 1 }, 64 },
        { new[] { 2, 1, 1 }, 64 },
        { new[] { 1, 1, 1, 1 }, 64 },
        { new[] { 1, 1, 1, 1 }, 25 },
        { new[] { 3, 1 }, 200 },
        { new[] { 1, 2, 3, 4, 5 }, 1000 },
    };

    [Theory]
    [MemberData(nameof(Plans))]
    public void PlanStep_gives_every_leaf_to_exactly_one_worker_as_whole_subtrees_in_proportion_to_threads(int[] threads, int batchSize)
    {
        CoordinatorState state = WithWorkers(threads);
        int[] batch = Batch(batchSize);

        StepAssignment plan = state.PlanStep(5, batch);

        int leafCount = GradientTree.LeafCount(batchSize, Plan.MicroBatch);
        Assert.Equal(5, plan.Step);
        Assert.Equal(batch, plan.BatchIds);
        Assert.Equal(leafCount, plan.LeafCount);
        Assert.Same(plan, state.Current);
        AssertExactCover(plan.Work.SelectMany(w => w.Nodes), leafCount);
        int[] shares = CoordinatorState.Shares(leafCount, threads);
        foreach (var (worker, nodes) in plan.Work)
        {
            int index = state.Workers.ToList().IndexOf(worker);
            Assert.Equal(shares[index], nodes.Sum(n => n.Count));
            Assert.Equal(nodes.Count, nodes.Distinct().Count());
        }
    }

    [Fact]
    public void PlanStep_with_more_workers_than_leaves_gives_the_extra_workers_nothing()
    {
        CoordinatorState state = WithWorkers(1, 1, 1, 1, 1);

        StepAssignment plan = state.PlanStep(0, Batch(25)); // 4 leaves

        Assert.Equal(4, plan.Work.Count);
        Assert.DoesNotContain(plan.Work, w => w.Worker.Id == "w5");
        AssertExactCover(plan.Work.SelectMany(w => w.Nodes), 4);
    }

    [Fact]
    public void PlanStep_without_workers_throws()
    {
        Assert.Throws<InvalidOperationException>(() => new CoordinatorState(Plan).PlanStep(0, Batch(64)));
    }

    [Fact]
    public void LateNodes_gives_the_missing_nodes_of_a_late_worker_to_the_others_and_leaves_done_nodes_alone()
    {
        CoordinatorState state = WithWorkers(1, 1, 1);
        StepAssignment plan = state.PlanStep(0, Batch(64)); // w1: 0+2 2+1, w2: 3+1 4+2, w3: 6+2
        List<TreeNode> ofW1 = plan.Work.Single(w => w.Worker.Id == "w1").Nodes;
        List<TreeNode> ofW2 = plan.Work.Single(w => w.Worker.Id == "w2").Nodes;
        List<TreeNode> ofW3 = plan.Work.Single(w => w.Worker.Id == "w3").Nodes;
        foreach (TreeNode node in ofW1.Concat(ofW3)) state.Accepted(node, node.First < 3 ? "w1" : "w3", 5);
        state.Accepted(ofW2[0], "w2", 5);

        var backups = state.LateNodes();

        List<TreeNode> reassigned = backups.SelectMany(b => b.Nodes).ToList();
        Assert.Equal(ofW2.Skip(1), reassigned);
        Assert.DoesNotContain(backups, b => b.Worker.Id == "w2");
    }

    // Work stealing: b's share came as smaller subtrees and a's stolen leaf; it is covered, not late. Without the stolen
    // leaf it is late, and is dealt out whole (the parameter server lets it replace the smaller subtrees).
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void LateNodes_takes_a_share_covered_by_smaller_subtrees_as_done(bool stolenLeafArrived)
    {
        CoordinatorState state = WithWorkers(1, 1);
        StepAssignment plan = state.PlanStep(0, Batch(64)); // w1: 0+4, w2: 4+4
        Assert.Equal([new TreeNode(4, 4)], plan.Work.Single(w => w.Worker.Id == "w2").Nodes);
        state.Accepted(new TreeNode(0, 4), "w1", 5);
        state.Accepted(new TreeNode(4, 1), "w2", 5);
        state.Accepted(new TreeNode(4, 2), "w2", 5); // took leaf 4's place: nested nodes do not count twice
        state.Accepted(new TreeNode(6, 1), "w2", 5);
        if (stolenLeafArrived) state.Accepted(new TreeNode(7, 1), "w1", 5);

        var backups = state.LateNodes();

        if (stolenLeafArrived) Assert.Empty(backups);
        else Assert.Equal([("w1", new TreeNode(4, 4))], backups.SelectMany(b => b.Nodes.Select(n => (b.Worker.Id, n))));
    }

    [Fact]
    public void LateNodes_spreads_a_late_workers_nodes_over_the_least_loaded_others()
    {
        CoordinatorState state = WithWorkers(1, 1, 1);
        state.PlanStep(0, Batch(64)); // w1: 0+2 2+1, w2: 3+1 4+2, w3: 6+2
        foreach (TreeNode node in new TreeNode[] { new(3, 1), new(4, 2) }) state.Accepted(node, "w2", 5);
        state.Accepted(new TreeNode(6, 2), "w3", 5);

        var backups = state.LateNodes();

        Assert.Equal(2, backups.Count);
        Assert.Equal([new TreeNode(0, 2)], backups.Single(b => b.Worker.Id == "w2").Nodes);
        Assert.Equal([new TreeNode(2, 1)], backups.Single(b => b.Worker.Id == "w3").Nodes);
    }

    [Fact]
    public void LateNodes_with_a_single_worker_has_nobody_to_give_work_to()
    {
        CoordinatorState state = WithWorkers(2);
        state.PlanStep(0, Batch(64));

        Assert.Empty(state.LateNodes());
    }

    [Fact]
    public void Leave_gives_a_lost_workers_missing_nodes_to_the_remaining_workers()
    {
        CoordinatorState state = WithWorkers(1, 1, 1);
        StepAssignment plan = state.PlanStep(0, Batch(64));
        List<TreeNode> ofW2 = plan.Work.Single(w => w.Worker.Id == "w2").Nodes;
        state.Accepted(ofW2[0], "w2", 5);

        var reassigned = state.Leave("w2");

        Assert.Equal(["w1", "w3"], state.Workers.Select(w => w.Id));
        Assert.Equal(ofW2.Skip(1), reassigned.SelectMany(r => r.Nodes).OrderBy(n => n.First));
        Assert.All(reassigned, r => Assert.NotEqual("w2", r.Worker.Id));
        // Accepted nodes, the others' own nodes and the re-assigned ones still cover the batch exactly once.
        var owned = plan.Work.Where(w => w.Worker.Id != "w2").SelectMany(w => w.Nodes).Concat(reassigned.SelectMany(r => r.Nodes)).Append(ofW2[0]);
        AssertExactCover(owned, plan.LeafCount);
    }

    [Fact]
    public void Leave_of_the_last_worker_or_between_steps_or_of_a_stranger_reassigns_nothing()
    {
        CoordinatorState between = WithWorkers(1, 1);
        CoordinatorState alone = WithWorkers(1);
        alone.PlanStep(0, Batch(64));

        Assert.Empty(between.Leave("w1"));
        Assert.Empty(between.Leave("nobody"));
        Assert.Empty(alone.Leave("w1"));
        Assert.Empty(alone.Workers);
        Assert.Equal(["w2"], between.Workers.Select(w => w.Id));
    }

    [Fact]
    public void Accepted_and_StepApplied_keep_the_per_worker_statistics()
    {
        CoordinatorState state = WithWorkers(1, 1);
        state.PlanStep(0, Batch(25)); // 4 leaves of 8, 8, 8, 1 samples: w1 0+2, w2 2+2
        state.Accepted(new TreeNode(0, 2), "w1", 4);
        state.Accepted(new TreeNode(2, 2), "w2", 6);

        state.StepApplied(0.01);

        Assert.Null(state.Current);
        Assert.Equal(1, state.StepsApplied);
        Assert.Equal(6, state.CriticalComputeMilliseconds);
        Assert.Equal(5, state.MeanWorkerComputeMilliseconds);
        Assert.Equal((16L, 1L, 1L), (state.Workers[0].Images, state.Workers[0].Contributions, state.Workers[0].Steps));
        Assert.Equal((9L, 1L, 1L), (state.Workers[1].Images, state.Workers[1].Contributions, state.Workers[1].Steps));
    }

    [Fact]
    public void The_deadline_is_five_floors_before_any_step_then_three_median_steps_but_at_least_the_floor()
    {
        CoordinatorState state = WithWorkers(1);
        TimeSpan floor = TimeSpan.FromSeconds(1);
        Assert.Equal(TimeSpan.FromSeconds(5), state.Deadline(floor));

        foreach (double seconds in new[] { 0.1, 0.2, 9.0 })
        {
            state.PlanStep(0, Batch(64));
            state.StepApplied(seconds);
        }
        Assert.Equal(floor, state.Deadline(floor));
        Assert.Equal(TimeSpan.FromSeconds(0.6), state.Deadline(TimeSpan.FromSeconds(0.1)));
    }

    [Fact]
    public void The_deadlines_follow_only_the_last_50_steps_and_the_last_10_evaluations()
    {
        CoordinatorState state = WithWorkers(1);
        TimeSpan floor = TimeSpan.FromMilliseconds(1);
        for (int i = 1; i <= 100; i++) // steps of 0.01 s, 0.02 s, ... 1 s: all different, so the window's size shows
        {
            state.PlanStep(0, Batch(64));
            state.StepApplied(i * 0.01);
        }
        // The last 50 are steps 51..100; their upper middle is step 76.
        Assert.Equal(3 * 0.76, state.Deadline(floor).TotalSeconds, 6);

        state.PlanEvaluation(0, 1_000);
        for (int i = 1; i <= 20; i++) state.EvaluationFinished(1_000, i * 0.01);
        // The last 10 are evaluations 11..20; their upper middle is evaluation 16, 0.16 s for the 1,000 images.
        Assert.Equal(3 * 0.16, state.EvaluationDeadline(floor).TotalSeconds, 6);
    }

    [Fact]
    public void The_evaluation_deadline_is_ten_floors_before_any_evaluation_then_three_median_times_per_image_but_at_least_the_floor()
    {
        CoordinatorState state = WithWorkers(1);
        TimeSpan floor = TimeSpan.FromSeconds(1);
        state.PlanEvaluation(0, 12_000);
        Assert.Equal(TimeSpan.FromSeconds(10), state.EvaluationDeadline(floor));

        state.EvaluationFinished(12_000, 1.2);  // 100 us an image
        state.EvaluationFinished(10_000, 30.0); // a stalled one: 3 ms an image
        state.EvaluationFinished(1_000, 0.05);  // 50 us an image
        state.EvaluationFinished(0, 5.0);       // nothing evaluated: not a time per image
        Assert.Equal(TimeSpan.FromSeconds(3.6), state.EvaluationDeadline(floor)); // the open evaluation's 12,000 images
        state.PlanEvaluation(0, 1_000);
        Assert.Equal(floor, state.EvaluationDeadline(floor));
    }

    [Theory]
    [InlineData(100, 1234, new[] { 1, 1 })]
    [InlineData(0, 500, new[] { 1, 1, 1 })]
    [InlineData(48_000, 12_000, new[] { 2, 1 })]
    [InlineData(0, 7, new[] { 1, 1 })]
    public void PlanEvaluation_covers_the_ids_exactly_with_ranges_dealt_in_proportion_to_threads(int start, int count, int[] threads)
    {
        CoordinatorState state = WithWorkers(threads);

        var parts = state.PlanEvaluation(start, count);

        var ordered = parts.Select(p => p.Part).OrderBy(p => p.Start).ToList();
        Assert.Equal(start, ordered[0].Start);
        for (int i = 1; i < ordered.Count; i++) Assert.Equal(ordered[i - 1].Start + ordered[i - 1].Count, ordered[i].Start);
        Assert.Equal(count, ordered.Sum(p => p.Count));
        Assert.All(ordered, p => Assert.InRange(p.Count, 1, 500));
        int[] shares = CoordinatorState.Shares(ordered.Count, threads);
        for (int i = 0; i < threads.Length; i++) Assert.Equal(shares[i], parts.Count(p => p.Worker.Id == $"w{i + 1}"));
    }

    [Fact]
    public void EvaluationResult_answers_only_when_every_range_is_in_and_sums_in_range_order_whatever_the_arrival_order()
    {
        CoordinatorState state = WithWorkers(1, 1, 1);
        var parts = state.PlanEvaluation(0, 1500).Select(p => p.Part).OrderBy(p => p.Start).ToList();
        // Losses whose double sum depends on the order: in range order (1e17 + 1) - 1e17 = 0, in arrival order 1.
        double[] losses = [1e17, 1.0, -1e17];
        int[] correct = [400, 300, 200];

        Assert.Null(state.EvaluationResult(parts[2], losses[2], correct[2]));
        Assert.Null(state.EvaluationResult(parts[0], losses[0], correct[0]));
        Assert.Null(state.EvaluationResult(new EvaluationPart(3, 4), 99, 99)); // not a range of this evaluation
        var total = state.EvaluationResult(parts[1], losses[1], correct[1]);

        Assert.NotNull(total);
        Assert.Equal(losses[0] + losses[1] + losses[2], total.Value.LossSum);
        Assert.Equal(0.0, total.Value.LossSum);
        Assert.Equal(900, total.Value.Correct);
        Assert.Equal(1500, total.Value.Samples);
    }

    [Fact]
    public void Late_evaluation_ranges_go_to_a_worker_other_than_their_owner()
    {
        CoordinatorState state = WithWorkers(1, 1);
        var parts = state.PlanEvaluation(0, 1000);
        var (firstOwner, firstPart) = parts[0];
        var (_, secondPart) = parts[1];
        Assert.Null(state.EvaluationResult(secondPart, 1, 1));

        var late = state.LateEvaluationParts();

        var (worker, part) = Assert.Single(late);
        Assert.Equal(firstPart, part);
        Assert.NotSame(firstOwner, worker);
    }
}
