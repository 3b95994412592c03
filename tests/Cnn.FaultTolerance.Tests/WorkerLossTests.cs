// A worker that dies (kill -9) or freezes (SIGSTOP for 10 s, or only until it is declared lost) in the middle of an
// epoch: the run goes on with the other workers, no step is skipped, and because a leaf gives the same bits wherever
// it is computed, the final weights equal those of the undisturbed run (DESIGN.md, "Exactness"). Three one-thread
// worker processes and a coordinator on loopback, the step deadline at its default floor of 1 s.
//
// Measured, not asserted (see Measurements): the time from the kill to the completion of the step in progress,
// and the throughput before, during and after the loss.
using System.Diagnostics;
using System.Text.Json;
using Cnn.Messages;
using Cnn.MultiNode.Tests;
using Xunit;
using Xunit.Abstractions;

namespace Cnn.FaultTolerance.Tests;

[Collection(FaultCollection.Name)]
public sealed class WorkerLossTests(FaultRuns runs, ITestOutputHelper output)
{
    // Half-way through epoch 5: well past start-up and JIT, far from the end.
    private const int DisturbAfterStep = 45;

    // A coordinator and three one-thread workers training into OutDirectory; Worker2Pid is the process worker-2 runs
    // in, for the signals.
    private sealed record ThreeWorkers(string OutDirectory, NodeProcess Coordinator, CoordinatorLog Log, NodeProcess Worker1, NodeProcess Worker2,
        NodeProcess Worker3, int Worker2Pid) : IDisposable
    {
        public void Dispose()
        {
            Worker3.Dispose();
            Worker2.Dispose();
            Worker1.Dispose();
            Log.Dispose();
            Coordinator.Dispose();
        }
    }

    // Starts the run in a scratch directory named <paramref name="name"/> and waits until it has done DisturbAfterStep steps.
    private ThreeWorkers StartThreeWorkers(string name, int runSteps = FaultRuns.MaxSteps)
    {
        string outDirectory = runs.Scratch.Path(name);
        var clock = Stopwatch.StartNew();
        NodeProcess coordinator = runs.StartCoordinator(outDirectory, workers: 3, out int port, maxSteps: runSteps, runSteps: runSteps);
        var log = new CoordinatorLog(coordinator, clock);
        var nodes = new ThreeWorkers(outDirectory, coordinator, log, runs.StartWorker(1, port), runs.StartWorker(2, port), runs.StartWorker(3, port),
            Signals.ChildWithEnvironment("CNN_WORKER_ID=worker-2"));
        try
        {
            log.WaitForStep(DisturbAfterStep, FaultRuns.RunTimeout);
        }
        catch
        {
            nodes.Dispose();
            throw;
        }
        return nodes;
    }

    [Fact]
    public void Killing_one_of_three_workers_mid_epoch_skips_no_step_and_ends_with_the_undisturbed_weights()
    {
        string reference = runs.ReferenceWeightsSha256;
        using ThreeWorkers nodes = StartThreeWorkers("kill-worker");
        var (outDirectory, coordinator, log, worker1, _, worker3, victim) = nodes;
        long stepsBeforeKill = log.LastStep;
        TimeSpan killedAt = log.Now;
        Signals.Send(victim, Signals.Signal.Kill);
        int code = WaitForExit(log, () =>
        {
            ReportWorkerLoss(log, "kill -9 worker-2", stepsBeforeKill, killedAt);
        });

        Assert.True(code == 0, $"the coordinator exited with {code}\n{coordinator}\n{worker1}\n{worker3}");
        JsonElement run = ClusterRuns.RunJson(outDirectory);
        Assert.Equal(FaultRuns.MaxSteps, run.GetProperty("steps").GetInt64());
        Assert.Equal(FaultRuns.Epochs, run.GetProperty("completedEpochs").GetInt32());
        Assert.Equal(FaultRuns.Epochs, run.GetProperty("history").GetArrayLength());
        Assert.Equal(reference, run.GetProperty("weightsSha256").GetString());
        Assert.Contains("[cluster] lost worker worker-2", coordinator.Out);
        var lost = FaultRuns.Events(run).Where(e => e.What.StartsWith("lost worker worker-2", StringComparison.Ordinal)).ToList();
        Assert.True(lost.Count > 0 && lost[0].Step >= stepsBeforeKill,
            $"run.json should record the loss of worker-2 at step {stepsBeforeKill} or later; events: {string.Join("; ", FaultRuns.Events(run))}");
    }

    [Fact]
    public void A_worker_frozen_for_ten_seconds_is_covered_by_backup_tasks_and_the_run_ends_with_the_undisturbed_weights()
    {
        string reference = runs.LongReferenceWeightsSha256;
        using ThreeWorkers nodes = StartThreeWorkers("stop-worker", FaultRuns.LongMaxSteps);
        var (outDirectory, coordinator, log, worker1, worker2, worker3, frozen) = nodes;
        long stepsBeforeStop = log.LastStep;
        TimeSpan stoppedAt = log.Now;
        Signals.Send(frozen, Signals.Signal.Stop);
        try
        {
            Thread.Sleep(TimeSpan.FromSeconds(10));
        }
        finally
        {
            Signals.Send(frozen, Signals.Signal.Continue);
        }
        TimeSpan continuedAt = log.Now;
        IReadOnlyList<StepSeen> steps = log.Steps;
        int doneWhileStopped = steps.Count(s => s.At > stoppedAt && s.At <= continuedAt);
        // Until the cluster declares the frozen worker unreachable (about 5 s), only backup tasks can finish a step.
        TimeSpan lostAt = log.TimeOf("[cluster] lost worker worker-2") is { } t && t < continuedAt ? t : continuedAt;
        int doneBeforeLoss = steps.Count(s => s.At > stoppedAt && s.At <= lostAt);
        // Once it is declared lost, the two others carry the run at full speed (dozens of steps a second).
        int doneAfterLoss = steps.Count(s => s.At > lostAt && s.At <= continuedAt);
        int code = WaitForExit(log, () =>
        {
            Measurements.Report(output, "SIGSTOP worker-2 for 10 s",
                $"{doneWhileStopped} steps completed during the stop ({Measurements.ImagesPerSecond(log.Steps, stoppedAt, continuedAt):F0} images/s), {doneBeforeLoss} of them in the {(lostAt - stoppedAt).TotalSeconds:F1} s before the worker was declared lost, {doneAfterLoss} in the {(continuedAt - lostAt).TotalSeconds:F1} s after; {Worker2Events(log)}");
            ReportWorkerLoss(log, "SIGSTOP worker-2", stepsBeforeStop, stoppedAt);
        });

        Assert.True(doneWhileStopped >= 2, $"only {doneWhileStopped} steps completed while worker-2 was stopped for 10 s\n{coordinator}");
        Assert.True(doneBeforeLoss >= 1, $"no step completed through backup tasks before worker-2 was declared lost\n{coordinator}");
        Assert.Contains(log.Lines, l => l.At > stoppedAt && l.Text.Contains("re-assigned to worker", StringComparison.Ordinal));
        if (continuedAt - lostAt > TimeSpan.FromSeconds(2))
            Assert.True(doneAfterLoss >= 5, $"only {doneAfterLoss} steps completed in the {(continuedAt - lostAt).TotalSeconds:F1} s between the loss of worker-2 and SIGCONT: the run stood still with two live workers\n{coordinator}");
        Assert.True(code == 0, $"the coordinator exited with {code}\n{coordinator}\n{worker1}\n{worker2}\n{worker3}");
        // The coordinator downs the frozen worker's node itself, while it is still stopped: the Split Brain Resolver
        // would decide only at about the time the worker wakes (detection and stable-after take about 10 s), and a
        // worker that wakes unreachable makes it down the coordinator too (CnnNode.UnreachableWorkerDownAfter).
        Assert.True(log.TimeOf("[cluster] downed worker worker-2's node") is { } downedAt && downedAt > lostAt && downedAt < continuedAt,
            $"the coordinator did not down worker-2's node while it was stopped; worker-2's events: {Worker2Events(log)}\n{coordinator}");
        // The woken worker learns that it was removed when the others answer it as quarantined (or, when it wakes
        // before the removal, from the gossip that it is down), ends its old node and joins from a new one
        // (Worker/Program.cs). Its own Split Brain Resolver, the only way out before, would down it only after
        // stable-after had passed with everyone unreachable from it.
        Assert.True(log.Lines.FirstOrDefault(l => l.At > continuedAt && l.Text.Contains("[cluster] worker worker-2 joined", StringComparison.Ordinal)) is { Text: not null } rejoined
            && rejoined.At - continuedAt < CnnNode.StableAfter,
            $"worker-2 did not join again within {CnnNode.StableAfter.TotalSeconds:0} s of SIGCONT; its events: {Worker2Events(log)}\n{worker2}");
        JsonElement run = ClusterRuns.RunJson(outDirectory);
        Assert.Equal(FaultRuns.LongMaxSteps, run.GetProperty("steps").GetInt64());
        Assert.Equal(reference, run.GetProperty("weightsSha256").GetString());
    }

    [Fact]
    public void A_worker_reachable_again_within_the_grace_keeps_its_node_and_its_place()
    {
        string reference = runs.ReferenceWeightsSha256;
        using ThreeWorkers nodes = StartThreeWorkers("stop-worker-briefly");
        var (outDirectory, coordinator, log, worker1, worker2, worker3, frozen) = nodes;
        TimeSpan stoppedAt = log.Now;
        TimeSpan lostAt;
        Signals.Send(frozen, Signals.Signal.Stop);
        try
        {
            // Woken the moment the coordinator declares it lost: its heartbeats answer again within about a second,
            // well inside CnnNode.UnreachableWorkerDownAfter.
            lostAt = log.WaitForLine("[cluster] lost worker worker-2", TimeSpan.FromSeconds(30));
        }
        finally
        {
            Signals.Send(frozen, Signals.Signal.Continue);
        }
        TimeSpan continuedAt = log.Now;
        int code = WaitForExit(log, () =>
        {
            Measurements.Report(output, "SIGSTOP worker-2 until declared lost",
                $"declared lost {(lostAt - stoppedAt).TotalSeconds:F1} s after SIGSTOP, SIGCONT {(continuedAt - lostAt).TotalSeconds:F2} s after that; {Worker2Events(log)}");
        });

        Assert.True(code == 0, $"the coordinator exited with {code}\n{coordinator}\n{worker1}\n{worker2}\n{worker3}");
        Assert.True(log.TimeOf("[cluster] worker worker-2 is reachable again") is { } backAt && backAt > lostAt,
            $"worker-2 was not reachable again after SIGCONT; its events: {Worker2Events(log)}\n{coordinator}");
        Assert.DoesNotContain(log.Lines, l => l.Text.Contains("[cluster] downed worker worker-2", StringComparison.Ordinal));
        Assert.DoesNotContain("left the cluster", worker2.Out);
        JsonElement run = ClusterRuns.RunJson(outDirectory);
        Assert.Equal(FaultRuns.MaxSteps, run.GetProperty("steps").GetInt64());
        Assert.Equal(reference, run.GetProperty("weightsSha256").GetString());
    }

    // Waits for the coordinator to exit and returns its exit code; reports what the test measured either way.
    private static int WaitForExit(CoordinatorLog log, Action report)
    {
        try
        {
            return log.WaitForExit(FaultRuns.RunTimeout, FaultRuns.StallTimeout);
        }
        finally
        {
            report();
        }
    }

    // Time from the fault to the completion of the step in progress, and throughput before, during and after
    // the loss (during: from the fault until the coordinator declares the worker lost).
    private void ReportWorkerLoss(CoordinatorLog log, string what, long stepsBefore, TimeSpan faultAt)
    {
        IReadOnlyList<StepSeen> steps = log.Steps;
        TimeSpan? inProgressDone = log.TimeOfStep(stepsBefore + 1);
        TimeSpan? lostAt = log.TimeOf("[cluster] lost worker worker-2");
        TimeSpan? warm = log.TimeOfStep(FaultRuns.StepsPerEpoch);
        TimeSpan end = steps.Count > 0 ? steps[^1].At : log.Now;
        string during = lostAt is { } l ? $"{Measurements.ImagesPerSecond(steps, faultAt, l):F0} images/s for {(l - faultAt).TotalSeconds:F1} s until declared lost ({steps.Count(s => s.At > faultAt && s.At <= l)} steps)" : "never declared lost";
        string after = lostAt is { } m && end > m ? $"{Measurements.ImagesPerSecond(steps, m, end):F0} images/s ({steps.Count(s => s.At > m)} steps)" : "n/a";
        Measurements.Report(output, what,
            $"fault after step {stepsBefore}; step {stepsBefore + 1} completed {(inProgressDone is { } d ? $"{(d - faultAt).TotalSeconds:F2} s" : "never")} after the fault; "
            + $"throughput before {(warm is { } w ? Measurements.ImagesPerSecond(steps, w, faultAt) : 0):F0} images/s (steps {FaultRuns.StepsPerEpoch}..{stepsBefore}), during {during}, after {after}; last step {(steps.Count > 0 ? steps[^1].Step : 0)}");
    }

    private static string Worker2Events(CoordinatorLog log) =>
        string.Join("; ", log.Lines.Where(l => l.Text.StartsWith("[cluster]", StringComparison.Ordinal) && l.Text.Contains("worker-2", StringComparison.Ordinal) && !l.Text.Contains("re-assigned", StringComparison.Ordinal))
            .Select(l => $"{l.At.TotalSeconds:F1}s {l.Text}"));
}
