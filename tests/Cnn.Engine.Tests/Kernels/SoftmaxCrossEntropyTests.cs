// SoftmaxCrossEntropy (float, TensorPrimitives) against its double-precision reference: close, not equal,
// since exp and log are not correctly rounded. Also the numerical stability the fused form exists for
// (logits of +-1e4 give finite losses and gradients), a finite-difference check of d loss / d logits, and
// the accuracy count.
using Cnn.Engine.Kernels;
using Cnn.Engine.Kernels.Reference;
using Xunit;

namespace Cnn.Engine.Tests.Kernels;

public sealed class SoftmaxCrossEntropyTests
{
    private static int[] Labels(Random rng, int batch, int classes) => Enumerable.Range(0, batch).Select(_ => rng.Next(classes)).ToArray();

    private static void AssertCloseToReference(float[] logits, int[] labels, int classes, string what)
    {
        int batch = labels.Length;
        float[] expectedD = new float[batch * classes], actualD = new float[batch * classes];

        var expected = SoftmaxCrossEntropyReference.Forward(logits, labels, classes, expectedD);
        var actual = SoftmaxCrossEntropy.Forward(logits, labels, classes, actualD);

        Assert.True(double.IsFinite(actual.LossSum), $"{what}: loss {actual.LossSum}");
        Assert.True(Math.Abs(actual.LossSum - expected.LossSum) <= 1e-5 * Math.Max(1, Math.Abs(expected.LossSum)),
            $"{what}: loss {actual.LossSum:R}, reference {expected.LossSum:R}");
        Assert.Equal(expected.Correct, actual.Correct);
        for (int i = 0; i < actualD.Length; i++)
        {
            Assert.True(float.IsFinite(actualD[i]), $"{what}: dLogits[{i}] = {actualD[i]}");
            Assert.True(Math.Abs(actualD[i] - expectedD[i]) <= 1e-6, $"{what}: dLogits[{i}] = {actualD[i]:R}, reference {expectedD[i]:R}");
        }
    }

    [Fact]
    public void SoftmaxCrossEntropy_is_close_to_the_double_reference_on_random_logits()
    {
        var rng = new Random(41);
        foreach (int classes in new[] { 1, 2, 3, 10, 16, 17, 100 })
            foreach (int batch in new[] { 1, 5, 64 })
            {
                float[] logits = KernelAssert.Uniform(rng, batch * classes, 8f);
                AssertCloseToReference(logits, Labels(rng, batch, classes), classes, $"{batch} x {classes}");
            }
    }

    [Fact]
    public void SoftmaxCrossEntropy_is_stable_for_huge_logits()
    {
        // Sample 0: confident and right; 1: confident and wrong by 2e4; 2: all equal and huge; 3: all hugely negative.
        const int classes = 10;
        var logits = new float[4 * classes];
        logits[0 * classes + 3] = 1e4f;
        logits[1 * classes + 3] = 1e4f;
        logits[1 * classes + 7] = -1e4f;
        logits.AsSpan(2 * classes, classes).Fill(1e4f);
        logits.AsSpan(3 * classes, classes).Fill(-1e4f);
        logits[3 * classes + 1] = -2e4f;
        int[] labels = [3, 7, 5, 1];
        var dLogits = new float[logits.Length];

        var (lossSum, _) = SoftmaxCrossEntropy.Forward(logits, labels, classes, dLogits);

        Assert.All(dLogits, d => Assert.True(float.IsFinite(d)));
        Assert.True(double.IsFinite(lossSum));
        // 0 + 2e4 + ln 10 + (1e4 + ln 9 roughly): the wrong answers cost their margins.
        Assert.Equal(0 + 2e4 + Math.Log(10) + (1e4 + Math.Log(9)), lossSum, 1e-2);
        Assert.Equal(-1f, dLogits[1 * classes + 7], 1e-6f);
        Assert.Equal(1f, dLogits[1 * classes + 3], 1e-6f);
        AssertCloseToReference(logits, labels, classes, "huge logits");
    }

    [Fact]
    public void SoftmaxCrossEntropy_gradient_matches_finite_differences_of_the_loss()
    {
        var rng = new Random(42);
        const int classes = 10, batch = 3;
        float[] logits = KernelAssert.Uniform(rng, batch * classes, 3f);
        int[] labels = Labels(rng, batch, classes);
        var dLogits = new float[logits.Length];
        SoftmaxCrossEntropy.Forward(logits, labels, classes, dLogits);

        const float step = 1e-2f;
        for (int i = 0; i < logits.Length; i++)
        {
            float original = logits[i];
            logits[i] = original + step;
            double plus = SoftmaxCrossEntropy.Forward(logits, labels, classes, default).LossSum;
            float up = logits[i];
            logits[i] = original - step;
            double minus = SoftmaxCrossEntropy.Forward(logits, labels, classes, default).LossSum;
            double numeric = (plus - minus) / ((double)up - logits[i]);
            logits[i] = original;
            Assert.True(Math.Abs(numeric - dLogits[i]) <= 1e-3, $"d loss / d logit {i}: analytic {dLogits[i]}, numeric {numeric}");
        }
    }

    [Fact]
    public void SoftmaxCrossEntropy_counts_samples_whose_largest_logit_is_the_label()
    {
        float[] logits = [0.1f, 0.9f, 0.0f, /**/ 2f, 1f, 0f, /**/ 0f, 0f, 5f, /**/ 1f, 3f, 2f];
        int[] labels = [1, 0, 1, 2];

        var (_, correct) = SoftmaxCrossEntropy.Forward(logits, labels, 3, default);

        Assert.Equal(2, correct);
    }

    [Fact]
    public void SoftmaxCrossEntropy_Softmax_rows_are_probabilities()
    {
        var rng = new Random(43);
        const int classes = 10, batch = 4;
        float[] logits = KernelAssert.Uniform(rng, batch * classes, 20f);
        var p = new float[logits.Length];

        SoftmaxCrossEntropy.Softmax(logits, classes, p);

        for (int n = 0; n < batch; n++)
        {
            double max = logits.Skip(n * classes).Take(classes).Max();
            double sum = logits.Skip(n * classes).Take(classes).Sum(z => Math.Exp(z - max));
            for (int c = 0; c < classes; c++)
                Assert.Equal(Math.Exp(logits[n * classes + c] - max) / sum, p[n * classes + c], 1e-6);
        }
    }
}
