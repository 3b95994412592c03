// `cnn predict --checkpoint FILE (--index I | --random [--seed S] | --image FILE.png) [--data DIR] [--model NAME]
// [--png OUT]`: the class a trained model gives one digit, and its probabilities for every class.
//   --index I    test image I of --data;
//   --random     a test image drawn with --seed S (a fresh seed when none is given; it is printed, so the draw can
//                be repeated);
//   --image F    a PNG file, converted to the model's input as Plots/DigitImage describes, which the output says.
// --png writes the digit as the model saw it, titled "Predicted digit: N (true: M)" (no true label for a file),
// beside the probabilities.
//
// Deliberately not here: batches of images (`cnn evaluate` covers the test set) and any image format but PNG.
using System.CommandLine;
using System.Globalization;
using System.Numerics.Tensors;
using Cnn.Coordinator.Plots;
using Cnn.Engine;
using Cnn.Engine.Data;
using Cnn.Engine.IO;
using Cnn.Engine.Models;

namespace Cnn.Coordinator.Commands;

/// <summary>The <c>predict</c> command.</summary>
public static class PredictCommand
{
    private const int BarWidth = 40;

    /// <summary>The command, writing to <paramref name="io"/>.</summary>
    public static Command Create(CliOutput io)
    {
        Option<string> checkpoint = CheckpointInputs.CheckpointOption();
        Option<string?> model = CheckpointInputs.ModelOption();
        Option<string> data = CheckpointInputs.DataOption();
        var index = new Option<int?>("--index") { Description = "Predict test image I of --data" };
        var random = new Option<bool>("--random") { Description = "Predict a test image drawn at random" };
        var seed = new Option<ulong?>("--seed") { Description = "Seed of the --random draw (default: a fresh one, printed)" };
        var image = new Option<string?>("--image") { Description = "Predict the digit in this PNG file (any size, grey or colour)" };
        Option<string?> png = CheckpointInputs.PngOption("Also draw the digit and the probabilities into this PNG file", required: false);
        var command = new Command("predict", "Predict the digit of one test image or PNG file with a checkpoint.")
        {
            checkpoint, model, data, index, random, seed, image, png,
        };
        command.SetAction(parse =>
        {
            int? at = parse.GetValue(index);
            bool draw = parse.GetValue(random);
            string? file = parse.GetValue(image);
            int sources = (at is null ? 0 : 1) + (draw ? 1 : 0) + (file is null ? 0 : 1);
            if (sources != 1) throw new CnnUserException("give exactly one of --index I, --random or --image FILE.png");
            if (parse.GetValue(seed) is not null && !draw) throw new CnnUserException("--seed goes with --random");

            string directory = parse.GetValue(data)!;
            LoadedCheckpoint loaded = CheckpointInputs.LoadCheckpoint(parse.GetValue(checkpoint)!, parse.GetValue(model));
            TensorShape shape = loaded.Model.InputShape;
            float[] pixels;
            int? label = null;
            if (file is not null)
            {
                DigitImage digit = DigitImage.Load(file, shape.Height, shape.Width);
                pixels = digit.Pixels;
                io.Out.WriteLine(digit.Describe(file));
            }
            else
            {
                MnistDataset test = CheckpointInputs.LoadTestSet(directory, loaded.Model);
                int id;
                if (draw)
                {
                    ulong drawSeed = parse.GetValue(seed) ?? (ulong)Random.Shared.NextInt64(long.MaxValue);
                    id = new Rng(drawSeed).NextInt(test.Count);
                    io.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"random test image {id} of {directory} (--seed {drawSeed})"));
                }
                else
                {
                    id = at!.Value;
                    CheckpointInputs.CheckIndex(id, test, directory);
                    io.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"test image {id} of {directory}"));
                }
                pixels = CheckpointInputs.Image(test, id);
                label = test.Labels[id];
            }

            float[] probabilities = Predict(loaded.Model, loaded.Weights, pixels);
            int predicted = TensorPrimitives.IndexOfMax(probabilities);
            io.Out.WriteLine(DigitPlot.Title(predicted, label));
            io.Out.WriteLine("class  probability");
            for (int c = 0; c < probabilities.Length; c++)
            {
                string bar = new('#', (int)Math.Round(probabilities[c] * BarWidth));
                if (c == predicted) bar += " <";
                string line = string.Create(CultureInfo.InvariantCulture, $"{c,5}  {probabilities[c],11:F4}  {bar}");
                io.Out.WriteLine(line.TrimEnd());
            }
            if (parse.GetValue(png) is string output)
            {
                DigitPlot.Write(output, pixels, shape.Height, shape.Width, probabilities, predicted, label);
                if (PlotFile.FontWarning is string warning) io.Error.WriteLine(warning);
                io.Out.WriteLine($"Digit written to {output}");
            }
            return 0;
        });
        return command;
    }

    /// <summary>The class probabilities <paramref name="model"/> gives the image <paramref name="pixels"/> (input size).</summary>
    public static float[] Predict(Model model, float[] weights, float[] pixels)
    {
        ArgumentNullException.ThrowIfNull(model);
        var probabilities = new float[model.Classes];
        new ModelRunner(model, 1).Predict(weights, pixels, 1, probabilities);
        return probabilities;
    }
}
