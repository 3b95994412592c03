// Softmax fused with sparse categorical cross-entropy, the numerically stable way: with z the logits and
// m = max(z), log-sum-exp = m + log(sum(exp(z - m))), loss = lse - z[label], and d loss / d z = softmax(z) -
// onehot(label). Fusing avoids log(softmax) underflowing to -inf for confident wrong answers. Per sample;
// the sums over a leaf are done by the caller in sample order. Gradients are per sample (not divided by the
// batch): the division happens once, after the tree reduction of the whole batch.
using System.Numerics.Tensors;

namespace Cnn.Engine.Kernels;

/// <summary>Fused softmax + sparse categorical cross-entropy (SIMD via TensorPrimitives).</summary>
public static class SoftmaxCrossEntropy
{
    /// <summary>
    /// logits: (batch, classes). Writes dLogits (batch, classes) = softmax - onehot when it is not empty,
    /// and returns the summed loss over the batch and the number of samples whose arg-max equals the label.
    /// </summary>
    public static (double LossSum, int Correct) Forward(ReadOnlySpan<float> logits, ReadOnlySpan<int> labels, int classes, Span<float> dLogits)
    {
        double lossSum = 0;
        int correct = 0;
        Span<float> shifted = stackalloc float[classes];
        for (int n = 0; n < labels.Length; n++)
        {
            ReadOnlySpan<float> z = logits.Slice(n * classes, classes);
            int label = labels[n];
            float max = TensorPrimitives.Max(z);
            if (TensorPrimitives.IndexOfMax(z) == label) correct++;
            TensorPrimitives.Subtract(z, max, shifted);
            TensorPrimitives.Exp(shifted, shifted);
            float sum = TensorPrimitives.Sum(shifted);
            lossSum += MathF.Log(sum) - (z[label] - max);
            if (!dLogits.IsEmpty)
            {
                Span<float> d = dLogits.Slice(n * classes, classes);
                TensorPrimitives.Divide(shifted, sum, d);
                d[label] -= 1f;
            }
        }
        return (lossSum, correct);
    }

    /// <summary>probabilities (batch, classes) = softmax(logits), row by row.</summary>
    public static void Softmax(ReadOnlySpan<float> logits, int classes, Span<float> probabilities)
    {
        for (int n = 0; n < logits.Length / classes; n++)
            TensorPrimitives.SoftMax(logits.Slice(n * classes, classes), probabilities.Slice(n * classes, classes));
    }
}
