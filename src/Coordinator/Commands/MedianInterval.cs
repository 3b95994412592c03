// A distribution-free confidence interval for a median, from order statistics: with n independent samples sorted,
// the interval from the k-th smallest to the k-th largest holds the true median with probability
// 1 - 2 P(Binomial(n, 1/2) <= k - 1), whatever the samples' distribution. `cnn bench` gives it for the median of its
// per-pair throughput ratios, so that a reader can tell a target that the noise of one run cannot decide from one it
// misses. The pairs are taken as independent: when the host's speed drifts within a run they are not quite, and the
// interval is then narrower than it should be.
namespace Cnn.Coordinator.Commands;

/// <summary>A confidence interval for the median of <see cref="Count"/> samples (see file header).</summary>
/// <param name="Low">The k-th smallest sample.</param>
/// <param name="High">The k-th largest sample.</param>
/// <param name="Rank">k.</param>
/// <param name="Count">Number of samples.</param>
/// <param name="Coverage">The exact probability that the interval holds the median (at least the confidence asked for).</param>
public sealed record MedianInterval(double Low, double High, int Rank, int Count, double Coverage)
{
    /// <summary>
    /// The narrowest order-statistic interval whose coverage is at least <paramref name="confidence"/>, or null when
    /// <paramref name="samples"/> are too few for any (at 95%, fewer than 6).
    /// </summary>
    public static MedianInterval? Of(IReadOnlyCollection<double> samples, double confidence = 0.95)
    {
        if (confidence is <= 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(confidence), confidence, "a confidence lies strictly between 0 and 1");
        int n = samples.Count;
        double[] sorted = samples.Order().ToArray();
        MedianInterval? best = null;
        // P(Binomial(n, 1/2) <= k - 1), term by term in logarithms (2^-n underflows for large n).
        double logTerm = -n * Math.Log(2), tail = 0;
        for (int k = 1; k <= n / 2; k++)
        {
            tail += Math.Exp(logTerm); // adds P(X = k - 1)
            logTerm += Math.Log(n - (k - 1)) - Math.Log(k);
            double coverage = 1 - 2 * tail;
            if (coverage < confidence) break;
            best = new MedianInterval(sorted[k - 1], sorted[n - k], k, n, coverage);
        }
        return best;
    }
}
