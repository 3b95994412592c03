// Runs a model on one thread: forward, loss, backward for a leaf, or forward only for evaluation and
// prediction. A runner owns every buffer a call needs, sized once for its largest batch, so a training step
// allocates nothing. One runner per thread; the model and the weights are shared read-only.
//
// Fan-out (a node read by two later nodes, the skip connection) is handled statically: walking backward, the
// last reader writes the node's output gradient directly and the earlier readers write into a temporary and
// add it, always in the same order, so the result depends only on the graph.
using Cnn.Engine.Data;
using Cnn.Engine.Kernels;
using Cnn.Engine.Layers;

namespace Cnn.Engine.Models;

/// <summary>Loss sum and correct count of a set of samples.</summary>
public readonly record struct LossAndAccuracy(double LossSum, int Correct, int Samples);

/// <summary>Per-thread executor of a model (see file header).</summary>
public sealed class ModelRunner
{
    private readonly Model _model;
    private readonly float[] _input;          // (maxBatch, input size)
    private readonly int[] _labels;           // (maxBatch)
    private readonly int[] _ids;              // (maxBatch)
    private readonly float[][] _outputs;      // per node: (maxBatch, output size)
    private readonly float[][] _dOutputs;     // per node: (maxBatch, output size)
    private readonly LayerCall[] _calls;
    private readonly float[]?[][] _addAfter;  // per node and input: temporary to add into the input's gradient, or null
    private float[]? _preparedWeights;
    private long _preparedVersion = -1;

    /// <summary>A runner for calls of up to <paramref name="maxBatch"/> samples.</summary>
    public ModelRunner(Model model, int maxBatch)
    {
        if (maxBatch <= 0) throw new ArgumentOutOfRangeException(nameof(maxBatch));
        _model = model;
        MaxBatch = maxBatch;
        IReadOnlyList<ModelNode> nodes = model.Nodes;
        _input = new float[maxBatch * model.InputShape.Size];
        _labels = new int[maxBatch];
        _ids = new int[maxBatch];
        _outputs = nodes.Select(n => new float[maxBatch * n.Layer.OutputShape.Size]).ToArray();
        _dOutputs = nodes.Select(n => new float[maxBatch * n.Layer.OutputShape.Size]).ToArray();
        _calls = new LayerCall[nodes.Count];
        _addAfter = new float[]?[nodes.Count][];
        // The last (node, input slot) that reads each node writes its gradient directly; every other reader,
        // including a second slot of the same node (Add(x, x)), writes a temporary that is added afterwards.
        var lastReader = new (int Node, int Slot)[nodes.Count];
        Array.Fill(lastReader, (-1, -1));
        for (int j = 0; j < nodes.Count; j++)
            for (int k = 0; k < nodes[j].Inputs.Length; k++)
                if (nodes[j].Inputs[k] >= 0) lastReader[nodes[j].Inputs[k]] = (j, k);
        for (int j = 0; j < nodes.Count; j++)
        {
            ModelNode node = nodes[j];
            var dInputs = new float[]?[node.Inputs.Length];
            _addAfter[j] = new float[]?[node.Inputs.Length];
            for (int k = 0; k < node.Inputs.Length; k++)
            {
                int i = node.Inputs[k];
                if (i < 0) continue; // the model input needs no gradient
                if (lastReader[i] == (j, k)) dInputs[k] = _dOutputs[i];
                else dInputs[k] = _addAfter[j][k] = new float[_dOutputs[i].Length];
            }
            _calls[j] = new LayerCall
            {
                Inputs = node.Inputs.Select(i => i < 0 ? _input : _outputs[i]).ToArray(),
                Output = _outputs[j],
                DOutput = _dOutputs[j],
                DInputs = dInputs,
                Scratch = node.Layer.CreateScratch(maxBatch),
            };
        }
    }

    /// <summary>Largest batch a call may have.</summary>
    public int MaxBatch { get; }

    /// <summary>
    /// Derives what Backward needs from <paramref name="weights"/> (transposed kernels) unless it was already
    /// derived for the same array and <paramref name="version"/>; a negative version always derives.
    /// </summary>
    public void PrepareWeights(float[] weights, long version)
    {
        if (version >= 0 && version == _preparedVersion && ReferenceEquals(weights, _preparedWeights)) return;
        for (int j = 0; j < _calls.Length; j++)
        {
            _calls[j].Weights = weights;
            _model.Nodes[j].Layer.PrepareWeights(_calls[j]);
        }
        _preparedWeights = weights;
        _preparedVersion = version;
    }

    /// <summary>
    /// Forward and backward over the samples <paramref name="sampleIds"/> of <paramref name="data"/>: writes every
    /// slot of <paramref name="gradients"/> (summed over the samples, not averaged) and returns the loss sum and
    /// correct count. Pass the same non-negative <paramref name="weightsVersion"/> for calls with unchanged weights
    /// to derive the transposed kernels once. <paramref name="parameterGradientsReady"/>, when given, is called with
    /// each node's index as soon as that node's parameter gradients are final in the backward pass (nodes in
    /// descending order), so the gradients of the last layers can leave while the first layers' pass runs.
    /// <paramref name="abandon"/>, when given, is asked before every layer of both passes; when it says yes, the call
    /// stops there and throws <see cref="OperationCanceledException"/>, leaving <paramref name="gradients"/> partly
    /// written (every layer writes its slots whole, so the next call over the buffer is unaffected).
    /// </summary>
    public LossAndAccuracy TrainLeaf(float[] weights, IDataSource data, ReadOnlySpan<int> sampleIds, float[] gradients, long step, ulong seed,
        long weightsVersion = -1, Action<int>? parameterGradientsReady = null, Func<bool>? abandon = null)
    {
        PrepareWeights(weights, weightsVersion);
        int batch = Load(data, sampleIds);
        Forward(weights, batch, training: true, gradients, step, seed, abandon);
        int last = _calls.Length - 1;
        int classes = _model.Classes;
        var (loss, correct) = SoftmaxCrossEntropy.Forward(_outputs[last].AsSpan(0, batch * classes), _labels.AsSpan(0, batch), classes,
            _dOutputs[last].AsSpan(0, batch * classes));
        for (int j = last; j >= 0; j--)
        {
            if (abandon?.Invoke() == true) throw new OperationCanceledException("the leaf was abandoned in its backward pass");
            LayerCall call = _calls[j];
            call.ParameterGradientsReady = parameterGradientsReady;
            call.NodeIndex = j;
            _model.Nodes[j].Layer.Backward(call); // its Gradients were set by Forward
            call.SignalParameterGradients(); // for layers that did not signal themselves
            int[] inputs = _model.Nodes[j].Inputs;
            for (int k = 0; k < inputs.Length; k++)
                if (_addAfter[j][k] is { } temp)
                {
                    int size = batch * _model.Nodes[inputs[k]].Layer.OutputShape.Size;
                    Accumulate.Add(_dOutputs[inputs[k]].AsSpan(0, size), temp.AsSpan(0, size));
                }
        }
        return new LossAndAccuracy(loss, correct, batch);
    }

    /// <summary>Inference-mode loss sum and correct count over <paramref name="sampleIds"/>.</summary>
    public LossAndAccuracy Evaluate(float[] weights, IDataSource data, ReadOnlySpan<int> sampleIds)
    {
        int batch = Load(data, sampleIds);
        Forward(weights, batch, training: false, [], 0, 0);
        int classes = _model.Classes;
        var (loss, correct) = SoftmaxCrossEntropy.Forward(_outputs[^1].AsSpan(0, batch * classes), _labels.AsSpan(0, batch), classes, default);
        return new LossAndAccuracy(loss, correct, batch);
    }

    /// <summary>Class probabilities (batch, classes) for the inputs x (batch, input size), inference mode.</summary>
    public void Predict(float[] weights, ReadOnlySpan<float> x, int batch, Span<float> probabilities)
    {
        if (batch > MaxBatch) throw new ArgumentException($"batch {batch} exceeds this runner's maximum {MaxBatch}");
        x[..(batch * _model.InputShape.Size)].CopyTo(_input);
        Forward(weights, batch, training: false, [], 0, 0);
        SoftmaxCrossEntropy.Softmax(_outputs[^1].AsSpan(0, batch * _model.Classes), _model.Classes, probabilities);
    }

    /// <summary>Inference-mode output of the node called <paramref name="layerName"/> for the inputs x (batch, input size).</summary>
    public ReadOnlySpan<float> Activations(float[] weights, ReadOnlySpan<float> x, int batch, string layerName)
    {
        int node = _model.Nodes.Select((n, i) => (n, i)).FirstOrDefault(p => p.n.Layer.Name == layerName, (null!, -1)).Item2;
        if (node < 0) throw new CnnUserException($"no layer named '{layerName}' in {_model.Name}: expected one of {string.Join(", ", _model.Layers.Select(l => l.Name))}");
        x[..(batch * _model.InputShape.Size)].CopyTo(_input);
        Forward(weights, batch, training: false, [], 0, 0);
        return _outputs[node].AsSpan(0, batch * _model.Nodes[node].Layer.OutputShape.Size);
    }

    private int Load(IDataSource data, ReadOnlySpan<int> sampleIds)
    {
        int batch = sampleIds.Length;
        if (batch == 0 || batch > MaxBatch) throw new ArgumentException($"batch of {batch} samples; this runner takes 1 to {MaxBatch}");
        sampleIds.CopyTo(_ids);
        data.Gather(sampleIds, _input.AsSpan(0, batch * _model.InputShape.Size), _labels.AsSpan(0, batch));
        return batch;
    }

    private void Forward(float[] weights, int batch, bool training, float[] gradients, long step, ulong seed, Func<bool>? abandon = null)
    {
        for (int j = 0; j < _calls.Length; j++)
        {
            if (abandon?.Invoke() == true) throw new OperationCanceledException("the leaf was abandoned in its forward pass");
            LayerCall call = _calls[j];
            call.Batch = batch;
            call.Training = training;
            call.Weights = weights;
            call.WeightsPrepared = training; // only TrainLeaf trains, right after PrepareWeights
            call.Gradients = gradients;
            call.SampleIds = _ids;
            call.Step = step;
            call.Seed = seed;
            _model.Nodes[j].Layer.Forward(call);
        }
    }
}
