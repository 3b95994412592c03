// Plots/DigitImage: a PNG becomes what an MNIST model takes: 28x28 grey in [0, 1], white on black, the aspect
// ratio kept by padding.
using Cnn.Coordinator.Plots;
using SkiaSharp;
using Xunit;

namespace Cnn.Coordinator.Tests;

public sealed class DigitImageTests : IDisposable
{
    private readonly Scratch _scratch = new();

    private string NewPng(int width, int height, Func<int, int, SKColor> pixel)
    {
        string dir = _scratch.Path("png");
        Directory.CreateDirectory(dir);
        string path = Path.Combine(dir, "digit.png");
        Png.Write(path, width, height, pixel);
        return path;
    }

    [Fact]
    public void A_28x28_grey_png_white_on_black_is_used_as_it_is()
    {
        string path = NewPng(28, 28, (x, y) => new SKColor((byte)(x * 9), (byte)(x * 9), (byte)(x * 9)));

        DigitImage image = DigitImage.Load(path, 28, 28);

        Assert.False(image.Inverted);
        Assert.False(image.HadColour);
        for (int y = 0; y < 28; y++)
            for (int x = 0; x < 28; x++)
                Assert.Equal((byte)(x * 9) / 255f, image.Pixels[y * 28 + x]);
    }

    [Fact]
    public void A_black_on_white_png_is_inverted()
    {
        string path = NewPng(28, 28, (x, y) => x == 14 ? SKColors.Black : SKColors.White);

        DigitImage image = DigitImage.Load(path, 28, 28);

        Assert.True(image.Inverted);
        Assert.Equal(1f, image.Pixels[5 * 28 + 14]);
        Assert.Equal(0f, image.Pixels[5 * 28 + 3]);
    }

    [Fact]
    public void A_wide_png_is_scaled_to_fit_and_padded_above_and_below_with_the_background()
    {
        // 56x28 white square block in the middle of black: scaled by 1/2 to 28x14, padded with 7 rows on each side.
        string path = NewPng(56, 28, (x, y) => x >= 20 && x < 36 ? SKColors.White : SKColors.Black);

        DigitImage image = DigitImage.Load(path, 28, 28);

        Assert.Equal(0f, image.Pixels[3 * 28 + 14]);    // padding row
        Assert.Equal(1f, image.Pixels[14 * 28 + 14]);   // inside the block: source columns 28-29 are white
        Assert.Equal(0f, image.Pixels[14 * 28 + 2]);    // beside the block
        Assert.Equal(0f, image.Pixels[24 * 28 + 14]);   // padding row below
        Assert.Equal(1f, image.Pixels[7 * 28 + 12]);    // first scaled row, block starts at column 10
    }

    [Fact]
    public void A_colour_png_is_reduced_to_its_luminance()
    {
        string path = NewPng(28, 28, (x, y) => new SKColor(255, 0, 0));

        DigitImage image = DigitImage.Load(path, 28, 28);

        Assert.True(image.HadColour);
        Assert.False(image.Inverted);
        Assert.All(image.Pixels, p => Assert.Equal(0.299f, p, 3));
    }

    [Fact]
    public void Transparent_pixels_count_as_white_paper()
    {
        string path = NewPng(28, 28, (x, y) => x == 10 ? new SKColor(0, 0, 0, 255) : new SKColor(0, 0, 0, 0));

        DigitImage image = DigitImage.Load(path, 28, 28);

        Assert.True(image.Inverted);
        Assert.Equal(1f, image.Pixels[10]);
        Assert.Equal(0f, image.Pixels[11]);
    }

    public void Dispose() => _scratch.Dispose();
}
