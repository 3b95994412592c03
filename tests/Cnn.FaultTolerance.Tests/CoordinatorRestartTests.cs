// A coordinator that dies (kill -9 in the middle of an epoch) or leaves a damaged newest checkpoint behind: started
// again with --resume on the same --out, it continues from the newest valid checkpoint, its worker processes come
// back on their own, and the run ends with the weights of the undisturbed run (the checkpoint holds weights,
// Adam m/v/t, step, epoch and the shuffle's position). A worker whose fixed port is still taken when it joins
// again retries the bind (the test holds the port for 3 s) instead of exiting.
//
// Measured, not asserted (see Measurements): steps redone after the restart and the time without progress.
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.RegularExpressions;
using Cnn.MultiNode.Tests;
using Xunit;
using Xunit.Abstractions;

namespace Cnn.FaultTolerance.Tests;

[Collection(FaultCollection.Name)]
public sealed partial class CoordinatorRestartTests(FaultRuns runs, ITestOutputHelper output)
{
    private const int CheckpointEvery = 4;

    [Fact]
    public void A_coordinator_killed_mid_epoch_resumes_with_its_workers_redoing_at_most_the_checkpoint_interval()
    {
        string reference = runs.ReferenceWeightsSha256;
        string outDirectory = runs.Scratch.Path("kill-coordinator");
        int port = TestMaterial.FreePort(), dataPort = TestMaterial.FreePort();
        var clock = Stopwatch.StartNew();
        // worker-3 binds a fixed port, as under docker-compose: when it joins again it binds that port again.
        int worker3Port = TestMaterial.FreePort();
        using NodeProcess worker1 = runs.StartWorker(1, port), worker2 = runs.StartWorker(2, port), worker3 = runs.StartWorker(3, port, bindPort: worker3Port);
        using NodeProcess first = runs.StartCoordinatorOn(port, dataPort, outDirectory, workers: 3, ["--checkpoint-every", $"{CheckpointEvery}"]);
        using var firstLog = new CoordinatorLog(first, clock);
        int coordinatorPid = Signals.ChildWithArgument("--port", $"{port}");

        // In the middle of epoch 3 or later, past a checkpoint: steps done since the last checkpoint are lost.
        firstLog.WaitForStep(25, FaultRuns.RunTimeout, s => s % CheckpointEvery != 0 && s % FaultRuns.StepsPerEpoch != 0);
        TimeSpan killedAt = clock.Elapsed;
        Signals.Send(coordinatorPid, Signals.Signal.Kill);
        first.WaitForExit(TimeSpan.FromSeconds(30));
        long stepsBeforeKill = firstLog.LastStep; // the whole output is in: a step is printed as soon as it is done
        // As soon as worker-3's node lets its fixed port go, something else holds it for a while (as the previous node
        // of a restarting process still can): the worker's bind fails, and it must try again instead of exiting.
        using var holder = new PortHolder(new IPEndPoint(IPAddress.Parse("127.0.0.4"), worker3Port), hold: TimeSpan.FromSeconds(3), within: TimeSpan.FromSeconds(60));

        using NodeProcess second = runs.StartCoordinatorOn(port, dataPort, outDirectory, workers: 3, ["--checkpoint-every", $"{CheckpointEvery}", "--resume"]);
        using var secondLog = new CoordinatorLog(second, clock);
        int code;
        try
        {
            code = secondLog.WaitForExit(FaultRuns.RunTimeout, FaultRuns.StallTimeout);
        }
        finally
        {
            string resumed = ResumedAt(second.Out) is long r ? $"resumed at step {r}, {stepsBeforeKill - r} steps redone" : "did not resume";
            string listening = secondLog.TimeOf("Coordinator listening at") is { } l ? $"the new coordinator listened {(l - killedAt).TotalSeconds:F1} s after the kill" : "the new coordinator never listened";
            TimeSpan? firstStepAgain = secondLog.Steps is { Count: > 0 } s ? s[0].At : null;
            Measurements.Report(output, "kill -9 coordinator",
                $"killed after step {stepsBeforeKill} (checkpoint every {CheckpointEvery} and at epoch ends); {resumed}; after the kill: {WorkersBack(secondLog, killedAt)}; "
                + $"first step of the resumed run {(firstStepAgain is { } f ? $"{(f - killedAt).TotalSeconds:F1} s" : "never")} after the kill (the new coordinator started at once; {listening})");
        }

        Assert.True(code == 0, $"the resumed coordinator exited with {code}\n{second}\n{worker1}\n{worker2}\n{worker3}");
        long resumedAt = ResumedAt(second.Out) ?? throw new Xunit.Sdk.XunitException($"no 'Resuming at step N' line\n{second}");
        Assert.InRange(stepsBeforeKill - resumedAt, 0, CheckpointEvery);
        JsonElement run = ClusterRuns.RunJson(outDirectory);
        Assert.Equal(resumedAt, run.GetProperty("resumedFromStep").GetInt64());
        Assert.Equal(FaultRuns.MaxSteps, run.GetProperty("steps").GetInt64());
        Assert.Equal(reference, run.GetProperty("weightsSha256").GetString());
        // The same three processes, never restarted, joined the new coordinator on their own. Each old node learns
        // from the new coordinator that it is no member of its cluster (NotAMember) within about a second of the new
        // coordinator's start, instead of waiting for its own Split Brain Resolver, which downs it about 10 s after the
        // kill (detection and stable-after). That is required whenever the new coordinator listened well before then;
        // on a loaded machine it may start later, and the resolver's way is then as quick.
        bool answeredFirst = secondLog.TimeOf("Coordinator listening at") is { } listened && listened - killedAt < TimeSpan.FromSeconds(4);
        foreach (NodeProcess worker in (NodeProcess[])[worker1, worker2, worker3])
        {
            Assert.True(worker.IsRunning, $"{worker.Name} is no longer running\n{worker}");
            Assert.Contains($"[cluster] worker {worker.Name} joined", second.Out);
            if (answeredFirst) Assert.Contains("left the cluster (the coordinator does not take it", worker.Out);
        }
        Assert.True(holder.Held, $"the test never got worker-3's port {worker3Port} to hold after the kill\n{worker3}");
        Assert.Contains($"cannot listen on 127.0.0.4:{worker3Port}", worker3.Out);
        Assert.Contains("trying again in", worker3.Out);
    }

    // Binds an endpoint as soon as it is free (polling), keeps it for a while, then lets it go.
    private sealed class PortHolder : IDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _task;
        private volatile bool _held;

        public PortHolder(IPEndPoint endpoint, TimeSpan hold, TimeSpan within)
        {
            _task = Task.Run(async () =>
            {
                var deadline = Stopwatch.StartNew();
                while (deadline.Elapsed < within && !_stop.IsCancellationRequested)
                {
                    var listener = new TcpListener(endpoint);
                    try
                    {
                        listener.Start();
                    }
                    catch (SocketException)
                    {
                        listener.Dispose();
                        await Task.Delay(10);
                        continue;
                    }
                    _held = true;
                    try
                    {
                        await Task.Delay(hold, _stop.Token);
                    }
                    catch (OperationCanceledException)
                    {
                    }
                    listener.Dispose();
                    return;
                }
            });
        }

        /// <summary>True once the endpoint was held.</summary>
        public bool Held => _held;

        public void Dispose()
        {
            _stop.Cancel();
            _task.Wait(TimeSpan.FromSeconds(10));
            _stop.Dispose();
        }
    }

    [Fact]
    public void A_truncated_newest_checkpoint_is_reported_by_name_and_the_run_resumes_from_the_previous_one()
    {
        string reference = runs.ReferenceWeightsSha256;
        string outDirectory = runs.Scratch.Path("damaged-checkpoint");
        // The first session stops at step 154 (the middle of epoch 16): its newest checkpoint is step 154, the
        // previous one step 152 (every 4 steps), so a resume from the previous one starts inside an epoch.
        const int StopAfter = 154, Previous = 152;
        {
            using NodeProcess first = runs.StartCoordinator(outDirectory, workers: 2, out int port, ["--checkpoint-every", $"{CheckpointEvery}"], maxSteps: StopAfter);
            using NodeProcess worker1 = runs.StartWorker(1, port), worker2 = runs.StartWorker(2, port);
            int firstCode = first.WaitForExit(FaultRuns.RunTimeout);
            Assert.True(firstCode == 0, $"the first session exited with {firstCode}\n{first}\n{worker1}\n{worker2}");
        }
        string newest = Path.Combine(outDirectory, "checkpoint.safetensors");
        Assert.True(File.Exists(Path.Combine(outDirectory, "checkpoint-prev.safetensors")), "the first session kept no previous checkpoint");
        using (var file = new FileStream(newest, FileMode.Open, FileAccess.ReadWrite)) file.SetLength(file.Length / 2);

        using NodeProcess second = runs.StartCoordinator(outDirectory, workers: 2, out int port2, ["--checkpoint-every", $"{CheckpointEvery}", "--resume"]);
        using NodeProcess worker1Again = runs.StartWorker(1, port2), worker2Again = runs.StartWorker(2, port2);
        int code = second.WaitForExit(FaultRuns.RunTimeout);

        Assert.True(code == 0, $"the resumed coordinator exited with {code}\n{second}\n{worker1Again}\n{worker2Again}");
        string warning = second.ErrorLines.FirstOrDefault(l => l.StartsWith("warning:", StringComparison.Ordinal)) ?? "";
        Assert.Contains("checkpoint.safetensors", warning);
        Assert.Contains("resuming from checkpoint-prev.safetensors", warning);
        Assert.Equal(Previous, ResumedAt(second.Out));
        JsonElement run = ClusterRuns.RunJson(outDirectory);
        Assert.Equal(Previous, run.GetProperty("resumedFromStep").GetInt64());
        Assert.Equal(FaultRuns.MaxSteps, run.GetProperty("steps").GetInt64());
        Assert.Equal(reference, run.GetProperty("weightsSha256").GetString());
        output.WriteLine($"the resumed coordinator said: {warning}");
    }

    private static long? ResumedAt(string text) => Resuming().Match(text) is { Success: true } m ? long.Parse(m.Groups[1].Value) : null;

    // When, after the kill, each worker joined the new coordinator (and any it lost again on the way).
    private static string WorkersBack(CoordinatorLog log, TimeSpan killedAt) =>
        string.Join(", ", log.Lines.Where(l => l.Text.StartsWith("[cluster] worker ", StringComparison.Ordinal) && l.Text.Contains(" joined", StringComparison.Ordinal)
                || l.Text.StartsWith("[cluster] lost worker ", StringComparison.Ordinal))
            .Select(l => $"{l.Text["[cluster] ".Length..].Split(" (")[0]} at {(l.At - killedAt).TotalSeconds:F1} s"));

    [GeneratedRegex(@"Resuming at step (\d+)")]
    private static partial Regex Resuming();
}
