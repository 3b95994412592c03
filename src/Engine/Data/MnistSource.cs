// MNIST-like byte images as an engine data source: pixels scaled to [0, 1] as x / 255 when gathered, labels as
// they are. Keeps the bytes; never holds the whole set as floats.
namespace Cnn.Engine.Data;

/// <summary>A data source over an <see cref="MnistDataset"/>.</summary>
public sealed class MnistSource(MnistDataset dataset) : IDataSource
{
    private readonly int _size = dataset.Rows * dataset.Columns;

    /// <summary>The dataset.</summary>
    public MnistDataset Dataset => dataset;

    /// <inheritdoc/>
    public int Count => dataset.Count;

    /// <inheritdoc/>
    public TensorShape SampleShape => TensorShape.Image(dataset.Rows, dataset.Columns, 1);

    /// <inheritdoc/>
    public void Gather(ReadOnlySpan<int> ids, Span<float> x, Span<int> labels)
    {
        byte[] images = dataset.Images;
        for (int i = 0; i < ids.Length; i++)
        {
            int id = ids[i];
            ReadOnlySpan<byte> src = images.AsSpan(id * _size, _size);
            Span<float> dst = x.Slice(i * _size, _size);
            for (int p = 0; p < _size; p++) dst[p] = src[p] / 255f;
            labels[i] = dataset.Labels[id];
        }
    }
}
