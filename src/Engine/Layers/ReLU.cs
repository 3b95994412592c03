// ReLU as a layer of its own (Keras layers.ReLU), for graphs where it follows an Add or a BatchNormalization.
// Backward overwrites dx = dy * (y > 0).
using System.Numerics.Tensors;
using Cnn.Engine.Kernels;

namespace Cnn.Engine.Layers;

/// <summary>Keras ReLU layer.</summary>
public sealed class ReLU : Layer
{
    /// <inheritdoc/>
    public override string TypeName => "ReLU";
    /// <inheritdoc/>
    public override string NamePrefix => "re_lu";

    /// <inheritdoc/>
    protected override TensorShape InferOutputShape(TensorShape[] inputs) => inputs[0];

    /// <inheritdoc/>
    public override void Forward(LayerCall call)
    {
        int n = call.Batch * Input.Size;
        TensorPrimitives.Max(call.Inputs[0].AsSpan(0, n), 0f, call.Output.AsSpan(0, n));
    }

    /// <inheritdoc/>
    public override void Backward(LayerCall call)
    {
        if (call.DInputs[0] is not { } dx) return;
        int n = call.Batch * Input.Size;
        Activations.ReluBackward(call.Output.AsSpan(0, n), call.DOutput.AsSpan(0, n), dx.AsSpan(0, n));
    }
}
