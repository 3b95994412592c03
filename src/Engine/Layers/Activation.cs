// Activations a layer can fuse into its output, as Keras's `activation=` argument.
namespace Cnn.Engine.Layers;

/// <summary>A fused activation.</summary>
public enum Activation
{
    /// <summary>Identity.</summary>
    None,
    /// <summary>max(0, x).</summary>
    Relu,
    /// <summary>Softmax over the features; only on the last layer, where it is fused with the loss.</summary>
    Softmax,
}

/// <summary>Padding modes of Conv2D, as Keras's <c>padding=</c>.</summary>
public enum Padding
{
    /// <summary>No padding: the output shrinks by kernel - 1.</summary>
    Valid,
    /// <summary>Zero padding so that output = ceil(input / stride).</summary>
    Same,
}
