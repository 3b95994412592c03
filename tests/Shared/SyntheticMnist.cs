// A tiny deterministic MNIST-like dataset written as real IDX files, shared (as a linked file) by the test projects
// that run `cnn` or the worker host on data without needing MNIST or a network. Each image is a bright bar whose
// row depends on its label, plus noise from a fixed LCG: learnable, and the same bytes for the same seed.
using System.Buffers.Binary;

namespace Cnn.Tests.Shared;

/// <summary>Writes synthetic IDX datasets (see file header).</summary>
public static class SyntheticMnist
{
    /// <summary>Writes the four standard IDX files into <paramref name="dir"/> (created) and returns it.</summary>
    public static string Write(string dir, int train, int test, int rows = 28, int columns = 28, uint seed = 12345)
    {
        Directory.CreateDirectory(dir);
        uint state = seed;
        WriteSplit(Path.Combine(dir, "train-images-idx3-ubyte"), Path.Combine(dir, "train-labels-idx1-ubyte"), train, rows, columns, ref state);
        WriteSplit(Path.Combine(dir, "t10k-images-idx3-ubyte"), Path.Combine(dir, "t10k-labels-idx1-ubyte"), test, rows, columns, ref state);
        return dir;
    }

    private static void WriteSplit(string imagesPath, string labelsPath, int count, int rows, int columns, ref uint state)
    {
        var images = new byte[16 + count * rows * columns];
        var labels = new byte[8 + count];
        BinaryPrimitives.WriteInt32BigEndian(images, 0x0803);
        BinaryPrimitives.WriteInt32BigEndian(images.AsSpan(4), count);
        BinaryPrimitives.WriteInt32BigEndian(images.AsSpan(8), rows);
        BinaryPrimitives.WriteInt32BigEndian(images.AsSpan(12), columns);
        BinaryPrimitives.WriteInt32BigEndian(labels, 0x0801);
        BinaryPrimitives.WriteInt32BigEndian(labels.AsSpan(4), count);
        for (int i = 0; i < count; i++)
        {
            state = state * 1664525 + 1013904223;
            int label = (int)(state >> 28) % 10;
            labels[8 + i] = (byte)label;
            int barRow = 2 + label * (rows - 4) / 10;
            for (int y = 0; y < rows; y++)
                for (int x = 0; x < columns; x++)
                {
                    state = state * 1664525 + 1013904223;
                    int noise = (int)(state >> 26); // 0..63
                    images[16 + (i * rows + y) * columns + x] = (byte)(Math.Abs(y - barRow) <= 1 ? 192 + noise : noise);
                }
        }
        File.WriteAllBytes(imagesPath, images);
        File.WriteAllBytes(labelsPath, labels);
    }
}
