// The picture of `cnn predict --png`: on the left the digit exactly as the model saw it (28x28 grey, 0 black and
// 1 white), titled "Predicted digit: N (true: M)" (no true label for an image file); on the right the
// probabilities of all classes as bars, the predicted one highlighted.
//
// Deliberately not here: loading or converting the image (DigitImage) and running the model (PredictCommand).
using System.Globalization;
using ScottPlot;

namespace Cnn.Coordinator.Plots;

/// <summary>Writes a digit and its class probabilities as a PNG.</summary>
public static class DigitPlot
{
    /// <summary>Width of the picture in pixels.</summary>
    public const int Width = 900;

    /// <summary>Height of the picture in pixels.</summary>
    public const int Height = 440;

    /// <summary>The title of the digit: "Predicted digit: N (true: M)", or without the true label when it is unknown.</summary>
    public static string Title(int predicted, int? trueLabel) =>
        trueLabel is int label
            ? string.Create(CultureInfo.InvariantCulture, $"Predicted digit: {predicted} (true: {label})")
            : string.Create(CultureInfo.InvariantCulture, $"Predicted digit: {predicted}");

    /// <summary>
    /// Writes the image <paramref name="pixels"/> (height, width) in [0, 1] and the <paramref name="probabilities"/>
    /// (classes) to <paramref name="path"/> atomically.
    /// </summary>
    /// <exception cref="Cnn.Engine.CnnUserException">The file cannot be written.</exception>
    public static void Write(string path, ReadOnlySpan<float> pixels, int height, int width, ReadOnlySpan<float> probabilities, int predicted, int? trueLabel)
    {
        var figure = new Multiplot();
        Plot digit = figure.GetPlot(0);
        PlotFile.Style(digit);
        ScottPlot.Plottables.Heatmap image = PlotFile.ImageHeatmap(digit, ImageGrid.FromImage(pixels, height, width), new ScottPlot.Colormaps.Grayscale(), colorBar: false);
        image.ManualRange = new ScottPlot.Range(0, 1);
        digit.Title(Title(predicted, trueLabel));

        Plot chart = figure.AddPlot();
        PlotFile.Style(chart);
        var bars = new List<Bar>(probabilities.Length);
        for (int c = 0; c < probabilities.Length; c++)
        {
            bars.Add(new Bar
            {
                Position = c,
                Value = probabilities[c],
                FillColor = c == predicted ? Colors.DarkOrange : Colors.SteelBlue,
                LineWidth = 0,
            });
        }
        chart.Add.Bars(bars);
        double[] positions = Enumerable.Range(0, probabilities.Length).Select(i => (double)i).ToArray();
        chart.Axes.Bottom.SetTicks(positions, positions.Select(p => ((int)p).ToString(CultureInfo.InvariantCulture)).ToArray());
        chart.Axes.SetLimits(-0.6, probabilities.Length - 0.4, 0, 1.05);
        chart.Title("Class probabilities");
        chart.XLabel("Digit");
        chart.YLabel("Probability");
        figure.Layout = new ScottPlot.MultiplotLayouts.Columns();
        PlotFile.Save(figure, path, Width, Height);
    }
}
