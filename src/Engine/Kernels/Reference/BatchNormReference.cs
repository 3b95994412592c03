// Scalar definitions of the batch normalisation kernels. Every element is computed with the same operations in
// the same order as in BatchNormKernel (a multiply and an add are two roundings, never a fused multiply-add),
// and column sums run over the rows in order, so the two give the same bits.
namespace Cnn.Engine.Kernels.Reference;

/// <summary>Scalar reference for <see cref="BatchNormKernel"/>; x and the outputs are (rows, channels), row-major.</summary>
public static class BatchNormReference
{
    /// <summary>See <see cref="BatchNormKernel.SquaredDeviationSums"/>; columns from <paramref name="firstColumn"/> on.</summary>
    public static void SquaredDeviationSums(ReadOnlySpan<float> x, int rows, int channels, ReadOnlySpan<float> mean, Span<float> sums, int firstColumn = 0)
    {
        for (int j = firstColumn; j < channels; j++)
        {
            float sum = 0f;
            for (int r = 0; r < rows; r++)
            {
                float d = x[r * channels + j] - mean[j];
                sum = d * d + sum;
            }
            sums[j] = sum;
        }
    }

    /// <summary>See <see cref="BatchNormKernel.ProductSums"/>; columns from <paramref name="firstColumn"/> on.</summary>
    public static void ProductSums(ReadOnlySpan<float> a, ReadOnlySpan<float> b, int rows, int channels, Span<float> sums, int firstColumn = 0)
    {
        for (int j = firstColumn; j < channels; j++)
        {
            float sum = 0f;
            for (int r = 0; r < rows; r++) sum = a[r * channels + j] * b[r * channels + j] + sum;
            sums[j] = sum;
        }
    }

    /// <summary>See <see cref="BatchNormKernel.Normalize"/>; the elements of one row from column <paramref name="from"/> on.</summary>
    public static void Normalize(ReadOnlySpan<float> x, ReadOnlySpan<float> mean, ReadOnlySpan<float> invStd, ReadOnlySpan<float> gamma,
        ReadOnlySpan<float> beta, Span<float> xHat, Span<float> y, int from = 0)
    {
        for (int j = from; j < x.Length; j++)
        {
            float h = (x[j] - mean[j]) * invStd[j];
            xHat[j] = h;
            y[j] = h * gamma[j] + beta[j];
        }
    }

    /// <summary>See <see cref="BatchNormKernel.InputGradient"/>; the elements of one row from column <paramref name="from"/> on.</summary>
    public static void InputGradient(ReadOnlySpan<float> dy, ReadOnlySpan<float> xHat, float rows, ReadOnlySpan<float> dBeta, ReadOnlySpan<float> dGamma,
        ReadOnlySpan<float> k, Span<float> dx, int from = 0)
    {
        for (int j = from; j < dy.Length; j++) dx[j] = (dy[j] * rows - dBeta[j] - xHat[j] * dGamma[j]) * k[j];
    }

    /// <summary>See <see cref="BatchNormKernel.ScaleShift"/>; the elements of one row from column <paramref name="from"/> on.</summary>
    public static void ScaleShift(ReadOnlySpan<float> x, ReadOnlySpan<float> scale, ReadOnlySpan<float> shift, Span<float> y, int from = 0)
    {
        for (int j = from; j < x.Length; j++) y[j] = x[j] * scale[j] + shift[j];
    }
}
