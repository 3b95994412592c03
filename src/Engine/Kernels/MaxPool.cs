// Max pooling over NHWC with a square window equal to its stride (Keras MaxPooling2D defaults, `valid`
// padding: trailing rows and columns that do not fill a window are dropped). Vectorised over channels, which
// are contiguous in NHWC (16 at a time with AVX-512, 8 with AVX2, 4 with 128-bit vectors such as ARM64's; other
// channel counts take the reference path, and each width takes the channel counts the wider ones cannot). Ties go to the first
// element in window order (ky, kx), as in the reference. The forward pass records, per output element, the
// flat index of the winning input. Because windows do not overlap, the backward pass can write every input
// gradient exactly once, choosing dy where the index matches and zero elsewhere: no clearing pass, no scatter.
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
            if (Vector256.IsHardwareAccelerated && channels % 8 == 0) Forward256(x, batch, height, width, channels, pool, y, argmax);
            else if (Vector128.IsHardwareAccelerated && channels % 4 == 0) Forward128(x, batch, height, width, channels, pool, y, argmax);
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
            if (Vector256.IsHardwareAccelerated && channels % 8 == 0) Backward256(dy, argmax, batch, height, width, channels, pool, dx, y);
            else if (Vector128.IsHardwareAccelerated && channels % 4 == 0) Backward128(dy, argmax, batch, height, width, channels, pool, dx, y);
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

    // The same two loops with 8 lanes, for machines with AVX2 but not AVX-512.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Forward256(ReadOnlySpan<float> x, int batch, int height, int width, int channels, int pool, Span<float> y, Span<int> argmax)
    {
        int outH = height / pool, outW = width / pool;
        Vector256<int> lane = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7);
        fixed (float* px = x, py = y)
        fixed (int* pArg = argmax)
        {
            float* yo = py;
            int* ao = pArg;
            for (int n = 0; n < batch; n++)
                for (int oy = 0; oy < outH; oy++)
                    for (int ox = 0; ox < outW; ox++)
                        for (int c = 0; c < channels; c += 8, yo += 8, ao += 8)
                        {
                            int first = ((n * height + oy * pool) * width + ox * pool) * channels + c;
                            Vector256<float> best = Vector256.Load(px + first);
                            Vector256<int> bestIndex = lane + Vector256.Create(first);
                            for (int ky = 0; ky < pool; ky++)
                                for (int kx = 0; kx < pool; kx++)
                                {
                                    if (ky == 0 && kx == 0) continue;
                                    int at = first + (ky * width + kx) * channels;
                                    Vector256<float> v = Vector256.Load(px + at);
                                    Vector256<float> greater = Vector256.GreaterThan(v, best);
                                    best = Vector256.ConditionalSelect(greater, v, best);
                                    bestIndex = Vector256.ConditionalSelect(greater.AsInt32(), lane + Vector256.Create(at), bestIndex);
                                }
                            best.Store(yo);
                            bestIndex.Store(ao);
                        }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Backward256(ReadOnlySpan<float> dy, ReadOnlySpan<int> argmax, int batch, int height, int width, int channels, int pool, Span<float> dx,
        ReadOnlySpan<float> y = default)
    {
        bool mask = !y.IsEmpty;
        int outH = height / pool, outW = width / pool;
        Vector256<int> lane = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7);
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
                        for (int c = 0; c < channels; c += 8, go += 8, ao += 8, yo += mask ? 8 : 0)
                        {
                            int first = ((n * height + oy * pool) * width + ox * pool) * channels + c;
                            Vector256<float> g = Vector256.Load(go);
                            if (mask) g = Vector256.BitwiseAnd(Vector256.GreaterThan(Vector256.Load(yo), Vector256<float>.Zero), g);
                            Vector256<int> winner = Vector256.Load(ao);
                            for (int ky = 0; ky < pool; ky++)
                                for (int kx = 0; kx < pool; kx++)
                                {
                                    int at = first + (ky * width + kx) * channels;
                                    Vector256<int> hit = Vector256.Equals(winner, lane + Vector256.Create(at));
                                    Vector256.BitwiseAnd(hit.AsSingle(), g).Store(pdx + at);
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

    // The same two loops with 4 lanes, for machines with 128-bit vectors only (ARM64's NEON).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Forward128(ReadOnlySpan<float> x, int batch, int height, int width, int channels, int pool, Span<float> y, Span<int> argmax)
    {
        int outH = height / pool, outW = width / pool;
        Vector128<int> lane = Vector128.Create(0, 1, 2, 3);
        fixed (float* px = x, py = y)
        fixed (int* pArg = argmax)
        {
            float* yo = py;
            int* ao = pArg;
            for (int n = 0; n < batch; n++)
                for (int oy = 0; oy < outH; oy++)
                    for (int ox = 0; ox < outW; ox++)
                        for (int c = 0; c < channels; c += 4, yo += 4, ao += 4)
                        {
                            int first = ((n * height + oy * pool) * width + ox * pool) * channels + c;
                            Vector128<float> best = Vector128.Load(px + first);
                            Vector128<int> bestIndex = lane + Vector128.Create(first);
                            for (int ky = 0; ky < pool; ky++)
                                for (int kx = 0; kx < pool; kx++)
                                {
                                    if (ky == 0 && kx == 0) continue;
                                    int at = first + (ky * width + kx) * channels;
                                    Vector128<float> v = Vector128.Load(px + at);
                                    Vector128<float> greater = Vector128.GreaterThan(v, best);
                                    best = Vector128.ConditionalSelect(greater, v, best);
                                    bestIndex = Vector128.ConditionalSelect(greater.AsInt32(), lane + Vector128.Create(at), bestIndex);
                                }
                            best.Store(yo);
                            bestIndex.Store(ao);
                        }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Backward128(ReadOnlySpan<float> dy, ReadOnlySpan<int> argmax, int batch, int height, int width, int channels, int pool, Span<float> dx,
        ReadOnlySpan<float> y = default)
    {
        bool mask = !y.IsEmpty;
        int outH = height / pool, outW = width / pool;
        Vector128<int> lane = Vector128.Create(0, 1, 2, 3);
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
                        for (int c = 0; c < channels; c += 4, go += 4, ao += 4, yo += mask ? 4 : 0)
                        {
                            int first = ((n * height + oy * pool) * width + ox * pool) * channels + c;
                            Vector128<float> g = Vector128.Load(go);
                            if (mask) g = Vector128.BitwiseAnd(Vector128.GreaterThan(Vector128.Load(yo), Vector128<float>.Zero), g);
                            Vector128<int> winner = Vector128.Load(ao);
                            for (int ky = 0; ky < pool; ky++)
                                for (int kx = 0; kx < pool; kx++)
                                {
                                    int at = first + (ky * width + kx) * channels;
                                    Vector128<int> hit = Vector128.Equals(winner, lane + Vector128.Create(at));
                                    Vector128.BitwiseAnd(hit.AsSingle(), g).Store(pdx + at);
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
