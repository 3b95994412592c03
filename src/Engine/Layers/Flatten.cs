// Flatten: (batch, height, width, channels) -> (batch, height * width * channels), in NHWC order like Keras,
// so a Dense kernel trained by Keras reads the same features. Copies (the buffers are small); Backward
// overwrites dx with dy.
namespace Cnn.Engine.Layers;

/// <summary>Keras Flatten.</summary>
public sealed class Flatten : Layer
{
    /// <inheritdoc/>
    public override string TypeName => "Flatten";
    /// <inheritdoc/>
    public override string NamePrefix => "flatten";

    /// <inheritdoc/>
    protected override TensorShape InferOutputShape(TensorShape[] inputs) => TensorShape.Flat(inputs[0].Size);

    /// <inheritdoc/>
    public override void Forward(LayerCall call) =>
        call.Inputs[0].AsSpan(0, call.Batch * Input.Size).CopyTo(call.Output);

    /// <inheritdoc/>
    public override void Backward(LayerCall call) =>
        call.DOutput.AsSpan(0, call.Batch * Input.Size).CopyTo(call.DInputs[0]);
}
