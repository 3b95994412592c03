// What `cnn evaluate`, `cnn predict` and `cnn visualize` share: their common options (--checkpoint, --model,
// --data, --png) and the checks on what those name, all made before anything is computed or written, so a bad
// input costs one line on stderr and leaves no file behind:
//   - the checkpoint loads (Engine/IO/Checkpoint refuses a missing, damaged or foreign file, naming it), is of
//     the --model given, and its model takes grey images;
//   - the test images of --data have the model's input size;
//   - an --index lies inside the test set, and the message gives the valid range.
//
// Deliberately not here: fetching MNIST (these commands look at a model; `cnn data fetch` downloads, and the
// error says so), and anything about the training or validation split.
using System.CommandLine;
using Cnn.Coordinator.Runs;
using Cnn.Engine;
using Cnn.Engine.Data;
using Cnn.Engine.IO;
using Cnn.Engine.Models;

namespace Cnn.Coordinator.Commands;

/// <summary>Options and input checks shared by the commands that look at a trained model (see file header).</summary>
public static class CheckpointInputs
{
    /// <summary>The required --checkpoint option.</summary>
    public static Option<string> CheckpointOption() => new("--checkpoint")
    {
        Description = "Checkpoint file of `cnn train` (checkpoint.safetensors in its --out directory)",
        Required = true,
    };

    /// <summary>The --model option: the model the checkpoint must be of (any built-in model when absent).</summary>
    public static Option<string?> ModelOption() => new("--model")
    {
        Description = $"Refuse a checkpoint of any other model ({string.Join(", ", Presets.Names)}; default: the model the checkpoint names)",
    };

    /// <summary>The --data option: the directory whose test images are used.</summary>
    public static Option<string> DataOption() => new("--data")
    {
        Description = "Directory of the MNIST IDX files; only the test images (t10k) are read",
        DefaultValueFactory = _ => MnistFetcher.DefaultCacheDirectory,
    };

    /// <summary>The --png option, required or not.</summary>
    public static Option<string?> PngOption(string description, bool required) => new("--png")
    {
        Description = description,
        Required = required,
    };

    /// <summary>
    /// Loads the checkpoint at <paramref name="path"/>; with <paramref name="expectedModel"/> it must be of that model.
    /// </summary>
    /// <exception cref="CnnUserException">The file is missing or damaged, of another model, or of a model that does not take grey images.</exception>
    public static LoadedCheckpoint LoadCheckpoint(string path, string? expectedModel)
    {
        Model? expected = expectedModel is null ? null : Presets.Create(expectedModel);
        LoadedCheckpoint checkpoint = Checkpoint.Load(path, expected);
        TensorShape input = checkpoint.Model.InputShape;
        if (input.IsFlat || input.Channels != 1)
        {
            throw new CnnUserException($"{path}: model '{checkpoint.Model.Name}' takes {input}, but these commands work on grey images (height, width, 1)");
        }
        return checkpoint;
    }

    /// <summary>The test images of <paramref name="directory"/>, checked against <paramref name="model"/>'s input.</summary>
    /// <exception cref="CnnUserException">The files are missing or damaged, empty, or of another image size.</exception>
    public static MnistDataset LoadTestSet(string directory, Model model)
    {
        MnistDataset test = MnistDataset.LoadTestSplit(directory);
        TrainingData.CheckShape(directory, "test", test, model);
        if (test.Count == 0) throw new CnnUserException($"{directory}: the test file holds no images");
        return test;
    }

    /// <summary>Throws unless <paramref name="index"/> is an image of <paramref name="test"/>; the message gives the range.</summary>
    /// <exception cref="CnnUserException">The index is outside the test set.</exception>
    public static void CheckIndex(int index, MnistDataset test, string directory)
    {
        if (index < 0 || index >= test.Count)
        {
            throw new CnnUserException($"--index {index} is out of range: the test set in {directory} has {test.Count:N0} images, so the index is 0 to {test.Count - 1}");
        }
    }

    /// <summary>Test image <paramref name="index"/> as the model sees it: (height, width) in [0, 1].</summary>
    public static float[] Image(MnistDataset test, int index)
    {
        var pixels = new float[test.Rows * test.Columns];
        var label = new int[1];
        new MnistSource(test).Gather([index], pixels, label);
        return pixels;
    }
}
