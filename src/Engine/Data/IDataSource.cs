// What the engine needs from a dataset: gather samples by global id into a float batch and their labels.
// Datasets keep their own storage (MNIST keeps bytes, 4x smaller than floats) and convert on the way in.
namespace Cnn.Engine.Data;

/// <summary>A labelled dataset the engine can gather batches from.</summary>
public interface IDataSource
{
    /// <summary>Number of samples.</summary>
    int Count { get; }

    /// <summary>Shape of one sample.</summary>
    TensorShape SampleShape { get; }

    /// <summary>Writes samples <paramref name="ids"/> into x (ids.Length, SampleShape.Size) and their labels.</summary>
    void Gather(ReadOnlySpan<int> ids, Span<float> x, Span<int> labels);
}

/// <summary>An in-memory float dataset (synthetic data in tests, decoded images).</summary>
public sealed class ArraySource(TensorShape sampleShape, float[] features, int[] labels) : IDataSource
{
    /// <inheritdoc/>
    public int Count => labels.Length;

    /// <inheritdoc/>
    public TensorShape SampleShape => sampleShape;

    /// <inheritdoc/>
    public void Gather(ReadOnlySpan<int> ids, Span<float> x, Span<int> labelsOut)
    {
        int size = sampleShape.Size;
        for (int i = 0; i < ids.Length; i++)
        {
            features.AsSpan(ids[i] * size, size).CopyTo(x.Slice(i * size, size));
            labelsOut[i] = labels[ids[i]];
        }
    }
}
