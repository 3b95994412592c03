// Activations.ReluBackward (SIMD) against ActivationsReference.ReluBackward: every length from 0 to 70 and a
// few large ones, outputs that are positive, negative, exactly zero and negative zero, and the in-place form
// (dx aliasing dy) that Conv2D and Dense use.
using Cnn.Engine.Kernels;
using Cnn.Engine.Kernels.Reference;
using Xunit;

namespace Cnn.Engine.Tests.Kernels;

public sealed class ActivationsTests
{
    private static readonly int[] Lengths = Enumerable.Range(0, 71).Concat([127, 128, 129, 1000, 4099, 21632]).ToArray();

    private static float[] ForwardOutputs(Random rng, int length)
    {
        float[] y = KernelAssert.Uniform(rng, length);
        for (int i = 0; i < length; i++)
        {
            int kind = rng.Next(6);
            if (kind == 0) y[i] = 0f;
            else if (kind == 1) y[i] = -0f;
            else if (kind == 2) y[i] = float.Epsilon;
        }
        return y;
    }

    [Fact]
    public void ReluBackward_matches_the_reference_bit_for_bit_for_every_length()
    {
        var rng = new Random(11);
        foreach (int length in Lengths)
        {
            float[] y = ForwardOutputs(rng, length), dy = KernelAssert.Uniform(rng, length);
            float[] expected = KernelAssert.Uniform(rng, length), actual = (float[])expected.Clone();

            ActivationsReference.ReluBackward(y, dy, expected);
            Activations.ReluBackward(y, dy, actual);

            KernelAssert.BitIdentical(expected, actual, $"ReluBackward length {length}");
        }
    }

    [Fact]
    public void ReluBackward_in_place_matches_the_reference_bit_for_bit()
    {
        var rng = new Random(12);
        foreach (int length in Lengths)
        {
            float[] y = ForwardOutputs(rng, length), dy = KernelAssert.Uniform(rng, length);
            float[] expected = (float[])dy.Clone(), actual = (float[])dy.Clone();

            ActivationsReference.ReluBackward(y, expected, expected);
            Activations.ReluBackward(y, actual, actual);

            KernelAssert.BitIdentical(expected, actual, $"ReluBackward in place, length {length}");
        }
    }

    [Fact]
    public void ReluBackward_passes_the_gradient_only_where_the_output_is_positive()
    {
        float[] y = [2f, 0f, -0f, -1f, float.Epsilon, 3f, 0f, 1f, 1f, 1f, 1f, 1f, 1f, 1f, 1f, 1f, 0f];
        float[] dy = Enumerable.Range(1, y.Length).Select(i => (float)i).ToArray();
        var dx = new float[y.Length];

        Activations.ReluBackward(y, dy, dx);

        Assert.Equal([1f, 0f, 0f, 0f, 5f, 6f, 0f, 8f, 9f, 10f, 11f, 12f, 13f, 14f, 15f, 16f, 0f], dx);
    }
}
