// Gemm (SIMD) against GemmReference (scalar), demanding the same bits. The shapes cover the edges of the
// tiling: row counts that are not a multiple of the 6-row tile, column counts on both sides of the 8-, 16- and
// 64-wide kernels and the scalar tail, k segments of 1, 3, 7 and 96 floats, several segments with gaps
// between them, rows in any order, and the strided rows a convolution makes (stride 1 and 2, 1 to 32
// channels). Every output buffer carries a guard region past its end, compared too, so a kernel that writes
// outside its output fails.
using Cnn.Engine.Kernels;
using Cnn.Engine.Kernels.Reference;
using Xunit;

namespace Cnn.Engine.Tests.Kernels;

public sealed class GemmTests
{
    private const int Guard = 37;
    private const float GuardValue = 12345.678f;

    private static readonly int[] RowCounts = [1, 2, 5, 6, 7, 11, 13, 25, 100];
    private static readonly int[] ColumnCounts = [1, 4, 8, 10, 15, 16, 17, 32, 48, 63, 64, 65, 100, 288];

    /// <summary>An indirect A: A(i, k) = Buffer[Rows[i] + Segments[k / SegmentLength] + k % SegmentLength].</summary>
    private sealed record IndirectA(string Name, float[] Buffer, int[] Rows, int[] Segments, int SegmentLength)
    {
        public int M => Rows.Length;
        public int K => Segments.Length * SegmentLength;
        public override string ToString() => $"{Name} (M={M}, K={K} = {Segments.Length} x {SegmentLength})";
    }

    // A plain row-major (M, K) matrix: one segment per row.
    private static IndirectA Dense(Random rng, int m, int k) =>
        new($"dense", KernelAssert.UniformWithZeros(rng, m * k), Enumerable.Range(0, m).Select(i => i * k).ToArray(), [0], k);

    // Segments separated by gaps of 1 to 5 floats; rows at random offsets in random order (they may overlap or repeat).
    private static IndirectA Gapped(Random rng, int m, int segmentLength, int segmentCount)
    {
        var segments = new int[segmentCount];
        for (int s = 1; s < segmentCount; s++) segments[s] = segments[s - 1] + segmentLength + 1 + rng.Next(5);
        int span = segments[^1] + segmentLength;
        int size = span + 3 * m + 7;
        int[] rows = Enumerable.Range(0, m).Select(_ => rng.Next(size - span + 1)).ToArray();
        return new($"gapped", KernelAssert.UniformWithZeros(rng, size), rows, segments, segmentLength);
    }

    // The rows and segments Conv2D builds for a `valid` convolution of NHWC images (a padded input is the same
    // thing over a bigger image whose border is zero).
    private static IndirectA Convolution(Random rng, int batch, int height, int width, int channels, int kernel, int stride, bool zeroBorder)
    {
        int outH = (height - kernel) / stride + 1, outW = (width - kernel) / stride + 1;
        var rows = new List<int>();
        for (int n = 0; n < batch; n++)
            for (int oy = 0; oy < outH; oy++)
                for (int ox = 0; ox < outW; ox++)
                    rows.Add(((n * height + oy * stride) * width + ox * stride) * channels);
        int[] segments = Enumerable.Range(0, kernel).Select(ky => ky * width * channels).ToArray();
        float[] image = KernelAssert.Uniform(rng, batch * height * width * channels);
        if (zeroBorder)
            for (int n = 0; n < batch; n++)
                for (int y = 0; y < height; y++)
                    for (int x = 0; x < width; x++)
                        if (y == 0 || x == 0 || y == height - 1 || x == width - 1)
                            image.AsSpan(((n * height + y) * width + x) * channels, channels).Clear();
        return new($"conv {batch}x{height}x{width}x{channels} k{kernel} s{stride}{(zeroBorder ? " padded" : "")}",
            image, rows.ToArray(), segments, kernel * channels);
    }

    private static IEnumerable<IndirectA> Layouts(Random rng)
    {
        foreach (int m in RowCounts)
        {
            foreach (int k in new[] { 1, 3, 7, 96 }) yield return Dense(rng, m, k);
            yield return Gapped(rng, m, 1, 4);
            yield return Gapped(rng, m, 3, 3);
            yield return Gapped(rng, m, 7, 2);
            yield return Gapped(rng, m, 96, 3);
        }
    }

    private static IEnumerable<IndirectA> ConvolutionLayouts(Random rng)
    {
        yield return Convolution(rng, 2, 9, 8, 3, 3, 1, zeroBorder: false);   // M = 84
        yield return Convolution(rng, 1, 13, 13, 32, 3, 1, zeroBorder: false); // M = 121, K = 288: seed-cnn conv2 per image
        yield return Convolution(rng, 2, 7, 7, 1, 3, 2, zeroBorder: true);     // M = 18, K = 9
        yield return Convolution(rng, 1, 10, 9, 16, 1, 2, zeroBorder: false);  // M = 25, K = 16
        yield return Convolution(rng, 3, 5, 5, 2, 3, 1, zeroBorder: true);     // M = 27
        yield return Convolution(rng, 1, 8, 8, 5, 3, 2, zeroBorder: true);     // M = 9, K = 45
        yield return Convolution(rng, 2, 13, 13, 8, 3, 1, zeroBorder: true);   // M = 242: several chunks of rows
    }

    private static float[] WithGuard(float[] values)
    {
        var buffer = new float[values.Length + Guard];
        values.CopyTo(buffer, 0);
        buffer.AsSpan(values.Length).Fill(GuardValue);
        return buffer;
    }

    private static void CheckMultiply(Random rng, IndirectA a, int n, GemmInit init, bool relu)
    {
        float[] b = KernelAssert.Uniform(rng, a.K * n);
        float[] bias = init == GemmInit.Bias ? KernelAssert.Uniform(rng, n) : [];
        float[] start = WithGuard(KernelAssert.Uniform(rng, a.M * n, 4f));
        float[] expected = (float[])start.Clone(), actual = (float[])start.Clone();

        GemmReference.Multiply(a.Buffer, a.Rows, a.Segments, a.SegmentLength, b, n, expected, bias, init, relu);
        Gemm.Multiply(a.Buffer, a.Rows, a.Segments, a.SegmentLength, b, n, actual, bias, init, relu);

        KernelAssert.BitIdentical(expected, actual, $"Multiply {a}, N={n}, {init}, relu={relu}");
    }

    private static void CheckMultiplyTransposedA(Random rng, IndirectA a, int n, bool accumulate)
    {
        float[] d = KernelAssert.UniformWithZeros(rng, a.M * n);
        float[] start = WithGuard(KernelAssert.Uniform(rng, a.K * n, 4f));
        float[] expected = (float[])start.Clone(), actual = (float[])start.Clone();

        GemmReference.MultiplyTransposedA(a.Buffer, a.Rows, a.Segments, a.SegmentLength, d, n, expected, accumulate);
        Gemm.MultiplyTransposedA(a.Buffer, a.Rows, a.Segments, a.SegmentLength, d, n, actual, accumulate);

        KernelAssert.BitIdentical(expected, actual, $"MultiplyTransposedA {a}, N={n}, accumulate={accumulate}");
    }

    [Fact]
    public void Gemm_Multiply_gives_the_reference_bits_wherever_B_starts_within_a_cache_line()
    {
        // From Gemm.PackRows rows up, a B that starts off a 64-byte boundary is multiplied from an aligned copy;
        // below that, in place. Each of the 16 float offsets within a cache line must give the reference's bits,
        // on both sides of the threshold, and for widths of every tile kind and the scalar tail.
        var rng = new Random(110);
        foreach (int m in new[] { Gemm.PackRows - 1, Gemm.PackRows, Gemm.PackRows + 7 })
        {
            IndirectA a = Gapped(rng, m, 7, 3);
            foreach (int n in new[] { 8, 16, 32, 64, 65 })
            {
                float[] values = KernelAssert.Uniform(rng, a.K * n);
                float[] bias = KernelAssert.Uniform(rng, n);
                var buffer = new AlignedBuffer(a.K * n + 15);
                for (int offset = 0; offset < 16; offset++)
                {
                    Span<float> b = buffer.Span.Slice(offset, a.K * n);
                    values.CopyTo(b);
                    Assert.Equal(offset == 0, AlignedBuffer.IsAligned(b));
                    float[] start = WithGuard(KernelAssert.Uniform(rng, a.M * n, 4f));
                    float[] expected = (float[])start.Clone(), actual = (float[])start.Clone();
                    GemmReference.Multiply(a.Buffer, a.Rows, a.Segments, a.SegmentLength, values, n, expected, bias, GemmInit.Bias, relu: true);
                    Gemm.Multiply(a.Buffer, a.Rows, a.Segments, a.SegmentLength, b, n, actual, bias, GemmInit.Bias, relu: true);
                    KernelAssert.BitIdentical(expected, actual, $"Multiply {a}, N={n}, B at float {offset} of a cache line");
                    Assert.Equal(values, b.ToArray()); // the copy is Gemm's own; B is left alone
                }
            }
        }
    }

    [Fact]
    public void The_vector_path_matches_the_reference_bit_for_bit_for_both_products()
    {
        // Runs the Vector<float> tiles on this machine by lowering the path; all paths must give the reference's bits,
        // for every start (zero, bias, accumulate) with and without the fused ReLU, and both forms of the A^T B
        // product. Other tests may run GEMMs meanwhile: they then take the lower path too, which must not change
        // their bits. The tiles are as wide as Vector<float>: 8 lanes here, 4 when CI runs these tests again with
        // DOTNET_PreferredVectorBitWidth=128 (as on ARM64).
        if (Gemm.BestPath == Gemm.KernelPath.Scalar) Assert.Fail("this machine has no vectors with fused multiply-add: the vector path cannot be checked here");
        Gemm.KernelPath saved = Gemm.Path;
        Gemm.Path = Gemm.KernelPath.Vector;
        try
        {
            var rng = new Random(109);
            foreach (IndirectA a in Layouts(rng).Concat(ConvolutionLayouts(rng)))
                foreach (int n in ColumnCounts)
                {
                    foreach (GemmInit init in Enum.GetValues<GemmInit>())
                        foreach (bool relu in new[] { false, true })
                            CheckMultiply(rng, a, n, init, relu);
                    foreach (bool accumulate in new[] { false, true })
                        CheckMultiplyTransposedA(rng, a, n, accumulate);
                }
        }
        finally
        {
            Gemm.Path = saved;
        }
    }

    [Fact]
    public void Gemm_Multiply_from_zero_matches_the_reference_bit_for_bit()
    {
        var rng = new Random(101);
        foreach (IndirectA a in Layouts(rng))
            foreach (int n in ColumnCounts)
                foreach (bool relu in new[] { false, true })
                    CheckMultiply(rng, a, n, GemmInit.Zero, relu);
    }

    [Fact]
    public void Gemm_Multiply_from_the_bias_matches_the_reference_bit_for_bit()
    {
        var rng = new Random(102);
        foreach (IndirectA a in Layouts(rng))
            foreach (int n in ColumnCounts)
                foreach (bool relu in new[] { false, true })
                    CheckMultiply(rng, a, n, GemmInit.Bias, relu);
    }

    [Fact]
    public void Gemm_Multiply_accumulating_into_the_output_matches_the_reference_bit_for_bit()
    {
        var rng = new Random(103);
        foreach (IndirectA a in Layouts(rng))
            foreach (int n in ColumnCounts)
                foreach (bool relu in new[] { false, true })
                    CheckMultiply(rng, a, n, GemmInit.Accumulate, relu);
    }

    [Fact]
    public void Gemm_Multiply_over_convolution_rows_matches_the_reference_bit_for_bit()
    {
        var rng = new Random(104);
        foreach (IndirectA a in ConvolutionLayouts(rng))
            foreach (int n in ColumnCounts)
                foreach (GemmInit init in Enum.GetValues<GemmInit>())
                    foreach (bool relu in new[] { false, true })
                        CheckMultiply(rng, a, n, init, relu);
    }

    [Fact]
    public void Gemm_Multiply_with_no_rows_or_no_columns_leaves_the_output_alone()
    {
        var rng = new Random(105);
        IndirectA a = Dense(rng, 4, 3);
        float[] c = WithGuard([]);
        Gemm.Multiply(a.Buffer, [], a.Segments, a.SegmentLength, KernelAssert.Uniform(rng, 3 * 16), 16, c, [], GemmInit.Zero, relu: true);
        Gemm.Multiply(a.Buffer, a.Rows, a.Segments, a.SegmentLength, [], 0, c, [], GemmInit.Zero, relu: true);
        Assert.All(c, v => Assert.Equal(GuardValue, v));
    }

    [Fact]
    public void Gemm_Multiply_with_an_empty_k_range_gives_the_initial_value()
    {
        var rng = new Random(106);
        int m = 7, n = 65;
        int[] rows = Enumerable.Range(0, m).ToArray();
        float[] bias = KernelAssert.Uniform(rng, n);
        float[] expected = WithGuard(new float[m * n]), actual = WithGuard(new float[m * n]);
        GemmReference.Multiply(new float[m], rows, [], 0, [], n, expected, bias, GemmInit.Bias, relu: false);
        Gemm.Multiply(new float[m], rows, [], 0, [], n, actual, bias, GemmInit.Bias, relu: false);
        KernelAssert.BitIdentical(expected, actual, "Multiply with K = 0");
        Assert.Equal(bias[5], actual[3 * n + 5]);
    }

    [Fact]
    public void Gemm_MultiplyTransposedA_overwriting_matches_the_reference_bit_for_bit()
    {
        var rng = new Random(201);
        foreach (IndirectA a in Layouts(rng).Concat(ConvolutionLayouts(rng)))
            foreach (int n in ColumnCounts)
                CheckMultiplyTransposedA(rng, a, n, accumulate: false);
    }

    [Fact]
    public void Gemm_MultiplyTransposedA_accumulating_matches_the_reference_bit_for_bit()
    {
        var rng = new Random(202);
        foreach (IndirectA a in Layouts(rng).Concat(ConvolutionLayouts(rng)))
            foreach (int n in ColumnCounts)
                CheckMultiplyTransposedA(rng, a, n, accumulate: true);
    }

    [Fact]
    public void Gemm_MultiplyTransposedA_over_row_counts_around_its_chunk_boundaries_matches_the_reference_bit_for_bit()
    {
        // The kernel may cut the sum over i into chunks (partial sums stored and reloaded): the fma sequence
        // per element must not change at any chunk boundary.
        var rng = new Random(204);
        foreach (int m in new[] { 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257, 300 })
            foreach (IndirectA a in new[] { Dense(rng, m, 7), Gapped(rng, m, 3, 3), Gapped(rng, m, 96, 1) })
                foreach (int n in new[] { 1, 16, 17, 32, 48, 65 })
                    foreach (bool accumulate in new[] { false, true })
                        CheckMultiplyTransposedA(rng, a, n, accumulate);
    }

    [Fact]
    public void Gemm_MultiplyTransposedA_with_no_rows_zeroes_or_keeps_the_output()
    {
        var rng = new Random(203);
        IndirectA a = Gapped(rng, 1, 7, 2);
        float[] start = WithGuard(KernelAssert.Uniform(rng, a.K * 17));
        float[] overwritten = (float[])start.Clone(), accumulated = (float[])start.Clone();

        Gemm.MultiplyTransposedA(a.Buffer, [], a.Segments, a.SegmentLength, [], 17, overwritten, accumulate: false);
        Gemm.MultiplyTransposedA(a.Buffer, [], a.Segments, a.SegmentLength, [], 17, accumulated, accumulate: true);

        Assert.All(overwritten.Take(a.K * 17), v => Assert.Equal(0f, v));
        Assert.All(overwritten.Skip(a.K * 17), v => Assert.Equal(GuardValue, v));
        KernelAssert.BitIdentical(start, accumulated, "MultiplyTransposedA with M = 0, accumulating");
    }

    [Fact]
    public void Gemm_ColumnSums_matches_the_reference_bit_for_bit_on_every_path()
    {
        // Column blocks of 32 and 16 (AVX-512), of Vector<float> (8 or 4) and single columns; rows up to a
        // convolution's.
        var rng = new Random(301);
        int[] columns = Enumerable.Range(0, 71).Concat([100, 288, 1000]).ToArray();
        Gemm.KernelPath saved = Gemm.Path;
        try
        {
            foreach (Gemm.KernelPath path in new[] { Gemm.BestPath, Gemm.KernelPath.Vector }.Distinct())
            {
                if (path != Gemm.BestPath && Gemm.BestPath == Gemm.KernelPath.Scalar) continue;
                Gemm.Path = path;
                foreach (int m in new[] { 0, 1, 2, 5, 6, 7, 13, 64, 100, 5408 })
                    foreach (int n in m > 1000 ? [32, 64] : columns)
                    {
                        float[] d = KernelAssert.UniformWithZeros(rng, m * n, 3f);
                        float[] expected = WithGuard(KernelAssert.Uniform(rng, n)), actual = (float[])expected.Clone();

                        GemmReference.ColumnSums(d, m, n, expected);
                        Gemm.ColumnSums(d, m, n, actual);

                        KernelAssert.BitIdentical(expected, actual, $"ColumnSums {path} M={m}, N={n}");
                    }
            }
        }
        finally
        {
            Gemm.Path = saved;
        }
    }

    [Fact]
    public void Gemm_ScatterAddRows_matches_the_reference_bit_for_bit_on_every_path()
    {
        var rng = new Random(401);
        Gemm.KernelPath saved = Gemm.Path;
        try
        {
            foreach (Gemm.KernelPath path in new[] { Gemm.BestPath, Gemm.KernelPath.Vector }.Distinct())
            {
                if (path != Gemm.BestPath && Gemm.BestPath == Gemm.KernelPath.Scalar) continue;
                Gemm.Path = path;
                foreach (IndirectA a in Layouts(rng).Concat(ConvolutionLayouts(rng)))
                {
                    float[] cols = KernelAssert.UniformWithZeros(rng, a.M * a.K);
                    float[] expected = WithGuard(KernelAssert.Uniform(rng, a.Buffer.Length)), actual = (float[])expected.Clone();

                    GemmReference.ScatterAddRows(cols, a.Rows, a.Segments, a.SegmentLength, expected);
                    Gemm.ScatterAddRows(cols, a.Rows, a.Segments, a.SegmentLength, actual);

                    KernelAssert.BitIdentical(expected, actual, $"ScatterAddRows {path} {a}");
                }
            }
        }
        finally
        {
            Gemm.Path = saved;
        }
    }
}
