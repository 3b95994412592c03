// MedianInterval: the order statistics and coverages of the distribution-free interval `cnn bench` prints for its median ratio.
using Cnn.Coordinator.Commands;
using Xunit;

namespace Cnn.Coordinator.Tests;

public sealed class MedianIntervalTests
{
    // Ranks and coverages from the binomial distribution, worked out apart: 1 - 2 * sum(C(n, i), i < k) / 2^n.
    [Theory]
    [InlineData(6, 1, 0.96875)]
    [InlineData(9, 2, 0.9609375)]
    [InlineData(10, 2, 0.978515625)]
    [InlineData(31, 10, 0.97055062651634216)]
    [InlineData(62, 23, 0.96998413565093271)]
    public void The_interval_is_the_narrowest_pair_of_order_statistics_that_covers_the_median_at_95_percent(int n, int rank, double coverage)
    {
        // Shuffled, so that the ranks must come from sorting.
        double[] samples = Enumerable.Range(1, n).Select(i => (double)i).OrderBy(i => (i * 7919) % n).ToArray();
        MedianInterval interval = MedianInterval.Of(samples)!;
        Assert.Equal(rank, interval.Rank);
        Assert.Equal(n, interval.Count);
        Assert.Equal(rank, interval.Low);
        Assert.Equal(n + 1 - rank, interval.High);
        Assert.Equal(coverage, interval.Coverage, 12);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(5)]
    public void Too_few_samples_give_no_interval(int n) =>
        Assert.Null(MedianInterval.Of(Enumerable.Range(0, n).Select(i => (double)i).ToArray()));

    [Fact]
    public void A_lower_confidence_gives_a_narrower_interval()
    {
        double[] samples = Enumerable.Range(1, 31).Select(i => (double)i).ToArray();
        MedianInterval at95 = MedianInterval.Of(samples)!, at50 = MedianInterval.Of(samples, 0.5)!;
        Assert.True(at50.Rank > at95.Rank);
        Assert.InRange(at50.Coverage, 0.5, at95.Coverage);
        Assert.InRange(at50.Low, at95.Low, 16);
        Assert.InRange(at50.High, 16, at95.High);
    }

    [Fact]
    public void A_large_sample_does_not_underflow()
    {
        // 2^-2000 is below the smallest double; the terms are summed in logarithms.
        MedianInterval interval = MedianInterval.Of(Enumerable.Range(0, 2000).Select(i => (double)i).ToArray())!;
        // The normal approximation: the median's rank +- 1.96 * sqrt(n) / 2, about 956 to 1044.
        Assert.InRange(interval.Rank, 950, 960);
        Assert.InRange(interval.Coverage, 0.95, 0.96);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(1.0)]
    [InlineData(-0.5)]
    public void A_confidence_outside_0_to_1_is_refused(double confidence) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => MedianInterval.Of([1, 2, 3, 4, 5, 6, 7], confidence));
}
