// MaxPooling2D with a square window and stride equal to it (Keras defaults), `valid` padding.
//   x: (batch, height, width, channels) -> y: (batch, height / pool, width / pool, channels)
// Forward keeps the index of each maximum in the scratch; Backward overwrites dx (zero but at the maxima).
// After a Conv2D with a fused ReLU whose only reader this layer is, the model sets FusesReluBackward: the
// gradient then passes only where the pooled value is positive, which is exactly the ReLU backward of the
// convolution at the maxima (elsewhere dx is zero anyway), so the convolution skips its own masking pass.
using Cnn.Engine.Kernels;

namespace Cnn.Engine.Layers;

/// <summary>Keras MaxPooling2D.</summary>
public sealed class MaxPooling2D : Layer
{
    /// <summary>Pooling with a <paramref name="poolSize"/> x <paramref name="poolSize"/> window.</summary>
    public MaxPooling2D(int poolSize = 2)
    {
        if (poolSize <= 0) throw new ArgumentOutOfRangeException(nameof(poolSize), poolSize, "MaxPooling2D pool size must be positive.");
        PoolSize = poolSize;
    }

    /// <summary>Masks the gradient with (output &gt; 0): the ReLU backward of the convolution before, fused (set by the model).</summary>
    internal bool FusesReluBackward { get; set; }

    /// <summary>Window size and stride.</summary>
    public int PoolSize { get; }
    /// <inheritdoc/>
    public override string TypeName => "MaxPooling2D";
    /// <inheritdoc/>
    public override string NamePrefix => "max_pooling2d";

    /// <inheritdoc/>
    protected override TensorShape InferOutputShape(TensorShape[] inputs)
    {
        TensorShape x = inputs[0];
        if (x.IsFlat) throw new ArgumentException($"MaxPooling2D '{Name}' expected (batch, height, width, channels) but got {x}.");
        if (x.Height < PoolSize || x.Width < PoolSize)
            throw new ArgumentException($"MaxPooling2D '{Name}' with pool {PoolSize} cannot run on {x}: the input is smaller than the window.");
        return TensorShape.Image(x.Height / PoolSize, x.Width / PoolSize, x.Channels);
    }

    /// <inheritdoc/>
    public override object? CreateScratch(int maxBatch) => new int[maxBatch * OutputShape.Size];

    /// <inheritdoc/>
    public override void Forward(LayerCall call)
    {
        int outSize = call.Batch * OutputShape.Size;
        MaxPool.Forward(call.Inputs[0].AsSpan(0, call.Batch * Input.Size), call.Batch, Input.Height, Input.Width, Input.Channels, PoolSize,
            call.Output.AsSpan(0, outSize), ((int[])call.Scratch!).AsSpan(0, outSize));
    }

    /// <inheritdoc/>
    public override void Backward(LayerCall call)
    {
        float[]? dx = call.DInputs[0];
        if (dx is null) return;
        int outSize = call.Batch * OutputShape.Size;
        MaxPool.Backward(call.DOutput.AsSpan(0, outSize), ((int[])call.Scratch!).AsSpan(0, outSize), call.Batch, Input.Height, Input.Width,
            Input.Channels, PoolSize, dx.AsSpan(0, call.Batch * Input.Size), FusesReluBackward ? call.Output.AsSpan(0, outSize) : default);
    }
}
