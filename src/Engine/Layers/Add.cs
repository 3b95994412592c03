// Add: the element-wise sum of two tensors of the same shape, where a residual branch meets its skip path.
// Backward overwrites both input gradients with dy.
using System.Numerics.Tensors;

namespace Cnn.Engine.Layers;

/// <summary>Keras Add (two inputs).</summary>
public sealed class Add : Layer
{
    /// <inheritdoc/>
    public override string TypeName => "Add";
    /// <inheritdoc/>
    public override string NamePrefix => "add";
    /// <inheritdoc/>
    public override int InputCount => 2;

    /// <inheritdoc/>
    protected override TensorShape InferOutputShape(TensorShape[] inputs)
    {
        if (inputs[0] != inputs[1])
            throw new ArgumentException($"Add '{Name}' needs inputs of one shape but got {inputs[0]} and {inputs[1]}: give the skip path a matching convolution.");
        return inputs[0];
    }

    /// <inheritdoc/>
    public override void Forward(LayerCall call)
    {
        int n = call.Batch * Input.Size;
        TensorPrimitives.Add(call.Inputs[0].AsSpan(0, n), call.Inputs[1].AsSpan(0, n), call.Output.AsSpan(0, n));
    }

    /// <inheritdoc/>
    public override void Backward(LayerCall call)
    {
        int n = call.Batch * Input.Size;
        foreach (float[]? dx in call.DInputs)
            if (dx is not null) call.DOutput.AsSpan(0, n).CopyTo(dx);
    }
}
