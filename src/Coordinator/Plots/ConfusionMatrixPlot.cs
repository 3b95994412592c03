// The confusion-matrix picture of `cnn evaluate --png`: a viridis heatmap of counts, true class down the left
// (0 at the top), predicted class along the bottom, every cell annotated with its count in a colour that stays
// readable on it, and a colour bar.
//
// Deliberately not here: computing the matrix (EvaluateCommand) or normalising it; the counts are what the
// table prints, so the picture and the table can be read against each other.
using System.Globalization;
using ScottPlot;

namespace Cnn.Coordinator.Plots;

/// <summary>Writes the confusion matrix as a PNG heatmap.</summary>
public static class ConfusionMatrixPlot
{
    /// <summary>Width of the picture in pixels.</summary>
    public const int Width = 760;

    /// <summary>Height of the picture in pixels.</summary>
    public const int Height = 680;

    /// <summary>
    /// Writes <paramref name="counts"/> (true class, predicted class) to <paramref name="path"/> atomically, titled with
    /// <paramref name="title"/>.
    /// </summary>
    /// <exception cref="Cnn.Engine.CnnUserException">The file cannot be written.</exception>
    public static void Write(string path, int[,] counts, string title)
    {
        ArgumentNullException.ThrowIfNull(counts);
        int classes = counts.GetLength(0);
        if (counts.GetLength(1) != classes) throw new ArgumentException($"a confusion matrix is square, not {classes}x{counts.GetLength(1)}");
        var cells = new double[classes, classes];
        int max = 0;
        for (int t = 0; t < classes; t++)
            for (int p = 0; p < classes; p++)
            {
                cells[t, p] = counts[t, p];
                max = Math.Max(max, counts[t, p]);
            }

        Plot plot = PlotFile.NewPlot();
        ScottPlot.Plottables.Heatmap heatmap = plot.Add.Heatmap(cells);
        heatmap.Colormap = new ScottPlot.Colormaps.Viridis();
        plot.Add.ColorBar(heatmap);
        // Heatmap row t is drawn at y = classes - 1 - t, so true class 0 is the top row as in a printed table.
        for (int t = 0; t < classes; t++)
            for (int p = 0; p < classes; p++)
            {
                ScottPlot.Plottables.Text label = plot.Add.Text(counts[t, p].ToString(CultureInfo.InvariantCulture), p, classes - 1 - t);
                label.Alignment = Alignment.MiddleCenter;
                label.LabelFontSize = classes <= 10 ? 14 : 9;
                // Viridis is dark below about 60% of its range and light above.
                label.LabelFontColor = max > 0 && counts[t, p] > 0.6 * max ? Colors.Black : Colors.White;
            }
        double[] positions = Enumerable.Range(0, classes).Select(i => (double)i).ToArray();
        plot.Axes.Bottom.SetTicks(positions, positions.Select(p => ((int)p).ToString(CultureInfo.InvariantCulture)).ToArray());
        plot.Axes.Left.SetTicks(positions, positions.Select(p => (classes - 1 - (int)p).ToString(CultureInfo.InvariantCulture)).ToArray());
        plot.XLabel("Predicted");
        plot.YLabel("True");
        plot.Title(title);
        plot.HideGrid();
        plot.Axes.SquareUnits();
        plot.Axes.SetLimits(-0.5, classes - 0.5, -0.5, classes - 0.5);
        PlotFile.Save(plot, path, Width, Height);
    }
}
