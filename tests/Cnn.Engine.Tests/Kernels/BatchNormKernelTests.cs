// BatchNormKernel (SIMD over channels: 32 and 16 lanes with AVX-512, then Vector<float>'s 8 (AVX2) or 4 (128-bit
// vectors, CI's run with DOTNET_PreferredVectorBitWidth=128), then a scalar tail) against
// BatchNormReference: the same bits for channel counts on every path and tail, for 0 to 70 rows and for
// seed-resnet's leaf (8 x 28 x 28 rows of 32 channels), with zeros, signed zeros, subnormals and large values
// among the data. Also: aliasing where the kernels allow it, and refusals of buffers that are too short.
using Cnn.Engine.Kernels;
using Cnn.Engine.Kernels.Reference;
using Xunit;

namespace Cnn.Engine.Tests.Kernels;

public sealed class BatchNormKernelTests
{
    private static readonly int[] ChannelCounts = [1, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 20, 24, 31, 32, 33, 40, 48, 63, 64, 100];

    private static IEnumerable<(int Rows, int Channels)> Shapes()
    {
        foreach (int channels in ChannelCounts)
            foreach (int rows in new[] { 0, 1, 2, 5, 13, 70 })
                yield return (rows, channels);
        yield return (8 * 28 * 28, 32);
        yield return (8 * 14 * 14, 32);
    }

    // Data with a few special values: the kernels must give the reference's bits for them too.
    private static float[] Data(Random rng, int length, float scale)
    {
        float[] values = KernelAssert.UniformWithZeros(rng, length, scale);
        float[] special = [-0f, 1e-40f, -3e-42f, 1e30f, -2.5e29f];
        for (int i = 0; i < Math.Min(length / 7, special.Length); i++) values[i * 7] = special[i];
        return values;
    }

    [Fact]
    public void Column_sums_match_the_reference_bit_for_bit()
    {
        var rng = new Random(41);
        foreach (var (rows, channels) in Shapes())
        {
            float[] x = Data(rng, rows * channels, 3f), b = Data(rng, rows * channels, 2f), mean = KernelAssert.Uniform(rng, channels);
            float[] expected = new float[channels], actual = Enumerable.Repeat(float.NaN, channels).ToArray();

            BatchNormReference.SquaredDeviationSums(x, rows, channels, mean, expected);
            BatchNormKernel.SquaredDeviationSums(x, rows, channels, mean, actual);
            KernelAssert.BitIdentical(expected, actual, $"SquaredDeviationSums, {rows} x {channels}");

            BatchNormReference.ProductSums(x, b, rows, channels, expected);
            BatchNormKernel.ProductSums(x, b, rows, channels, actual);
            KernelAssert.BitIdentical(expected, actual, $"ProductSums, {rows} x {channels}");
        }
    }

    [Fact]
    public void Element_wise_kernels_match_the_reference_bit_for_bit()
    {
        var rng = new Random(42);
        foreach (var (rows, channels) in Shapes())
        {
            int n = rows * channels;
            float[] x = Data(rng, n, 3f), dy = Data(rng, n, 0.5f);
            float[] mean = KernelAssert.Uniform(rng, channels), invStd = KernelAssert.Uniform(rng, channels, 4f);
            float[] gamma = KernelAssert.Uniform(rng, channels, 2f), beta = KernelAssert.Uniform(rng, channels);
            float[] expectedHat = new float[n], expectedY = new float[n], actualHat = new float[n], actualY = new float[n];
            for (int r = 0; r < rows; r++)
                BatchNormReference.Normalize(x.AsSpan(r * channels, channels), mean, invStd, gamma, beta,
                    expectedHat.AsSpan(r * channels, channels), expectedY.AsSpan(r * channels, channels));
            BatchNormKernel.Normalize(x, rows, channels, mean, invStd, gamma, beta, actualHat, actualY);
            KernelAssert.BitIdentical(expectedHat, actualHat, $"Normalize x-hat, {rows} x {channels}");
            KernelAssert.BitIdentical(expectedY, actualY, $"Normalize y, {rows} x {channels}");

            float[] expectedDx = new float[n], actualDx = new float[n];
            for (int r = 0; r < rows; r++)
                BatchNormReference.InputGradient(dy.AsSpan(r * channels, channels), expectedHat.AsSpan(r * channels, channels), rows, beta, gamma, invStd,
                    expectedDx.AsSpan(r * channels, channels));
            BatchNormKernel.InputGradient(dy, actualHat, rows, channels, beta, gamma, invStd, actualDx);
            KernelAssert.BitIdentical(expectedDx, actualDx, $"InputGradient, {rows} x {channels}");

            float[] expectedScaled = new float[n], actualScaled = new float[n];
            for (int r = 0; r < rows; r++)
                BatchNormReference.ScaleShift(x.AsSpan(r * channels, channels), gamma, beta, expectedScaled.AsSpan(r * channels, channels));
            BatchNormKernel.ScaleShift(x, rows, channels, gamma, beta, actualScaled);
            KernelAssert.BitIdentical(expectedScaled, actualScaled, $"ScaleShift, {rows} x {channels}");
        }
    }

    [Fact]
    public void The_reference_rounds_each_operation_and_sums_rows_in_order()
    {
        // Values for which a fused multiply-add gives other bits (checked first), so a fused reference fails here.
        static int Bits(float v) => BitConverter.SingleToInt32Bits(v);

        // Two rows of one channel: ((x0 - m)^2 rounded) + ((x1 - m)^2 rounded), in row order.
        float[] x = [0.2f, 1.2f], mean = [0.15f], sums = new float[1];
        float d0 = x[0] - mean[0], d1 = x[1] - mean[0];
        float first = d0 * d0 + 0f;
        Assert.NotEqual(Bits(d1 * d1 + first), Bits(MathF.FusedMultiplyAdd(d1, d1, first)));
        BatchNormReference.SquaredDeviationSums(x, 2, 1, mean, sums);
        Assert.Equal(Bits(d1 * d1 + first), Bits(sums[0]));

        // dx = ((dy * R - dBeta) - xHat * dGamma) * k, every operation rounded.
        float t = 0.3f * 6f - 0.2f;
        Assert.NotEqual(Bits((t - 1.7f * 0.9f) * 1.3f), Bits(MathF.FusedMultiplyAdd(-1.7f, 0.9f, t) * 1.3f));
        float[] dx = new float[1];
        BatchNormReference.InputGradient([0.3f], [1.7f], 6f, [0.2f], [0.9f], [1.3f], dx);
        Assert.Equal(Bits((t - 1.7f * 0.9f) * 1.3f), Bits(dx[0]));
    }

    [Fact]
    public void Outputs_may_overwrite_their_inputs_where_documented()
    {
        var rng = new Random(43);
        const int rows = 9, channels = 40;
        float[] x = KernelAssert.Uniform(rng, rows * channels), dy = KernelAssert.Uniform(rng, rows * channels), hat = KernelAssert.Uniform(rng, rows * channels);
        float[] p = KernelAssert.Uniform(rng, channels), q = KernelAssert.Uniform(rng, channels), k = KernelAssert.Uniform(rng, channels);

        float[] separate = new float[rows * channels], inPlace = (float[])x.Clone();
        BatchNormKernel.ScaleShift(x, rows, channels, p, q, separate);
        BatchNormKernel.ScaleShift(inPlace, rows, channels, p, q, inPlace);
        KernelAssert.BitIdentical(separate, inPlace, "ScaleShift in place");

        float[] dxSeparate = new float[rows * channels], dxInPlace = (float[])dy.Clone();
        BatchNormKernel.InputGradient(dy, hat, rows, channels, p, q, k, dxSeparate);
        BatchNormKernel.InputGradient(dxInPlace, hat, rows, channels, p, q, k, dxInPlace);
        KernelAssert.BitIdentical(dxSeparate, dxInPlace, "InputGradient into dy");
    }

    [Fact]
    public void Buffers_that_are_too_short_are_refused()
    {
        float[] c4 = new float[4];
        Assert.Throws<ArgumentException>(() => BatchNormKernel.SquaredDeviationSums(new float[11], 3, 4, c4, c4));
        Assert.Throws<ArgumentException>(() => BatchNormKernel.ProductSums(new float[12], new float[11], 3, 4, c4));
        Assert.Throws<ArgumentException>(() => BatchNormKernel.Normalize(new float[12], 3, 4, c4, new float[3], c4, c4, new float[12], new float[12]));
        Assert.Throws<ArgumentException>(() => BatchNormKernel.InputGradient(new float[12], new float[12], 3, 4, c4, c4, c4, new float[11]));
        Assert.Throws<ArgumentException>(() => BatchNormKernel.ScaleShift(new float[12], 3, 4, c4, c4, new float[8]));
    }
}
