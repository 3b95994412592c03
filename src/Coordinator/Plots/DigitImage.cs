// Turns a PNG file of a digit into what an MNIST model takes: height x width grey values in [0, 1] (28x28 for
// the built-in models), white digit on black. The steps, in order:
//   1. check the 8-byte PNG signature, so another format is refused by name rather than guessed at;
//   2. decode with SkiaSharp (it comes with ScottPlot, native library included) to RGBA;
//   3. luminance Y = 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601, what PIL's convert("L") uses), after laying
//      transparent pixels over white, as a viewer shows them;
//   4. invert when the border is light (its median above 0.5, so a stroke touching the edge does not count):
//      MNIST digits are white on black, drawings and scans are usually black on white;
//   5. resize keeping the aspect ratio so that the longer side fits, by area averaging (each target pixel is the
//      mean of the source area it covers, which neither drops thin strokes nor invents detail);
//   6. centre it, padding the shorter side with the border's (inverted) median, the background.
// A PNG that is already 28x28 grey and white on black goes through unchanged, bit for bit apart from the /255.
//
// Deliberately not done: MNIST's own preprocessing of fitting the digit into 20x20 and centring it by its
// centre of mass, and stretching the contrast to the full range. Both would change a digit that is already
// MNIST-like, and predicting on a saved test digit must give the model the same input as the test set; the
// picture of `cnn predict --png` shows what the model saw, so a faint or off-centre drawing can be seen as such.
using System.Globalization;
using Cnn.Engine;
using SkiaSharp;

namespace Cnn.Coordinator.Plots;

/// <summary>A digit read from a PNG file and converted to the model's input (see file header).</summary>
/// <param name="Pixels">Grey values in [0, 1], (height, width) row-major, white digit on black.</param>
/// <param name="Height">Rows of <paramref name="Pixels"/>.</param>
/// <param name="Width">Columns of <paramref name="Pixels"/>.</param>
/// <param name="SourceWidth">Width of the PNG.</param>
/// <param name="SourceHeight">Height of the PNG.</param>
/// <param name="HadColour">True when some pixel of the PNG was not grey.</param>
/// <param name="Inverted">True when the PNG's border was light, so the image was inverted.</param>
public sealed record DigitImage(float[] Pixels, int Height, int Width, int SourceWidth, int SourceHeight, bool HadColour, bool Inverted)
{
    private static readonly byte[] PngSignature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>True when the file at <paramref name="path"/> starts with the PNG signature.</summary>
    public static bool HasPngSignature(string path)
    {
        Span<byte> head = stackalloc byte[PngSignature.Length];
        using FileStream stream = File.OpenRead(path);
        return stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false) == head.Length && head.SequenceEqual(PngSignature);
    }

    /// <summary>Reads <paramref name="path"/> and converts it to <paramref name="height"/> x <paramref name="width"/> (see file header).</summary>
    /// <exception cref="CnnUserException">The file is missing, is not a PNG, or cannot be decoded.</exception>
    public static DigitImage Load(string path, int height, int width)
    {
        if (!File.Exists(path)) throw new CnnUserException($"{path}: file not found");
        try
        {
            if (!HasPngSignature(path)) throw new CnnUserException($"{path}: not a PNG file (it does not start with the PNG signature); --image takes PNG only");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CnnUserException($"{path}: cannot read the file: {e.Message.ReplaceLineEndings(" ")}", e);
        }

        using SKCodec? codec = SKCodec.Create(path);
        if (codec is null) throw new CnnUserException($"{path}: damaged PNG: it cannot be decoded");
        var info = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var bitmap = new SKBitmap(info);
        SKCodecResult result = codec.GetPixels(info, bitmap.GetPixels());
        if (result != SKCodecResult.Success)
        {
            string why = result == SKCodecResult.IncompleteInput ? "the image data is incomplete" : $"decoding failed ({result})";
            throw new CnnUserException($"{path}: damaged PNG: {why}");
        }

        int sw = info.Width, sh = info.Height;
        ReadOnlySpan<byte> rgba = bitmap.GetPixelSpan();
        var grey = new float[sw * sh];   // (sh, sw)
        bool colour = false;
        for (int i = 0; i < grey.Length; i++)
        {
            byte r = rgba[4 * i], g = rgba[4 * i + 1], b = rgba[4 * i + 2], a = rgba[4 * i + 3];
            colour |= r != g || g != b;
            float y = r == g && g == b ? r / 255f : (0.299f * r + 0.587f * g + 0.114f * b) / 255f;
            float alpha = a / 255f;
            grey[i] = a == 255 ? y : alpha * y + (1 - alpha);
        }

        float border = BorderMedian(grey, sw, sh);
        bool invert = border > 0.5f;
        if (invert)
        {
            for (int i = 0; i < grey.Length; i++) grey[i] = 1 - grey[i];
            border = 1 - border;
        }

        double scale = Math.Min((double)height / sh, (double)width / sw);
        int th = Math.Clamp((int)Math.Round(sh * scale), 1, height), tw = Math.Clamp((int)Math.Round(sw * scale), 1, width);
        float[] resized = tw == sw && th == sh ? grey : AreaResize(grey, sw, sh, tw, th);
        var pixels = new float[height * width];
        Array.Fill(pixels, border);
        int top = (height - th) / 2, left = (width - tw) / 2;
        for (int y = 0; y < th; y++) resized.AsSpan(y * tw, tw).CopyTo(pixels.AsSpan((top + y) * width + left, tw));
        return new DigitImage(pixels, height, width, sw, sh, colour, invert);
    }

    /// <summary>One line saying what was done to the file, for the command's output.</summary>
    public string Describe(string path)
    {
        string kind = HadColour ? "colour" : "grey";
        string size = string.Create(CultureInfo.InvariantCulture, $"{SourceWidth}x{SourceHeight}");
        string converted = SourceWidth == Width && SourceHeight == Height && !HadColour
            ? $"{size} {kind} PNG, used as it is"
            : string.Create(CultureInfo.InvariantCulture, $"{size} {kind} PNG, converted to {Width}x{Height} grey");
        string inverted = Inverted ? "; its border is light, so it was inverted (MNIST digits are white on black)" : "";
        return $"{path}: {converted}{inverted}";
    }

    private static float BorderMedian(float[] grey, int width, int height)
    {
        var border = new List<float>(2 * (width + height));
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                if (y == 0 || y == height - 1 || x == 0 || x == width - 1) border.Add(grey[y * width + x]);
        border.Sort();
        return border[border.Count / 2];
    }

    /// <summary>
    /// Resizes src (sh, sw) to (th, tw): each target pixel is the mean of the source area it covers, weighting
    /// partly covered source pixels by the covered fraction.
    /// </summary>
    private static float[] AreaResize(float[] src, int sw, int sh, int tw, int th)
    {
        var dst = new float[tw * th];   // (th, tw)
        double fx = (double)sw / tw, fy = (double)sh / th;
        for (int ty = 0; ty < th; ty++)
        {
            double y0 = ty * fy, y1 = (ty + 1) * fy;
            for (int tx = 0; tx < tw; tx++)
            {
                double x0 = tx * fx, x1 = (tx + 1) * fx;
                double sum = 0, area = 0;
                for (int sy = (int)y0; sy < Math.Min(sh, (int)Math.Ceiling(y1)); sy++)
                {
                    double wy = Math.Min(y1, sy + 1) - Math.Max(y0, sy);
                    for (int sx = (int)x0; sx < Math.Min(sw, (int)Math.Ceiling(x1)); sx++)
                    {
                        double w = wy * (Math.Min(x1, sx + 1) - Math.Max(x0, sx));
                        sum += w * src[sy * sw + sx];
                        area += w;
                    }
                }
                dst[ty * tw + tx] = (float)(sum / area);
            }
        }
        return dst;
    }
}
