// Scalar definition of the fused softmax cross-entropy, in double precision: the oracle for the SIMD kernel.
namespace Cnn.Engine.Kernels.Reference;

/// <summary>Scalar reference for <see cref="SoftmaxCrossEntropy"/>.</summary>
public static class SoftmaxCrossEntropyReference
{
    /// <summary>See <see cref="SoftmaxCrossEntropy.Forward"/>.</summary>
    public static (double LossSum, int Correct) Forward(ReadOnlySpan<float> logits, ReadOnlySpan<int> labels, int classes, Span<float> dLogits)
    {
        double lossSum = 0;
        int correct = 0;
        for (int n = 0; n < labels.Length; n++)
        {
            ReadOnlySpan<float> z = logits.Slice(n * classes, classes);
            int best = 0;
            for (int c = 1; c < classes; c++) if (z[c] > z[best]) best = c;
            if (best == labels[n]) correct++;
            double max = z[best], sum = 0;
            for (int c = 0; c < classes; c++) sum += Math.Exp(z[c] - max);
            lossSum += Math.Log(sum) - (z[labels[n]] - max);
            if (!dLogits.IsEmpty)
                for (int c = 0; c < classes; c++)
                    dLogits[n * classes + c] = (float)(Math.Exp(z[c] - max) / sum - (c == labels[n] ? 1 : 0));
        }
        return (lossSum, correct);
    }
}
