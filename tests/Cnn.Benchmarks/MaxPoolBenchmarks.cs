// MaxPool.Forward against MaxPoolReference at seed-cnn's two pooling layers for one leaf of 8 images: after conv1
// (8, 26, 26, 32) -> (8, 13, 13, 32), and after conv2 (8, 11, 11, 64) -> (8, 5, 5, 64), where the odd edge is
// dropped as in Keras.
using BenchmarkDotNet.Attributes;
using Cnn.Engine;
using Cnn.Engine.Kernels;
using Cnn.Engine.Kernels.Reference;

namespace Cnn.Benchmarks;

/// <summary>Max pooling of one seed-cnn leaf.</summary>
public class MaxPoolBenchmarks
{
    private const int Batch = 8, Pool = 2;

    private float[] _x = [];    // (8, size, size, channels)
    private float[] _y = [];    // (8, size / 2, size / 2, channels)
    private int[] _argmax = []; // like y

    /// <summary>The input's height and width and channels: "26x32" (pool1) or "11x64" (pool2).</summary>
    [Params("26x32", "11x64")]
    public string Shape { get; set; } = "26x32";

    private int Size => int.Parse(Shape.Split('x')[0]);
    private int Channels => int.Parse(Shape.Split('x')[1]);

    /// <summary>Fills x with fixed pseudo-random values.</summary>
    [GlobalSetup]
    public void Setup()
    {
        var rng = new Rng(2);
        _x = Enumerable.Range(0, Batch * Size * Size * Channels).Select(_ => rng.NextFloat()).ToArray();
        int outputs = Batch * (Size / Pool) * (Size / Pool) * Channels;
        _y = new float[outputs];
        _argmax = new int[outputs];
    }

    /// <summary>Scalar reference.</summary>
    [Benchmark(Baseline = true)]
    public void ForwardReference() => MaxPoolReference.Forward(_x, Batch, Size, Size, Channels, Pool, _y, _argmax);

    /// <summary>SIMD.</summary>
    [Benchmark]
    public void Forward() => MaxPool.Forward(_x, Batch, Size, Size, Channels, Pool, _y, _argmax);
}
