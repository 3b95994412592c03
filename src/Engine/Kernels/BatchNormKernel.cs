// Batch normalisation over the channels of (rows, channels) row-major data, one pass per kernel instead of a
// TensorPrimitives call per row (a row is only `channels` floats: 32 in seed-resnet, two 512-bit vectors, so the
// per-call overhead dominated). Each element gets exactly the operations of BatchNormReference, in the same order,
// and the column sums accumulate over the rows in order, so the bits do not depend on the vector width.
// AVX-512 takes 16 channels at a time, Vector<float> (8 lanes with AVX2, 4 with ARM64's 128-bit vectors) what is
// left or all of it without AVX-512, the scalar reference the rest.
using System.Numerics;
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
            if (Vector.IsHardwareAccelerated)
            {
                // Four vectors of columns a pass over the rows, as the 512-bit loop takes two: with 4 lanes, 32
                // channels then take 2 passes instead of 8.
                int w = Vector<float>.Count;
                for (; col + 4 * w <= channels; col += 4 * w)
                {
                    float* p = pm + col;
                    Vector<float> m0 = Vector.Load(p), m1 = Vector.Load(p + w), m2 = Vector.Load(p + 2 * w), m3 = Vector.Load(p + 3 * w);
                    Vector<float> s0 = Vector<float>.Zero, s1 = Vector<float>.Zero, s2 = Vector<float>.Zero, s3 = Vector<float>.Zero;
                    for (float* row = px + col, end = row + (long)rows * channels; row < end; row += channels)
                    {
                        Vector<float> d0 = Vector.Load(row) - m0, d1 = Vector.Load(row + w) - m1;
                        Vector<float> d2 = Vector.Load(row + 2 * w) - m2, d3 = Vector.Load(row + 3 * w) - m3;
                        s0 = d0 * d0 + s0;
                        s1 = d1 * d1 + s1;
                        s2 = d2 * d2 + s2;
                        s3 = d3 * d3 + s3;
                    }
                    StoreFour(ps + col, w, s0, s1, s2, s3);
                }
                for (; col + Vector<float>.Count <= channels; col += Vector<float>.Count)
                {
                    Vector<float> m0 = Vector.Load(pm + col), s0 = Vector<float>.Zero;
                    for (float* row = px + col, end = row + (long)rows * channels; row < end; row += channels)
                    {
                        Vector<float> d0 = Vector.Load(row) - m0;
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
            if (Vector.IsHardwareAccelerated)
            {
                int w = Vector<float>.Count;
                for (; col + 4 * w <= channels; col += 4 * w)
                {
                    Vector<float> s0 = Vector<float>.Zero, s1 = Vector<float>.Zero, s2 = Vector<float>.Zero, s3 = Vector<float>.Zero;
                    for (long at = col; at < offset; at += channels)
                    {
                        float* a0 = pa + at, b0 = pb + at;
                        s0 = Vector.Load(a0) * Vector.Load(b0) + s0;
                        s1 = Vector.Load(a0 + w) * Vector.Load(b0 + w) + s1;
                        s2 = Vector.Load(a0 + 2 * w) * Vector.Load(b0 + 2 * w) + s2;
                        s3 = Vector.Load(a0 + 3 * w) * Vector.Load(b0 + 3 * w) + s3;
                    }
                    StoreFour(ps + col, w, s0, s1, s2, s3);
                }
                for (; col + Vector<float>.Count <= channels; col += Vector<float>.Count)
                {
                    Vector<float> s0 = Vector<float>.Zero;
                    for (long at = col; at < offset; at += channels) s0 = Vector.Load(pa + at) * Vector.Load(pb + at) + s0;
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
                if (Vector.IsHardwareAccelerated)
                    for (; j + Vector<float>.Count <= channels; j += Vector<float>.Count)
                    {
                        Vector<float> h = (Vector.Load(px + at + j) - Vector.Load(pm + j)) * Vector.Load(pi + j);
                        h.Store(ph + at + j);
                        (h * Vector.Load(pg + j) + Vector.Load(pb + j)).Store(py + at + j);
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
                if (Vector.IsHardwareAccelerated)
                {
                    var n = new Vector<float>(count);
                    for (; j + Vector<float>.Count <= channels; j += Vector<float>.Count)
                    {
                        Vector<float> t = Vector.Load(pdy + at + j) * n - Vector.Load(pdb + j);
                        ((t - Vector.Load(ph + at + j) * Vector.Load(pdg + j)) * Vector.Load(pk + j)).Store(pdx + at + j);
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
                if (Vector.IsHardwareAccelerated)
                    for (; j + Vector<float>.Count <= channels; j += Vector<float>.Count)
                        (Vector.Load(px + at + j) * Vector.Load(ps + j) + Vector.Load(pt + j)).Store(py + at + j);
                if (j < channels)
                    BatchNormReference.ScaleShift(x.Slice((int)at, channels), scale, shift, y.Slice((int)at, channels), j);
            }
        }
    }

    private static void StoreFour(float* at, int lanes, Vector<float> s0, Vector<float> s1, Vector<float> s2, Vector<float> s3)
    {
        s0.Store(at);
        s1.Store(at + lanes);
        s2.Store(at + 2 * lanes);
        s3.Store(at + 3 * lanes);
    }

    // Every (rows, channels) span must hold rows * channels floats and every per-channel span channels floats.
    private static void Check(int rows, int channels, int shortestData, int shortestPerChannel)
    {
        if (rows < 0 || channels < 1 || shortestData < (long)rows * channels || shortestPerChannel < channels)
            throw new ArgumentException($"batch normalisation of {rows} x {channels} needs {(long)rows * channels} floats of data and {channels} per channel");
    }
}
