// The picture of `cnn visualize filters`: every filter of a convolution as a small kh x kw image, 8 to a row
// (32 filters make the 4x8 grid of the walkthrough), in the viridis colour map. All filters share one colour
// scale, shown by the colour bar in weight units, so a strong filter looks strong next to a weak one.
//
//   kernel: (kh, kw, cin, cout) as Keras lays it out
//
// A first convolution of MNIST has one input channel, so each filter is exactly one image. For cin > 1 the
// picture shows each filter's mean over its input channels, and the title says so.
//
// Deliberately not here: finding the layer or loading the weights (VisualizeCommand).
using System.Globalization;

namespace Cnn.Coordinator.Plots;

/// <summary>Writes a convolution's filters as a PNG grid.</summary>
public static class FilterPlot
{
    /// <summary>Width of the picture in pixels.</summary>
    public const int Width = 1000;

    /// <summary>Height of the picture in pixels.</summary>
    public const int Height = 560;

    /// <summary>
    /// Writes the filters of <paramref name="kernel"/> (<paramref name="kernelHeight"/>, <paramref name="kernelWidth"/>,
    /// <paramref name="inputChannels"/>, <paramref name="filters"/>) of layer <paramref name="layerName"/> to
    /// <paramref name="path"/> atomically.
    /// </summary>
    /// <exception cref="Cnn.Engine.CnnUserException">The file cannot be written.</exception>
    public static void Write(string path, string layerName, ReadOnlySpan<float> kernel, int kernelHeight, int kernelWidth, int inputChannels, int filters, string? subtitle)
    {
        if (kernel.Length != kernelHeight * kernelWidth * inputChannels * filters)
            throw new ArgumentException($"{kernel.Length} values do not form a ({kernelHeight}, {kernelWidth}, {inputChannels}, {filters}) kernel");
        var maps = new float[kernelHeight * kernelWidth * filters];   // (kh, kw, cout)
        for (int p = 0; p < kernelHeight * kernelWidth; p++)
            for (int o = 0; o < filters; o++)
            {
                float sum = 0;
                for (int c = 0; c < inputChannels; c++) sum += kernel[(p * inputChannels + c) * filters + o];
                maps[p * filters + o] = sum / inputChannels;
            }

        ScottPlot.Plot plot = PlotFile.NewPlot();
        PlotFile.ImageHeatmap(plot, ImageGrid.FromChannelsLast(maps, kernelHeight, kernelWidth, filters, normalizeEach: false),
            new ScottPlot.Colormaps.Viridis(), colorBar: true);
        string mean = inputChannels > 1 ? string.Create(CultureInfo.InvariantCulture, $", mean over {inputChannels} input channels") : "";
        string title = string.Create(CultureInfo.InvariantCulture, $"{layerName}: {filters} filters {kernelHeight}x{kernelWidth}{mean}");
        plot.Title(subtitle is null ? title : $"{title} ({subtitle})");
        PlotFile.Save(plot, path, Width, Height);
    }
}
