// AdamKernel.Update against AdamReference over all 93,322 parameters of seed-cnn in one call (the optimizer
// calls it per slice; one call isolates the kernel from the per-slice overhead).
using BenchmarkDotNet.Attributes;
using Cnn.Engine;
using Cnn.Engine.Kernels;
using Cnn.Engine.Kernels.Reference;

namespace Cnn.Benchmarks;

/// <summary>One Adam step over the seed-cnn parameter count.</summary>
public class AdamBenchmarks
{
    private const int Count = 93_322;
    private const float Batch = 64, Alpha = 1e-3f, Beta1 = 0.9f, Beta2 = 0.999f, Epsilon = 1e-7f;

    private float[] _w = [];        // (93322)
    private float[] _m = [];        // (93322)
    private float[] _v = [];        // (93322)
    private float[] _gradient = []; // (93322), summed over a batch of 64

    /// <summary>Fills the buffers with fixed pseudo-random values.</summary>
    [GlobalSetup]
    public void Setup()
    {
        var rng = new Rng(3);
        _w = Enumerable.Range(0, Count).Select(_ => rng.NextFloat() - 0.5f).ToArray();
        _m = Enumerable.Range(0, Count).Select(_ => (rng.NextFloat() - 0.5f) * 1e-2f).ToArray();
        _v = Enumerable.Range(0, Count).Select(_ => rng.NextFloat() * 1e-4f).ToArray();
        _gradient = Enumerable.Range(0, Count).Select(_ => (rng.NextFloat() - 0.5f) * Batch).ToArray();
    }

    /// <summary>Scalar reference.</summary>
    [Benchmark(Baseline = true)]
    public void UpdateReference() => AdamReference.Update(_w, _m, _v, _gradient, Batch, Alpha, Beta1, Beta2, Epsilon);

    /// <summary>SIMD.</summary>
    [Benchmark]
    public void Update() => AdamKernel.Update(_w, _m, _v, _gradient, Batch, Alpha, Beta1, Beta2, Epsilon);
}
