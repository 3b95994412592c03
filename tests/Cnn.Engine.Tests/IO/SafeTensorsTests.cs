// Tests for SafeTensors: byte-exact output for a tiny case (so Python's safetensors reads it), a
// round trip that keeps names, order, shapes, every float bit and the metadata, and one test per way
// a damaged file must be rejected with a one-line CnnUserException naming it.
using System.Buffers.Binary;
using System.Text;
using Cnn.Engine.IO;
using Xunit;

namespace Cnn.Engine.Tests.IO;

public sealed class SafeTensorsTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("cnn-safetensors-tests-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [Fact]
    public void SafeTensors_writes_the_documented_layout_byte_for_byte()
    {
        string path = Path.Combine(dir, "tiny.safetensors");

        SafeTensors.Write(path, [new SafeTensor("a", [2], [1f, -2f])], new Dictionary<string, string>());

        string json = """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""";
        byte[] expected = FileBytes(json, [0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0]);
        Assert.Equal(expected, File.ReadAllBytes(path));
    }

    [Fact]
    public void SafeTensors_pads_the_header_with_spaces_to_a_multiple_of_eight()
    {
        string path = Path.Combine(dir, "padded.safetensors");

        SafeTensors.Write(path, [new SafeTensor("conv2d_1/kernel", [1], [3f])], new Dictionary<string, string> { ["step"] = "7" });

        byte[] bytes = File.ReadAllBytes(path);
        long headerLength = BinaryPrimitives.ReadInt64LittleEndian(bytes);
        Assert.Equal(0, headerLength % 8);
        string header = Encoding.UTF8.GetString(bytes, 8, (int)headerLength);
        Assert.StartsWith("""{"__metadata__":{"step":"7"},"conv2d_1/kernel":""", header);
        Assert.Matches("} *$", header);
    }

    [Fact]
    public void SafeTensors_round_trip_keeps_names_order_shapes_data_bits_and_metadata()
    {
        float[] special = [0f, -0f, float.Epsilon, -float.Epsilon, float.MaxValue, float.MinValue,
            float.PositiveInfinity, float.NegativeInfinity, BitConverter.Int32BitsToSingle(0x7fc0_1234), 1e-30f, 3.14159274f];
        SafeTensor[] tensors =
        [
            new("dense_1/kernel", [3, 2], [1, 2, 3, 4, 5, 6]),
            new("conv2d_1/bias", [2], [-1.5f, 0.25f]),
            new("special", [special.Length], special),
            new("scalar", [], [42f]),
            new("empty", [0, 5], []),
            new("adam/m", [1, 1, 1, 2], [7f, 8f]),
        ];
        var metadata = new Dictionary<string, string> { ["format"] = "cnn-distributed", ["step"] = "1200", ["unicode"] = "é ✓ \"quoted\"" };
        string path = Path.Combine(dir, "model.safetensors");

        SafeTensors.Write(path, tensors, metadata);
        var (read, readMetadata) = SafeTensors.Read(path);

        Assert.Equal(tensors.Select(t => t.Name), read.Select(t => t.Name));
        for (int i = 0; i < tensors.Length; i++)
        {
            Assert.Equal(tensors[i].Shape, read[i].Shape);
            Assert.Equal(tensors[i].Data.Select(BitConverter.SingleToInt32Bits), read[i].Data.Select(BitConverter.SingleToInt32Bits));
        }
        Assert.Equal(metadata.OrderBy(p => p.Key), readMetadata.OrderBy(p => p.Key));
    }

    [Fact]
    public void SafeTensors_reads_tensors_in_data_order_whatever_the_order_of_the_header()
    {
        string json = """{"second":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"first":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""";
        string path = WriteFile("reordered.safetensors", FileBytes(json, [0, 0, 0x80, 0x3f, 0, 0, 0, 0x40]));

        var (tensors, metadata) = SafeTensors.Read(path);

        Assert.Equal(["first", "second"], tensors.Select(t => t.Name));
        Assert.Equal([1f, 2f], tensors.Select(t => t.Data[0]));
        Assert.Empty(metadata);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(5)]
    [InlineData(20)]
    [InlineData(-1)]
    [InlineData(-8)]
    public void SafeTensors_rejects_a_truncated_file_and_names_it(int keep)
    {
        string whole = Path.Combine(dir, "whole.safetensors");
        SafeTensors.Write(whole, [new SafeTensor("w", [4, 4], new float[16])], new Dictionary<string, string> { ["step"] = "3" });
        byte[] bytes = File.ReadAllBytes(whole);
        string path = WriteFile("cut.safetensors", bytes[..(keep >= 0 ? keep : bytes.Length + keep)]);

        string message = Rejects(path);

        Assert.StartsWith($"{path}: truncated", message);
    }

    [Fact]
    public void SafeTensors_rejects_a_header_that_is_not_json()
    {
        string path = WriteFile("garbage.safetensors", FileBytes("this is not json at all!", []));

        Assert.StartsWith($"{path}: not a safetensors file: the header is not valid JSON", Rejects(path));
    }

    [Fact]
    public void SafeTensors_rejects_an_absurd_header_length()
    {
        byte[] bytes = new byte[64];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, 0x4141_4141_4141_4141);
        string path = WriteFile("random.safetensors", bytes);

        Assert.StartsWith($"{path}: not a safetensors file: the header length", Rejects(path));
    }

    [Fact]
    public void SafeTensors_rejects_offsets_beyond_the_data()
    {
        string json = """{"w":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}""";
        string path = WriteFile("outside.safetensors", FileBytes(json, new byte[16]));

        string message = Rejects(path);

        Assert.Equal($"{path}: truncated: tensor 'w' has data_offsets [8, 24] but the data region holds only 16 bytes", message);
    }

    [Fact]
    public void SafeTensors_rejects_offsets_that_end_before_they_begin()
    {
        string json = """{"w":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}}""";
        string path = WriteFile("backwards.safetensors", FileBytes(json, new byte[8]));

        Assert.Contains("end before they begin", Rejects(path));
    }

    [Fact]
    public void SafeTensors_rejects_overlapping_tensors()
    {
        string json = """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""";
        string path = WriteFile("overlap.safetensors", FileBytes(json, new byte[12]));

        Assert.Equal($"{path}: tensor 'b' has data_offsets [4, 12], overlapping tensor 'a' which ends at 8", Rejects(path));
    }

    [Fact]
    public void SafeTensors_rejects_bytes_after_the_last_tensor()
    {
        string json = """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""";
        string path = WriteFile("extra.safetensors", FileBytes(json, new byte[12]));

        Assert.StartsWith($"{path}: 8 unexpected bytes after the last tensor", Rejects(path));
    }

    [Fact]
    public void SafeTensors_rejects_a_shape_that_does_not_match_the_byte_length()
    {
        string json = """{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""";
        string path = WriteFile("shape.safetensors", FileBytes(json, new byte[8]));

        Assert.Equal($"{path}: tensor 'a' has shape [3], 12 bytes as F32, but data_offsets [0, 8] span 8 bytes", Rejects(path));
    }

    [Fact]
    public void SafeTensors_rejects_a_dtype_other_than_f32_and_names_it()
    {
        string json = """{"a":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}""";
        string path = WriteFile("bf16.safetensors", FileBytes(json, new byte[4]));

        Assert.Equal($"{path}: tensor 'a' has dtype BF16, only F32 is supported", Rejects(path));
    }

    [Fact]
    public void SafeTensors_rejects_metadata_values_that_are_not_strings()
    {
        string json = """{"__metadata__":{"step":7}}""";
        string path = WriteFile("metadata.safetensors", FileBytes(json, []));

        Assert.Contains("__metadata__ entry 'step' is a JSON Number, expected a string", Rejects(path));
    }

    [Fact]
    public void SafeTensors_rejects_a_missing_file_and_names_it()
    {
        string path = Path.Combine(dir, "nope.safetensors");

        Assert.Equal($"{path}: file not found", Rejects(path));
    }

    [Fact]
    public void SafeTensors_write_rejects_a_shape_that_does_not_match_the_data()
    {
        string path = Path.Combine(dir, "bad.safetensors");

        Assert.Throws<ArgumentException>(() => SafeTensors.Write(path, [new SafeTensor("a", [2, 2], [1f])], new Dictionary<string, string>()));
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void SafeTensors_write_rejects_a_repeated_name()
    {
        SafeTensor a = new("a", [1], [1f]);

        Assert.Throws<ArgumentException>(() => SafeTensors.Write(Path.Combine(dir, "twice.safetensors"), [a, a], new Dictionary<string, string>()));
    }

    /// <summary>A safetensors file from a header (padded with spaces to a multiple of 8) and raw data.</summary>
    private static byte[] FileBytes(string json, byte[] data)
    {
        byte[] header = Encoding.UTF8.GetBytes(json.PadRight((Encoding.UTF8.GetByteCount(json) + 7) / 8 * 8));
        var bytes = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
        header.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + header.Length);
        return bytes;
    }

    private string WriteFile(string name, byte[] bytes)
    {
        string path = Path.Combine(dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static string Rejects(string path)
    {
        var error = Assert.Throws<CnnUserException>(() => SafeTensors.Read(path));
        Assert.DoesNotContain('\n', error.Message);
        return error.Message;
    }
}
