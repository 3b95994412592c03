// Gemm.Multiply and Gemm.MultiplyTransposedA against GemmReference at seed-cnn's conv2 for one leaf of 8 images:
// input x (8, 13, 13, 32), 3x3 kernel (3, 3, 32, 64), valid padding, so M = 8 * 11 * 11 = 968 output pixels,
// K = 288 read as 3 segments (one per kernel row) of 96 contiguous floats, N = 64 filters. This is the layer
// that costs about 80% of a training step. Forward is Multiply with bias and fused ReLU; the kernel gradient is
// MultiplyTransposedA of the same rows with dy (968, 64). The SIMD products run on every path this machine can
// take (Path), so an AVX-512 machine also measures the Vector<float> tiles of AVX2 machines; with
// DOTNET_PreferredVectorBitWidth=128 set, those tiles have ARM64's 4 lanes.
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using Cnn.Engine;
using Cnn.Engine.Kernels;
using Cnn.Engine.Kernels.Reference;

namespace Cnn.Benchmarks;

/// <summary>The conv2 GEMMs of one seed-cnn leaf.</summary>
[MemoryDiagnoser]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
public class GemmBenchmarks
{
    private const int Batch = 8, Height = 13, Width = 13, Channels = 32, Kernel = 3, Filters = 64;
    private const int OutHeight = Height - Kernel + 1, OutWidth = Width - Kernel + 1;
    private const int Pixels = Batch * OutHeight * OutWidth;      // M = 968
    private const int SegmentLength = Kernel * Channels;          // 96
    private const int K = Kernel * SegmentLength;                 // 288

    private float[] _x = [];       // (8, 13, 13, 32)
    private int[] _rows = [];      // (968): offset of each output pixel's top-left tap in x
    private int[] _segments = [];  // (3): offset of kernel row ky from a pixel's top-left tap
    private float[] _kernel = [];  // (288, 64) = (3, 3, 32, 64)
    private float[] _bias = [];    // (64)
    private float[] _dy = [];      // (968, 64)
    private float[] _y = [];       // (968, 64)
    private float[] _dKernel = []; // (288, 64)

    /// <summary>The kernel path of the SIMD products (the reference ignores it).</summary>
    [ParamsSource(nameof(Paths))]
    public Gemm.KernelPath Path { get; set; }

    /// <summary>The SIMD paths this machine runs: its best and every narrower one.</summary>
    public static IEnumerable<Gemm.KernelPath> Paths =>
        Enum.GetValues<Gemm.KernelPath>().Where(p => p != Gemm.KernelPath.Scalar && p <= Gemm.BestPath);

    /// <summary>Fills the buffers with fixed pseudo-random values.</summary>
    [GlobalSetup]
    public void Setup()
    {
        Gemm.Path = Path;
        var rng = new Rng(1);
        _x = Enumerable.Range(0, Batch * Height * Width * Channels).Select(_ => rng.NextFloat()).ToArray();
        _kernel = Enumerable.Range(0, K * Filters).Select(_ => rng.NextFloat() - 0.5f).ToArray();
        _bias = Enumerable.Range(0, Filters).Select(_ => rng.NextFloat() - 0.5f).ToArray();
        _dy = Enumerable.Range(0, Pixels * Filters).Select(_ => rng.NextFloat() - 0.5f).ToArray();
        _y = new float[Pixels * Filters];
        _dKernel = new float[K * Filters];
        _segments = Enumerable.Range(0, Kernel).Select(ky => ky * Width * Channels).ToArray();
        _rows = new int[Pixels];
        int m = 0;
        for (int n = 0; n < Batch; n++)
            for (int oy = 0; oy < OutHeight; oy++)
                for (int ox = 0; ox < OutWidth; ox++)
                    _rows[m++] = ((n * Height + oy) * Width + ox) * Channels;
    }

    /// <summary>Forward, scalar reference.</summary>
    [Benchmark(Baseline = true)]
    [BenchmarkCategory("Multiply")]
    public void MultiplyReference() =>
        GemmReference.Multiply(_x, _rows, _segments, SegmentLength, _kernel, Filters, _y, _bias, GemmInit.Bias, relu: true);

    /// <summary>Forward, SIMD.</summary>
    [Benchmark]
    [BenchmarkCategory("Multiply")]
    public void Multiply() =>
        Gemm.Multiply(_x, _rows, _segments, SegmentLength, _kernel, Filters, _y, _bias, GemmInit.Bias, relu: true);

    /// <summary>Kernel gradient, scalar reference.</summary>
    [Benchmark(Baseline = true)]
    [BenchmarkCategory("MultiplyTransposedA")]
    public void MultiplyTransposedAReference() =>
        GemmReference.MultiplyTransposedA(_x, _rows, _segments, SegmentLength, _dy, Filters, _dKernel, accumulate: false);

    /// <summary>Kernel gradient, SIMD.</summary>
    [Benchmark]
    [BenchmarkCategory("MultiplyTransposedA")]
    public void MultiplyTransposedA() =>
        Gemm.MultiplyTransposedA(_x, _rows, _segments, SegmentLength, _dy, Filters, _dKernel, accumulate: false);
}
