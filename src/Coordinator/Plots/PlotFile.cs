// What every picture of the `cnn` command shares: the house look (a sans-serif font when the machine has one,
// no grid on images) and the one way a picture reaches the disk: rendered to PNG bytes in memory, then written
// by AtomicFile (a temp file in the same directory, renamed over the target), so a reader never sees half a
// PNG and a failed render leaves no file at all.
//
// Rendering goes through ScottPlot 5 on SkiaSharp; the native libSkiaSharp comes from the
// SkiaSharp.NativeAssets.Linux.NoDependencies package, so no system library is needed. That build reads fonts
// from /usr/share/fonts itself (no fontconfig): on a machine without any font the pictures are still drawn but
// carry no text, and FontWarning says so.
//
// Deliberately not here: what a picture shows (one class per picture in this folder).
using Cnn.Engine.IO;
using ScottPlot;
using SkiaSharp;

namespace Cnn.Coordinator.Plots;

/// <summary>Renders ScottPlot figures to PNG files atomically, in the project's style.</summary>
public static class PlotFile
{
    private const string PreferredFont = "DejaVu Sans";

    private static readonly Lazy<bool> HasPreferredFont = new(() => SKFontManager.Default.GetFontFamilies().Contains(PreferredFont));

    /// <summary>
    /// A one-line warning when the machine has no font for the pictures' text, or null when it has one.
    /// </summary>
    public static string? FontWarning =>
        // The font manager reports one nameless family even when it found no file, so ask for glyphs instead.
        SKTypeface.Default.GlyphCount == 0
            ? "warning: no fonts found in /usr/share/fonts, so the picture has no text (apt-get install fonts-dejavu-core)"
            : null;

    /// <summary>A new plot in the project's style.</summary>
    public static Plot NewPlot()
    {
        var plot = new Plot();
        Style(plot);
        return plot;
    }

    /// <summary>Applies the project's style to <paramref name="plot"/>.</summary>
    public static void Style(Plot plot)
    {
        ArgumentNullException.ThrowIfNull(plot);
        // ScottPlot's own choice on Linux can be a serif face; the sans face reads better in small labels.
        if (HasPreferredFont.Value) plot.Font.Set(PreferredFont);
    }

    /// <summary>Renders <paramref name="plot"/> at <paramref name="width"/> x <paramref name="height"/> and writes it to <paramref name="path"/> atomically.</summary>
    /// <exception cref="Cnn.Engine.CnnUserException">The file cannot be written.</exception>
    public static void Save(Plot plot, string path, int width, int height)
    {
        ArgumentNullException.ThrowIfNull(plot);
        AtomicFile.WriteAllBytes(path, plot.GetImageBytes(width, height, ImageFormat.Png));
    }

    /// <summary>Renders <paramref name="figure"/> at <paramref name="width"/> x <paramref name="height"/> and writes it to <paramref name="path"/> atomically.</summary>
    /// <exception cref="Cnn.Engine.CnnUserException">The file cannot be written.</exception>
    public static void Save(Multiplot figure, string path, int width, int height)
    {
        ArgumentNullException.ThrowIfNull(figure);
        using Image image = figure.Render(width, height);
        AtomicFile.WriteAllBytes(path, image.GetImageBytes(ImageFormat.Png, 100));
    }

    /// <summary>
    /// A heatmap of <paramref name="cells"/> (rows top to bottom, columns left to right) as a picture: no axes, no
    /// grid, square cells, NaN cells in the background colour, a colour bar on the right when
    /// <paramref name="colorBar"/> is set. The title, if any, is set by the caller.
    /// </summary>
    public static ScottPlot.Plottables.Heatmap ImageHeatmap(Plot plot, double[,] cells, IColormap colormap, bool colorBar)
    {
        ArgumentNullException.ThrowIfNull(plot);
        ArgumentNullException.ThrowIfNull(cells);
        ScottPlot.Plottables.Heatmap heatmap = plot.Add.Heatmap(cells);
        heatmap.Colormap = colormap;
        heatmap.NaNCellColor = Colors.White;
        if (colorBar) plot.Add.ColorBar(heatmap);
        plot.Axes.Bottom.IsVisible = false;
        plot.Axes.Top.IsVisible = false;
        plot.Axes.Left.IsVisible = false;
        plot.Axes.Right.IsVisible = false;
        plot.HideGrid();
        // The automatic layout gives hidden axes no room, which lets a colour bar run over the picture.
        plot.Layout.Fixed(new PixelPadding(left: 12, right: colorBar ? 120 : 12, bottom: 12, top: 44));
        plot.Axes.SquareUnits();
        // One empty column before the colour bar, which is drawn flush against the data area.
        plot.Axes.SetLimits(-0.5, cells.GetLength(1) - 0.5 + (colorBar ? 1 : 0), -0.5, cells.GetLength(0) - 0.5);
        return heatmap;
    }
}
