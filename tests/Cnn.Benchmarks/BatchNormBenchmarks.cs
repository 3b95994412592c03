// BatchNormKernel against BatchNormReference and against the per-row TensorPrimitives calls it replaced, at
// seed-resnet's two batch normalisation shapes for one leaf of 8 images: 8 x 28 x 28 and 8 x 14 x 14 rows of 32
// channels. One operation is the training work the kernels do for one layer: the variance, x-hat and y, dGamma
// and dx (the column sums of the mean and dBeta are Gemm.ColumnSums in all three and left out).
using System.Numerics.Tensors;
using BenchmarkDotNet.Attributes;
using Cnn.Engine;
using Cnn.Engine.Kernels;
using Cnn.Engine.Kernels.Reference;

namespace Cnn.Benchmarks;

/// <summary>Batch normalisation of one seed-resnet leaf, forward and backward.</summary>
public class BatchNormBenchmarks
{
    private const int Batch = 8, Channels = 32;

    private float[] _x = [], _dy = [], _xHat = [], _y = [], _dx = [];
    private float[] _mean = [], _variance = [], _invStd = [], _gamma = [], _beta = [], _dGamma = [], _dBeta = [], _k = [], _t = [];

    /// <summary>Height and width of the feature maps: 28 (first block) or 14 (second).</summary>
    [Params(28, 14)]
    public int Size { get; set; } = 28;

    private int Rows => Batch * Size * Size;

    /// <summary>Fills the inputs with fixed pseudo-random values.</summary>
    [GlobalSetup]
    public void Setup()
    {
        var rng = new Rng(3);
        float[] Fill(int n) => Enumerable.Range(0, n).Select(_ => rng.NextFloat()).ToArray();
        _x = Fill(Rows * Channels);
        _dy = Fill(Rows * Channels);
        (_xHat, _y, _dx) = (new float[Rows * Channels], new float[Rows * Channels], new float[Rows * Channels]);
        (_mean, _gamma, _beta, _dBeta, _k) = (Fill(Channels), Fill(Channels), Fill(Channels), Fill(Channels), Fill(Channels));
        (_variance, _invStd, _dGamma, _t) = (new float[Channels], Fill(Channels), new float[Channels], new float[Channels]);
    }

    /// <summary>The per-row TensorPrimitives calls of the layer before the kernels (same bits).</summary>
    [Benchmark(Baseline = true)]
    public void PerRowTensorPrimitives()
    {
        int c = Channels;
        Span<float> diff = _t;
        _variance.AsSpan().Clear();
        for (int r = 0; r < Rows; r++)
        {
            TensorPrimitives.Subtract(_x.AsSpan(r * c, c), _mean, diff);
            TensorPrimitives.MultiplyAdd(diff, diff, _variance, _variance);
        }
        for (int r = 0; r < Rows; r++)
        {
            Span<float> xHat = _xHat.AsSpan(r * c, c);
            TensorPrimitives.Subtract(_x.AsSpan(r * c, c), _mean, xHat);
            TensorPrimitives.Multiply(xHat, _invStd, xHat);
            TensorPrimitives.MultiplyAdd(xHat, _gamma, _beta, _y.AsSpan(r * c, c));
        }
        _dGamma.AsSpan().Clear();
        for (int r = 0; r < Rows; r++) TensorPrimitives.MultiplyAdd(_dy.AsSpan(r * c, c), _xHat.AsSpan(r * c, c), _dGamma, _dGamma);
        for (int r = 0; r < Rows; r++)
        {
            Span<float> dxr = _dx.AsSpan(r * c, c), t = _t;
            TensorPrimitives.Multiply(_dy.AsSpan(r * c, c), Rows, t);
            TensorPrimitives.Subtract(t, _dBeta, t);
            TensorPrimitives.Multiply(_xHat.AsSpan(r * c, c), _dGamma, dxr);
            TensorPrimitives.Subtract(t, dxr, t);
            TensorPrimitives.Multiply(t, _k, dxr);
        }
    }

    /// <summary>Scalar reference.</summary>
    [Benchmark]
    public void Reference()
    {
        int c = Channels;
        BatchNormReference.SquaredDeviationSums(_x, Rows, c, _mean, _variance);
        for (int r = 0; r < Rows; r++)
            BatchNormReference.Normalize(_x.AsSpan(r * c, c), _mean, _invStd, _gamma, _beta, _xHat.AsSpan(r * c, c), _y.AsSpan(r * c, c));
        BatchNormReference.ProductSums(_dy, _xHat, Rows, c, _dGamma);
        for (int r = 0; r < Rows; r++)
            BatchNormReference.InputGradient(_dy.AsSpan(r * c, c), _xHat.AsSpan(r * c, c), Rows, _dBeta, _dGamma, _k, _dx.AsSpan(r * c, c));
    }

    /// <summary>SIMD kernels.</summary>
    [Benchmark]
    public void Kernel()
    {
        BatchNormKernel.SquaredDeviationSums(_x, Rows, Channels, _mean, _variance);
        BatchNormKernel.Normalize(_x, Rows, Channels, _mean, _invStd, _gamma, _beta, _xHat, _y);
        BatchNormKernel.ProductSums(_dy, _xHat, Rows, Channels, _dGamma);
        BatchNormKernel.InputGradient(_dy, _xHat, Rows, Channels, _dBeta, _dGamma, _k, _dx);
    }
}
