// The layer contract. A layer is configuration plus two functions; it holds no per-call state, so one model
// is shared by all threads. Everything a call reads or writes travels in a LayerCall: the batch size, the
// flat weights, this leaf's flat gradient buffer, the input and output buffers of this node (batch, size),
// and a per-thread scratch object the layer made for itself (saved indices, statistics, workspaces).
//
// Forward writes `Output` (training: it may also save what Backward needs in the scratch, and BatchNorm writes
// its statistics into the gradient buffer). Backward reads `DOutput` and writes (overwrites) this layer's
// parameter gradients and each `DInputs[i]` that is not null (after PrepareWeights has seen the same weights); a null entry means the gradient is not needed
// (the model input). Backward may destroy `DOutput` (ReLU masks it in place).
namespace Cnn.Engine.Layers;

using Cnn.Engine.Models;

/// <summary>Everything one call of a layer reads and writes.</summary>
public sealed class LayerCall
{
    /// <summary>Samples in this call.</summary>
    public int Batch { get; internal set; }
    /// <summary>Training (batch statistics, dropout) or inference.</summary>
    public bool Training { get; internal set; }
    /// <summary>The model's flat weights.</summary>
    public float[] Weights { get; internal set; } = [];
    /// <summary>
    /// True when <see cref="Layer.PrepareWeights"/> has seen <see cref="Weights"/> as they are now (the runner's training
    /// calls): Forward may then read what it derived. Callers that change the weights in place leave it false.
    /// </summary>
    public bool WeightsPrepared { get; internal set; }
    /// <summary>This leaf's flat gradient buffer (training only).</summary>
    public float[] Gradients { get; internal set; } = [];
    /// <summary>Global ids of the samples, for per-sample randomness (dropout).</summary>
    public int[] SampleIds { get; internal set; } = [];
    /// <summary>Seed of the run and the step number, for per-sample randomness.</summary>
    public ulong Seed { get; internal set; }
    /// <summary>Step number, for per-sample randomness.</summary>
    public long Step { get; internal set; }
    /// <summary>Input buffers, (batch, input size) each.</summary>
    public float[][] Inputs { get; internal set; } = [];
    /// <summary>Output buffer (batch, output size).</summary>
    public float[] Output { get; internal set; } = [];
    /// <summary>Gradient of the loss with respect to Output.</summary>
    public float[] DOutput { get; internal set; } = [];
    /// <summary>Gradients to write with respect to each input (null: not needed).</summary>
    public float[]?[] DInputs { get; internal set; } = [];
    /// <summary>The layer's own per-thread scratch.</summary>
    public object? Scratch { get; internal set; }

    // Set by the runner for a node whose parameter gradients end an exchange segment (see Model.ExchangeSegments).
    internal Action<int>? ParameterGradientsReady;
    internal int NodeIndex;

    /// <summary>
    /// Called by a layer's backward pass once its parameter gradients are final, before it computes the gradient of
    /// its input: the exchange can send them while the rest of the backward pass runs. Only the first call counts;
    /// the runner calls it after Backward for layers that do not.
    /// </summary>
    public void SignalParameterGradients()
    {
        Action<int>? ready = ParameterGradientsReady;
        ParameterGradientsReady = null;
        ready?.Invoke(NodeIndex);
    }
}

/// <summary>A layer of a model: shape inference, parameters, forward and backward.</summary>
public abstract class Layer
{
    private TensorShape[] _inputShapes = [];

    /// <summary>Keras-style unique name, given when the model is built (conv2d, conv2d_1...).</summary>
    public string Name { get; internal set; } = "";

    /// <summary>Keras class name shown by Summary (Conv2D, MaxPooling2D...).</summary>
    public abstract string TypeName { get; }

    /// <summary>Prefix of the automatic name (conv2d, max_pooling2d...).</summary>
    public abstract string NamePrefix { get; }

    /// <summary>Shapes of the inputs, known after the model is built.</summary>
    public IReadOnlyList<TensorShape> InputShapes => _inputShapes;

    /// <summary>Shape of the output, known after the model is built.</summary>
    public TensorShape OutputShape { get; private set; }

    /// <summary>Offset of this layer's first parameter in the flat buffer.</summary>
    public int ParameterOffset { get; internal set; }

    /// <summary>Parameters the layer declares, in buffer order (valid after Build).</summary>
    public virtual IReadOnlyList<ParameterSpec> ParameterSpecs => [];

    /// <summary>Number of inputs the layer takes.</summary>
    public virtual int InputCount => 1;

    internal void Build(TensorShape[] inputShapes)
    {
        if (inputShapes.Length != InputCount)
            throw new ArgumentException($"{TypeName} '{Name}' takes {InputCount} input(s) but was given {inputShapes.Length}.");
        _inputShapes = inputShapes;
        OutputShape = InferOutputShape(inputShapes);
    }

    /// <summary>Checks the input shapes and returns the output shape; throws with both shapes and a hint.</summary>
    protected abstract TensorShape InferOutputShape(TensorShape[] inputs);

    /// <summary>Makes the per-thread scratch for calls of up to <paramref name="maxBatch"/> samples.</summary>
    public virtual object? CreateScratch(int maxBatch) => null;

    /// <summary>
    /// Derives per-thread data from the weights (transposed kernels) into the scratch. Called once per weights
    /// version before Backward, not per leaf.
    /// </summary>
    public virtual void PrepareWeights(LayerCall call)
    {
    }

    /// <summary>Computes the output (see the file header).</summary>
    public abstract void Forward(LayerCall call);

    /// <summary>Computes the gradients (see the file header).</summary>
    public abstract void Backward(LayerCall call);

    /// <summary>The first input's shape.</summary>
    protected TensorShape Input => _inputShapes[0];

    /// <summary>Start of the parameter slice declared at <paramref name="index"/> of ParameterSpecs.</summary>
    protected int SliceOffset(int index)
    {
        int offset = ParameterOffset;
        for (int i = 0; i < index; i++) offset += ParameterSpecs[i].Size;
        return offset;
    }
}
