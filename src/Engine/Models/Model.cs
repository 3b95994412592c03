// A model is a small directed acyclic graph of layers, kept in topological order: node i reads the model input
// (-1) or earlier nodes. Sequential is the chain special case; FunctionalBuilder makes branches that meet in an
// Add. Building a model names the layers as Keras does (conv2d, conv2d_1, ...), infers every shape (and fails
// with both shapes and a hint when they do not fit), and lays the parameters out in one flat buffer.
// A model holds no weights and no per-call state: weights are a float[] of Parameters.Count, and calls go
// through a ModelRunner, one per thread.
using System.Globalization;
using System.Text;
using Cnn.Engine.Layers;

namespace Cnn.Engine.Models;

/// <summary>A node of the graph: a layer and the nodes it reads (-1 = the model input).</summary>
public sealed record ModelNode(Layer Layer, int[] Inputs);

/// <summary>A built model: layers, shapes and the parameter layout.</summary>
public sealed class Model
{
    internal Model(string name, TensorShape inputShape, IReadOnlyList<ModelNode> nodes)
    {
        if (nodes.Count == 0) throw new ArgumentException("A model needs at least one layer.");
        Name = name;
        InputShape = inputShape;
        Nodes = nodes;
        var counters = new Dictionary<string, int>();
        var slices = new List<ParameterSlice>();
        int offset = 0;
        for (int i = 0; i < nodes.Count; i++)
        {
            Layer layer = nodes[i].Layer;
            if (layer.Name.Length == 0)
            {
                int seen = counters.GetValueOrDefault(layer.NamePrefix);
                counters[layer.NamePrefix] = seen + 1;
                layer.Name = seen == 0 ? layer.NamePrefix : $"{layer.NamePrefix}_{seen}";
            }
            if (layer is Dropout dropout) dropout.LayerIndex = i;
            layer.Build(nodes[i].Inputs.Select(j => j < 0 ? inputShape : nodes[j].Layer.OutputShape).ToArray());
            if (layer is Dense { Activation: Activation.Softmax } && i != nodes.Count - 1)
                throw new ArgumentException($"Dense '{layer.Name}' has a softmax activation but is not the last layer: softmax is fused with the loss.");
            layer.ParameterOffset = offset;
            foreach (ParameterSpec spec in layer.ParameterSpecs)
            {
                slices.Add(new ParameterSlice($"{layer.Name}/{spec.Suffix}", offset, spec.Shape, spec.Kind, spec.FanIn, spec.FanOut, spec.Momentum));
                offset += spec.Size;
            }
        }
        Parameters = new ParameterLayout(slices);
        FuseReluIntoPooling(nodes);
        if (!OutputShape.IsFlat)
            throw new ArgumentException($"The model's output must be (batch, classes) but is {OutputShape}: end with Flatten or GlobalAveragePooling2D and Dense.");
    }

    /// <summary>
    /// The flat gradient cut into the pieces a cluster exchanges separately, in the order a backward pass finishes
    /// them: tails first, each final once its node's parameter gradients are (<see cref="ExchangeSegment.Node"/>),
    /// and last the head from 0, final when the backward pass ends (Node = -1). A tail closes at the first layer
    /// boundary, going backwards, where it holds at least half of the parameters not yet in a tail and at least a
    /// quarter of all of them: each piece finishes later than the one before, and none is so small that its own frame
    /// and pass cost more than sending it early saves (seed-cnn: conv2d_2 onwards, 80%, then the head; cutting conv2d_1
    /// off the head as well measured no better). Models with one parameter layer have only the head.
    /// </summary>
    public IReadOnlyList<ExchangeSegment> ExchangeSegments => _exchangeSegments ??= CutExchangeSegments();

    private IReadOnlyList<ExchangeSegment>? _exchangeSegments;

    private List<ExchangeSegment> CutExchangeSegments()
    {
        var segments = new List<ExchangeSegment>();
        int end = Parameters.Count;
        for (int j = Nodes.Count - 1; j >= 0; j--)
        {
            Layer layer = Nodes[j].Layer;
            int offset = layer.ParameterOffset;
            if (offset == 0 || offset == end || !layer.ParameterSpecs.Any()) continue;
            if (2L * (end - offset) >= end && 4L * (end - offset) >= Parameters.Count)
            {
                segments.Add(new ExchangeSegment(offset, end, j));
                end = offset;
            }
        }
        segments.Add(new ExchangeSegment(0, end, -1));
        return segments;
    }

    // A ReLU convolution read only by a max pooling: the pooling's backward applies the ReLU mask at the maxima,
    // where it is the only place a gradient lands, and the convolution skips a pass over its whole output.
    private static void FuseReluIntoPooling(IReadOnlyList<ModelNode> nodes)
    {
        for (int j = 0; j < nodes.Count; j++)
        {
            if (nodes[j].Layer is not MaxPooling2D pooling || nodes[j].Inputs[0] < 0) continue;
            int i = nodes[j].Inputs[0];
            bool onlyReader = !nodes.Where((n, k) => k != j && n.Inputs.Contains(i)).Any();
            if (nodes[i].Layer is Conv2D { Activation: Activation.Relu } conv && onlyReader)
            {
                conv.ReluBackwardFusedIntoReader = true;
                pooling.FusesReluBackward = true;
            }
        }
    }

    /// <summary>Model name (seed-cnn, seed-resnet...).</summary>
    public string Name { get; }
    /// <summary>Shape of one input sample.</summary>
    public TensorShape InputShape { get; }
    /// <summary>Nodes in topological order; the last is the output.</summary>
    public IReadOnlyList<ModelNode> Nodes { get; }
    /// <summary>The flat parameter layout.</summary>
    public ParameterLayout Parameters { get; }
    /// <summary>Shape of the output (batch, classes).</summary>
    public TensorShape OutputShape => Nodes[^1].Layer.OutputShape;
    /// <summary>Number of classes.</summary>
    public int Classes => OutputShape.Channels;
    /// <summary>All layers in node order.</summary>
    public IEnumerable<Layer> Layers => Nodes.Select(n => n.Layer);
    /// <summary>True when the graph is a plain chain.</summary>
    public bool IsSequential => Nodes.Select((n, i) => n.Inputs.Length == 1 && n.Inputs[0] == i - 1).All(x => x);

    /// <summary>A chain of layers, as keras.Sequential.</summary>
    public static Model Sequential(string name, TensorShape input, params Layer[] layers) =>
        new(name, input, layers.Select((layer, i) => new ModelNode(layer, [i - 1])).ToArray());

    /// <summary>The Keras <c>model.summary()</c> table.</summary>
    public string Summary()
    {
        bool graph = !IsSequential;
        var header = graph
            ? new[] { "Layer (type)", "Output Shape", "Param #", "Connected to" }
            : new[] { "Layer (type)", "Output Shape", "Param #" };
        var rows = new List<string[]>();
        if (graph) rows.Add([$"input_layer (InputLayer)", InputShape.ToString(), "0", "-"]);
        foreach (ModelNode node in Nodes)
        {
            Layer layer = node.Layer;
            string count = layer.ParameterSpecs.Sum(p => p.Size).ToString("N0", CultureInfo.InvariantCulture);
            string connected = string.Join(", ", node.Inputs.Select(j => j < 0 ? "input_layer" : Nodes[j].Layer.Name));
            rows.Add(graph
                ? [$"{layer.Name} ({layer.TypeName})", layer.OutputShape.ToString(), count, connected]
                : [$"{layer.Name} ({layer.TypeName})", layer.OutputShape.ToString(), count]);
        }
        int[] widths = header.Select((h, c) => Math.Max(h.Length, rows.Max(r => r[c].Length)) + 2).ToArray();
        widths[0] = Math.Max(widths[0], 33);
        widths[1] = Math.Max(widths[1], 24);
        widths[2] = Math.Max(widths[2], 15);
        string Line(char left, char mid, char right, char fill) =>
            left + string.Join(mid, widths.Select(w => new string(fill, w))) + right;
        string Row(string[] cells, char bar) =>
            bar + string.Join(bar, cells.Select((cell, c) => c == 2 ? " " + cell.PadLeft(widths[c] - 2) + " " : " " + cell.PadRight(widths[c] - 2) + " ")) + bar;

        var sb = new StringBuilder();
        sb.AppendLine($"Model: \"{Name}\"");
        sb.AppendLine(Line('┏', '┳', '┓', '━'));
        sb.AppendLine(Row(header, '┃'));
        sb.AppendLine(Line('┡', '╇', '┩', '━'));
        for (int i = 0; i < rows.Count; i++)
        {
            sb.AppendLine(Row(rows[i], '│'));
            if (graph && i < rows.Count - 1) sb.AppendLine(Line('├', '┼', '┤', '─'));
        }
        sb.AppendLine(Line('└', '┴', '┘', '─'));
        int total = Parameters.Count, trainable = Parameters.TrainableCount;
        sb.AppendLine($" Total params: {Count(total)}");
        sb.AppendLine($" Trainable params: {Count(trainable)}");
        sb.AppendLine($" Non-trainable params: {Count(total - trainable)}");
        return sb.ToString();
    }

    private static string Count(int parameters)
    {
        double bytes = parameters * 4.0;
        string size = bytes >= 1024 * 1024 ? $"{bytes / (1024 * 1024):F2} MB" : bytes >= 1024 ? $"{bytes / 1024:F2} KB" : $"{bytes:F2} B";
        return $"{parameters.ToString("N0", CultureInfo.InvariantCulture)} ({size.Replace(',', '.')})";
    }
}

/// <summary>A handle to a node's output while building a functional model.</summary>
public readonly record struct Symbol(int Node);

/// <summary>Builds a functional model: apply layers to symbols, then Build with the output symbol.</summary>
public sealed class FunctionalBuilder
{
    private readonly List<ModelNode> _nodes = [];

    /// <summary>Starts a graph whose input samples have <paramref name="inputShape"/>.</summary>
    public FunctionalBuilder(TensorShape inputShape) => InputShape = inputShape;

    /// <summary>Shape of one input sample.</summary>
    public TensorShape InputShape { get; }

    /// <summary>The model input.</summary>
    public Symbol Input => new(-1);

    /// <summary>Applies <paramref name="layer"/> to <paramref name="inputs"/>.</summary>
    public Symbol Apply(Layer layer, params Symbol[] inputs)
    {
        foreach (Symbol s in inputs)
            if (s.Node < -1 || s.Node >= _nodes.Count) throw new ArgumentException("A symbol from another builder was used.");
        _nodes.Add(new ModelNode(layer, inputs.Select(s => s.Node).ToArray()));
        return new Symbol(_nodes.Count - 1);
    }

    /// <summary>The model ending at <paramref name="output"/>, which must be the last node applied.</summary>
    public Model Build(string name, Symbol output)
    {
        if (output.Node != _nodes.Count - 1) throw new ArgumentException("The output must be the last layer applied.");
        return new Model(name, InputShape, _nodes.ToArray());
    }
}

/// <summary>Elements [From, To) of the flat gradient, final once node <paramref name="Node"/> has its parameter gradients (-1: at the end).</summary>
public readonly record struct ExchangeSegment(int From, int To, int Node)
{
    /// <summary>Number of floats.</summary>
    public int Length => To - From;
}
