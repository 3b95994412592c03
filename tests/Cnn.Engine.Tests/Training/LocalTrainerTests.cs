// LocalTrainer: DESIGN.md's exactness property end to end. Training seed-cnn for 50 steps of batch 64 on
// 1, 2 and 3 threads must give bit-identical weights and Adam state (compared by SHA-256 and element by
// element), and so must seed-resnet for a few steps (BatchNorm statistics included). And the model learns:
// on a tiny set the loss falls below half its starting value.
using System.Security.Cryptography;
using Cnn.Engine.Data;
using Cnn.Engine.Models;
using Cnn.Engine.Tests.Kernels;
using Cnn.Engine.Training;
using Xunit;

namespace Cnn.Engine.Tests.Training;

public sealed class LocalTrainerTests
{
    private static readonly ArraySource Data = SyntheticData.Images(512, seed: 1);

    private sealed record Run(float[] Weights, float[] M, float[] V, List<double> Losses)
    {
        public string Sha256 => Convert.ToHexString(SHA256.HashData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(Weights.AsSpan())));
    }

    private static Run Train(string preset, int threads, int steps, int batch, IDataSource data, ulong seed = 17)
    {
        Model model = Presets.Create(preset);
        var adam = new Adam(model.Parameters);
        using var trainer = new LocalTrainer(model, model.Parameters.Initialize(seed), adam, threads, microBatch: 8, seed);
        int stepsPerEpoch = EpochSchedule.StepsPerEpoch(data.Count, batch);
        var losses = new List<double>();
        int[] order = [];
        for (int step = 0; step < steps; step++)
        {
            int epoch = step / stepsPerEpoch;
            if (step % stepsPerEpoch == 0) order = EpochSchedule.Order(seed, epoch, data.Count);
            StepMetrics metrics = trainer.Step(data, EpochSchedule.Batch(order, step % stepsPerEpoch, batch), step);
            losses.Add(metrics.LossSum / metrics.Samples);
        }
        return new Run(trainer.Weights, adam.M, adam.V, losses);
    }

    private static void AssertSameRun(Run expected, Run actual, string what)
    {
        Assert.True(expected.Sha256 == actual.Sha256, $"{what}: weights SHA-256 {actual.Sha256}, expected {expected.Sha256}");
        KernelAssert.BitIdentical(expected.Weights, actual.Weights, $"{what} weights");
        KernelAssert.BitIdentical(expected.M, actual.M, $"{what} Adam m");
        KernelAssert.BitIdentical(expected.V, actual.V, $"{what} Adam v");
        Assert.Equal(expected.Losses, actual.Losses);
    }

    [Fact]
    public void SeedCnn_weights_are_bit_identical_on_one_two_and_three_threads_after_50_steps()
    {
        Run one = Train("seed-cnn", threads: 1, steps: 50, batch: 64, Data);
        Run two = Train("seed-cnn", threads: 2, steps: 50, batch: 64, Data);
        Run three = Train("seed-cnn", threads: 3, steps: 50, batch: 64, Data);

        AssertSameRun(one, two, "2 threads");
        AssertSameRun(one, three, "3 threads");
        Assert.True(one.Losses[^1] < one.Losses[0], $"loss went from {one.Losses[0]} to {one.Losses[^1]}");
    }

    [Fact]
    public void SeedResNet_weights_are_bit_identical_on_one_and_two_threads()
    {
        Run one = Train("seed-resnet", threads: 1, steps: 3, batch: 32, Data);
        Run two = Train("seed-resnet", threads: 2, steps: 3, batch: 32, Data);

        AssertSameRun(one, two, "seed-resnet, 2 threads");
        Model model = Presets.Create("seed-resnet");
        ParameterSlice movingMean = model.Parameters.Find("batch_normalization/moving_mean")!;
        Assert.Contains(movingMean.Of(one.Weights).ToArray(), v => v != 0f); // the statistics were trained too
    }

    [Fact]
    public void SeedCnn_loss_falls_below_half_on_a_tiny_dataset()
    {
        ArraySource tiny = SyntheticData.Images(64, seed: 2);

        Run run = Train("seed-cnn", threads: 2, steps: 30, batch: 64, tiny);

        Assert.True(run.Losses[^1] < run.Losses[0] / 2, $"loss went from {run.Losses[0]:F4} to {run.Losses[^1]:F4}");
    }

    [Fact]
    public void A_different_seed_trains_to_different_weights()
    {
        Run a = Train("seed-cnn", threads: 2, steps: 2, batch: 64, Data, seed: 1);
        Run b = Train("seed-cnn", threads: 2, steps: 2, batch: 64, Data, seed: 2);

        Assert.NotEqual(a.Sha256, b.Sha256);
    }
}
