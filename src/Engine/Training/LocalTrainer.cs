// Single-process training: the whole tree of every batch on this machine's threads, then the optimizer. The
// reference path for the cluster: a cluster run with the same seed must produce the same weights bit for bit.
using Cnn.Engine.Data;
using Cnn.Engine.Models;

namespace Cnn.Engine.Training;

/// <summary>The result of one optimizer step.</summary>
public readonly record struct StepMetrics(double LossSum, int Correct, int Samples);

/// <summary>Trains a model on local threads (see file header).</summary>
public sealed class LocalTrainer : IDisposable
{
    private readonly LeafComputer _computer;

    /// <summary>A trainer that updates <paramref name="weights"/> and <paramref name="adam"/> in place.</summary>
    public LocalTrainer(Model model, float[] weights, Adam adam, int threads, int microBatch, ulong seed)
    {
        _computer = new LeafComputer(model, threads, microBatch);
        Weights = weights;
        Adam = adam;
        Seed = seed;
    }

    /// <summary>The weights (flat layout).</summary>
    public float[] Weights { get; }
    /// <summary>The optimizer and its state.</summary>
    public Adam Adam { get; }
    /// <summary>The run seed (dropout masks).</summary>
    public ulong Seed { get; }
    /// <summary>The leaf computer, for evaluation and prediction.</summary>
    public LeafComputer Computer => _computer;

    /// <summary>One step on the batch <paramref name="batchIds"/>.</summary>
    public StepMetrics Step(IDataSource data, int[] batchIds, long step)
    {
        int leafCount = GradientTree.LeafCount(batchIds.Length, _computer.MicroBatch);
        GradientSum root = _computer.Compute(Weights, data, batchIds, [GradientTree.Root(leafCount)], step, Seed)[0];
        float alpha = Adam.BeginStep();
        _computer.ForEachRange(Weights.Length, (from, to) => Adam.ApplyRange(Weights, root.Gradients, root.Samples, alpha, from, to));
        return new StepMetrics(root.LossSum, root.Correct, root.Samples);
    }

    /// <inheritdoc/>
    public void Dispose() => _computer.Dispose();
}
