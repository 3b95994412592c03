// Dense: y = x . kernel + bias, with an optional fused ReLU. With a softmax activation the layer outputs the
// logits and the model fuses the softmax with the loss (and applies it in Predict); softmax is only allowed
// on the last layer.
//
//   x: (batch, in)   kernel: (in, out) as Keras lays it out   bias: (out)   y: (batch, out)
//
// Backward overwrites dKernel = x^T . dY, dBias = column sums of dY, and dx = dY . kernel^T.
using Cnn.Engine.Kernels;
using Cnn.Engine.Models;

namespace Cnn.Engine.Layers;

/// <summary>Keras Dense.</summary>
public sealed class Dense : Layer
{
    private ParameterSpec[] _specs = [];

    /// <summary>A fully connected layer with <paramref name="units"/> outputs.</summary>
    public Dense(int units, Activation activation = Activation.None)
    {
        if (units <= 0) throw new ArgumentOutOfRangeException(nameof(units), units, "Dense needs at least one unit.");
        Units = units;
        Activation = activation;
    }

    /// <summary>Output features.</summary>
    public int Units { get; }
    /// <summary>Fused activation.</summary>
    public Activation Activation { get; }

    /// <inheritdoc/>
    public override string TypeName => "Dense";
    /// <inheritdoc/>
    public override string NamePrefix => "dense";
    /// <inheritdoc/>
    public override IReadOnlyList<ParameterSpec> ParameterSpecs => _specs;

    /// <inheritdoc/>
    protected override TensorShape InferOutputShape(TensorShape[] inputs)
    {
        TensorShape x = inputs[0];
        if (!x.IsFlat)
            throw new ArgumentException($"Dense '{Name}' expected (batch, features) but got {x}: did you forget Flatten?");
        _specs =
        [
            new ParameterSpec("kernel", [x.Channels, Units], ParameterKind.Kernel, x.Channels, Units),
            new ParameterSpec("bias", [Units], ParameterKind.Bias),
        ];
        return TensorShape.Flat(Units);
    }

    private sealed class Scratch
    {
        public required int[] InputRows;   // (maxBatch): n * in
        public required int[] OutputRows;  // (maxBatch): n * out
        public required AlignedBuffer Transposed; // (out, in), aligned as Gemm likes B
    }

    /// <inheritdoc/>
    public override object? CreateScratch(int maxBatch)
    {
        int inFeatures = Input.Channels;
        return new Scratch
        {
            InputRows = Enumerable.Range(0, maxBatch).Select(n => n * inFeatures).ToArray(),
            OutputRows = Enumerable.Range(0, maxBatch).Select(n => n * Units).ToArray(),
            Transposed = new AlignedBuffer(Units * inFeatures),
        };
    }

    /// <inheritdoc/>
    public override void Forward(LayerCall call)
    {
        var s = (Scratch)call.Scratch!;
        int inFeatures = Input.Channels;
        Gemm.Multiply(call.Inputs[0].AsSpan(0, call.Batch * inFeatures), s.InputRows.AsSpan(0, call.Batch), [0], inFeatures,
            call.Weights.AsSpan(SliceOffset(0), inFeatures * Units), Units, call.Output.AsSpan(0, call.Batch * Units),
            call.Weights.AsSpan(SliceOffset(1), Units), GemmInit.Bias, Activation == Activation.Relu);
    }

    /// <inheritdoc/>
    public override void PrepareWeights(LayerCall call) =>
        Conv2D.Transpose(call.Weights.AsSpan(SliceOffset(0), Input.Channels * Units), Input.Channels, Units, ((Scratch)call.Scratch!).Transposed.Span);

    /// <inheritdoc/>
    public override void Backward(LayerCall call)
    {
        var s = (Scratch)call.Scratch!;
        int inFeatures = Input.Channels, batch = call.Batch;
        Span<float> dY = call.DOutput.AsSpan(0, batch * Units);
        if (Activation == Activation.Relu) Activations.ReluBackward(call.Output.AsSpan(0, batch * Units), dY, dY);
        Gemm.MultiplyTransposedA(call.Inputs[0].AsSpan(0, batch * inFeatures), s.InputRows.AsSpan(0, batch), [0], inFeatures,
            dY, Units, call.Gradients.AsSpan(SliceOffset(0), inFeatures * Units), accumulate: false);
        Gemm.ColumnSums(dY, batch, Units, call.Gradients.AsSpan(SliceOffset(1), Units));
        call.SignalParameterGradients();
        float[]? dx = call.DInputs[0];
        if (dx is null) return;
        Gemm.Multiply(dY, s.OutputRows.AsSpan(0, batch), [0], Units, s.Transposed.Span, inFeatures,
            dx.AsSpan(0, batch * inFeatures), default, GemmInit.Zero, relu: false);
    }
}
