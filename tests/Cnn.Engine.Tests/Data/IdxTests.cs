// Tests for Idx: good raw and gzip files, then one test per way a user's file can be wrong, each
// checking that the error is a one-line CnnUserException naming the file. IdxBuilder, at the bottom,
// makes the small IDX files these tests and MnistDatasetTests write into a temp directory.
using System.IO.Compression;
using Cnn.Engine.Data;
using Xunit;

namespace Cnn.Engine.Tests.Data;

public sealed class IdxTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("cnn-idx-tests-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [Fact]
    public void Idx_reads_a_raw_three_dimensional_file()
    {
        byte[] data = IdxBuilder.Sequence(3 * 4 * 5);
        string path = IdxBuilder.Write(dir, "images", IdxBuilder.Bytes([3, 4, 5], data));

        IdxArray array = Idx.Read(path);

        Assert.Equal(path, array.Path);
        Assert.Equal([3, 4, 5], array.Dimensions);
        Assert.Equal(data, array.Data);
    }

    [Fact]
    public void Idx_reads_a_one_dimensional_file()
    {
        string path = IdxBuilder.Write(dir, "labels", IdxBuilder.Bytes([4], [7, 0, 9, 1]));

        IdxArray array = Idx.Read(path);

        Assert.Equal([4], array.Dimensions);
        Assert.Equal(new byte[] { 7, 0, 9, 1 }, array.Data);
    }

    [Fact]
    public void Idx_reads_a_gz_file()
    {
        byte[] data = IdxBuilder.Sequence(2 * 3 * 3);
        string path = IdxBuilder.Write(dir, "images.gz", IdxBuilder.Gzip(IdxBuilder.Bytes([2, 3, 3], data)));

        IdxArray array = Idx.Read(path);

        Assert.Equal([2, 3, 3], array.Dimensions);
        Assert.Equal(data, array.Data);
    }

    [Fact]
    public void Idx_recognises_gzip_by_its_magic_bytes_whatever_the_file_is_called()
    {
        byte[] data = IdxBuilder.Sequence(6);
        string path = IdxBuilder.Write(dir, "train-labels-idx1-ubyte", IdxBuilder.Gzip(IdxBuilder.Bytes([6], data)));

        Assert.Equal(data, Idx.Read(path).Data);
    }

    [Fact]
    public void Idx_reads_a_raw_file_even_if_it_is_called_gz()
    {
        byte[] data = IdxBuilder.Sequence(6);
        string path = IdxBuilder.Write(dir, "labels.gz", IdxBuilder.Bytes([6], data));

        Assert.Equal(data, Idx.Read(path).Data);
    }

    [Fact]
    public void Idx_rejects_a_missing_file_and_names_it()
    {
        string path = Path.Combine(dir, "train-images-idx3-ubyte");

        string message = IdxBuilder.Rejects(path);

        Assert.Equal($"{path}: file not found", message);
    }

    [Fact]
    public void Idx_rejects_a_directory_given_as_a_file()
    {
        Assert.Contains("is a directory", IdxBuilder.Rejects(dir));
    }

    [Fact]
    public void Idx_rejects_a_file_that_does_not_start_with_two_zero_bytes()
    {
        byte[] bytes = IdxBuilder.Bytes([4], [1, 2, 3, 4]);
        bytes[0] = 0x50;
        bytes[1] = 0x4b;
        string path = IdxBuilder.Write(dir, "zip", bytes);

        string message = IdxBuilder.Rejects(path);

        Assert.Equal($"{path}: not an IDX file: expected the magic number to start with bytes 00 00 but found 50 4b", message);
    }

    [Fact]
    public void Idx_rejects_a_type_code_other_than_unsigned_byte_and_names_the_code()
    {
        string path = IdxBuilder.Write(dir, "floats", IdxBuilder.Bytes([2], new byte[8], type: 0x0d));

        string message = IdxBuilder.Rejects(path);

        Assert.Equal($"{path}: unsupported IDX type code 0x0d (float32): only 0x08 (unsigned byte) is supported", message);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(5)]
    public void Idx_rejects_a_number_of_dimensions_outside_one_to_four(int rank)
    {
        byte[] bytes = [0, 0, 0x08, (byte)rank, .. new byte[4 * rank], 1];
        string path = IdxBuilder.Write(dir, "rank", bytes);

        string message = IdxBuilder.Rejects(path);

        Assert.Equal($"{path}: expected 1 to 4 dimensions but the header says {rank}", message);
    }

    [Fact]
    public void Idx_rejects_a_dimension_of_zero()
    {
        string path = IdxBuilder.Write(dir, "empty", IdxBuilder.Bytes([3, 0, 2], []));

        string message = IdxBuilder.Rejects(path);

        Assert.Equal($"{path}: dimension 2 of 3 is 0, expected a size between 1 and 2147483647", message);
    }

    [Fact]
    public void Idx_rejects_a_header_cut_short()
    {
        byte[] bytes = IdxBuilder.Bytes([3, 4, 5], IdxBuilder.Sequence(60))[..10];
        string path = IdxBuilder.Write(dir, "short", bytes);

        string message = IdxBuilder.Rejects(path);

        Assert.Equal($"{path}: truncated header: expected 16 bytes for 3 dimensions but the file has 10 bytes", message);
    }

    [Fact]
    public void Idx_rejects_a_file_too_short_for_the_magic_number()
    {
        string path = IdxBuilder.Write(dir, "tiny", [0, 0]);

        Assert.StartsWith($"{path}: too short for an IDX file", IdxBuilder.Rejects(path));
    }

    [Fact]
    public void Idx_rejects_a_truncated_file_and_names_it()
    {
        byte[] bytes = IdxBuilder.Bytes([3, 4, 5], IdxBuilder.Sequence(60))[..46];
        string path = IdxBuilder.Write(dir, "train-images-idx3-ubyte", bytes);

        string message = IdxBuilder.Rejects(path);

        Assert.Equal($"{path}: truncated: expected 76 bytes (3x4x5 images) but the file has 46 bytes", message);
    }

    [Fact]
    public void Idx_counts_a_truncated_full_size_mnist_file_with_thousands_separators()
    {
        byte[] bytes = IdxBuilder.Bytes([60000, 28, 28], new byte[1000 - 16]);
        string path = IdxBuilder.Write(dir, "train-images-idx3-ubyte", bytes);

        string message = IdxBuilder.Rejects(path);

        Assert.Equal($"{path}: truncated: expected 47,040,016 bytes (60000x28x28 images) but the file has 1,000 bytes", message);
    }

    [Fact]
    public void Idx_rejects_a_truncated_gz_file_and_names_it()
    {
        byte[] gzip = IdxBuilder.Gzip(IdxBuilder.Bytes([50], IdxBuilder.Sequence(50)));
        string path = IdxBuilder.Write(dir, "labels.gz", gzip[..(gzip.Length / 2)]);

        Assert.StartsWith($"{path}: ", IdxBuilder.Rejects(path));
    }

    [Fact]
    public void Idx_rejects_gz_content_shorter_than_its_header_says()
    {
        byte[] content = IdxBuilder.Bytes([10], IdxBuilder.Sequence(10))[..12];
        string path = IdxBuilder.Write(dir, "labels.gz", IdxBuilder.Gzip(content));

        string message = IdxBuilder.Rejects(path);

        Assert.Equal($"{path}: truncated: expected 18 bytes (10 labels) but the decompressed file has 12 bytes", message);
    }

    [Fact]
    public void Idx_rejects_trailing_bytes_after_the_data()
    {
        byte[] bytes = [.. IdxBuilder.Bytes([4], [1, 2, 3, 4]), 0, 0, 0];
        string path = IdxBuilder.Write(dir, "labels", bytes);

        string message = IdxBuilder.Rejects(path);

        Assert.Equal($"{path}: unexpected bytes after the data: expected 12 bytes (4 labels) but the file has 15 bytes", message);
    }

    [Fact]
    public void Idx_rejects_trailing_bytes_inside_a_gz_file()
    {
        byte[] content = [.. IdxBuilder.Bytes([4], [1, 2, 3, 4]), 9];
        string path = IdxBuilder.Write(dir, "labels.gz", IdxBuilder.Gzip(content));

        string message = IdxBuilder.Rejects(path);

        Assert.Equal($"{path}: unexpected bytes after the data: expected 12 bytes (4 labels) but the decompressed file has 13 bytes", message);
    }
}

/// <summary>Builds small IDX files for the data tests.</summary>
internal static class IdxBuilder
{
    public static byte[] Bytes(int[] dimensions, byte[] data, byte type = 0x08)
    {
        var bytes = new List<byte> { 0, 0, type, (byte)dimensions.Length };
        foreach (int dimension in dimensions)
        {
            bytes.AddRange([(byte)(dimension >> 24), (byte)(dimension >> 16), (byte)(dimension >> 8), (byte)dimension]);
        }
        bytes.AddRange(data);
        return [.. bytes];
    }

    public static byte[] Sequence(int length) => Enumerable.Range(0, length).Select(i => (byte)(i * 7 + 3)).ToArray();

    public static byte[] Gzip(byte[] content)
    {
        using var buffer = new MemoryStream();
        using (var gzip = new GZipStream(buffer, CompressionLevel.Fastest, leaveOpen: true))
        {
            gzip.Write(content);
        }
        return buffer.ToArray();
    }

    public static string Write(string dir, string name, byte[] bytes)
    {
        string path = Path.Combine(dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>Reads a file that must be rejected; returns the message after checking it is one line.</summary>
    public static string Rejects(string path)
    {
        var error = Assert.Throws<CnnUserException>(() => Idx.Read(path));
        Assert.DoesNotContain('\n', error.Message);
        return error.Message;
    }
}
