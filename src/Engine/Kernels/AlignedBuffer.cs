// Floats whose first element sits on a 64-byte boundary: a cache line, and one AVX-512 vector. A GEMM that
// reloads B for every tile of rows runs about 8 to 10% slower when B starts off such a boundary (measured on an
// AVX2 Zen 3: conv2's forward product of a leaf, 430 to 480 us aligned against 470 to 540 us at 16 bytes past),
// because then half its vector loads (AVX2) or all of them (AVX-512) straddle two cache lines. A float[]'s
// elements start wherever the GC put the array, so alignment differed from one buffer, and one process, to
// the next. The buffer lives on the pinned object heap, so the GC never moves it and the offset found once
// stays right.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Cnn.Engine.Kernels;

/// <summary>A float buffer whose first element is 64-byte aligned (see file header).</summary>
public sealed unsafe class AlignedBuffer
{
    /// <summary>The alignment in bytes.</summary>
    public const int Alignment = 64;

    private const int AlignmentFloats = Alignment / sizeof(float);

    private readonly float[] _array;
    private readonly int _offset;

    /// <summary>A zeroed buffer of <paramref name="length"/> floats.</summary>
    public AlignedBuffer(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        _array = GC.AllocateArray<float>(length + AlignmentFloats - 1, pinned: true);
        nint address = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_array));
        _offset = (int)((Alignment - (address & (Alignment - 1))) & (Alignment - 1)) / sizeof(float);
        Length = length;
    }

    /// <summary>Number of floats.</summary>
    public int Length { get; }

    /// <summary>The floats, starting on a 64-byte boundary.</summary>
    public Span<float> Span => _array.AsSpan(_offset, Length);

    /// <summary>True when <paramref name="values"/> starts on a 64-byte boundary (or is empty).</summary>
    public static bool IsAligned(ReadOnlySpan<float> values) =>
        values.IsEmpty || ((nint)Unsafe.AsPointer(ref MemoryMarshal.GetReference(values)) & (Alignment - 1)) == 0;
}
