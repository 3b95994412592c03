// The flat parameter buffer's layout. All weights of a model live in one float[] (and the gradients of one leaf
// in its twin), in Keras's order: layer by layer, and inside a layer kernel, bias (or gamma, beta,
// moving_mean, moving_variance). A slice is a name, an offset and a shape. One flat block makes the tree
// reduction, Adam, checkpoints, hashing and the wire format single loops over one array.
//
// Non-trainable slices (BatchNormalization moving statistics) have a slot in the gradient buffer too: a leaf
// writes its batch statistic there multiplied by its sample count, the tree sums them like gradients, and the
// optimizer step turns the batch-weighted mean into the Keras moving-average update. That keeps the moving
// statistics as exact as the weights whatever the number of workers.
namespace Cnn.Engine.Models;

/// <summary>What a parameter is, which decides its initialiser and its update rule.</summary>
public enum ParameterKind
{
    /// <summary>A Conv2D or Dense kernel: Glorot-uniform, Adam.</summary>
    Kernel,
    /// <summary>A bias: zeros, Adam.</summary>
    Bias,
    /// <summary>BatchNormalization scale: ones, Adam.</summary>
    Gamma,
    /// <summary>BatchNormalization offset: zeros, Adam.</summary>
    Beta,
    /// <summary>BatchNormalization moving mean: zeros, moving average.</summary>
    MovingMean,
    /// <summary>BatchNormalization moving variance: ones, moving average.</summary>
    MovingVariance,
}

/// <summary>A parameter a layer declares: its name suffix, shape and kind.</summary>
public sealed record ParameterSpec(string Suffix, int[] Shape, ParameterKind Kind, int FanIn = 0, int FanOut = 0, float Momentum = 0f)
{
    /// <summary>Number of floats.</summary>
    public int Size => Shape.Aggregate(1, (a, b) => a * b);
}

/// <summary>A named slice of the flat parameter buffer, e.g. <c>conv2d_1/kernel</c> of shape (3, 3, 32, 64).</summary>
/// <remarks>Momentum is the moving-average momentum of a non-trainable slice (BatchNormalization statistics).</remarks>
public sealed record ParameterSlice(string Name, int Offset, int[] Shape, ParameterKind Kind, int FanIn, int FanOut, float Momentum = 0f)
{
    /// <summary>Number of floats.</summary>
    public int Size => Shape.Aggregate(1, (a, b) => a * b);

    /// <summary>True for parameters the optimizer trains; false for moving statistics.</summary>
    public bool Trainable => Kind is not (ParameterKind.MovingMean or ParameterKind.MovingVariance);

    /// <summary>The slice's elements in <paramref name="buffer"/>.</summary>
    public Span<float> Of(float[] buffer) => buffer.AsSpan(Offset, Size);
}

/// <summary>The layout of a model's flat parameter buffer.</summary>
public sealed class ParameterLayout
{
    private readonly Dictionary<string, ParameterSlice> _byName;

    internal ParameterLayout(IReadOnlyList<ParameterSlice> slices)
    {
        Slices = slices;
        Count = slices.Count == 0 ? 0 : slices[^1].Offset + slices[^1].Size;
        TrainableCount = slices.Where(s => s.Trainable).Sum(s => s.Size);
        _byName = slices.ToDictionary(s => s.Name);
    }

    /// <summary>Slices in buffer order.</summary>
    public IReadOnlyList<ParameterSlice> Slices { get; }

    /// <summary>Total floats (trainable and not).</summary>
    public int Count { get; }

    /// <summary>Floats the optimizer trains.</summary>
    public int TrainableCount { get; }

    /// <summary>The slice called <paramref name="name"/>, or null.</summary>
    public ParameterSlice? Find(string name) => _byName.GetValueOrDefault(name);

    /// <summary>Fresh weights with Keras's initialisers: Glorot-uniform kernels, zero biases and betas, unit gammas and variances.</summary>
    public float[] Initialize(ulong seed)
    {
        var weights = new float[Count];
        for (int i = 0; i < Slices.Count; i++)
        {
            ParameterSlice slice = Slices[i];
            Span<float> w = slice.Of(weights);
            switch (slice.Kind)
            {
                case ParameterKind.Kernel:
                    // One stream per slice, so adding a layer does not change the others' initial values.
                    var rng = Rng.For(seed, 0x1A17, (ulong)i);
                    float limit = MathF.Sqrt(6f / (slice.FanIn + slice.FanOut));
                    for (int j = 0; j < w.Length; j++) w[j] = (rng.NextFloat() * 2f - 1f) * limit;
                    break;
                case ParameterKind.Gamma:
                case ParameterKind.MovingVariance:
                    w.Fill(1f);
                    break;
            }
        }
        return weights;
    }
}
