// Tests for TensorChunks: the chunk geometry, the little-endian bytes of a slice, and several megabytes of
// weights (and a seed-cnn-sized gradient) that cross the real serializer chunk by chunk, every chunk well under
// the frame size, and come back bit for bit (NaN payloads, -0 and subnormals included) in shuffled order.
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Xunit;

namespace Cnn.Messages.Tests;

public sealed class TensorChunksTests(HostedNode node) : IClassFixture<HostedNode>
{
    [Theory]
    [InlineData(0, 1)]
    [InlineData(1, 1)]
    [InlineData(TensorChunks.MaxChunkFloats, 1)]
    [InlineData(TensorChunks.MaxChunkFloats + 1, 2)]
    [InlineData(93_322, 6)]
    [InlineData(1_500_000, 94)]
    [InlineData(int.MaxValue, 134_218)]
    public void ChunkCount_rounds_up_to_whole_chunks_and_is_at_least_one(int totalFloats, int expected)
    {
        Assert.Equal(expected, TensorChunks.ChunkCount(totalFloats));
    }

    [Fact]
    public void ChunkCount_refuses_a_negative_length()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => TensorChunks.ChunkCount(-1));
    }

    [Fact]
    public void A_chunk_is_64000_bytes_below_the_large_object_threshold_and_the_message_limit()
    {
        Assert.Equal(64_000, TensorChunks.MaxChunkFloats * sizeof(float));
        Assert.True(TensorChunks.MaxChunkFloats * sizeof(float) < 85_000);
        Assert.True(TensorChunks.MaxChunkFloats * sizeof(float) + 1_000 < CnnMessageSerializer.MaxMessageBytes);
        Assert.True(CnnMessageSerializer.MaxMessageBytes < CnnNode.MaximumFrameSizeBytes);
    }

    [Fact]
    public void Slice_gives_the_little_endian_bytes_of_its_floats_and_their_offset()
    {
        var tensor = Enumerable.Range(0, 2 * TensorChunks.MaxChunkFloats + 5).Select(i => i * 0.5f - 7f).ToArray();

        var bytes = TensorChunks.Slice(tensor, 2, out var offset);

        Assert.Equal(2 * TensorChunks.MaxChunkFloats, offset);
        Assert.Equal(5 * sizeof(float), bytes.Length);
        for (var i = 0; i < 5; i++)
            Assert.Equal(tensor[offset + i], BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(i * sizeof(float))));
    }

    [Fact]
    public void Slice_of_an_empty_tensor_is_one_empty_chunk()
    {
        var bytes = TensorChunks.Slice([], 0, out var offset);

        Assert.Empty(bytes);
        Assert.Equal(0, offset);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(3)]
    public void Slice_refuses_a_chunk_index_outside_the_tensor(int chunkIndex)
    {
        var tensor = new float[2 * TensorChunks.MaxChunkFloats + 1];

        var error = Assert.Throws<ArgumentOutOfRangeException>(() => TensorChunks.Slice(tensor, chunkIndex, out _));

        Assert.Contains("chunks 0 to 2", error.Message);
    }

    [Fact]
    public void Six_megabytes_of_weights_cross_the_serializer_in_chunks_and_reassemble_bit_exactly_in_any_order()
    {
        var weights = RandomBits(1_500_000, seed: 11);
        var serializer = node.System.Serialization.FindSerializerForType(typeof(WeightsChunk));
        var count = TensorChunks.ChunkCount(weights.Length);

        var received = new List<WeightsChunk>();
        for (var i = 0; i < count; i++)
        {
            var data = TensorChunks.Slice(weights, i, out var offset);
            var bytes = serializer.ToBinary(new WeightsChunk("run-1", 42, i, count, offset, weights.Length, data));
            Assert.InRange(bytes.Length, 1, CnnMessageSerializer.MaxMessageBytes);
            received.Add((WeightsChunk)node.System.Serialization.Deserialize(bytes, serializer.Identifier, "wc"));
        }
        var assembler = new TensorAssembler(weights.Length);
        foreach (var c in received.OrderBy(_ => Random.Shared.Next()).ToList())
            Assert.True(assembler.Add(c.ChunkIndex, c.ChunkCount, c.Offset, c.TotalFloats, c.Data, out var error), error);

        Assert.Equal(94, count);
        Assert.True(assembler.IsComplete);
        Assert.True(SameBits(weights, assembler.Result));
    }

    [Fact]
    public void A_seed_cnn_sized_gradient_crosses_the_serializer_and_lands_in_the_callers_buffer()
    {
        var gradient = RandomBits(93_322, seed: 12);
        var serializer = node.System.Serialization.FindSerializerForType(typeof(GradientChunk));
        var count = TensorChunks.ChunkCount(gradient.Length);
        var destination = new float[gradient.Length];
        var assembler = new TensorAssembler(destination);

        for (var i = count - 1; i >= 0; i--)
        {
            var data = TensorChunks.Slice(gradient, i, out var offset);
            var message = new GradientChunk("run-1", 9, 8, 0, 4, 16, i, count, offset, gradient.Length, data, 1.5, 60, 64, "worker-2", 3.25);
            var back = (GradientChunk)node.System.Serialization.Deserialize(serializer.ToBinary(message), serializer.Identifier, "gc");
            Assert.True(assembler.Add(back.ChunkIndex, back.ChunkCount, back.Offset, back.TotalFloats, back.Data, out var error), error);
        }

        Assert.Same(destination, assembler.Result);
        Assert.True(SameBits(gradient, destination));
    }

    // Floats from random bits: NaNs with payloads, infinities, -0 and subnormals all occur.
    private static float[] RandomBits(int length, int seed)
    {
        var floats = new float[length];
        new Random(seed).NextBytes(MemoryMarshal.AsBytes(floats.AsSpan()));
        floats[0] = -0f;
        floats[1] = float.Epsilon;
        floats[2] = BitConverter.Int32BitsToSingle(0x7FC0_1234);
        return floats;
    }

    private static bool SameBits(float[] expected, float[] actual) =>
        MemoryMarshal.AsBytes(expected.AsSpan()).SequenceEqual(MemoryMarshal.AsBytes(actual.AsSpan()));
}
