// MaxPool (SIMD over channels: 16 lanes when they are a multiple of 16, 8 when a multiple of 8, 4 when a
// multiple of 4) against MaxPoolReference: values and argmax indices must be identical, including on data full
// of ties (first in window order wins), with pools of 2 and 3, odd heights and widths whose last row or column
// is dropped, and channel counts on every path.
// Backward is checked against MaxPoolReference.Backward (same bits, including the zeros in rows and columns
// no window covers) and against its definition: zero everywhere but dy at the recorded maxima.
using Cnn.Engine.Kernels;
using Cnn.Engine.Kernels.Reference;
using Xunit;

namespace Cnn.Engine.Tests.Kernels;

public sealed class MaxPoolTests
{
    private static IEnumerable<(int Batch, int Height, int Width, int Channels, int Pool)> Shapes()
    {
        foreach (int channels in new[] { 1, 3, 4, 8, 12, 15, 16, 17, 20, 24, 32, 40, 48, 64 })
            foreach (int pool in new[] { 2, 3 })
                foreach ((int height, int width) in new[] { (2, 2), (3, 3), (5, 4), (7, 9), (13, 13), (26, 26), (11, 6) })
                    if (height >= pool && width >= pool)
                        yield return (1 + (height + channels) % 3, height, width, channels, pool);
    }

    private static float[] Input(Random rng, int length, bool ties) =>
        ties
            ? Enumerable.Range(0, length).Select(_ => (float)rng.Next(3)).ToArray()
            : KernelAssert.Uniform(rng, length);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void MaxPool_Forward_matches_the_reference_in_values_and_argmax(bool ties)
    {
        var rng = new Random(ties ? 21 : 22);
        foreach (var (batch, height, width, channels, pool) in Shapes())
        {
            float[] x = Input(rng, batch * height * width * channels, ties);
            int outSize = batch * (height / pool) * (width / pool) * channels;
            float[] expectedY = new float[outSize], actualY = new float[outSize];
            int[] expectedArg = new int[outSize], actualArg = new int[outSize];

            MaxPoolReference.Forward(x, batch, height, width, channels, pool, expectedY, expectedArg);
            MaxPool.Forward(x, batch, height, width, channels, pool, actualY, actualArg);

            string shape = $"batch {batch}, {height}x{width}x{channels}, pool {pool}, ties={ties}";
            KernelAssert.BitIdentical(expectedY, actualY, $"MaxPool.Forward values, {shape}");
            Assert.True(expectedArg.AsSpan().SequenceEqual(actualArg), $"MaxPool.Forward argmax differs, {shape}");
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(16)]
    public void MaxPool_Forward_gives_a_tie_to_the_first_element_in_window_order(int channels)
    {
        // One 4x4 image, pool 2: every window holds the same value, so each maximum is its top-left element.
        var x = new float[4 * 4 * channels];
        Array.Fill(x, 0.5f);
        var y = new float[2 * 2 * channels];
        var argmax = new int[2 * 2 * channels];

        MaxPool.Forward(x, 1, 4, 4, channels, 2, y, argmax);

        for (int oy = 0; oy < 2; oy++)
            for (int ox = 0; ox < 2; ox++)
                for (int c = 0; c < channels; c++)
                    Assert.Equal(((oy * 2) * 4 + ox * 2) * channels + c, argmax[(oy * 2 + ox) * channels + c]);
    }

    [Fact]
    public void MaxPool_Backward_matches_the_reference_and_puts_each_gradient_at_its_maximum()
    {
        var rng = new Random(23);
        foreach (var (batch, height, width, channels, pool) in Shapes())
        {
            int inSize = batch * height * width * channels, outSize = batch * (height / pool) * (width / pool) * channels;
            float[] x = Input(rng, inSize, ties: rng.Next(2) == 0);
            var y = new float[outSize];
            var argmax = new int[outSize];
            MaxPool.Forward(x, batch, height, width, channels, pool, y, argmax);
            float[] dy = KernelAssert.Uniform(rng, outSize);
            var expected = new float[inSize];
            for (int i = 0; i < outSize; i++) expected[argmax[i]] = dy[i];
            float[] reference = KernelAssert.Uniform(rng, inSize); // garbage: Backward overwrites all of dx
            float[] dx = KernelAssert.Uniform(rng, inSize);

            MaxPoolReference.Backward(dy, argmax, reference);
            MaxPool.Backward(dy, argmax, batch, height, width, channels, pool, dx);

            string shape = $"batch {batch}, {height}x{width}x{channels}, pool {pool}";
            KernelAssert.BitIdentical(reference, dx, $"MaxPool.Backward against the reference, {shape}");
            KernelAssert.BitIdentical(expected, dx, $"MaxPool.Backward against its definition, {shape}");
        }
    }

    [Fact]
    public void MaxPool_Backward_with_the_fused_relu_mask_passes_gradients_only_where_the_maximum_is_positive()
    {
        var rng = new Random(29);
        foreach (var (batch, height, width, channels, pool) in Shapes())
        {
            int inSize = batch * height * width * channels, outSize = batch * (height / pool) * (width / pool) * channels;
            // A ReLU output: zeros (often the window's maximum) and positive values.
            float[] x = KernelAssert.Uniform(rng, inSize).Select(v => MathF.Max(v, 0f)).ToArray();
            var y = new float[outSize];
            var argmax = new int[outSize];
            MaxPool.Forward(x, batch, height, width, channels, pool, y, argmax);
            float[] dy = KernelAssert.Uniform(rng, outSize);
            var expected = new float[inSize];
            for (int i = 0; i < outSize; i++) expected[argmax[i]] = y[i] > 0f ? dy[i] : 0f;
            float[] reference = KernelAssert.Uniform(rng, inSize);
            float[] dx = KernelAssert.Uniform(rng, inSize);

            MaxPoolReference.Backward(dy, argmax, reference, y);
            MaxPool.Backward(dy, argmax, batch, height, width, channels, pool, dx, y);

            string shape = $"batch {batch}, {height}x{width}x{channels}, pool {pool}";
            KernelAssert.BitIdentical(reference, dx, $"masked MaxPool.Backward against the reference, {shape}");
            KernelAssert.BitIdentical(expected, dx, $"masked MaxPool.Backward against its definition, {shape}");
        }
    }
}
