// Batch normalisation over the channels of (rows, channels) row-major data, one pass per kernel instead of a
// TensorPrimitives call per row (a row is only `channels` floats: 32 in seed-resnet, two 512-bit vectors, so the
// per-call overhead dominated). Each element gets exactly the operations of BatchNormReference, in the same order,
// and the column sums accumulate over the rows in order, so the bits do not depend on the vector width.
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Cnn.Engine.Kernels.Reference;

namespace Cnn.Engine.Kernels;

/// <summary>SIMD batch normalisation kernels (see file header).</summary>
public static unsafe class BatchNormKernel
{
    /// <summary>sums[j] = Σ over rows, in order, of (x[r, j] - mean[j])².</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    public static void SquaredDeviationSums(ReadOnlySpan<float> x, int rows, int channels, ReadOnlySpan<float> mean, Span<float> sums)
    {
        Check(rows, channels, x.Length, Math.Min(mean.Length, sums.Length));
        int col = 0;
        fixed (float* px = x, pm = mean, ps = sums)
        {
            if (Vector512.IsHardwareAccelerated)
            {
                for (; col + 32 <= channels; col += 32)
                {
                    Vector512<float> m0 = Vector512.Load(pm + col), m1 = Vector512.Load(pm + col + 16);
                    Vector512<float> s0 = Vector512<float>.Zero, s1 = Vector512<float>.Zero;
                    for (float* row = px + col, end = row + (long)rows * channels; row < end; row += channels)
                    {
                        Vector512<float> d0 = Vector512.Load(row) - m0, d1 = Vector512.Load(row + 16) - m1;
                        s0 = d0 * d0 + s0;
                        s1 = d1 * d1 + s1;
                    }
                    s0.Store(ps + col);
                    s1.Store(ps + col + 16);
                }
                for (; col + 16 <= channels; col += 16)
                {
                    Vector512<float> m0 = Vector512.Load(pm + col), s0 = Vector512<float>.Zero;
                    for (float* row = px + col, end = row + (long)rows * channels; row < end; row += channels)
                    {
                        Vector512<float> d0 = Vector512.Load(row) - m0;
                        s0 = d0 * d0 + s0;
                    }
                    s0.Store(ps + col);
                }
            }
            if (Vector256.IsHardwareAccelerated)
            {
                for (; col + 8 <= channels; col += 8)
                {
                    Vector256<float> m0 = Vector256.Load(pm + col), s0 = Vector256<float>.Zero;
                    for (float* row = px + col, end = row + (long)rows * channels; row < end; row += channels)
                    {
                        Vector256<float> d0 = Vector256.Load(row) - m0;
                        s0 = d0 * d0 + s0;
                    }
                    s0.Store(ps + col);
                }
            }
        }
        BatchNormReference.SquaredDeviationSums(x, rows, channels, mean, sums, col);
    }

    /// <summary>sums[j] = Σ over rows, in order, of a[r, j] * b[r, j].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    public static void ProductSums(ReadOnlySpan<float> a, ReadOnlySpan<float> b, int rows, int channels, Span<float> sums)
    {
        Check(rows, channels, Math.Min(a.Length, b.Length), sums.Length);
        int col = 0;
        long offset = (long)rows * channels;
        fixed (float* pa = a, pb = b, ps = sums)
        {
            if (Vector512.IsHardwareAccelerated)
            {
                for (; col + 32 <= channels; col += 32)
                {
                    Vector512<float> s0 = Vector512<float>.Zero, s1 = Vector512<float>.Zero;
                    for (long at = col; at < offset; at += channels)
                    {
                        s0 = Vector512.Load(pa + at) * Vector512.Load(pb + at) + s0;
                        s1 = Vector512.Load(pa + at + 16) * Vector512.Load(pb + at + 16) + s1;
                    }
                    s0.Store(ps + col);
                    s1.Store(ps + col + 16);
                }
                for (; col + 16 <= channels; col += 16)
                {
                    Vector512<float> s0 = Vector512<float>.Zero;
                    for (long at = col; at < offset; at += channels) s0 = Vector512.Load(pa + at) * Vector512.Load(pb + at) + s0;
                    s0.Store(ps + col);
                }
            }
            if (Vector256.IsHardwareAccelerated)
            {
                for (; col + 8 <= channels; col += 8)
                {
                    Vector256<float> s0 = Vector256<float>.Zero;
                    for (long at = col; at < offset; at += channels) s0 = Vector256.Load(pa + at) * Vector256.Load(pb + at) + s0;
                    s0.Store(ps + col);
                }
            }
        }
        BatchNormReference.ProductSums(a, b, rows, channels, sums, col);
    }

    /// <summary>Per element: xHat = (x - mean[j]) * invStd[j]; y = xHat * gamma[j] + beta[j].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    public static void Normalize(ReadOnlySpan<float> x, int rows, int channels, ReadOnlySpan<float> mean, ReadOnlySpan<float> invStd,
        ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, Span<float> xHat, Span<float> y)
    {
        Check(rows, channels, TensorPrimitives.Min<int>([x.Length, xHat.Length, y.Length]), TensorPrimitives.Min<int>([mean.Length, invStd.Length, gamma.Length, beta.Length]));
        fixed (float* px = x, pm = mean, pi = invStd, pg = gamma, pb = beta, ph = xHat, py = y)
        {
            for (int r = 0; r < rows; r++)
            {
                long at = (long)r * channels;
                int j = 0;
                if (Vector512.IsHardwareAccelerated)
                    for (; j + 16 <= channels; j += 16)
                    {
                        Vector512<float> h = (Vector512.Load(px + at + j) - Vector512.Load(pm + j)) * Vector512.Load(pi + j);
                        h.Store(ph + at + j);
                        (h * Vector512.Load(pg + j) + Vector512.Load(pb + j)).Store(py + at + j);
                    }
                if (Vector256.IsHardwareAccelerated)
                    for (; j + 8 <= channels; j += 8)
                    {
                        Vector256<float> h = (Vector256.Load(px + at + j) - Vector256.Load(pm + j)) * Vector256.Load(pi + j);
                        h.Store(ph + at + j);
                        (h * Vector256.Load(pg + j) + Vector256.Load(pb + j)).Store(py + at + j);
                    }
                if (j < channels)
                    BatchNormReference.Normalize(x.Slice((int)at, channels), mean, invStd, gamma, beta, xHat.Slice((int)at, channels), y.Slice((int)at, channels), j);
            }
        }
    }

    /// <summary>
    /// The input gradient, per element: dx = (dy * rows - dBeta[j] - xHat * dGamma[j]) * k[j], each operation rounded in
    /// that order. dx may alias dy.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    public static void InputGradient(ReadOnlySpan<float> dy, ReadOnlySpan<float> xHat, int rows, int channels, ReadOnlySpan<float> dBeta,
        ReadOnlySpan<float> dGamma, ReadOnlySpan<float> k, Span<float> dx)
    {
        Check(rows, channels, TensorPrimitives.Min<int>([dy.Length, xHat.Length, dx.Length]), TensorPrimitives.Min<int>([dBeta.Length, dGamma.Length, k.Length]));
        float count = rows;
        fixed (float* pdy = dy, ph = xHat, pdb = dBeta, pdg = dGamma, pk = k, pdx = dx)
        {
            for (int r = 0; r < rows; r++)
            {
                long at = (long)r * channels;
                int j = 0;
                if (Vector512.IsHardwareAccelerated)
                {
                    var n = Vector512.Create(count);
                    for (; j + 16 <= channels; j += 16)
                    {
                        Vector512<float> t = Vector512.Load(pdy + at + j) * n - Vector512.Load(pdb + j);
                        ((t - Vector512.Load(ph + at + j) * Vector512.Load(pdg + j)) * Vector512.Load(pk + j)).Store(pdx + at + j);
                    }
                }
                if (Vector256.IsHardwareAccelerated)
                {
                    var n = Vector256.Create(count);
                    for (; j + 8 <= channels; j += 8)
                    {
                        Vector256<float> t = Vector256.Load(pdy + at + j) * n - Vector256.Load(pdb + j);
                        ((t - Vector256.Load(ph + at + j) * Vector256.Load(pdg + j)) * Vector256.Load(pk + j)).Store(pdx + at + j);
                    }
                }
                if (j < channels)
                    BatchNormReference.InputGradient(dy.Slice((int)at, channels), xHat.Slice((int)at, channels), count, dBeta, dGamma, k, dx.Slice((int)at, channels), j);
            }
        }
    }

    /// <summary>Inference, per element: y = x * scale[j] + shift[j]. y may alias x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    public static void ScaleShift(ReadOnlySpan<float> x, int rows, int channels, ReadOnlySpan<float> scale, ReadOnlySpan<float> shift, Span<float> y)
    {
        Check(rows, channels, Math.Min(x.Length, y.Length), Math.Min(scale.Length, shift.Length));
        fixed (float* px = x, ps = scale, pt = shift, py = y)
        {
            for (int r = 0; r < rows; r++)
            {
                long at = (long)r * channels;
                int j = 0;
                if (Vector512.IsHardwareAccelerated)
                    for (; j + 16 <= channels; j += 16)
                        (Vector512.Load(px + at + j) * Vector512.Load(ps + j) + Vector512.Load(pt + j)).Store(py + at + j);
                if (Vector256.IsHardwareAccelerated)
                    for (; j + 8 <= channels; j += 8)
                        (Vector256.Load(px + at + j) * Vector256.Load(ps + j) + Vector256.Load(pt + j)).Store(py + at + j);
                if (j < channels)
                    BatchNormReference.ScaleShift(x.Slice((int)at, channels), scale, shift, y.Slice((int)at, channels), j);
            }
        }
    }

    // Every (rows, channels) span must hold rows * channels floats and every per-channel span channels floats.
    private static void Check(int rows, int channels, int shortestData, int shortestPerChannel)
    {
        if (rows < 0 || channels < 1 || shortestData < (long)rows * channels || shortestPerChannel < channels)
            throw new ArgumentException($"batch normalisation of {rows} x {channels} needs {(long)rows * channels} floats of data and {channels} per channel");
    }
}
