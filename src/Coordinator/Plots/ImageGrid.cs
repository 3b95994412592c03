// Lays many small maps (filters, feature maps) out as one picture: a grid of `columns` maps per row, separated by
// one NaN cell that the heatmap draws in the background colour. One heatmap for the whole grid keeps every map
// at the same scale and the rendering a single pass, where one subplot per map would spend most pixels on
// margins.
//
//   maps:   (height, width, count), channels last, as NHWC activations and Keras kernels of one input channel
//   result: (rows * (height + 1) - 1, columns * (width + 1) - 1), row 0 at the top
//
// Deliberately not here: colours, titles and files (the pictures that use it).
namespace Cnn.Coordinator.Plots;

/// <summary>Arranges maps stored channels-last into one grid of cells (see file header).</summary>
public static class ImageGrid
{
    /// <summary>Maps per grid row for <paramref name="count"/> maps: 8, or all of them when fewer.</summary>
    public static int Columns(int count) => Math.Clamp(count, 1, 8);

    /// <summary>
    /// The grid of the <paramref name="count"/> maps in <paramref name="maps"/> (height, width, count). With
    /// <paramref name="normalizeEach"/>, every map is scaled to [0, 1] by its own minimum and maximum (a constant
    /// map becomes 0); otherwise the values are kept.
    /// </summary>
    public static double[,] FromChannelsLast(ReadOnlySpan<float> maps, int height, int width, int count, bool normalizeEach)
    {
        if (height <= 0 || width <= 0 || count <= 0) throw new ArgumentException($"maps of {height}x{width}x{count}: every size must be positive");
        if (maps.Length != height * width * count) throw new ArgumentException($"{maps.Length} values do not form ({height}, {width}, {count}) maps");
        int columns = Columns(count);
        int rows = (count + columns - 1) / columns;
        var grid = new double[rows * (height + 1) - 1, columns * (width + 1) - 1];
        for (int r = 0; r < grid.GetLength(0); r++)
            for (int c = 0; c < grid.GetLength(1); c++)
                grid[r, c] = double.NaN;
        for (int map = 0; map < count; map++)
        {
            float min = float.PositiveInfinity, max = float.NegativeInfinity;
            for (int p = 0; p < height * width; p++)
            {
                float v = maps[p * count + map];
                min = Math.Min(min, v);
                max = Math.Max(max, v);
            }
            double scale = max > min ? 1.0 / (max - min) : 0;
            int top = map / columns * (height + 1), left = map % columns * (width + 1);
            for (int y = 0; y < height; y++)
                for (int x = 0; x < width; x++)
                {
                    float v = maps[(y * width + x) * count + map];
                    grid[top + y, left + x] = normalizeEach ? (v - min) * scale : v;
                }
        }
        return grid;
    }

    /// <summary>One grey image (height, width) as cells, row 0 at the top.</summary>
    public static double[,] FromImage(ReadOnlySpan<float> pixels, int height, int width)
    {
        if (pixels.Length != height * width) throw new ArgumentException($"{pixels.Length} pixels do not form a {height}x{width} image");
        var cells = new double[height, width];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                cells[y, x] = pixels[y * width + x];
        return cells;
    }
}
