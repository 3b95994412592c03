// Helpers for the tests of the commands that look at a trained model (evaluate, predict, visualize, plot):
// two short real training runs on the synthetic IDX data, shared by those test classes through an xunit
// collection fixture so it is trained once; PNG checks that read the file as a viewer would (signature, IHDR
// size, decoded pixels); and PNG writers for --image inputs.
using System.Buffers.Binary;
using System.Globalization;
using System.Text.Json;
using Cnn.Engine.Data;
using SkiaSharp;
using Xunit;
using static Cnn.Coordinator.Tests.TestSupport;

namespace Cnn.Coordinator.Tests;

/// <summary>Short `cnn train --no-cluster --max-steps` runs on synthetic data, made once for the picture tests.</summary>
public sealed class TrainedRun : IDisposable
{
    private readonly Scratch _scratch = new();

    /// <summary>Trains the runs.</summary>
    public TrainedRun()
    {
        Data = WriteSyntheticMnist(_scratch.Path("data"));
        Directory = Train("run", epochs: 2, steps: 6);
        ConfidentCheckpoint = Path.Combine(Train("confident", epochs: 8, steps: 30), "checkpoint.safetensors");
        (_, Test) = MnistDataset.LoadDirectory(Data);
    }

    /// <summary>The synthetic data directory (256 training and 64 test images).</summary>
    public string Data { get; }

    /// <summary>
    /// The run directory: 6 steps, so the test accuracy is well above chance (about 0.8) and below 1, and the
    /// history has a whole epoch and a part of the second.
    /// </summary>
    public string Directory { get; }

    /// <summary>The run's newest checkpoint.</summary>
    public string Checkpoint => Path.Combine(Directory, "checkpoint.safetensors");

    /// <summary>
    /// The checkpoint of a 30-step run that classifies every synthetic test image with a wide margin, for the tests
    /// where a slightly different input (a converted PNG) must get the same class.
    /// </summary>
    public string ConfidentCheckpoint { get; }

    /// <summary>The test split of <see cref="Data"/>.</summary>
    public MnistDataset Test { get; }

    /// <summary>The run's run.json.</summary>
    public JsonElement RunJson => JsonDocument.Parse(File.ReadAllText(Path.Combine(Directory, "run.json"))).RootElement;

    /// <summary>A fresh path for an output file in an existing directory.</summary>
    public string NewFile(string name)
    {
        string dir = _scratch.Path("out");
        System.IO.Directory.CreateDirectory(dir);
        return Path.Combine(dir, name);
    }

    /// <inheritdoc/>
    public void Dispose() => _scratch.Dispose();

    private string Train(string name, int epochs, int steps)
    {
        string directory = _scratch.Path(name);
        CliResult train = RunCnn("train", "--no-cluster", "--data", Data, "--out", directory, "--epochs", epochs.ToString(CultureInfo.InvariantCulture),
            "--batch-size", "32", "--micro-batch", "8", "--validation-split", "0.5", "--max-steps", steps.ToString(CultureInfo.InvariantCulture), "--threads", "2");
        if (train.ExitCode != 0) throw new InvalidOperationException($"the fixture's training run failed: {train.Error}");
        return directory;
    }
}

/// <summary>The test classes that share one <see cref="TrainedRun"/>.</summary>
[CollectionDefinition(Name)]
public sealed class TrainedRunCollection : ICollectionFixture<TrainedRun>
{
    /// <summary>The collection's name.</summary>
    public const string Name = "trained run";
}

/// <summary>Checks and makes PNG files.</summary>
public static class Png
{
    private static readonly byte[] Signature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>
    /// Asserts that <paramref name="path"/> is a PNG of <paramref name="width"/> x <paramref name="height"/> (signature
    /// and IHDR) that decodes to a picture of many colours, and that no temp file was left beside it.
    /// </summary>
    public static void AssertPicture(string path, int width, int height)
    {
        Assert.True(File.Exists(path), $"{path} was not written");
        byte[] bytes = File.ReadAllBytes(path);
        Assert.Equal(Signature, bytes[..8]);
        Assert.Equal("IHDR", System.Text.Encoding.ASCII.GetString(bytes, 12, 4));
        Assert.Equal(width, BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(16)));
        Assert.Equal(height, BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(20)));

        using SKBitmap bitmap = SKBitmap.Decode(bytes);
        Assert.NotNull(bitmap);
        var colours = new HashSet<uint>();
        for (int y = 0; y < bitmap.Height; y += 2)
            for (int x = 0; x < bitmap.Width; x += 2)
                colours.Add((uint)bitmap.GetPixel(x, y));
        Assert.True(colours.Count >= 8, $"{path} has only {colours.Count} colours");
        Assert.Empty(System.IO.Directory.GetFiles(Path.GetDirectoryName(path)!, "*.tmp"));
    }

    /// <summary>Writes pixels (height, width) of RGBA to a PNG file.</summary>
    public static void Write(string path, int width, int height, Func<int, int, SKColor> pixel)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                bitmap.SetPixel(x, y, pixel(x, y));
        using SKData data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, data.ToArray());
    }

    /// <summary>Writes test image <paramref name="index"/> of <paramref name="test"/> as a grey PNG of its own size.</summary>
    public static void WriteDigit(string path, MnistDataset test, int index)
    {
        int size = test.Rows * test.Columns;
        Write(path, test.Columns, test.Rows, (x, y) =>
        {
            byte v = test.Images[index * size + y * test.Columns + x];
            return new SKColor(v, v, v);
        });
    }
}
