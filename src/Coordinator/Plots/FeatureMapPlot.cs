// The picture of `cnn visualize feature-maps`, left to right: the input image (grey), the feature maps after a
// convolution, and the maps after the pooling layer that follows it, each set as a grid of 8 maps per row in
// the viridis colour map. Each map is scaled to its own range, as matplotlib's imshow does in the walkthrough,
// because ReLU maps differ in scale by orders of magnitude and one shared scale would leave most of them black.
//
// Deliberately not here: running the model or choosing the layers (VisualizeCommand).
using System.Globalization;
using ScottPlot;

namespace Cnn.Coordinator.Plots;

/// <summary>A set of feature maps of one layer for one image.</summary>
/// <param name="LayerName">The layer's name (conv2d, max_pooling2d...).</param>
/// <param name="Maps">The layer's output for the image, (height, width, channels).</param>
/// <param name="Height">Map height.</param>
/// <param name="Width">Map width.</param>
/// <param name="Channels">Number of maps.</param>
public sealed record FeatureMaps(string LayerName, float[] Maps, int Height, int Width, int Channels);

/// <summary>Writes an input image and its feature maps as a PNG.</summary>
public static class FeatureMapPlot
{
    /// <summary>Width of the picture in pixels.</summary>
    public const int Width = 1600;

    /// <summary>Height of the picture in pixels.</summary>
    public const int Height = 480;

    /// <summary>
    /// Writes the image <paramref name="pixels"/> (height, width) in [0, 1] titled <paramref name="inputTitle"/>, then
    /// <paramref name="convolution"/> and, when there is one, <paramref name="pooling"/>, to <paramref name="path"/>
    /// atomically.
    /// </summary>
    /// <exception cref="Cnn.Engine.CnnUserException">The file cannot be written.</exception>
    public static void Write(string path, ReadOnlySpan<float> pixels, int height, int width, string inputTitle, FeatureMaps convolution, FeatureMaps? pooling)
    {
        ArgumentNullException.ThrowIfNull(convolution);
        var figure = new Multiplot();
        var layout = new ScottPlot.MultiplotLayouts.CustomGrid();
        int columns = pooling is null ? 3 : 5;

        Plot input = figure.GetPlot(0);
        PlotFile.Style(input);
        PlotFile.ImageHeatmap(input, ImageGrid.FromImage(pixels, height, width), new ScottPlot.Colormaps.Grayscale(), colorBar: false)
            .ManualRange = new ScottPlot.Range(0, 1);
        input.Title(inputTitle, 14);
        layout.Set(input, new GridCell(0, 0, 1, columns, 1, 1));

        int at = 1;
        foreach (FeatureMaps maps in pooling is null ? [convolution] : new[] { convolution, pooling })
        {
            Plot panel = figure.AddPlot();
            PlotFile.Style(panel);
            PlotFile.ImageHeatmap(panel, ImageGrid.FromChannelsLast(maps.Maps, maps.Height, maps.Width, maps.Channels, normalizeEach: true),
                new ScottPlot.Colormaps.Viridis(), colorBar: false);
            panel.Title(string.Create(CultureInfo.InvariantCulture, $"{maps.LayerName}: {maps.Channels} maps {maps.Height}x{maps.Width}"), 14);
            layout.Set(panel, new GridCell(0, at, 1, columns, 1, 2));
            at += 2;
        }
        figure.Layout = layout;
        PlotFile.Save(figure, path, Width, Height);
    }
}
