// The training curves of a run, as `cnn plot history` draws them and `cnn train` writes into its run directory
// at the end of every run: two panels side by side, accuracy on the left and loss on the right, each with the
// training value per epoch and the validation value where the run held samples out. A last epoch cut short by
// --max-steps is drawn like the others: its row is in history.csv too.
//
// Deliberately not here: reading history.csv or run.json (PlotCommand) and the metrics themselves (TrainingLoop).
using Cnn.Coordinator.Runs;
using ScottPlot;

namespace Cnn.Coordinator.Plots;

/// <summary>Writes a run's per-epoch accuracy and loss as a PNG.</summary>
public static class HistoryPlot
{
    /// <summary>The file name `cnn train` writes into the run directory.</summary>
    public const string FileName = "history.png";

    /// <summary>Width of the picture in pixels.</summary>
    public const int Width = 1200;

    /// <summary>Height of the picture in pixels.</summary>
    public const int Height = 480;

    /// <summary>Writes the curves of <paramref name="history"/> to <paramref name="path"/> atomically.</summary>
    /// <exception cref="Cnn.Engine.CnnUserException">The file cannot be written.</exception>
    public static void Write(string path, IReadOnlyList<HistoryRow> history)
    {
        ArgumentNullException.ThrowIfNull(history);
        var figure = new Multiplot();
        Plot accuracy = figure.GetPlot(0);
        Panel(accuracy, history, "Accuracy", r => r.Accuracy, r => r.ValAccuracy, Alignment.LowerRight);
        Plot loss = figure.AddPlot();
        Panel(loss, history, "Loss", r => r.Loss, r => r.ValLoss, Alignment.UpperRight);
        figure.Layout = new ScottPlot.MultiplotLayouts.Columns();
        PlotFile.Save(figure, path, Width, Height);
    }

    private static void Panel(Plot plot, IReadOnlyList<HistoryRow> history, string name, Func<HistoryRow, double> training,
        Func<HistoryRow, double?> validation, Alignment legend)
    {
        PlotFile.Style(plot);
        plot.Title(name);
        plot.XLabel("Epoch");
        plot.YLabel(name.ToLowerInvariant());
        if (history.Count == 0)
        {
            plot.Add.Text("no epoch has started", 0, 0).Alignment = Alignment.MiddleCenter;
            return;
        }
        double[] epochs = history.Select(r => (double)r.Epoch).ToArray();
        ScottPlot.Plottables.Scatter train = plot.Add.Scatter(epochs, history.Select(training).ToArray());
        train.LegendText = "training";
        train.LineWidth = 2;
        train.MarkerSize = 7;
        HistoryRow[] validated = history.Where(r => validation(r) is not null).ToArray();
        if (validated.Length > 0)
        {
            ScottPlot.Plottables.Scatter val = plot.Add.Scatter(validated.Select(r => (double)r.Epoch).ToArray(), validated.Select(r => validation(r)!.Value).ToArray());
            val.LegendText = "validation";
            val.LineWidth = 2;
            val.MarkerSize = 7;
        }
        plot.ShowLegend(legend);
        // Whole epochs only: a tick at 1.5 would suggest a measurement between two epoch ends.
        double first = epochs.Min(), last = epochs.Max();
        double[] ticks = Enumerable.Range((int)first, (int)(last - first) + 1).Select(e => (double)e).ToArray();
        if (ticks.Length <= 20) plot.Axes.Bottom.SetTicks(ticks, ticks.Select(t => ((int)t).ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray());
        plot.Axes.SetLimitsX(first - 0.5, last + 0.5);
    }
}
