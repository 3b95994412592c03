// BatchNormalization in training mode (statistics over the rows of the call's batch, "ghost batch norm"):
// Backward against finite differences for x, gamma and beta on image and flat inputs; Forward normalises
// each channel; the call's mean and biased variance, times its sample count, land in the gradient buffer's
// moving-statistics slots; inference uses the moving statistics.
using Cnn.Engine.Layers;
using Xunit;

namespace Cnn.Engine.Tests.Layers;

public sealed class BatchNormalizationTests
{
    [Theory]
    [InlineData(4, 3, 2, 5)]
    [InlineData(2, 4, 4, 16)]
    public void BatchNormalization_training_backward_matches_finite_differences_on_images(int batch, int height, int width, int channels)
    {
        var h = new LayerHarness(new BatchNormalization(), [TensorShape.Image(height, width, channels)], batch, new Random(101 + channels));

        GradientCheck.Run(h, seed: 8, step: 5e-3f);
    }

    [Fact]
    public void BatchNormalization_training_backward_matches_finite_differences_on_flat_inputs()
    {
        var h = new LayerHarness(new BatchNormalization(), [TensorShape.Flat(7)], batch: 6, new Random(102));

        GradientCheck.Run(h, seed: 9, step: 5e-3f);
    }

    [Fact]
    public void BatchNormalization_training_normalises_each_channel_over_the_batch_and_pixels()
    {
        const int batch = 3, pixels = 4 * 5, channels = 6;
        var layer = new BatchNormalization();
        var h = new LayerHarness(layer, [TensorShape.Image(4, 5, channels)], batch, new Random(103));
        float[] x = h.Inputs[0];
        for (int i = 0; i < x.Length; i++) x[i] = 3f + 2f * x[i]; // mean 3, not 0, so centring matters

        float[] y = h.Forward();

        int rows = batch * pixels;
        for (int c = 0; c < channels; c++)
        {
            double mean = Enumerable.Range(0, rows).Average(r => (double)x[r * channels + c]);
            double variance = Enumerable.Range(0, rows).Average(r => Math.Pow(x[r * channels + c] - mean, 2));
            double gamma = h.Weights[c], beta = h.Weights[channels + c];
            for (int r = 0; r < rows; r++)
            {
                double expected = gamma * (x[r * channels + c] - mean) / Math.Sqrt(variance + 1e-3) + beta;
                Assert.Equal(expected, y[r * channels + c], 1e-5);
            }
            // The statistics slots hold the call's mean and biased variance times its sample count.
            Assert.Equal(mean * batch, h.Gradients[2 * channels + c], 1e-4);
            Assert.Equal(variance * batch, h.Gradients[3 * channels + c], 1e-4);
        }
    }

    [Fact]
    public void BatchNormalization_inference_uses_the_moving_statistics()
    {
        const int batch = 4, channels = 9;
        var h = new LayerHarness(new BatchNormalization(), [TensorShape.Flat(channels)], batch, new Random(104), training: false);

        float[] y = h.Forward();

        for (int n = 0; n < batch; n++)
            for (int c = 0; c < channels; c++)
            {
                double gamma = h.Weights[c], beta = h.Weights[channels + c];
                double movingMean = h.Weights[2 * channels + c], movingVariance = h.Weights[3 * channels + c];
                double expected = gamma * (h.Inputs[0][n * channels + c] - movingMean) / Math.Sqrt(movingVariance + 1e-3) + beta;
                Assert.Equal(expected, y[n * channels + c], 1e-5);
            }
    }
}
