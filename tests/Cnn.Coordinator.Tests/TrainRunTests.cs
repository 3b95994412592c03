// Short real runs of `cnn train --no-cluster` on a tiny synthetic IDX dataset (256 training images, half held
// out, batches of 32: 4 steps per epoch, so 6 steps cross an epoch boundary). They check the artifacts and the
// exactness promises: a stopped and resumed run, and runs on 1 or 2 threads, end with the same weights.
using System.Text.Json;
using Xunit;
using static Cnn.Coordinator.Tests.TestSupport;

namespace Cnn.Coordinator.Tests;

public sealed class TrainRunTests : IDisposable
{
    private readonly Scratch _scratch = new();

    private readonly string _data;

    public TrainRunTests() => _data = WriteSyntheticMnist(_scratch.Path("data"));

    private CliResult Train(string outDir, params string[] more) =>
        RunCnn(["train", "--no-cluster", "--data", _data, "--out", outDir, "--epochs", "2", "--batch-size", "32",
            "--micro-batch", "8", "--validation-split", "0.5", .. more]);

    private static JsonElement RunJson(string outDir) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "run.json"))).RootElement;

    [Fact]
    public void A_short_run_writes_history_checkpoint_and_run_json_with_the_fixed_fields()
    {
        string outDir = _scratch.Path("run");

        CliResult result = Train(outDir, "--max-steps", "6", "--threads", "2");

        Assert.True(result.ExitCode == 0, result.Error);
        Assert.Equal("", result.Error);
        Assert.Contains("Epoch 1/2", result.Out);
        Assert.Contains("val_accuracy:", result.Out);
        Assert.Contains("test_accuracy:", result.Out);
        Assert.True(File.Exists(Path.Combine(outDir, "checkpoint.safetensors")));
        Assert.True(File.Exists(Path.Combine(outDir, "checkpoint-prev.safetensors")));

        string[] history = File.ReadAllLines(Path.Combine(outDir, "history.csv"));
        Assert.Equal("epoch,loss,accuracy,val_loss,val_accuracy,seconds,images_per_second", history[0]);
        Assert.Equal(3, history.Length); // epoch 1, then the part of epoch 2 before --max-steps
        Assert.StartsWith("2,", history[2]);

        JsonElement run = RunJson(outDir);
        Assert.Equal("seed-cnn", run.GetProperty("model").GetString());
        Assert.Equal(2, run.GetProperty("epochs").GetInt32());
        Assert.Equal(6, run.GetProperty("steps").GetInt64());
        Assert.Equal(32, run.GetProperty("batchSize").GetInt32());
        Assert.Equal(8, run.GetProperty("microBatch").GetInt32());
        Assert.Equal(1UL, run.GetProperty("seed").GetUInt64());
        Assert.Equal(0, run.GetProperty("workers").GetInt32());
        Assert.Equal(2, run.GetProperty("threads").GetInt32());
        Assert.True(run.GetProperty("wallSeconds").GetDouble() > 0);
        Assert.True(run.GetProperty("trainImagesPerSecond").GetDouble() > 0);
        Assert.InRange(run.GetProperty("testLoss").GetDouble(), 0, 100);
        Assert.InRange(run.GetProperty("testAccuracy").GetDouble(), 0, 1);
        Assert.InRange(run.GetProperty("valAccuracy").GetDouble(), 0, 1);
        Assert.Matches("^[0-9a-f]{64}$", run.GetProperty("weightsSha256").GetString());
        Assert.Matches("^[0-9a-f]{64}$", run.GetProperty("dataSha256").GetString());
        Assert.Equal(2, run.GetProperty("history").GetArrayLength());
        Assert.Equal(Cnn.Engine.Kernels.Numerics.Fingerprint, run.GetProperty("machine").GetProperty("numerics").GetString());
    }

    [Fact]
    public void A_run_stopped_after_3_steps_and_resumed_ends_with_the_weights_of_an_uninterrupted_run()
    {
        string straight = _scratch.Path("straight"), interrupted = _scratch.Path("interrupted");

        Assert.Equal(0, Train(straight, "--max-steps", "6").ExitCode);
        Assert.Equal(0, Train(interrupted, "--max-steps", "3").ExitCode);
        CliResult resumed = Train(interrupted, "--max-steps", "6", "--resume");

        Assert.True(resumed.ExitCode == 0, resumed.Error);
        Assert.Contains("Resuming at step 3", resumed.Out);
        Assert.Equal(RunJson(straight).GetProperty("weightsSha256").GetString(), RunJson(interrupted).GetProperty("weightsSha256").GetString());
        Assert.Equal(File.ReadAllLines(Path.Combine(straight, "history.csv"))[1].Split(',')[..5],
            File.ReadAllLines(Path.Combine(interrupted, "history.csv"))[1].Split(',')[..5]);
    }

    [Fact]
    public void Resume_takes_the_checkpoints_settings_and_refuses_a_different_one()
    {
        string outDir = _scratch.Path("settings");
        Assert.Equal(0, Train(outDir, "--max-steps", "2", "--seed", "9").ExitCode);

        CliResult conflicting = RunCnn("train", "--no-cluster", "--data", _data, "--out", outDir, "--resume", "--seed", "10");
        CliResult inherited = RunCnn("train", "--no-cluster", "--data", _data, "--out", outDir, "--resume", "--max-steps", "3", "--epochs", "2");

        Assert.Equal(2, conflicting.ExitCode);
        Assert.Contains("--seed 10 differs from the 9", Assert.Single(conflicting.ErrorLines));
        Assert.True(inherited.ExitCode == 0, inherited.Error);
        Assert.Equal(9UL, RunJson(outDir).GetProperty("seed").GetUInt64());
        Assert.Equal(32, RunJson(outDir).GetProperty("batchSize").GetInt32());
    }

    [Fact]
    public void Resume_with_only_the_run_directory_keeps_the_runs_epochs_and_data_and_goes_past_a_reached_max_steps()
    {
        string outDir = _scratch.Path("plan");
        Assert.Equal(0, RunCnn("train", "--no-cluster", "--data", _data, "--out", outDir, "--epochs", "3", "--batch-size", "32", "--max-steps", "2").ExitCode);

        CliResult longer = RunCnn("train", "--no-cluster", "--resume", "--out", outDir, "--max-steps", "5");

        Assert.True(longer.ExitCode == 0, longer.Error);
        Assert.Contains(_data, longer.Out);
        Assert.Contains("Stopped after 5 steps (--max-steps 5)", longer.Out);
        Assert.Equal(3, RunJson(outDir).GetProperty("epochs").GetInt32());

        CliResult rest = RunCnn("train", "--no-cluster", "--resume", "--out", outDir);

        Assert.True(rest.ExitCode == 0, rest.Error);
        Assert.DoesNotContain("--max-steps", rest.Out); // the reached limit of 5 is not kept: all 3 epochs run
        Assert.Equal(3, RunJson(outDir).GetProperty("completedEpochs").GetInt32());
    }

    // Checkpoints store the run's settings (for --resume): a TLS key password must never be among them.
    [Fact]
    public void Stored_settings_keep_the_tls_files_but_not_the_password()
    {
        var settings = new Cnn.Coordinator.Runs.TrainSettings
        {
            Workers = 2, Tls = new Cnn.Messages.NodeTlsFiles { CertificatePath = "/certs/node.p12", Password = "s3cret-pass" },
        };

        string json = JsonSerializer.Serialize(settings, Cnn.Coordinator.Runs.RunJson.Options);
        var back = JsonSerializer.Deserialize<Cnn.Coordinator.Runs.TrainSettings>(json, Cnn.Coordinator.Runs.RunJson.Options)!;

        Assert.DoesNotContain("s3cret-pass", json);
        Assert.Equal("/certs/node.p12", back.Tls!.CertificatePath);
        Assert.Null(back.Tls.Password);
    }

    [Fact]
    public void A_damaged_newest_checkpoint_falls_back_to_the_previous_one_and_still_ends_exact()
    {
        string straight = _scratch.Path("straight"), damaged = _scratch.Path("damaged");
        Assert.Equal(0, Train(straight, "--max-steps", "6").ExitCode);
        Assert.Equal(0, Train(damaged, "--max-steps", "3", "--checkpoint-every", "1").ExitCode);
        string newest = Path.Combine(damaged, "checkpoint.safetensors");
        File.WriteAllBytes(newest, File.ReadAllBytes(newest)[..1000]);

        CliResult resumed = Train(damaged, "--max-steps", "6", "--resume");

        Assert.True(resumed.ExitCode == 0, resumed.Error);
        Assert.Contains("checkpoint-prev.safetensors", Assert.Single(resumed.ErrorLines));
        Assert.Contains("Resuming at step 2", resumed.Out);
        Assert.Equal(RunJson(straight).GetProperty("weightsSha256").GetString(), RunJson(damaged).GetProperty("weightsSha256").GetString());
    }

    [Fact]
    public void The_last_M_checkpoints_are_kept_and_resume_walks_back_past_damaged_ones()
    {
        string straight = _scratch.Path("straight"), kept = _scratch.Path("kept");
        Assert.Equal(0, Train(straight, "--max-steps", "6").ExitCode);
        Assert.Equal(0, Train(kept, "--max-steps", "4", "--checkpoint-every", "1", "--keep-checkpoints", "3").ExitCode);
        string[] files = Directory.GetFiles(kept, "checkpoint*.safetensors").Select(Path.GetFileName).Order().ToArray()!;
        Assert.Equal(["checkpoint-prev-2.safetensors", "checkpoint-prev.safetensors", "checkpoint.safetensors"], files);
        foreach (string name in new[] { "checkpoint.safetensors", "checkpoint-prev.safetensors" })
        {
            string path = Path.Combine(kept, name);
            File.WriteAllBytes(path, File.ReadAllBytes(path)[..1000]);
        }

        CliResult resumed = Train(kept, "--max-steps", "6", "--resume", "--keep-checkpoints", "3");

        Assert.True(resumed.ExitCode == 0, resumed.Error);
        Assert.Equal(2, resumed.ErrorLines.Count());
        Assert.Contains("checkpoint-prev-2.safetensors", resumed.ErrorLines.ElementAt(1));
        Assert.Contains("Resuming at step 2", resumed.Out);
        Assert.Equal(RunJson(straight).GetProperty("weightsSha256").GetString(), RunJson(kept).GetProperty("weightsSha256").GetString());
    }

    [Fact]
    public void One_and_two_threads_give_the_same_weights()
    {
        string one = _scratch.Path("one"), two = _scratch.Path("two");

        Assert.Equal(0, Train(one, "--max-steps", "6", "--threads", "1").ExitCode);
        Assert.Equal(0, Train(two, "--max-steps", "6", "--threads", "2").ExitCode);

        Assert.Equal(RunJson(one).GetProperty("weightsSha256").GetString(), RunJson(two).GetProperty("weightsSha256").GetString());
    }

    [Fact]
    public void A_directory_holding_a_run_is_not_overwritten_without_resume()
    {
        string outDir = _scratch.Path("taken");
        Assert.Equal(0, Train(outDir, "--max-steps", "1").ExitCode);

        CliResult again = Train(outDir, "--max-steps", "1");

        Assert.Equal(2, again.ExitCode);
        Assert.Contains("already holds a run", Assert.Single(again.ErrorLines));
    }

    public void Dispose() => _scratch.Dispose();
}
