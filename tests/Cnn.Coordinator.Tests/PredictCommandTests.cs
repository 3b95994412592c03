// `cnn predict`: one digit's class and its ten probabilities, from a test index, a seeded random draw or a PNG
// file; a PNG made from a test digit, even recoloured, inverted and scaled, gets the class of that digit.
using System.Globalization;
using System.Text.RegularExpressions;
using Cnn.Coordinator.Plots;
using SkiaSharp;
using Xunit;
using static Cnn.Coordinator.Tests.TestSupport;

namespace Cnn.Coordinator.Tests;

[Collection(TrainedRunCollection.Name)]
public sealed class PredictCommandTests(TrainedRun run)
{
    private static int PredictedClass(CliResult result)
    {
        Match m = Regex.Match(result.Out, @"Predicted digit: (\d)");
        Assert.True(m.Success, result.Out + result.Error);
        return int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
    }

    private static float[] Probabilities(CliResult result) =>
        Regex.Matches(result.Out, @"^\s+(\d)\s+(\d\.\d{4})", RegexOptions.Multiline)
            .Select(m => float.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture)).ToArray();

    [Fact]
    public void Predict_index_prints_the_class_the_true_label_and_ten_probabilities_and_draws_the_digit()
    {
        string png = run.NewFile("digit.png");

        CliResult result = RunCnn("predict", "--checkpoint", run.Checkpoint, "--data", run.Data, "--index", "5", "--png", png);

        Assert.True(result.ExitCode == 0, result.Error);
        int predicted = PredictedClass(result);
        Assert.Contains($"Predicted digit: {predicted} (true: {run.Test.Labels[5]})", result.Out);
        float[] probabilities = Probabilities(result);
        Assert.Equal(10, probabilities.Length);
        Assert.InRange(probabilities.Sum(), 0.995f, 1.005f);
        Assert.Equal(probabilities.Max(), probabilities[predicted]);
        Png.AssertPicture(png, DigitPlot.Width, DigitPlot.Height);
    }

    [Fact]
    public void Predict_image_of_a_test_digit_saved_as_a_grey_png_gives_the_same_class_and_probabilities_as_its_index()
    {
        for (int index = 0; index < 6; index++)
        {
            string png = run.NewFile($"digit-{index}.png");
            Png.WriteDigit(png, run.Test, index);

            CliResult byIndex = RunCnn("predict", "--checkpoint", run.ConfidentCheckpoint, "--data", run.Data, "--index", index.ToString(CultureInfo.InvariantCulture));
            CliResult byImage = RunCnn("predict", "--checkpoint", run.ConfidentCheckpoint, "--image", png);

            Assert.True(byImage.ExitCode == 0, byImage.Error);
            Assert.Equal(PredictedClass(byIndex), PredictedClass(byImage));
            Assert.Equal(Probabilities(byIndex), Probabilities(byImage));
            Assert.Contains("28x28 grey PNG, used as it is", byImage.Out);
        }
    }

    [Fact]
    public void Predict_image_of_a_test_digit_drawn_in_blue_ink_on_white_at_twice_the_size_gives_the_class_of_its_index()
    {
        const int index = 3;
        string png = run.NewFile("ink.png");
        int size = run.Test.Rows * run.Test.Columns;
        // 2x nearest-neighbour upscale, dark blue ink on a white page.
        Png.Write(png, 2 * run.Test.Columns, 2 * run.Test.Rows, (x, y) =>
        {
            float t = run.Test.Images[index * size + y / 2 * run.Test.Columns + x / 2] / 255f;
            return new SKColor((byte)(255 - 250 * t), (byte)(255 - 245 * t), (byte)(255 - 200 * t));
        });

        CliResult byIndex = RunCnn("predict", "--checkpoint", run.ConfidentCheckpoint, "--data", run.Data, "--index", "3");
        CliResult byImage = RunCnn("predict", "--checkpoint", run.ConfidentCheckpoint, "--image", png, "--png", run.NewFile("ink-predicted.png"));

        Assert.True(byImage.ExitCode == 0, byImage.Error);
        Assert.Equal(PredictedClass(byIndex), PredictedClass(byImage));
        Assert.Contains("56x56 colour PNG, converted to 28x28 grey", byImage.Out);
        Assert.Contains("inverted", byImage.Out);
        Assert.DoesNotContain("(true:", byImage.Out);
    }

    [Fact]
    public void Predict_random_with_a_seed_draws_the_same_test_image_every_time()
    {
        CliResult first = RunCnn("predict", "--checkpoint", run.Checkpoint, "--data", run.Data, "--random", "--seed", "7");
        CliResult second = RunCnn("predict", "--checkpoint", run.Checkpoint, "--data", run.Data, "--random", "--seed", "7");

        Assert.True(first.ExitCode == 0, first.Error);
        Assert.Equal(first.Out, second.Out);
        Assert.Matches(@"random test image \d+ of .* \(--seed 7\)", first.Out);
    }

    [Theory]
    [InlineData("--index", "1", "--random")]
    [InlineData("--seed", "3", "--index", "1")]
    [InlineData]
    public void Predict_needs_exactly_one_image_source(params string[] sources)
    {
        CliResult result = RunCnn(["predict", "--checkpoint", run.Checkpoint, "--data", run.Data, .. sources]);

        Assert.Equal(2, result.ExitCode);
        Assert.Single(result.ErrorLines);
    }
}
