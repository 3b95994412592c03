// Helpers shared by the kernel tests: seeded random arrays and an assertion of bit-for-bit equality that
// names the first differing element. The SIMD kernels promise the same IEEE operations in the same order as
// their references, so "close" is not good enough: a single differing bit means a changed summation order.
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
}
