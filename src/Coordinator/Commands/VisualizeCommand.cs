// `cnn visualize`: what a trained convolutional network has learned, as pictures.
//   filters      --checkpoint FILE --png OUT [--model NAME]
//                the first convolution's filters in a grid of 8 per row (32 filters: 4x8), viridis colours;
//   feature-maps --checkpoint FILE --index I --png OUT [--layer NAME] [--data DIR] [--model NAME]
//                test image I, the feature maps after the convolution --layer (default: the first Conv2D), and
//                the maps after the first pooling layer that follows it, when there is one (the output says when
//                there is none).
//
// Deliberately not here: the drawing (Plots/FilterPlot, Plots/FeatureMapPlot) and layers other than
// convolutions as the starting point: a dense layer's output is not a set of maps.
using System.CommandLine;
using System.Globalization;
using Cnn.Coordinator.Plots;
using Cnn.Engine;
using Cnn.Engine.Data;
using Cnn.Engine.IO;
using Cnn.Engine.Layers;
using Cnn.Engine.Models;

namespace Cnn.Coordinator.Commands;

/// <summary>The <c>visualize</c> command and its <c>filters</c> and <c>feature-maps</c> subcommands.</summary>
public static class VisualizeCommand
{
    /// <summary>The command, writing to <paramref name="io"/>.</summary>
    public static Command Create(CliOutput io) => new("visualize", "Draw a checkpoint's filters or feature maps as PNG pictures.")
    {
        Filters(io),
        FeatureMaps(io),
    };

    private static Command Filters(CliOutput io)
    {
        Option<string> checkpoint = CheckpointInputs.CheckpointOption();
        Option<string?> model = CheckpointInputs.ModelOption();
        Option<string?> png = CheckpointInputs.PngOption("PNG file to write", required: true);
        var command = new Command("filters", "Draw the first convolution's filters in a grid (viridis).") { checkpoint, model, png };
        command.SetAction(parse =>
        {
            string path = parse.GetValue(checkpoint)!;
            LoadedCheckpoint loaded = CheckpointInputs.LoadCheckpoint(path, parse.GetValue(model));
            Conv2D conv = Convolutions(loaded.Model).FirstOrDefault()
                ?? throw new CnnUserException($"{path}: model '{loaded.Model.Name}' has no Conv2D layer, so it has no filters to draw");
            ParameterSlice kernel = loaded.Model.Parameters.Find($"{conv.Name}/kernel")
                ?? throw new InvalidOperationException($"{conv.Name} declares no kernel");
            int[] s = kernel.Shape;   // (kh, kw, cin, cout)
            string output = parse.GetValue(png)!;
            FilterPlot.Write(output, conv.Name, kernel.Of(loaded.Weights), s[0], s[1], s[2], s[3],
                string.Create(CultureInfo.InvariantCulture, $"{loaded.Model.Name}, step {loaded.Info.Step}"));
            if (PlotFile.FontWarning is string warning) io.Error.WriteLine(warning);
            io.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{s[3]} filters {s[0]}x{s[1]} of {conv.Name} written to {output}"));
            return 0;
        });
        return command;
    }

    private static Command FeatureMaps(CliOutput io)
    {
        Option<string> checkpoint = CheckpointInputs.CheckpointOption();
        Option<string?> model = CheckpointInputs.ModelOption();
        Option<string> data = CheckpointInputs.DataOption();
        var index = new Option<int>("--index") { Description = "Test image I of --data", Required = true };
        var layer = new Option<string?>("--layer") { Description = "Conv2D layer whose output to draw (default: the first Conv2D)" };
        Option<string?> png = CheckpointInputs.PngOption("PNG file to write", required: true);
        var command = new Command("feature-maps", "Draw a test image and its feature maps after a convolution and the pooling after it.")
        {
            checkpoint, model, data, index, layer, png,
        };
        command.SetAction(parse =>
        {
            string path = parse.GetValue(checkpoint)!, directory = parse.GetValue(data)!;
            LoadedCheckpoint loaded = CheckpointInputs.LoadCheckpoint(path, parse.GetValue(model));
            Model net = loaded.Model;
            Conv2D conv = ChooseConvolution(net, parse.GetValue(layer), path);
            MnistDataset test = CheckpointInputs.LoadTestSet(directory, net);
            int id = parse.GetValue(index);
            CheckpointInputs.CheckIndex(id, test, directory);

            float[] pixels = CheckpointInputs.Image(test, id);
            var runner = new ModelRunner(net, 1);
            FeatureMaps convMaps = Maps(runner, loaded.Weights, pixels, conv);
            Layer? pooling = PoolingAfter(net, conv);
            FeatureMaps? poolMaps = pooling is null ? null : Maps(runner, loaded.Weights, pixels, pooling);

            string output = parse.GetValue(png)!;
            FeatureMapPlot.Write(output, pixels, test.Rows, test.Columns,
                string.Create(CultureInfo.InvariantCulture, $"Test image {id} (label {test.Labels[id]})"), convMaps, poolMaps);
            if (PlotFile.FontWarning is string warning) io.Error.WriteLine(warning);
            string after = poolMaps is null ? $" (no pooling layer follows {conv.Name})" : $" and {poolMaps.LayerName} ({poolMaps.Height}x{poolMaps.Width}x{poolMaps.Channels})";
            io.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"Test image {id} (label {test.Labels[id]}), feature maps of {conv.Name} ({convMaps.Height}x{convMaps.Width}x{convMaps.Channels}){after} written to {output}"));
            return 0;
        });
        return command;
    }

    private static IEnumerable<Conv2D> Convolutions(Model model) => model.Nodes.Select(n => n.Layer).OfType<Conv2D>();

    private static Conv2D ChooseConvolution(Model model, string? name, string checkpointPath)
    {
        string names = string.Join(", ", Convolutions(model).Select(c => c.Name));
        if (name is null)
        {
            return Convolutions(model).FirstOrDefault()
                ?? throw new CnnUserException($"{checkpointPath}: model '{model.Name}' has no Conv2D layer, so it has no feature maps to draw");
        }
        Layer? named = model.Nodes.Select(n => n.Layer).FirstOrDefault(l => l.Name == name);
        if (named is null) throw new CnnUserException($"--layer {name}: {model.Name} has no layer of that name; its Conv2D layers are {names}");
        return named as Conv2D ?? throw new CnnUserException($"--layer {name} is a {named.TypeName}, not a Conv2D; the Conv2D layers of {model.Name} are {names}");
    }

    /// <summary>The first MaxPooling2D after <paramref name="conv"/> in the model's order, or null (global pooling leaves no maps).</summary>
    private static Layer? PoolingAfter(Model model, Conv2D conv)
    {
        int at = model.Nodes.Select((n, i) => (n, i)).First(p => ReferenceEquals(p.n.Layer, conv)).i;
        return model.Nodes.Skip(at + 1).Select(n => n.Layer).FirstOrDefault(l => l is MaxPooling2D);
    }

    private static FeatureMaps Maps(ModelRunner runner, float[] weights, float[] pixels, Layer layer)
    {
        TensorShape shape = layer.OutputShape;
        float[] maps = runner.Activations(weights, pixels, 1, layer.Name).ToArray();   // (height, width, channels)
        return new FeatureMaps(layer.Name, maps, shape.Height, shape.Width, shape.Channels);
    }
}
