// Who may take part in a run, and when: a worker on other data is refused at the door with the reason in the
// coordinator's log (its gradients would silently break exactness), and a worker that turns up in the middle of
// a run is taken in without restarting anyone and given work from the next step, the weights staying exact.
using System.Diagnostics;
using System.Text.Json;
using Cnn.MultiNode.Tests;
using Xunit;
using Xunit.Abstractions;

namespace Cnn.FaultTolerance.Tests;

[Collection(FaultCollection.Name)]
public sealed class MembershipTests(FaultRuns runs, ITestOutputHelper output)
{
    [Fact]
    public void A_worker_on_different_data_is_refused_with_the_dataset_hash_mismatch_logged_and_exits_with_3()
    {
        // A copy of the dataset with one pixel of one training image changed.
        string otherData = runs.Scratch.Path("other-data");
        Directory.CreateDirectory(otherData);
        foreach (string file in Directory.GetFiles(runs.DataDirectory)) File.Copy(file, Path.Combine(otherData, Path.GetFileName(file)));
        string images = Path.Combine(otherData, "train-images-idx3-ubyte");
        byte[] bytes = File.ReadAllBytes(images);
        bytes[16 + 100] ^= 0xFF;
        File.WriteAllBytes(images, bytes);
        using NodeProcess coordinator = runs.StartCoordinator(runs.Scratch.Path("refused"), workers: 1, out int port);
        using NodeProcess stranger = runs.StartWorker(4, port, otherData);

        int code = stranger.WaitForExit(TimeSpan.FromSeconds(90));

        Assert.True(code == 3, $"the worker on other data exited with {code}, expected 3 (refused)\n{stranger}\n{coordinator}");
        Assert.True(coordinator.WaitForOutput("dataset hash mismatch", TimeSpan.FromSeconds(10)), $"the coordinator's log does not name the hash mismatch\n{coordinator}");
        Assert.Contains(coordinator.Error.Split('\n'), l => l.Contains("Refused worker worker-4", StringComparison.Ordinal) && l.Contains("dataset hash mismatch", StringComparison.Ordinal));
        Assert.Contains("refused by the coordinator: dataset hash mismatch", stranger.Error);
        Assert.DoesNotContain("worker worker-4 joined", coordinator.Out);
        output.WriteLine(coordinator.Error.Split('\n').First(l => l.Contains("dataset hash mismatch", StringComparison.Ordinal)));
    }

    [Fact]
    public void A_worker_that_joins_mid_run_takes_work_from_the_next_step_and_the_weights_stay_exact()
    {
        string reference = runs.ReferenceWeightsSha256;
        string outDirectory = runs.Scratch.Path("late-join");
        var clock = Stopwatch.StartNew();
        using NodeProcess coordinator = runs.StartCoordinator(outDirectory, workers: 2, out int port);
        using var log = new CoordinatorLog(coordinator, clock);
        using NodeProcess worker1 = runs.StartWorker(1, port), worker2 = runs.StartWorker(2, port);

        log.WaitForStep(45, FaultRuns.RunTimeout);
        long stepsBeforeStart = log.LastStep;
        TimeSpan startedAt = log.Now;
        using NodeProcess late = runs.StartWorker(3, port);
        int code = log.WaitForExit(FaultRuns.RunTimeout, FaultRuns.StallTimeout);

        Assert.True(code == 0, $"the coordinator exited with {code}\n{coordinator}\n{late}");
        JsonElement run = ClusterRuns.RunJson(outDirectory);
        Assert.Equal(FaultRuns.MaxSteps, run.GetProperty("steps").GetInt64());
        Assert.Equal(reference, run.GetProperty("weightsSha256").GetString());
        var joined = FaultRuns.Events(run).Where(e => e.What.StartsWith("worker worker-3 joined", StringComparison.Ordinal)).ToList();
        Assert.True(joined.Count > 0 && joined[0].Step >= stepsBeforeStart && joined[0].Step > 0,
            $"run.json should record the join of worker-3 at step {stepsBeforeStart} or later; events: {string.Join("; ", FaultRuns.Events(run))}");
        long joinStep = joined[0].Step;
        JsonElement stats = run.GetProperty("cluster").GetProperty("workers").EnumerateArray().Single(w => w.GetProperty("id").GetString() == "worker-3");
        long images = stats.GetProperty("images").GetInt64();
        // Work from the step in progress at the join (a backup at most) or the next one on, and nothing before.
        Assert.InRange(images, 1, (FaultRuns.MaxSteps - joinStep) * 64);

        TimeSpan joinedAt = log.TimeOf("[cluster] worker worker-3 joined") ?? startedAt;
        IReadOnlyList<StepSeen> steps = log.Steps;
        TimeSpan warm = log.TimeOfStep(FaultRuns.StepsPerEpoch) ?? TimeSpan.Zero;
        Measurements.Report(output, "worker-3 joins a 2-worker run",
            $"started after step {stepsBeforeStart}, joined at step {joinStep} {(joinedAt - startedAt).TotalSeconds:F1} s later; worker-3 computed {images} images; "
            + $"throughput with 2 workers {Measurements.ImagesPerSecond(steps, warm, startedAt):F0} images/s, with 3 after the join {Measurements.ImagesPerSecond(steps, joinedAt, steps[^1].At):F0} images/s");
    }
}
