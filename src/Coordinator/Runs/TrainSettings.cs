// What `cnn train` was asked to do, checked in one place before anything is loaded or written, so that every
// bad option is a one-line error with exit code 2 and no half-made run directory.
//
// On --resume the settings that decide the sequence of weights (model, batch size, micro-batch, learning rate,
// seed, validation split) come from the checkpoint: an option left out takes the checkpoint's value, an option
// given with another value is refused, because the resumed run would silently stop matching the original one.
// Epochs, --max-steps, threads and the checkpoint interval may change freely: they do not change the bits.
//
// Deliberately not here: parsing (Commands/TrainCommand), data loading (TrainingData) and the mode switch
// between single-process and cluster training.
using System.Globalization;
using Cnn.Engine;
using Cnn.Engine.IO;
using Cnn.Engine.Models;

namespace Cnn.Coordinator.Runs;

/// <summary>The options of one training run.</summary>
public sealed record TrainSettings
{
    /// <summary>Preset model name.</summary>
    public string Model { get; init; } = "seed-cnn";
    /// <summary>Directory holding the four IDX files.</summary>
    public string DataDirectory { get; init; } = "";
    /// <summary>Epochs to train in total (counting those done before a resume).</summary>
    public int Epochs { get; init; } = 5;
    /// <summary>Samples per optimizer step.</summary>
    public int BatchSize { get; init; } = 64;
    /// <summary>Samples per leaf (the unit of exact, parallel gradient computation).</summary>
    public int MicroBatch { get; init; } = 8;
    /// <summary>Adam's step size.</summary>
    public float LearningRate { get; init; } = 1e-3f;
    /// <summary>Seed of initialisation, shuffles and dropout.</summary>
    public ulong Seed { get; init; } = 1;
    /// <summary>Fraction of the training file held out, from its end, for validation.</summary>
    public double ValidationSplit { get; init; } = 0.2;
    /// <summary>Threads of this process.</summary>
    public int Threads { get; init; } = Environment.ProcessorCount;
    /// <summary>Stop once this many optimizer steps are done in total, or never when null.</summary>
    public long? MaxSteps { get; init; }
    /// <summary>Run directory for the artifacts.</summary>
    public string OutDirectory { get; init; } = "";
    /// <summary>Continue from the checkpoint in <see cref="OutDirectory"/>.</summary>
    public bool Resume { get; init; }
    /// <summary>Also checkpoint every this many steps, or only at epoch ends when null.</summary>
    public int? CheckpointEvery { get; init; }
    /// <summary>Train in this process, without a cluster.</summary>
    public bool NoCluster { get; init; }

    /// <summary>Throws a one-line <see cref="CnnUserException"/> for the first option that cannot work.</summary>
    public void Validate()
    {
        Presets.Create(Model);
        Positive("--epochs", Epochs);
        Positive("--batch-size", BatchSize);
        Positive("--micro-batch", MicroBatch);
        if (MicroBatch > BatchSize)
        {
            throw new CnnUserException($"--micro-batch {MicroBatch} is larger than --batch-size {BatchSize}: a leaf cannot hold more samples than the batch");
        }
        if (!(LearningRate > 0f) || !float.IsFinite(LearningRate))
        {
            throw new CnnUserException($"--lr must be a positive number, got {LearningRate.ToString(CultureInfo.InvariantCulture)}");
        }
        if (!(ValidationSplit >= 0 && ValidationSplit < 1))
        {
            throw new CnnUserException($"--validation-split must be in [0, 1), got {ValidationSplit.ToString(CultureInfo.InvariantCulture)}");
        }
        Positive("--threads", Threads);
        if (MaxSteps is long max) Positive("--max-steps", max);
        if (CheckpointEvery is int every) Positive("--checkpoint-every", every);
        if (string.IsNullOrWhiteSpace(DataDirectory)) throw new CnnUserException("--data must name a directory");
        if (string.IsNullOrWhiteSpace(OutDirectory)) throw new CnnUserException("--out must name a directory");
    }

    /// <summary>
    /// These settings continued from a checkpoint: options in <paramref name="givenOptions"/> must agree with it,
    /// the others take its values (see file header).
    /// </summary>
    public TrainSettings ResumedFrom(string checkpointPath, string modelName, CheckpointInfo info, IReadOnlySet<string> givenOptions)
    {
        T Pick<T>(string option, T mine, T theirs)
        {
            if (!givenOptions.Contains(option) || EqualityComparer<T>.Default.Equals(mine, theirs)) return theirs;
            throw new CnnUserException(string.Create(CultureInfo.InvariantCulture,
                $"{option} {mine} differs from the {theirs} of {checkpointPath}: leave it out to continue with the checkpoint's value, or train into a new --out"));
        }

        return this with
        {
            Model = Pick("--model", Model, modelName),
            BatchSize = Pick("--batch-size", BatchSize, info.BatchSize),
            MicroBatch = Pick("--micro-batch", MicroBatch, info.MicroBatch),
            LearningRate = Pick("--lr", LearningRate, info.LearningRate),
            Seed = Pick("--seed", Seed, info.Seed),
            ValidationSplit = Pick("--validation-split", ValidationSplit, info.ValidationSplit),
        };
    }

    private static void Positive(string option, long value)
    {
        if (value <= 0) throw new CnnUserException($"{option} must be at least 1, got {value.ToString(CultureInfo.InvariantCulture)}");
    }
}
