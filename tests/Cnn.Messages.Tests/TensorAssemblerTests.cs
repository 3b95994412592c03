// Tests for TensorAssembler: every inconsistent chunk is refused with a reason and writes nothing, an exact
// repeat is ignored, a repeat with other bytes is refused, Result waits for the last chunk, and Reset makes the
// same array ready for the next version.
using Xunit;

namespace Cnn.Messages.Tests;

public sealed class TensorAssemblerTests
{
    private const int Max = TensorChunks.MaxChunkFloats;
    private const int Total = 2 * Max + 10;   // three chunks: Max, Max and 10 floats

    private readonly float[] _tensor = Enumerable.Range(0, Total).Select(i => i + 0.25f).ToArray();

    [Theory]
    [InlineData(0, 3, 0, Total + 1, Max, "says the tensor has 32011 floats, but it has 32010")]
    [InlineData(0, 4, 0, Total, Max, "says there are 4 chunks, but 32010 floats make 3")]
    [InlineData(3, 3, 3 * Max, Total, 10, "chunk index 3 is outside 0 to 2")]
    [InlineData(-1, 3, 0, Total, Max, "chunk index -1 is outside 0 to 2")]
    [InlineData(1, 3, Max + 1, Total, Max, "chunk 1 starts at float 16001, but it must start at 16000")]
    [InlineData(2, 3, 2 * Max, Total, 9, "chunk 2 has 9 floats, but it must have 10")]
    [InlineData(1, 3, Max, Total, Max + 1, "chunk 1 has 16001 floats, but it must have 16000")]
    public void A_chunk_that_does_not_fit_the_tensor_is_refused_with_a_reason_and_writes_nothing(
        int chunkIndex, int chunkCount, int offset, int totalFloats, int floats, string reason)
    {
        var destination = new float[Total];
        var assembler = new TensorAssembler(destination);

        var added = assembler.Add(chunkIndex, chunkCount, offset, totalFloats, new byte[floats * sizeof(float)], out var error);

        Assert.False(added);
        Assert.Contains(reason, error);
        Assert.Equal(0, assembler.ReceivedChunks);
        Assert.All(destination, f => Assert.Equal(0f, f));
    }

    [Fact]
    public void A_chunk_whose_length_is_not_whole_floats_is_refused()
    {
        var assembler = new TensorAssembler(Total);

        var added = assembler.Add(2, 3, 2 * Max, Total, new byte[39], out var error);

        Assert.False(added);
        Assert.Equal("chunk 2 has 39 bytes, not a whole number of floats", error);
    }

    [Fact]
    public void A_chunk_without_data_is_refused()
    {
        var assembler = new TensorAssembler(Total);

        Assert.False(assembler.Add(0, 3, 0, Total, null!, out var error));
        Assert.Equal("chunk 0 has no data", error);
    }

    [Fact]
    public void An_exact_repeat_is_accepted_and_changes_nothing()
    {
        var assembler = new TensorAssembler(Total);
        Add(assembler, 1);

        var again = Add(assembler, 1, out var error);

        Assert.True(again);
        Assert.Null(error);
        Assert.Equal(1, assembler.ReceivedChunks);
        Assert.False(assembler.IsComplete);
    }

    [Fact]
    public void A_repeat_with_different_bytes_is_refused_and_the_first_bytes_stay()
    {
        var destination = new float[Total];
        var assembler = new TensorAssembler(destination);
        Add(assembler, 2);
        var other = TensorChunks.Slice(_tensor, 2, out var offset);
        other[0] ^= 1;

        var added = assembler.Add(2, 3, offset, Total, other, out var error);

        Assert.False(added);
        Assert.Equal("chunk 2 arrived again with different bytes", error);
        Assert.Equal(_tensor[offset], destination[offset]);
    }

    [Fact]
    public void Result_waits_for_the_last_chunk()
    {
        var assembler = new TensorAssembler(Total);
        Add(assembler, 2);
        Add(assembler, 0);

        var error = Assert.Throws<InvalidOperationException>(() => assembler.Result);
        Add(assembler, 1);

        Assert.Contains("2 of 3 chunks received", error.Message);
        Assert.True(assembler.IsComplete);
        Assert.Equal(_tensor, assembler.Result);
    }

    [Fact]
    public void Reset_readies_the_same_array_for_the_next_tensor()
    {
        var destination = new float[Total];
        var assembler = new TensorAssembler(destination);
        for (var i = 0; i < 3; i++)
            Add(assembler, i);
        var next = _tensor.Select(f => -f).ToArray();

        assembler.Reset();
        Assert.False(assembler.IsComplete);
        for (var i = 0; i < 3; i++)
            Assert.True(assembler.Add(i, 3, i * Max, Total, TensorChunks.Slice(next, i, out _), out var error), error);

        Assert.Same(destination, assembler.Result);
        Assert.Equal(next, destination);
    }

    [Fact]
    public void An_empty_tensor_is_complete_after_its_one_empty_chunk()
    {
        var assembler = new TensorAssembler(0);
        Assert.False(assembler.IsComplete);

        Assert.True(assembler.Add(0, 1, 0, 0, [], out var error), error);

        Assert.True(assembler.IsComplete);
        Assert.Empty(assembler.Result);
    }

    [Fact]
    public void An_assembler_refuses_a_negative_length()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new TensorAssembler(-3));
    }

    private bool Add(TensorAssembler assembler, int chunkIndex) => Add(assembler, chunkIndex, out _);

    private bool Add(TensorAssembler assembler, int chunkIndex, out string? error)
    {
        var data = TensorChunks.Slice(_tensor, chunkIndex, out var offset);
        return assembler.Add(chunkIndex, 3, offset, Total, data, out error);
    }
}
