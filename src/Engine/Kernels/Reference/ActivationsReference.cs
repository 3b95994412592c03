// Scalar definitions of the activation kernels.
namespace Cnn.Engine.Kernels.Reference;

/// <summary>Scalar reference for <see cref="Activations"/>.</summary>
public static class ActivationsReference
{
    /// <summary>See <see cref="Activations.ReluBackward"/>.</summary>
    public static void ReluBackward(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx)
    {
        for (int i = 0; i < y.Length; i++) dx[i] = y[i] > 0f ? dy[i] : 0f;
    }
}
