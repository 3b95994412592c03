// Checkpoint: everything a training run needs to continue exactly where it stopped, in one safetensors file
// that Python can open too.
//
// Tensors:   "<slice name>"             every weight slice under its layout name and shape (conv2d/kernel ...)
//            "optimizer/m/<slice name>" Adam's first moment, trainable slices only
//            "optimizer/v/<slice name>" Adam's second moment, trainable slices only
// Metadata:  format, model, step (optimizer steps done), epoch (0-based epoch in progress), stepInEpoch (steps of
//            that epoch done), seed, adamIterations, lr, batchSize, microBatch, validationSplit, weightsSha256,
//            config (the caller's run configuration as JSON), plus any extra keys the caller adds.
// Non-trainable slices (BatchNormalization moving statistics) are weights like the others; their moments are
// always zero, so they are not stored.
//
// Loading trusts the file no more than SafeTensors does: it checks the format version, the model, that every
// tensor is present with its layout shape and nothing else is, and that the weights still hash to the stored
// weightsSha256. Safetensors has no checksum of its own, and the hash is what turns a flipped bit in the data
// region into an error instead of a silently different run.
//
// Deliberately not here: where checkpoints live and how they rotate (the run's caller decides), and the data
// set or its shuffle state (the schedule is rebuilt from seed and epoch, see Training/EpochSchedule).
using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Cnn.Engine.Models;
using Cnn.Engine.Training;

namespace Cnn.Engine.IO;

/// <summary>
/// Where a run stands and how it was configured, as stored in a checkpoint's metadata.
/// </summary>
/// <param name="Step">Optimizer steps done since the start of the run.</param>
/// <param name="Epoch">The 0-based epoch in progress (equal to the number of finished epochs when <paramref name="StepInEpoch"/> is 0).</param>
/// <param name="StepInEpoch">Steps of <paramref name="Epoch"/> already done.</param>
/// <param name="Seed">The run seed (initialisation, shuffles, dropout).</param>
/// <param name="LearningRate">Adam's step size.</param>
/// <param name="BatchSize">Samples per optimizer step.</param>
/// <param name="MicroBatch">Samples per leaf.</param>
/// <param name="ValidationSplit">Fraction of the training file held out for validation.</param>
/// <param name="ConfigJson">The caller's full run configuration, as a JSON document.</param>
/// <param name="Extra">More metadata the caller wants back on load (keys must not clash with the fixed ones).</param>
public sealed record CheckpointInfo(
    long Step,
    int Epoch,
    int StepInEpoch,
    ulong Seed,
    float LearningRate,
    int BatchSize,
    int MicroBatch,
    double ValidationSplit,
    string ConfigJson,
    IReadOnlyDictionary<string, string>? Extra = null);

/// <summary>A checkpoint read back: the model it belongs to, its weights and optimizer state, and its metadata.</summary>
/// <param name="Model">The model (the one given to <see cref="Checkpoint.Load"/>, or the preset named in the file).</param>
/// <param name="Weights">Weights in the model's flat layout.</param>
/// <param name="M">Adam's first moments in the flat layout (zero for non-trainable slices).</param>
/// <param name="V">Adam's second moments in the flat layout (zero for non-trainable slices).</param>
/// <param name="AdamIterations">Adam's step count t.</param>
/// <param name="Info">Position and configuration.</param>
/// <param name="WeightsSha256">SHA-256 of the weights, checked against the data on load.</param>
public sealed record LoadedCheckpoint(Model Model, float[] Weights, float[] M, float[] V, long AdamIterations, CheckpointInfo Info, string WeightsSha256)
{
    /// <summary>Copies the stored moments and step count into <paramref name="adam"/>.</summary>
    public void RestoreInto(Adam adam)
    {
        ArgumentNullException.ThrowIfNull(adam);
        M.CopyTo(adam.M, 0);
        V.CopyTo(adam.V, 0);
        adam.Iterations = AdamIterations;
    }
}

/// <summary>Saves and loads training checkpoints (see file header).</summary>
public static class Checkpoint
{
    /// <summary>The value of the "format" metadata key this version writes and reads.</summary>
    public const string FormatVersion = "cnn-checkpoint/1";

    private const string MomentPrefix = "optimizer/m/";
    private const string VariancePrefix = "optimizer/v/";

    private static readonly string[] FixedKeys =
    [
        "format", "model", "step", "epoch", "stepInEpoch", "seed", "adamIterations", "lr", "batchSize",
        "microBatch", "validationSplit", "weightsSha256", "config",
    ];

    /// <summary>
    /// Writes a checkpoint of <paramref name="weights"/> and <paramref name="adam"/>'s state to <paramref name="path"/>,
    /// atomically (readers see the previous file or the complete new one).
    /// </summary>
    /// <exception cref="ArgumentException">The buffers do not fit the model's layout, or an extra key clashes with a fixed one.</exception>
    /// <exception cref="CnnUserException">The directory cannot be written.</exception>
    public static void Save(string path, Model model, float[] weights, Adam adam, CheckpointInfo info)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(adam);
        ArgumentNullException.ThrowIfNull(info);
        ParameterLayout layout = model.Parameters;
        if (weights.Length != layout.Count || adam.M.Length != layout.Count || adam.V.Length != layout.Count)
        {
            throw new ArgumentException($"{model.Name} has {layout.Count} parameters but the weights have {weights.Length} and the moments {adam.M.Length} and {adam.V.Length}");
        }

        var tensors = new List<SafeTensor>(layout.Slices.Count * 3);
        foreach (ParameterSlice slice in layout.Slices) tensors.Add(new SafeTensor(slice.Name, slice.Shape, slice.Of(weights).ToArray()));
        foreach (ParameterSlice slice in layout.Slices.Where(s => s.Trainable)) tensors.Add(new SafeTensor(MomentPrefix + slice.Name, slice.Shape, slice.Of(adam.M).ToArray()));
        foreach (ParameterSlice slice in layout.Slices.Where(s => s.Trainable)) tensors.Add(new SafeTensor(VariancePrefix + slice.Name, slice.Shape, slice.Of(adam.V).ToArray()));

        var metadata = new Dictionary<string, string>
        {
            ["format"] = FormatVersion,
            ["model"] = model.Name,
            ["step"] = Invariant(info.Step),
            ["epoch"] = Invariant(info.Epoch),
            ["stepInEpoch"] = Invariant(info.StepInEpoch),
            ["seed"] = Invariant(info.Seed),
            ["adamIterations"] = Invariant(adam.Iterations),
            ["lr"] = info.LearningRate.ToString("R", CultureInfo.InvariantCulture),
            ["batchSize"] = Invariant(info.BatchSize),
            ["microBatch"] = Invariant(info.MicroBatch),
            ["validationSplit"] = info.ValidationSplit.ToString("R", CultureInfo.InvariantCulture),
            ["weightsSha256"] = WeightsSha256(weights),
            ["config"] = info.ConfigJson,
        };
        foreach ((string key, string value) in info.Extra ?? new Dictionary<string, string>())
        {
            if (FixedKeys.Contains(key)) throw new ArgumentException($"extra metadata key '{key}' clashes with a checkpoint field", nameof(info));
            metadata[key] = value;
        }
        SafeTensors.Write(path, tensors, metadata);
    }

    /// <summary>
    /// Reads the checkpoint at <paramref name="path"/>. With <paramref name="expectedModel"/> the file must belong to
    /// that model; without it, the model named in the file is built from <see cref="Presets"/>.
    /// </summary>
    /// <exception cref="CnnUserException">The file is missing or damaged, belongs to another model, lacks a tensor,
    /// has a tensor of the wrong shape, or its weights do not match their recorded SHA-256.</exception>
    public static LoadedCheckpoint Load(string path, Model? expectedModel)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        (IReadOnlyList<SafeTensor> tensors, IReadOnlyDictionary<string, string> metadata) = SafeTensors.Read(path);

        string format = Required(path, metadata, "format");
        if (format != FormatVersion)
        {
            throw Problem(path, $"checkpoint format '{format}' is not the '{FormatVersion}' this version reads");
        }
        string modelName = Required(path, metadata, "model");
        Model model;
        if (expectedModel is null)
        {
            if (!Presets.Names.Contains(modelName)) throw Problem(path, $"the checkpoint is of model '{modelName}', which is not a built-in model ({string.Join(", ", Presets.Names)})");
            model = Presets.Create(modelName);
        }
        else
        {
            if (modelName != expectedModel.Name) throw Problem(path, $"the checkpoint is of model '{modelName}', not '{expectedModel.Name}'");
            model = expectedModel;
        }

        ParameterLayout layout = model.Parameters;
        var byName = new Dictionary<string, SafeTensor>(tensors.Count);
        foreach (SafeTensor tensor in tensors) byName[tensor.Name] = tensor;
        var weights = new float[layout.Count];
        var m = new float[layout.Count];
        var v = new float[layout.Count];
        var expected = new HashSet<string>();
        foreach (ParameterSlice slice in layout.Slices)
        {
            Take(path, byName, slice.Name, slice, weights, expected);
            if (!slice.Trainable) continue;
            Take(path, byName, MomentPrefix + slice.Name, slice, m, expected);
            Take(path, byName, VariancePrefix + slice.Name, slice, v, expected);
        }
        string? unexpected = byName.Keys.FirstOrDefault(name => !expected.Contains(name));
        if (unexpected is not null) throw Problem(path, $"unexpected tensor '{unexpected}' for model '{model.Name}': is the checkpoint from another version of the model?");

        string storedHash = Required(path, metadata, "weightsSha256");
        string actualHash = WeightsSha256(weights);
        if (storedHash != actualHash)
        {
            throw Problem(path, $"damaged: the weights hash to {actualHash[..12]}... but the checkpoint recorded {storedHash[..Math.Min(12, storedHash.Length)]}...");
        }

        var info = new CheckpointInfo(
            Step: Number(path, metadata, "step", long.Parse),
            Epoch: Number(path, metadata, "epoch", int.Parse),
            StepInEpoch: Number(path, metadata, "stepInEpoch", int.Parse),
            Seed: Number(path, metadata, "seed", ulong.Parse),
            LearningRate: Number(path, metadata, "lr", float.Parse),
            BatchSize: Number(path, metadata, "batchSize", int.Parse),
            MicroBatch: Number(path, metadata, "microBatch", int.Parse),
            ValidationSplit: Number(path, metadata, "validationSplit", double.Parse),
            ConfigJson: Required(path, metadata, "config"),
            Extra: metadata.Where(kv => !FixedKeys.Contains(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value));
        if (info.Step < 0 || info.Epoch < 0 || info.StepInEpoch < 0 || info.BatchSize <= 0 || info.MicroBatch <= 0)
        {
            throw Problem(path, $"damaged: impossible position or sizes (step {info.Step}, epoch {info.Epoch}, stepInEpoch {info.StepInEpoch}, batchSize {info.BatchSize}, microBatch {info.MicroBatch})");
        }
        long iterations = Number(path, metadata, "adamIterations", long.Parse);
        return new LoadedCheckpoint(model, weights, m, v, iterations, info, actualHash);
    }

    /// <summary>
    /// SHA-256 (lowercase hex) of all weights as little-endian float32, in parameter order: the fingerprint runs,
    /// checkpoints and cluster nodes compare.
    /// </summary>
    public static string WeightsSha256(float[] weights)
    {
        ArgumentNullException.ThrowIfNull(weights);
        if (BitConverter.IsLittleEndian) return Convert.ToHexStringLower(SHA256.HashData(MemoryMarshal.AsBytes(weights.AsSpan())));
        var bytes = new byte[weights.Length * sizeof(float)];
        for (int i = 0; i < weights.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * sizeof(float)), weights[i]);
        return Convert.ToHexStringLower(SHA256.HashData(bytes));
    }

    private static void Take(string path, Dictionary<string, SafeTensor> byName, string name, ParameterSlice slice, float[] destination, HashSet<string> expected)
    {
        if (!byName.TryGetValue(name, out SafeTensor? tensor)) throw Problem(path, $"missing tensor '{name}'");
        if (!tensor.Shape.SequenceEqual(slice.Shape))
        {
            throw Problem(path, $"tensor '{name}' has shape ({string.Join(", ", tensor.Shape)}) but the model needs ({string.Join(", ", slice.Shape)})");
        }
        tensor.Data.CopyTo(destination, slice.Offset);
        expected.Add(name);
    }

    private static string Required(string path, IReadOnlyDictionary<string, string> metadata, string key) =>
        metadata.TryGetValue(key, out string? value) ? value : throw Problem(path, $"metadata '{key}' is missing: not a checkpoint of this project, or damaged");

    private static T Number<T>(string path, IReadOnlyDictionary<string, string> metadata, string key, Func<string, IFormatProvider, T> parse)
    {
        string text = Required(path, metadata, key);
        try
        {
            return parse(text, CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is FormatException or OverflowException)
        {
            throw Problem(path, $"metadata '{key}' is '{text}', not a number");
        }
    }

    private static string Invariant<T>(T value) where T : IFormattable => value.ToString(null, CultureInfo.InvariantCulture);

    private static CnnUserException Problem(string path, string problem) => new($"{path}: {problem}");
}
