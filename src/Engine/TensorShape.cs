// The shape of one sample as a layer sees it: (height, width, channels) in NHWC order like Keras, or a flat
// vector of features. The batch dimension is never part of it: buffers are (batch, Size) and the batch size
// of a call travels separately, so one model serves leaves of 8 and inference chunks of 1000 alike.
namespace Cnn.Engine;

/// <summary>The per-sample shape of a tensor: an image (height, width, channels) or a flat vector.</summary>
public readonly record struct TensorShape(int Height, int Width, int Channels, bool IsFlat)
{
    /// <summary>An image-like shape (height, width, channels).</summary>
    public static TensorShape Image(int height, int width, int channels) => new(height, width, channels, false);

    /// <summary>A flat vector of <paramref name="features"/> values.</summary>
    public static TensorShape Flat(int features) => new(1, 1, features, true);

    /// <summary>Number of floats in one sample.</summary>
    public int Size => Height * Width * Channels;

    /// <summary>Keras's notation with the batch dimension as None, e.g. (None, 26, 26, 32).</summary>
    public override string ToString() => IsFlat ? $"(None, {Channels})" : $"(None, {Height}, {Width}, {Channels})";
}
