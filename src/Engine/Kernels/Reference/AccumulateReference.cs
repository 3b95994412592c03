// Scalar definition of Accumulate.Add.
namespace Cnn.Engine.Kernels.Reference;

/// <summary>Scalar reference for <see cref="Accumulate"/>.</summary>
public static class AccumulateReference
{
    /// <summary>See <see cref="Accumulate.Add"/>.</summary>
    public static void Add(Span<float> target, ReadOnlySpan<float> add)
    {
        if (add.Length != target.Length) throw new ArgumentException($"adding {add.Length} floats to {target.Length}", nameof(add));
        for (int i = 0; i < target.Length; i++) target[i] += add[i];
    }
}
