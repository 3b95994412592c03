// The single-process backend: the engine's LocalTrainer on this machine's threads. It is the reference the
// cluster backend must match bit for bit.
//
// Deliberately not here: anything about the schedule or the artifacts (TrainingLoop, RunArtifacts).
using Cnn.Engine.Data;
using Cnn.Engine.Models;
using Cnn.Engine.Training;

namespace Cnn.Coordinator.Runs;

/// <summary>Trains on this process's threads through <see cref="LocalTrainer"/>.</summary>
public sealed class LocalBackend : ITrainingBackend
{
    private readonly LocalTrainer _trainer;
    private readonly IDataSource _train;

    /// <summary>A backend training <paramref name="model"/> from <paramref name="weights"/> and <paramref name="adam"/> (updated in place) on <paramref name="train"/>.</summary>
    public LocalBackend(Model model, float[] weights, Adam adam, IDataSource train, int threads, int microBatch, ulong seed)
    {
        _trainer = new LocalTrainer(model, weights, adam, threads, microBatch, seed);
        _train = train;
        Threads = threads;
    }

    /// <inheritdoc/>
    public int Workers => 0;

    /// <inheritdoc/>
    public int Threads { get; }

    /// <inheritdoc/>
    public float[] Weights => _trainer.Weights;

    /// <inheritdoc/>
    public Adam Adam => _trainer.Adam;

    /// <inheritdoc/>
    public StepMetrics Step(int[] batchIds, long step) => _trainer.Step(_train, batchIds, step);

    /// <inheritdoc/>
    public LossAndAccuracy Evaluate(IDataSource data, int[] ids) => _trainer.Computer.Evaluate(_trainer.Weights, data, ids);

    /// <inheritdoc/>
    public void Dispose() => _trainer.Dispose();
}
