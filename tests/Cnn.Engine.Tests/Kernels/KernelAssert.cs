// Helpers shared by the kernel tests: seeded random arrays, arrays on or off a cache line, and an assertion of bit-for-bit equality that
// names the first differing element. The SIMD kernels promise the same IEEE operations in the same order as
// their references, so "close" is not good enough: a single differing bit means a changed summation order.
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

    /// <summary>
    /// A pinned array (it never moves) whose first float is, or is not, on a 64-byte boundary. Large arrays of one
    /// length keep one offset from a cache line (new float[93_322] gives 24 and 56 bytes here, never 0), so arrays of
    /// other lengths between the tries move the next one through the offsets.
    /// </summary>
    public static float[] ArrayAt(int length, bool aligned)
    {
        var tried = new List<float[]>();
        for (int attempt = 0; attempt < 256; attempt++)
        {
            float[] array = GC.AllocateArray<float>(length, pinned: true);
            if (AlignedBuffer.IsAligned(array) == aligned) return array;
            tried.Add(array);
            tried.Add(GC.AllocateArray<float>(length + 1 + attempt % 16, pinned: true));
        }
        throw new InvalidOperationException($"no array of {length} floats {(aligned ? "on" : "off")} a cache line in 256 tries");
    }
}
