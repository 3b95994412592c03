// BatchNormalization over the last axis (channels), Keras defaults: momentum 0.99, epsilon 1e-3.
//
//   x, y: (batch, height, width, channels) or (batch, channels); gamma, beta, moving_mean, moving_variance: (channels)
//
// Training normalises over the rows of ONE LEAF ("ghost batch norm", DESIGN.md): mean and biased variance over
// the leaf's batch * height * width rows, summed in row order. That keeps a leaf computable anywhere with the
// same bits. The leaf's statistics go into the gradient buffer's moving_mean / moving_variance slots multiplied
// by the leaf's sample count; after the tree reduction and the division by the batch they are the
// sample-weighted mean of the leaf statistics, and the optimizer step applies
// moving = moving * momentum + statistic * (1 - momentum) (see Training/Adam.cs).
// Inference uses the moving averages. Forward keeps x-hat and 1/sqrt(var + eps) in the scratch; Backward
// overwrites dGamma, dBeta and dx:
//   dx = gamma / sqrt(var + eps) / R * (R * dy - sum(dy) - x-hat * sum(dy * x-hat)),  R = rows of the leaf.
using System.Numerics.Tensors;
using Cnn.Engine.Kernels;
using Cnn.Engine.Models;

namespace Cnn.Engine.Layers;

/// <summary>Keras BatchNormalization (axis -1), with per-leaf statistics in training.</summary>
public sealed class BatchNormalization : Layer
{
    private ParameterSpec[] _specs = [];

    /// <summary>A batch normalisation with Keras's momentum and epsilon unless given.</summary>
    public BatchNormalization(float momentum = 0.99f, float epsilon = 1e-3f)
    {
        Momentum = momentum;
        Epsilon = epsilon;
    }

    /// <summary>Moving-average momentum.</summary>
    public float Momentum { get; }
    /// <summary>Added to the variance.</summary>
    public float Epsilon { get; }
    /// <inheritdoc/>
    public override string TypeName => "BatchNormalization";
    /// <inheritdoc/>
    public override string NamePrefix => "batch_normalization";
    /// <inheritdoc/>
    public override IReadOnlyList<ParameterSpec> ParameterSpecs => _specs;

    /// <inheritdoc/>
    protected override TensorShape InferOutputShape(TensorShape[] inputs)
    {
        int c = inputs[0].Channels;
        _specs =
        [
            new ParameterSpec("gamma", [c], ParameterKind.Gamma),
            new ParameterSpec("beta", [c], ParameterKind.Beta),
            new ParameterSpec("moving_mean", [c], ParameterKind.MovingMean, Momentum: Momentum),
            new ParameterSpec("moving_variance", [c], ParameterKind.MovingVariance, Momentum: Momentum),
        ];
        return inputs[0];
    }

    private sealed class Scratch
    {
        public required float[] XHat;     // (maxBatch * height * width, channels)
        public required float[] InvStd;   // (channels)
        public required float[] Mean;     // (channels)
        public required float[] Variance; // (channels)
        public required float[] Temp;     // (channels)
        public required float[] Temp2;    // (channels)
    }

    /// <inheritdoc/>
    public override object? CreateScratch(int maxBatch)
    {
        int c = Input.Channels;
        return new Scratch
        {
            XHat = new float[maxBatch * Input.Size], InvStd = new float[c], Mean = new float[c],
            Variance = new float[c], Temp = new float[c], Temp2 = new float[c],
        };
    }

    /// <inheritdoc/>
    public override void Forward(LayerCall call)
    {
        int c = Input.Channels, rows = call.Batch * Input.Size / c;
        float[] x = call.Inputs[0], y = call.Output, w = call.Weights;
        ReadOnlySpan<float> gamma = w.AsSpan(SliceOffset(0), c), beta = w.AsSpan(SliceOffset(1), c);
        var s = (Scratch)call.Scratch!;
        if (!call.Training)
        {
            Span<float> scale = s.Temp, shift = s.Temp2;
            ReadOnlySpan<float> movingMean = w.AsSpan(SliceOffset(2), c), movingVariance = w.AsSpan(SliceOffset(3), c);
            for (int j = 0; j < c; j++)
            {
                scale[j] = gamma[j] / MathF.Sqrt(movingVariance[j] + Epsilon);
                shift[j] = beta[j] - movingMean[j] * scale[j];
            }
            BatchNormKernel.ScaleShift(x, rows, c, scale, shift, y);
            return;
        }

        Span<float> mean = s.Mean, variance = s.Variance, invStd = s.InvStd;
        Gemm.ColumnSums(x, rows, c, mean);
        TensorPrimitives.Divide(mean, rows, mean);
        BatchNormKernel.SquaredDeviationSums(x, rows, c, mean, variance);
        TensorPrimitives.Divide(variance, rows, variance);
        for (int j = 0; j < c; j++) invStd[j] = 1f / MathF.Sqrt(variance[j] + Epsilon);
        BatchNormKernel.Normalize(x, rows, c, mean, invStd, gamma, beta, s.XHat, y);
        if (call.Gradients.Length > 0)
        {
            TensorPrimitives.Multiply(mean, call.Batch, call.Gradients.AsSpan(SliceOffset(2), c));
            TensorPrimitives.Multiply(variance, call.Batch, call.Gradients.AsSpan(SliceOffset(3), c));
        }
    }

    /// <inheritdoc/>
    public override void Backward(LayerCall call)
    {
        var s = (Scratch)call.Scratch!;
        int c = Input.Channels, rows = call.Batch * Input.Size / c;
        float[] dy = call.DOutput;
        Span<float> dGamma = call.Gradients.AsSpan(SliceOffset(0), c), dBeta = call.Gradients.AsSpan(SliceOffset(1), c);
        Gemm.ColumnSums(dy, rows, c, dBeta);
        BatchNormKernel.ProductSums(dy, s.XHat, rows, c, dGamma);
        if (call.DInputs[0] is not { } dx) return;
        // dx = k * (R * dy - dBeta - xhat * dGamma), k = gamma * invStd / R.
        Span<float> k = s.Temp;
        TensorPrimitives.Multiply(call.Weights.AsSpan(SliceOffset(0), c), s.InvStd, k);
        TensorPrimitives.Divide(k, rows, k);
        BatchNormKernel.InputGradient(dy, s.XHat, rows, c, dBeta, dGamma, k, dx);
    }
}
