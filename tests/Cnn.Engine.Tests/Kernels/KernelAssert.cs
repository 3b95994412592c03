// Helpers shared by the kernel tests: seeded random arrays, arrays on or off a cache line, and an assertion of bit-for-bit equality that
// names the first differing element. The SIMD kernels promise the same IEEE operations in the same order as
// their references, so "close" is not good enough: a single differing bit means a changed summation order.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Cnn.Engine.Kernels;
using Xunit;

namespace Cnn.Engine.Tests.Kernels;

internal static class KernelAssert
{
    /// <summary>Fails unless every float of <paramref name="actual"/> has the bits of <paramref name="expected"/>.</summary>
    public static void BitIdentical(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: length {actual.Length}, reference {expected.Length}");
        for (int i = 0; i < expected.Length; i++)
        {
            int e = BitConverter.SingleToInt32Bits(expected[i]), a = BitConverter.SingleToInt32Bits(actual[i]);
            if (e != a)
                Assert.Fail($"{what}: element {i} is {actual[i]:R} (0x{a:X8}) but the reference gives {expected[i]:R} (0x{e:X8})");
        }
    }

    /// <summary>Uniform floats in [-scale, scale) with full mantissas, so a changed rounding shows.</summary>
    public static float[] Uniform(Random rng, int length, float scale = 1f)
    {
        var values = new float[length];
        for (int i = 0; i < length; i++) values[i] = (float)((rng.NextDouble() * 2 - 1) * scale);
        return values;
    }

    /// <summary>Like <see cref="Uniform"/>, with about one value in eight an exact zero (padding, dead ReLUs).</summary>
    public static float[] UniformWithZeros(Random rng, int length, float scale = 1f)
    {
        float[] values = Uniform(rng, length, scale);
        for (int i = 0; i < length; i++) if (rng.Next(8) == 0) values[i] = 0f;
        return values;
    }

    // Every array ArrayAt tried and turned down, kept for the life of the test process. Freed, they would leave holes
    // of exactly that length at exactly the offset turned down, and the pinned heap fills a hole that fits before it
    // allocates at its end: the next call for the same length got one hole after another (CI once failed 256 tries).
    private static readonly List<float[]> s_turnedDown = [];

    /// <summary>
    /// A pinned array (it never moves) whose first float is, or is not, on a 64-byte boundary. Where the pinned object
    /// heap allocates at its end, arrays follow one another, so after an array at the wrong offset a filler sized from
    /// that array's address puts the next one where it is wanted. The filler is no smaller than the array: a small one
    /// would go into any small hole other tests left (and 93,322 floats, a multiple of 64 bytes with the header, then
    /// land at one offset for ever). An array that lands in a hole uses the hole up, so the tries get past the holes.
    /// </summary>
    public static float[] ArrayAt(int length, bool aligned)
    {
        const int tries = 4096, headerBytes = 24; // object header, method table and length before a float[]'s data
        const int line = AlignedBuffer.Alignment;
        long bytes = (sizeof(float) * (long)length + 7) & ~7L;
        lock (s_turnedDown)
        {
            for (int attempt = 0; attempt < tries; attempt++)
            {
                float[] array = GC.AllocateArray<float>(length, pinned: true);
                if (AlignedBuffer.IsAligned(array) == aligned) return array;
                s_turnedDown.Add(array);
                long next = DataAddress(array) + bytes + headerBytes; // the data of an array allocated right after it
                long gap = aligned ? (line - next % line) % line : 8;
                long filler = gap + (bytes + headerBytes + line - 1) / line * line; // bytes, header included
                s_turnedDown.Add(GC.AllocateArray<float>((int)((filler - headerBytes) / sizeof(float)), pinned: true));
            }
        }
        throw new InvalidOperationException($"no array of {length} floats {(aligned ? "on" : "off")} a cache line in {tries} tries");
    }

    private static unsafe long DataAddress(float[] array) =>
        (long)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(array));
}
