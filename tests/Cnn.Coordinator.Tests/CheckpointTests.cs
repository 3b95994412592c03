// Engine/IO/Checkpoint: what goes in comes back bit for bit, and a file that does not fit the model or has been
// damaged is refused with a one-line user error naming the file. (These live here because the engine's own test
// project belongs to another workstream; they use only the engine's public API.)
using System.Buffers.Binary;
using System.Security.Cryptography;
using Cnn.Engine;
using Cnn.Engine.IO;
using Cnn.Engine.Models;
using Cnn.Engine.Training;
using Xunit;
using static Cnn.Coordinator.Tests.TestSupport;

namespace Cnn.Coordinator.Tests;

public sealed class CheckpointTests : IDisposable
{
    private readonly Scratch _scratch = new();

    private static (Model Model, float[] Weights, Adam Adam, CheckpointInfo Info) Sample(string modelName = "seed-cnn")
    {
        Model model = Presets.Create(modelName);
        float[] weights = model.Parameters.Initialize(7);
        var adam = new Adam(model.Parameters, 0.0025f) { Iterations = 1234 };
        var rng = new Rng(99);
        foreach (ParameterSlice slice in model.Parameters.Slices.Where(s => s.Trainable))
        {
            Span<float> m = slice.Of(adam.M), v = slice.Of(adam.V);
            for (int i = 0; i < m.Length; i++)
            {
                m[i] = rng.NextFloat() - 0.5f;
                v[i] = rng.NextFloat() * 1e-3f;
            }
        }
        var info = new CheckpointInfo(Step: 1234, Epoch: 1, StepInEpoch: 484, Seed: 42, LearningRate: 0.0025f, BatchSize: 64,
            MicroBatch: 8, ValidationSplit: 0.2, ConfigJson: """{"model":"seed-cnn","epochs":5}""",
            Extra: new Dictionary<string, string> { ["run/note"] = "kept" });
        return (model, weights, adam, info);
    }

    private string NewFile()
    {
        string dir = _scratch.Path("ckpt");
        Directory.CreateDirectory(dir);
        return Path.Combine(dir, "checkpoint.safetensors");
    }

    [Fact]
    public void A_checkpoint_round_trips_weights_moments_and_metadata_bit_for_bit()
    {
        var (model, weights, adam, info) = Sample();
        string path = NewFile();

        Checkpoint.Save(path, model, weights, adam, info);
        LoadedCheckpoint loaded = Checkpoint.Load(path, model);

        Assert.Equal(weights, loaded.Weights);
        Assert.Equal(adam.M, loaded.M);
        Assert.Equal(adam.V, loaded.V);
        Assert.Equal(1234, loaded.AdamIterations);
        Assert.Equal(Checkpoint.WeightsSha256(weights), loaded.WeightsSha256);
        Assert.Equal(info with { Extra = null }, loaded.Info with { Extra = null });
        Assert.Equal("kept", loaded.Info.Extra!["run/note"]);

        var restored = new Adam(model.Parameters, 0.0025f);
        loaded.RestoreInto(restored);
        Assert.Equal(adam.M, restored.M);
        Assert.Equal(1234, restored.Iterations);
    }

    [Fact]
    public void A_checkpoint_stores_weights_under_layout_names_and_moments_of_trainable_slices()
    {
        var (model, weights, adam, info) = Sample("seed-resnet");
        string path = NewFile();

        Checkpoint.Save(path, model, weights, adam, info);
        var (tensors, metadata) = SafeTensors.Read(path);

        var names = tensors.Select(t => t.Name).ToHashSet();
        Assert.Contains("conv2d/kernel", names);
        Assert.Equal([3, 3, 1, 32], tensors.Single(t => t.Name == "conv2d/kernel").Shape);
        Assert.Contains("batch_normalization/moving_mean", names);
        Assert.Contains("optimizer/m/batch_normalization/gamma", names);
        Assert.DoesNotContain("optimizer/m/batch_normalization/moving_mean", names);
        Assert.Equal(Checkpoint.FormatVersion, metadata["format"]);
        Assert.Equal("seed-resnet", metadata["model"]);
        Assert.Equal("484", metadata["stepInEpoch"]);
        Assert.Equal(Checkpoint.WeightsSha256(weights), metadata["weightsSha256"]);
    }

    [Fact]
    public void Without_a_model_the_file_picks_the_preset()
    {
        var (model, weights, adam, info) = Sample("seed-resnet");
        string path = NewFile();
        Checkpoint.Save(path, model, weights, adam, info);

        LoadedCheckpoint loaded = Checkpoint.Load(path, expectedModel: null);

        Assert.Equal("seed-resnet", loaded.Model.Name);
        Assert.Equal(weights, loaded.Weights);
    }

    [Fact]
    public void A_checkpoint_of_another_model_is_refused_naming_both()
    {
        var (model, weights, adam, info) = Sample("seed-cnn");
        string path = NewFile();
        Checkpoint.Save(path, model, weights, adam, info);

        var e = Assert.Throws<CnnUserException>(() => Checkpoint.Load(path, Presets.Create("seed-resnet")));

        Assert.StartsWith(path, e.Message);
        Assert.Contains("'seed-cnn', not 'seed-resnet'", e.Message);
    }

    [Fact]
    public void A_flipped_bit_in_the_weights_is_caught_by_the_hash()
    {
        var (model, weights, adam, info) = Sample();
        string path = NewFile();
        Checkpoint.Save(path, model, weights, adam, info);
        byte[] bytes = File.ReadAllBytes(path);
        long headerLength = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        bytes[8 + headerLength + 100] ^= 0x01; // inside conv2d/kernel
        File.WriteAllBytes(path, bytes);

        var e = Assert.Throws<CnnUserException>(() => Checkpoint.Load(path, model));

        Assert.Contains("damaged", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void A_truncated_checkpoint_is_refused_naming_the_file()
    {
        var (model, weights, adam, info) = Sample();
        string path = NewFile();
        Checkpoint.Save(path, model, weights, adam, info);
        byte[] bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);

        var e = Assert.Throws<CnnUserException>(() => Checkpoint.Load(path, model));

        Assert.StartsWith(path, e.Message);
    }

    [Fact]
    public void A_missing_tensor_and_a_wrong_shape_are_named()
    {
        var (model, weights, adam, info) = Sample();
        string path = NewFile();
        Checkpoint.Save(path, model, weights, adam, info);
        var (tensors, metadata) = SafeTensors.Read(path);

        SafeTensors.Write(path, tensors.Where(t => t.Name != "optimizer/v/dense/bias").ToList(), metadata);
        var missing = Assert.Throws<CnnUserException>(() => Checkpoint.Load(path, model));
        Assert.Contains("missing tensor 'optimizer/v/dense/bias'", missing.Message);

        SafeTensors.Write(path, tensors.Select(t => t.Name == "dense/bias" ? t with { Shape = [8, 8] } : t).ToList(), metadata);
        var shape = Assert.Throws<CnnUserException>(() => Checkpoint.Load(path, model));
        Assert.Contains("'dense/bias' has shape (8, 8) but the model needs (64)", shape.Message);
    }

    [Fact]
    public void The_weights_hash_is_sha256_of_little_endian_float32_in_parameter_order()
    {
        float[] weights = [1f, -2.5f, 0f];
        var bytes = new byte[12];
        for (int i = 0; i < weights.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), weights[i]);

        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(bytes)), Checkpoint.WeightsSha256(weights));
    }

    public void Dispose() => _scratch.Dispose();
}
