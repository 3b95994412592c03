// Plots/ImageGrid: maps stored channels-last land in a grid of 8 per row with NaN gaps, each scaled to its own
// range when asked.
using Cnn.Coordinator.Plots;
using Xunit;

namespace Cnn.Coordinator.Tests;

public sealed class ImageGridTests
{
    [Fact]
    public void Ten_maps_of_2x3_fill_two_rows_of_eight_with_one_cell_gaps()
    {
        const int height = 2, width = 3, count = 10;
        var maps = new float[height * width * count];   // (height, width, count)
        for (int p = 0; p < height * width; p++)
            for (int m = 0; m < count; m++)
                maps[p * count + m] = m * 100 + p;

        double[,] grid = ImageGrid.FromChannelsLast(maps, height, width, count, normalizeEach: false);

        Assert.Equal(2 * (height + 1) - 1, grid.GetLength(0));
        Assert.Equal(8 * (width + 1) - 1, grid.GetLength(1));
        Assert.Equal(0, grid[0, 0]);
        Assert.Equal(5, grid[1, 2]);                 // map 0, pixel (1, 2)
        Assert.True(double.IsNaN(grid[0, 3]));       // gap after map 0
        Assert.Equal(100, grid[0, 4]);               // map 1 starts after the gap
        Assert.Equal(900 + 4, grid[4, 4 + 1]);       // map 9: second row, second column, pixel (1, 1)
        Assert.True(double.IsNaN(grid[3, 8]));       // an empty slot of the second row
    }

    [Fact]
    public void Normalising_each_map_scales_it_to_zero_and_one_and_a_constant_map_to_zero()
    {
        float[] maps = [1, 7, 3, 7, 5, 7, 9, 7];   // (2, 2, 2): map 0 is 1, 3, 5, 9; map 1 is constant

        double[,] grid = ImageGrid.FromChannelsLast(maps, 2, 2, 2, normalizeEach: true);

        Assert.Equal(0, grid[0, 0]);
        Assert.Equal(0.25, grid[0, 1]);
        Assert.Equal(1, grid[1, 1]);
        Assert.Equal(0, grid[0, 3]);
        Assert.Equal(0, grid[1, 4]);
    }
}
