// Accumulate.Add (SIMD) against AccumulateReference.Add: the same bits for every length from 0 to 200 (the
// 64-wide body, the 16-wide and Vector<float> loops and every scalar tail) and for seed-cnn's flat buffer, with zeros,
// signed zeros, subnormals, infinities and NaN among the values.
using Cnn.Engine.Kernels;
using Cnn.Engine.Kernels.Reference;
using Xunit;

namespace Cnn.Engine.Tests.Kernels;

public sealed class AccumulateTests
{
    [Fact]
    public void Accumulate_Add_matches_the_reference_bit_for_bit_for_every_length()
    {
        var rng = new Random(17);
        float[] special = [0f, -0f, 1e-40f, -1e-44f, float.PositiveInfinity, float.NegativeInfinity, float.NaN, 3e38f];
        foreach (int length in Enumerable.Range(0, 201).Concat([93_322]))
        {
            float[] target = KernelAssert.UniformWithZeros(rng, length, 4f), add = KernelAssert.UniformWithZeros(rng, length, 4f);
            for (int i = 0; i < Math.Min(length, special.Length); i++) (target[^(i + 1)], add[i]) = (special[i], special[^(i + 1)]);
            float[] expected = (float[])target.Clone();

            AccumulateReference.Add(expected, add);
            Accumulate.Add(target, add);

            KernelAssert.BitIdentical(expected, target, $"Accumulate.Add, length {length}");
        }
    }

    [Fact]
    public void Accumulate_Add_refuses_spans_of_different_lengths()
    {
        Assert.Throws<ArgumentException>(() => Accumulate.Add(new float[5], new float[4]));
        Assert.Throws<ArgumentException>(() => AccumulateReference.Add(new float[4], new float[5]));
    }
}
