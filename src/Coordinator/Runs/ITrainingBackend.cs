// The seam between the epoch loop and whatever computes the steps: this process's threads (LocalBackend) now,
// a cluster of workers and a parameter server later. The loop owns the schedule (which ids form each batch) and
// the reporting; a backend owns the numbers (weights, optimizer state) and must produce the same bits for the
// same sequence of calls, whatever it runs on.
//
// Deliberately not here: data loading and where the workers get their copy of the dataset; a backend is handed
// ids only, as the cluster's workers will be.
using Cnn.Engine.Data;
using Cnn.Engine.Models;
using Cnn.Engine.Training;

namespace Cnn.Coordinator.Runs;

/// <summary>A run that cannot go on (workers lost, training diverged): not a user mistake, but not a bug either.</summary>
public sealed class RunFailedException(string message) : Exception(message)
{
    /// <summary>
    /// The reason for a run whose numbers stopped being finite at <paramref name="step"/> (<paramref name="evidence"/>:
    /// what showed it), with what to do: one wording for every mode.
    /// </summary>
    public static string Diverged(long step, string evidence) =>
        $"training diverged at step {step}: {evidence}; lower --lr and train into a new --out, or --resume from the last checkpoint with a new plan";
}

/// <summary>Computes training steps and evaluations for the epoch loop.</summary>
public interface ITrainingBackend : IDisposable
{
    /// <summary>Worker processes taking part (0 when training in this process).</summary>
    int Workers { get; }

    /// <summary>Threads computing leaves in this process.</summary>
    int Threads { get; }

    /// <summary>The current weights in the model's flat layout (read for checkpoints and hashing).</summary>
    float[] Weights { get; }

    /// <summary>The optimizer and its state (read for checkpoints).</summary>
    Adam Adam { get; }

    /// <summary>One optimizer step on the training samples <paramref name="batchIds"/>; <paramref name="step"/> is the 0-based global step.</summary>
    StepMetrics Step(int[] batchIds, long step);

    /// <summary>
    /// Tells the backend which batch will follow the next <see cref="Step"/> call, so a cluster can send that work
    /// out before the current step ends. Changes no numbers; the default ignores it.
    /// </summary>
    void Announce(int[] nextBatchIds, long nextStep)
    {
    }

    /// <summary>Inference-mode loss sum and correct count over <paramref name="ids"/> of <paramref name="data"/>.</summary>
    LossAndAccuracy Evaluate(IDataSource data, int[] ids);

    /// <summary>Figures of the run for run.json, beyond the loop's own (cluster backends), or null.</summary>
    BackendReport? Report() => null;
}

/// <summary>
/// What a cluster run adds to run.json: per-worker statistics and, per step, the mean wall time, the compute time
/// of the slowest worker (the critical path), the workers' mean compute time (the critical path less it is the
/// cost of imbalance), the rest (communication, reduction and waiting) and the tensor bytes each worker sent and
/// received; and the leaves workers stole from slower ones' shares per step (work stealing).
/// </summary>
public sealed record BackendReport(
    IReadOnlyList<Cnn.Coordinator.Cluster.WorkerStat> Workers,
    long Steps,
    double MeanStepMilliseconds,
    double MeanComputeMilliseconds,
    double MeanWorkerComputeMilliseconds,
    double MeanCommunicationMilliseconds,
    double CommunicationShare,
    long TensorBytesPerStepPerWorker,
    string Transport,
    IReadOnlyList<RunEvent> Events,
    double StolenLeavesPerStep = 0);

/// <summary>Something that happened to the cluster during a run (a worker joined or was lost, work was re-assigned), at a global step.</summary>
public sealed record RunEvent(long Step, string What);
