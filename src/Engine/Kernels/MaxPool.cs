// Max pooling over NHWC with a square window equal to its stride (Keras MaxPooling2D defaults, `valid`
// padding: trailing rows and columns that do not fill a window are dropped). Vectorised over channels, which
// are contiguous in NHWC (16 at a time with AVX-512, else Vector<float>: 8 with AVX2, 4 with 128-bit vectors such as
// ARM64's; other channel counts take the reference path). Ties go to the first
// element in window order (ky, kx), as in the reference. The forward pass records, per output element, the
// flat index of the winning input. Because windows do not overlap, the backward pass can write every input
// gradient exactly once, choosing dy where the index matches and zero elsewhere: no clearing pass, no scatter.
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Cnn.Engine.Kernels.Reference;

namespace Cnn.Engine.Kernels;

/// <summary>SIMD max pooling (window = stride = <c>pool</c>).</summary>
public static unsafe class MaxPool
{
    /// <summary>
    /// x: (batch, height, width, channels); y and argmax: (batch, height / pool, width / pool, channels).
    /// argmax holds the index into x of each maximum.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    public static void Forward(ReadOnlySpan<float> x, int batch, int height, int width, int channels, int pool, Span<float> y, Span<int> argmax)
    {
        if (!Vector512.IsHardwareAccelerated || channels % 16 != 0)
        {
            if (Vector.IsHardwareAccelerated && channels % Vector<float>.Count == 0) ForwardVector(x, batch, height, width, channels, pool, y, argmax);
            else MaxPoolReference.Forward(x, batch, height, width, channels, pool, y, argmax);
            return;
        }
        int outH = height / pool, outW = width / pool;
        Vector512<int> lane = Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        fixed (float* px = x, py = y)
        fixed (int* pArg = argmax)
        {
            float* yo = py;
            int* ao = pArg;
            for (int n = 0; n < batch; n++)
                for (int oy = 0; oy < outH; oy++)
                    for (int ox = 0; ox < outW; ox++)
                        for (int c = 0; c < channels; c += 16, yo += 16, ao += 16)
                        {
                            int first = ((n * height + oy * pool) * width + ox * pool) * channels + c;
                            Vector512<float> best = Vector512.Load(px + first);
                            Vector512<int> bestIndex = lane + Vector512.Create(first);
                            for (int ky = 0; ky < pool; ky++)
                                for (int kx = 0; kx < pool; kx++)
                                {
                                    if (ky == 0 && kx == 0) continue;
                                    int at = first + (ky * width + kx) * channels;
                                    Vector512<float> v = Vector512.Load(px + at);
                                    Vector512<float> greater = Vector512.GreaterThan(v, best);
                                    best = Vector512.ConditionalSelect(greater, v, best);
                                    bestIndex = Vector512.ConditionalSelect(greater.AsInt32(), lane + Vector512.Create(at), bestIndex);
                                }
                            best.Store(yo);
                            bestIndex.Store(ao);
                        }
        }
    }

    /// <summary>
    /// dx (batch, height, width, channels) is overwritten: dx[argmax[i]] = dy[i], zero elsewhere. The shape
    /// arguments are those of x. When <paramref name="y"/> (the pooled output) is given, dy[i] passes only where
    /// y[i] &gt; 0: the ReLU backward of the layer before, fused, for pooling that follows a ReLU.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<int> argmax, int batch, int height, int width, int channels, int pool, Span<float> dx,
        ReadOnlySpan<float> y = default)
    {
        if (!Vector512.IsHardwareAccelerated || channels % 16 != 0)
        {
            if (Vector.IsHardwareAccelerated && channels % Vector<float>.Count == 0) BackwardVector(dy, argmax, batch, height, width, channels, pool, dx, y);
            else MaxPoolReference.Backward(dy, argmax, dx, y);
            return;
        }
        bool mask = !y.IsEmpty;
        int outH = height / pool, outW = width / pool;
        Vector512<int> lane = Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        fixed (float* pdy = dy, pdx = dx, py = y)
        fixed (int* pArg = argmax)
        {
            float* go = pdy, yo = py;
            int* ao = pArg;
            for (int n = 0; n < batch; n++)
            {
                for (int oy = 0; oy < outH; oy++)
                {
                    for (int ox = 0; ox < outW; ox++)
                        for (int c = 0; c < channels; c += 16, go += 16, ao += 16, yo += mask ? 16 : 0)
                        {
                            int first = ((n * height + oy * pool) * width + ox * pool) * channels + c;
                            Vector512<float> g = Vector512.Load(go);
                            if (mask) g = Vector512.BitwiseAnd(Vector512.GreaterThan(Vector512.Load(yo), Vector512<float>.Zero), g);
                            Vector512<int> winner = Vector512.Load(ao);
                            for (int ky = 0; ky < pool; ky++)
                                for (int kx = 0; kx < pool; kx++)
                                {
                                    int at = first + (ky * width + kx) * channels;
                                    Vector512<int> hit = Vector512.Equals(winner, lane + Vector512.Create(at));
                                    Vector512.BitwiseAnd(hit.AsSingle(), g).Store(pdx + at);
                                }
                        }
                    // Columns past the last full window, in the rows the windows cover.
                    int tail = (width - outW * pool) * channels;
                    if (tail > 0)
                        for (int ky = 0; ky < pool; ky++)
                            new Span<float>(pdx + ((n * height + oy * pool + ky) * width + outW * pool) * channels, tail).Clear();
                }
                // Rows past the last full window.
                int rest = (height - outH * pool) * width * channels;
                if (rest > 0) new Span<float>(pdx + (n * height + outH * pool) * width * channels, rest).Clear();
            }
        }
    }
    // The same two loops with Vector<float>: 8 lanes with AVX2, 4 with 128-bit vectors (ARM64's NEON).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ForwardVector(ReadOnlySpan<float> x, int batch, int height, int width, int channels, int pool, Span<float> y, Span<int> argmax)
    {
        int outH = height / pool, outW = width / pool;
        Vector<int> lane = Vector<int>.Indices;
        int lanes = Vector<float>.Count;
        fixed (float* px = x, py = y)
        fixed (int* pArg = argmax)
        {
            float* yo = py;
            int* ao = pArg;
            for (int n = 0; n < batch; n++)
                for (int oy = 0; oy < outH; oy++)
                    for (int ox = 0; ox < outW; ox++)
                        for (int c = 0; c < channels; c += lanes, yo += lanes, ao += lanes)
                        {
                            int first = ((n * height + oy * pool) * width + ox * pool) * channels + c;
                            Vector<float> best = Vector.Load(px + first);
                            Vector<int> bestIndex = lane + new Vector<int>(first);
                            for (int ky = 0; ky < pool; ky++)
                                for (int kx = 0; kx < pool; kx++)
                                {
                                    if (ky == 0 && kx == 0) continue;
                                    int at = first + (ky * width + kx) * channels;
                                    Vector<float> v = Vector.Load(px + at);
                                    Vector<int> greater = Vector.GreaterThan(v, best);
                                    best = Vector.ConditionalSelect(greater, v, best);
                                    bestIndex = Vector.ConditionalSelect(greater, lane + new Vector<int>(at), bestIndex);
                                }
                            best.Store(yo);
                            bestIndex.Store(ao);
                        }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void BackwardVector(ReadOnlySpan<float> dy, ReadOnlySpan<int> argmax, int batch, int height, int width, int channels, int pool, Span<float> dx,
        ReadOnlySpan<float> y = default)
    {
        bool mask = !y.IsEmpty;
        int outH = height / pool, outW = width / pool;
        Vector<int> lane = Vector<int>.Indices;
        int lanes = Vector<float>.Count;
        fixed (float* pdy = dy, pdx = dx, py = y)
        fixed (int* pArg = argmax)
        {
            float* go = pdy, yo = py;
            int* ao = pArg;
            for (int n = 0; n < batch; n++)
            {
                for (int oy = 0; oy < outH; oy++)
                {
                    for (int ox = 0; ox < outW; ox++)
                        for (int c = 0; c < channels; c += lanes, go += lanes, ao += lanes, yo += mask ? lanes : 0)
                        {
                            int first = ((n * height + oy * pool) * width + ox * pool) * channels + c;
                            Vector<float> g = Vector.Load(go);
                            if (mask) g = Vector.BitwiseAnd(Vector.AsVectorSingle(Vector.GreaterThan(Vector.Load(yo), Vector<float>.Zero)), g);
                            Vector<int> winner = Vector.Load(ao);
                            for (int ky = 0; ky < pool; ky++)
                                for (int kx = 0; kx < pool; kx++)
                                {
                                    int at = first + (ky * width + kx) * channels;
                                    Vector<int> hit = Vector.Equals(winner, lane + new Vector<int>(at));
                                    Vector.BitwiseAnd(Vector.AsVectorSingle(hit), g).Store(pdx + at);
                                }
                        }
                    // Columns past the last full window, in the rows the windows cover.
                    int tail = (width - outW * pool) * channels;
                    if (tail > 0)
                        for (int ky = 0; ky < pool; ky++)
                            new Span<float>(pdx + ((n * height + oy * pool + ky) * width + outW * pool) * channels, tail).Clear();
                }
                // Rows past the last full window.
                int rest = (height - outH * pool) * width * channels;
                if (rest > 0) new Span<float>(pdx + (n * height + outH * pool) * width * channels, rest).Clear();
            }
        }
    }
}
