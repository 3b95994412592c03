// Ctrl-C and SIGTERM during `cnn train`: the run stops after the step in flight, saves a checkpoint there, says
// how to continue and exits with 128 + the signal; `cnn train --resume --out DIR` then ends with exactly the
// weights of a run that was never stopped. With a local cluster this also checks that the signal does not take
// the in-process workers away in the middle of a step (Akka's and the generic host's own signal handling).
using Xunit;

namespace Cnn.MultiNode.Tests;

[Collection(ProcessCollection.Name)]
public sealed class InterruptTests(ClusterRuns runs)
{
    private const int SigInt = 2, SigTerm = 15;

    // A process started in the background by a non-interactive shell inherits SIGINT ignored, and .NET, like any
    // program, leaves an ignored SIGINT ignored: run that way, the signal below would not reach `cnn train`. The
    // interrupted run starts with SIGINT at its default action whatever the test runner inherited (GNU env).
    private static readonly string[] DefaultSigInt = ["env", "--default-signal=INT"];

    // 16 steps an epoch: the signal comes once the fourth epoch has begun, well before --max-steps.
    private string[] Options => ["--epochs", "30", "--max-steps", "200", "--seed", "11", "--data", runs.DataDirectory];

    [Theory]
    [InlineData("--no-cluster", SigInt, 130, "SIGINT")]
    [InlineData("--local-workers", SigTerm, 143, "SIGTERM")]
    public void A_signal_stops_the_run_with_a_checkpoint_and_resume_ends_with_the_weights_of_an_uninterrupted_run(string mode, int signal, int exitCode, string name)
    {
        string[] modeOptions = mode == "--local-workers" ? ["--local-workers", "2"] : ["--no-cluster", "--threads", "2"];
        string reference = Train(runs.Scratch.Path($"uninterrupted-{name}"), ["--no-cluster", "--threads", "2", .. Options]);
        string outDirectory = runs.Scratch.Path($"interrupted-{name}");

        using (NodeProcess run = NodeProcess.Start("interrupted", Programs.Coordinator, ["train", .. modeOptions, .. Options, "--out", outDirectory],
            launcher: DefaultSigInt))
        {
            Assert.True(run.WaitForOutput("Epoch 4/30", ClusterRuns.RunTimeout), $"the run never reached its fourth epoch\n{run}");
            run.Signal(signal);
            int code = run.WaitForExit(ClusterRuns.RunTimeout);

            Assert.True(code == exitCode, $"exit code {code}, expected {exitCode}\n{run}");
            string stopped = Assert.Single(run.ErrorLines, l => l.StartsWith($"cnn: stopped by {name} after step ", StringComparison.Ordinal));
            Assert.Contains($"the same command with --resume (--out {outDirectory})", stopped);
            Assert.DoesNotContain("Exception", run.Error);
            Assert.DoesNotContain("Lost worker", run.Error); // the coordinator node's log (standard error)
            Assert.True(File.Exists(Path.Combine(outDirectory, "checkpoint.safetensors")), $"no checkpoint\n{run}");
            Assert.False(File.Exists(Path.Combine(outDirectory, "run.json")), "an interrupted run has no run.json");
        }

        string resumed = Train(outDirectory, ["--resume"]);

        Assert.Equal(reference, resumed);
    }

    private static string Train(string outDirectory, string[] options)
    {
        using NodeProcess run = NodeProcess.Start("train", Programs.Coordinator, ["train", .. options, "--out", outDirectory]);
        int code = run.WaitForExit(ClusterRuns.RunTimeout);
        Assert.True(code == 0, $"cnn train {string.Join(' ', options)} exited with {code}\n{run}");
        var json = ClusterRuns.RunJson(outDirectory);
        Assert.Equal(200, json.GetProperty("steps").GetInt32());
        return json.GetProperty("weightsSha256").GetString()!;
    }
}
