// The built-in models users start from.
//   seed-cnn:    the Keras MNIST CNN of DESIGN.md (93,322 parameters).
//   seed-resnet: Conv2D(32) then two residual blocks (Conv-BN-ReLU-Conv-BN + skip Add + ReLU), a pooling
//                step between them, then GlobalAveragePooling2D and Dense(10).
using Cnn.Engine.Layers;

namespace Cnn.Engine.Models;

/// <summary>Built-in models by name.</summary>
public static class Presets
{
    /// <summary>Names accepted by <see cref="Create"/>.</summary>
    public static IReadOnlyList<string> Names { get; } = ["seed-cnn", "seed-resnet"];

    /// <summary>The preset called <paramref name="name"/> for inputs of <paramref name="input"/> (default 28x28x1).</summary>
    public static Model Create(string name, TensorShape? input = null)
    {
        TensorShape shape = input ?? TensorShape.Image(28, 28, 1);
        return name switch
        {
            "seed-cnn" => SeedCnn(shape),
            "seed-resnet" => SeedResNet(shape),
            _ => throw new CnnUserException($"unknown model '{name}': expected one of {string.Join(", ", Names)}"),
        };
    }

    /// <summary>Conv32-Pool-Conv64-Pool-Conv64-Flatten-Dense64-Dense10.</summary>
    public static Model SeedCnn(TensorShape input) => Model.Sequential("seed-cnn", input,
        new Conv2D(32, 3, Activation.Relu),
        new MaxPooling2D(2),
        new Conv2D(64, 3, Activation.Relu),
        new MaxPooling2D(2),
        new Conv2D(64, 3, Activation.Relu),
        new Flatten(),
        new Dense(64, Activation.Relu),
        new Dense(10, Activation.Softmax));

    /// <summary>Conv2D(32), residual block, pooling, residual block, global average pooling, Dense(10).</summary>
    public static Model SeedResNet(TensorShape input)
    {
        var g = new FunctionalBuilder(input);
        Symbol x = g.Apply(new Conv2D(32, 3, Activation.Relu, padding: Padding.Same), g.Input);
        x = ResidualBlock(g, x, 32);
        x = g.Apply(new MaxPooling2D(2), x);
        x = ResidualBlock(g, x, 32);
        x = g.Apply(new GlobalAveragePooling2D(), x);
        x = g.Apply(new Dense(10, Activation.Softmax), x);
        return g.Build("seed-resnet", x);
    }

    private static Symbol ResidualBlock(FunctionalBuilder g, Symbol x, int filters)
    {
        Symbol y = g.Apply(new Conv2D(filters, 3, padding: Padding.Same), x);
        y = g.Apply(new BatchNormalization(), y);
        y = g.Apply(new ReLU(), y);
        y = g.Apply(new Conv2D(filters, 3, padding: Padding.Same), y);
        y = g.Apply(new BatchNormalization(), y);
        y = g.Apply(new Add(), y, x);
        return g.Apply(new ReLU(), y);
    }
}
