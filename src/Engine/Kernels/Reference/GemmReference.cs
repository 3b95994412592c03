// The plain loops that define what the GEMM kernels compute, element by element and in the same order:
// every output starts from its initial value and takes the products one k (or one m) at a time through a
// fused multiply-add. Because IEEE-754 fma is exact per element, the SIMD kernels give the same bits, and
// the tests demand equality, not closeness. Slow by design; used by tests and by machines without SIMD.
namespace Cnn.Engine.Kernels.Reference;

/// <summary>Scalar reference for <see cref="Gemm"/>.</summary>
public static class GemmReference
{
    /// <summary>See <see cref="Gemm.Multiply"/>.</summary>
    public static void Multiply(ReadOnlySpan<float> a, ReadOnlySpan<int> rows, ReadOnlySpan<int> segments, int segmentLength,
        ReadOnlySpan<float> b, int n, Span<float> c, ReadOnlySpan<float> bias, GemmInit init, bool relu)
    {
        int m = rows.Length;
        for (int i = 0; i < m; i++)
        {
            for (int col = 0; col < n; col++)
            {
                float acc = init switch { GemmInit.Zero => 0f, GemmInit.Bias => bias[col], _ => c[i * n + col] };
                int k = 0;
                foreach (int segment in segments)
                {
                    int baseOffset = rows[i] + segment;
                    for (int j = 0; j < segmentLength; j++, k++)
                        acc = MathF.FusedMultiplyAdd(a[baseOffset + j], b[k * n + col], acc);
                }
                c[i * n + col] = relu ? MathF.Max(acc, 0f) : acc;
            }
        }
    }

    /// <summary>See <see cref="Gemm.MultiplyTransposedA"/>.</summary>
    public static void MultiplyTransposedA(ReadOnlySpan<float> a, ReadOnlySpan<int> rows, ReadOnlySpan<int> segments, int segmentLength,
        ReadOnlySpan<float> d, int n, Span<float> c, bool accumulate)
    {
        int k = 0;
        foreach (int segment in segments)
        {
            for (int j = 0; j < segmentLength; j++, k++)
            {
                for (int col = 0; col < n; col++)
                {
                    float acc = accumulate ? c[k * n + col] : 0f;
                    for (int i = 0; i < rows.Length; i++)
                        acc = MathF.FusedMultiplyAdd(a[rows[i] + segment + j], d[i * n + col], acc);
                    c[k * n + col] = acc;
                }
            }
        }
    }

    /// <summary>See <see cref="Gemm.ColumnSums"/>.</summary>
    public static void ColumnSums(ReadOnlySpan<float> d, int m, int n, Span<float> sums)
    {
        for (int col = 0; col < n; col++)
        {
            float acc = 0f;
            for (int i = 0; i < m; i++) acc += d[i * n + col];
            sums[col] = acc;
        }
    }

    /// <summary>See <see cref="Gemm.ScatterAddRows"/>.</summary>
    public static void ScatterAddRows(ReadOnlySpan<float> cols, ReadOnlySpan<int> rows, ReadOnlySpan<int> segments, int segmentLength, Span<float> x)
    {
        int k = segments.Length * segmentLength;
        for (int i = 0; i < rows.Length; i++)
            for (int s = 0; s < segments.Length; s++)
                for (int j = 0; j < segmentLength; j++)
                    x[rows[i] + segments[s] + j] += cols[i * k + s * segmentLength + j];
    }
}
