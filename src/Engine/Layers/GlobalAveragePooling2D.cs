// GlobalAveragePooling2D: (batch, height, width, channels) -> (batch, channels), the mean over all pixels.
// Sums run over pixels in order. Backward overwrites dx[n, p, c] = dy[n, c] / (height * width).
using System.Numerics.Tensors;

namespace Cnn.Engine.Layers;

/// <summary>Keras GlobalAveragePooling2D.</summary>
public sealed class GlobalAveragePooling2D : Layer
{
    /// <inheritdoc/>
    public override string TypeName => "GlobalAveragePooling2D";
    /// <inheritdoc/>
    public override string NamePrefix => "global_average_pooling2d";

    /// <inheritdoc/>
    protected override TensorShape InferOutputShape(TensorShape[] inputs)
    {
        if (inputs[0].IsFlat) throw new ArgumentException($"GlobalAveragePooling2D '{Name}' expected (batch, height, width, channels) but got {inputs[0]}.");
        return TensorShape.Flat(inputs[0].Channels);
    }

    /// <inheritdoc/>
    public override void Forward(LayerCall call)
    {
        int c = Input.Channels, pixels = Input.Height * Input.Width;
        for (int n = 0; n < call.Batch; n++)
        {
            Span<float> y = call.Output.AsSpan(n * c, c);
            y.Clear();
            for (int p = 0; p < pixels; p++) TensorPrimitives.Add(y, call.Inputs[0].AsSpan((n * pixels + p) * c, c), y);
            TensorPrimitives.Divide(y, pixels, y);
        }
    }

    /// <inheritdoc/>
    public override void Backward(LayerCall call)
    {
        if (call.DInputs[0] is not { } dx) return;
        int c = Input.Channels, pixels = Input.Height * Input.Width;
        for (int n = 0; n < call.Batch; n++)
        {
            Span<float> first = dx.AsSpan(n * pixels * c, c);
            TensorPrimitives.Divide(call.DOutput.AsSpan(n * c, c), pixels, first);
            for (int p = 1; p < pixels; p++) first.CopyTo(dx.AsSpan((n * pixels + p) * c, c));
        }
    }
}
