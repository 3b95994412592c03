// Max pooling over NHWC with a square window equal to its stride (Keras MaxPooling2D defaults, `valid`
// padding: trailing rows and columns that do not fill a window are dropped). Vectorised over channels, which
// are contiguous in NHWC. Ties go to the first element in window order (ky, kx), as in the reference. The
// forward pass records, per output element, the flat index of the winning input so the backward pass is a
// scatter; since windows do not overlap, each input receives at most one gradient.
using System.Runtime.Intrinsics;
using Cnn.Engine.Kernels.Reference;

namespace Cnn.Engine.Kernels;

/// <summary>SIMD max pooling (window = stride = <c>pool</c>).</summary>
public static class MaxPool
{
    /// <summary>
    /// x: (batch, height, width, channels); y and argmax: (batch, height / pool, width / pool, channels).
    /// argmax holds the index into x of each maximum.
    /// </summary>
    public static void Forward(ReadOnlySpan<float> x, int batch, int height, int width, int channels, int pool, Span<float> y, Span<int> argmax)
    {
        if (!Vector512.IsHardwareAccelerated || channels % 16 != 0)
        {
            MaxPoolReference.Forward(x, batch, height, width, channels, pool, y, argmax);
            return;
        }
        int outH = height / pool, outW = width / pool;
        Vector512<int> lane = Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        int o = 0;
        for (int n = 0; n < batch; n++)
            for (int oy = 0; oy < outH; oy++)
                for (int ox = 0; ox < outW; ox++, o += channels)
                    for (int c = 0; c < channels; c += 16)
                    {
                        int first = ((n * height + oy * pool) * width + ox * pool) * channels + c;
                        Vector512<float> best = Vector512.Create(x.Slice(first, 16));
                        Vector512<int> bestIndex = lane + Vector512.Create(first);
                        for (int ky = 0; ky < pool; ky++)
                            for (int kx = 0; kx < pool; kx++)
                            {
                                if (ky == 0 && kx == 0) continue;
                                int at = first + (ky * width + kx) * channels;
                                Vector512<float> v = Vector512.Create(x.Slice(at, 16));
                                Vector512<float> greater = Vector512.GreaterThan(v, best);
                                best = Vector512.ConditionalSelect(greater, v, best);
                                bestIndex = Vector512.ConditionalSelect(greater.AsInt32(), lane + Vector512.Create(at), bestIndex);
                            }
                        best.CopyTo(y.Slice(o + c, 16));
                        bestIndex.CopyTo(argmax.Slice(o + c, 16));
                    }
    }

    /// <summary>dx (the size of x) is overwritten: zero everywhere except dx[argmax[i]] = dy[i].</summary>
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<int> argmax, Span<float> dx)
    {
        dx.Clear();
        for (int i = 0; i < dy.Length; i++) dx[argmax[i]] = dy[i];
    }
}
