// Cutting a flat float32 tensor into wire chunks, and putting it back together on the other side.
//
// Chunk i of a tensor of T floats covers floats [i * MaxChunkFloats, min(T, (i + 1) * MaxChunkFloats)) and
// travels as those floats' little-endian bytes. The geometry follows from T alone, so the receiver checks every
// chunk against it instead of trusting the sender's offsets. MaxChunkFloats = 16,000 makes a chunk 64,000 bytes:
// under the 85,000-byte large-object threshold (no chunk buffer lands on the LOH) and far under
// CnnNode.MaximumFrameSizeBytes. A tensor of 0 floats is one empty chunk, so it still arrives as a message.
//
// It deliberately does not know about versions, steps or workers (the messages carry those and the actors
// decide which assembler a chunk belongs to), and TensorAssembler is not thread-safe: one actor owns it.
using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Cnn.Messages;

/// <summary>Cuts tensors into chunks of at most <see cref="MaxChunkFloats"/> floats as little-endian float32 bytes.</summary>
public static class TensorChunks
{
    /// <summary>Most floats in one chunk: 64,000 bytes, below the large-object threshold and the frame size.</summary>
    public const int MaxChunkFloats = 16_000;

    /// <summary>Number of chunks a tensor of <paramref name="totalFloats"/> floats is cut into (at least 1).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="totalFloats"/> is negative.</exception>
    public static int ChunkCount(int totalFloats)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(totalFloats);
        return totalFloats == 0 ? 1 : (int)(((long)totalFloats + MaxChunkFloats - 1) / MaxChunkFloats);
    }

    /// <summary>
    /// The little-endian float32 bytes of chunk <paramref name="chunkIndex"/> of <paramref name="tensor"/>, in a new
    /// array the message may keep; <paramref name="offset"/> is the index of its first float in the tensor.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="chunkIndex"/> is not below ChunkCount(tensor.Length).</exception>
    public static byte[] Slice(ReadOnlySpan<float> tensor, int chunkIndex, out int offset)
    {
        var count = ChunkCount(tensor.Length);
        if ((uint)chunkIndex >= (uint)count)
            throw new ArgumentOutOfRangeException(nameof(chunkIndex), chunkIndex,
                $"a tensor of {tensor.Length} floats has chunks 0 to {count - 1}");

        offset = chunkIndex * MaxChunkFloats;
        var floats = tensor.Slice(offset, Math.Min(MaxChunkFloats, tensor.Length - offset));
        var bytes = new byte[floats.Length * sizeof(float)];
        if (BitConverter.IsLittleEndian)
        {
            MemoryMarshal.AsBytes(floats).CopyTo(bytes);
        }
        else
        {
            for (var i = 0; i < floats.Length; i++)
                BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * sizeof(float)), floats[i]);
        }
        return bytes;
    }

    /// <summary>Floats in chunk <paramref name="chunkIndex"/> of a tensor of <paramref name="totalFloats"/> floats.</summary>
    internal static int ChunkFloats(int totalFloats, int chunkIndex) =>
        Math.Min(MaxChunkFloats, totalFloats - chunkIndex * MaxChunkFloats);
}

/// <summary>
/// Puts a tensor back together from its chunks, arriving in any order. Chunks that do not fit the tensor's
/// geometry are refused with a reason; an exact repeat of a chunk already received is accepted and ignored.
/// </summary>
public sealed class TensorAssembler
{
    private readonly float[] _destination;   // (TotalFloats): the tensor being assembled
    private readonly bool[] _received;       // (ChunkCount): which chunks have been written

    /// <summary>An assembler for a tensor of <paramref name="totalFloats"/> floats, into a new array.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="totalFloats"/> is negative.</exception>
    public TensorAssembler(int totalFloats)
        : this(new float[CheckedLength(totalFloats)])
    {
    }

    /// <summary>
    /// An assembler that writes straight into <paramref name="destination"/> (no copy); its length is the tensor's
    /// length. Floats of chunks not yet received keep whatever the array held.
    /// </summary>
    public TensorAssembler(float[] destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        _destination = destination;
        ChunkCount = TensorChunks.ChunkCount(destination.Length);
        _received = new bool[ChunkCount];
    }

    /// <summary>Length of the tensor in floats.</summary>
    public int TotalFloats => _destination.Length;

    /// <summary>Number of chunks the tensor is cut into.</summary>
    public int ChunkCount { get; }

    /// <summary>Number of distinct chunks received since construction or the last <see cref="Reset"/>.</summary>
    public int ReceivedChunks { get; private set; }

    /// <summary>Whether every chunk has been received.</summary>
    public bool IsComplete => ReceivedChunks == ChunkCount;

    /// <summary>The assembled tensor (the destination array given to the constructor, if any).</summary>
    /// <exception cref="InvalidOperationException">Not every chunk has arrived yet.</exception>
    public float[] Result => IsComplete
        ? _destination
        : throw new InvalidOperationException(
            $"the tensor is incomplete: {ReceivedChunks} of {ChunkCount} chunks received");

    /// <summary>
    /// Writes one chunk. Returns false, with the reason in <paramref name="error"/> and nothing written, when the
    /// chunk does not belong to this tensor: another total length or chunk count, an index out of range, an offset
    /// or length other than the index implies, a length that is not whole floats, or different bytes for a chunk
    /// already received. An exact repeat returns true and changes nothing.
    /// </summary>
    public bool Add(int chunkIndex, int chunkCount, int offset, int totalFloats, byte[] data, out string? error)
    {
        error = Check(chunkIndex, chunkCount, offset, totalFloats, data);
        if (error is not null)
            return false;

        var target = _destination.AsSpan(offset, data.Length / sizeof(float));
        if (_received[chunkIndex])
        {
            if (SameBits(target, data))
                return true;
            error = $"chunk {chunkIndex} arrived again with different bytes";
            return false;
        }

        if (BitConverter.IsLittleEndian)
        {
            data.CopyTo(MemoryMarshal.AsBytes(target));
        }
        else
        {
            for (var i = 0; i < target.Length; i++)
                target[i] = BinaryPrimitives.ReadSingleLittleEndian(data.AsSpan(i * sizeof(float)));
        }

        _received[chunkIndex] = true;
        ReceivedChunks++;
        return true;
    }

    /// <summary>Forgets every chunk received, to assemble the next tensor of the same length into the same array.</summary>
    public void Reset()
    {
        Array.Clear(_received);
        ReceivedChunks = 0;
    }

    private string? Check(int chunkIndex, int chunkCount, int offset, int totalFloats, byte[]? data)
    {
        if (totalFloats != TotalFloats)
            return $"chunk {chunkIndex} says the tensor has {totalFloats} floats, but it has {TotalFloats}";
        if (chunkCount != ChunkCount)
            return $"chunk {chunkIndex} says there are {chunkCount} chunks, but {TotalFloats} floats make {ChunkCount}";
        if ((uint)chunkIndex >= (uint)ChunkCount)
            return $"chunk index {chunkIndex} is outside 0 to {ChunkCount - 1}";
        var expectedOffset = chunkIndex * TensorChunks.MaxChunkFloats;
        if (offset != expectedOffset)
            return $"chunk {chunkIndex} starts at float {offset}, but it must start at {expectedOffset}";
        if (data is null)
            return $"chunk {chunkIndex} has no data";
        if (data.Length % sizeof(float) != 0)
            return $"chunk {chunkIndex} has {data.Length} bytes, not a whole number of floats";
        var expectedFloats = TensorChunks.ChunkFloats(TotalFloats, chunkIndex);
        if (data.Length != expectedFloats * sizeof(float))
            return $"chunk {chunkIndex} has {data.Length / sizeof(float)} floats, but it must have {expectedFloats}";
        return null;
    }

    private static bool SameBits(ReadOnlySpan<float> written, byte[] data)
    {
        if (BitConverter.IsLittleEndian)
            return MemoryMarshal.AsBytes(written).SequenceEqual(data);
        for (var i = 0; i < written.Length; i++)
            if (BitConverter.SingleToInt32Bits(written[i]) != BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(i * sizeof(float))))
                return false;
        return true;
    }

    private static int CheckedLength(int totalFloats)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(totalFloats);
        return totalFloats;
    }
}
