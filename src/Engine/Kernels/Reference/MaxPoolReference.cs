// Scalar definition of max pooling with window = stride and first-wins ties.
namespace Cnn.Engine.Kernels.Reference;

/// <summary>Scalar reference for <see cref="MaxPool"/>.</summary>
public static class MaxPoolReference
{
    /// <summary>See <see cref="MaxPool.Forward"/>.</summary>
    public static void Forward(ReadOnlySpan<float> x, int batch, int height, int width, int channels, int pool, Span<float> y, Span<int> argmax)
    {
        int outH = height / pool, outW = width / pool;
        int o = 0;
        for (int n = 0; n < batch; n++)
            for (int oy = 0; oy < outH; oy++)
                for (int ox = 0; ox < outW; ox++)
                    for (int c = 0; c < channels; c++, o++)
                    {
                        int bestAt = ((n * height + oy * pool) * width + ox * pool) * channels + c;
                        for (int ky = 0; ky < pool; ky++)
                            for (int kx = 0; kx < pool; kx++)
                            {
                                int at = ((n * height + oy * pool + ky) * width + ox * pool + kx) * channels + c;
                                if (x[at] > x[bestAt]) bestAt = at;
                            }
                        y[o] = x[bestAt];
                        argmax[o] = bestAt;
                    }
    }

    /// <summary>See <see cref="MaxPool.Backward"/>.</summary>
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<int> argmax, Span<float> dx, ReadOnlySpan<float> y = default)
    {
        dx.Clear();
        for (int i = 0; i < dy.Length; i++) dx[argmax[i]] = y.IsEmpty || y[i] > 0f ? dy[i] : 0f;
    }
}
