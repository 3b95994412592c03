// EpochSchedule: each epoch's order is a permutation of the training ids, rebuilt from (seed, epoch) alone,
// different from one epoch to the next; batches cut it with a short last batch; the Keras validation split
// holds out the last 20% of 60,000 images, and rounds as Keras does when the split is not a whole number.
using Cnn.Engine.Training;
using Xunit;

namespace Cnn.Engine.Tests.Training;

public sealed class EpochScheduleTests
{
    [Fact]
    public void Order_is_a_permutation_of_the_training_ids()
    {
        int[] order = EpochSchedule.Order(seed: 1, epoch: 0, trainCount: 48_000);

        Assert.Equal(Enumerable.Range(0, 48_000), order.Order());
    }

    [Fact]
    public void Order_depends_only_on_seed_and_epoch()
    {
        Assert.Equal(EpochSchedule.Order(42, 3, 1000), EpochSchedule.Order(42, 3, 1000));
        Assert.NotEqual(EpochSchedule.Order(42, 3, 1000), EpochSchedule.Order(42, 4, 1000));
        Assert.NotEqual(EpochSchedule.Order(42, 3, 1000), EpochSchedule.Order(43, 3, 1000));
    }

    [Fact]
    public void Order_of_seed_1_epoch_0_is_the_recorded_one()
    {
        // Recorded once; a change means every seeded run trains on other batches.
        Assert.Equal([4, 9, 1, 2, 7, 5, 0, 3, 8, 6], EpochSchedule.Order(1, 0, 10));
    }

    [Fact]
    public void Batches_cover_the_epoch_with_a_short_last_batch()
    {
        int[] order = EpochSchedule.Order(7, 0, 150);

        Assert.Equal(3, EpochSchedule.StepsPerEpoch(150, 64));
        int[][] batches = Enumerable.Range(0, 3).Select(i => EpochSchedule.Batch(order, i, 64)).ToArray();

        Assert.Equal([64, 64, 22], batches.Select(b => b.Length));
        Assert.Equal(order, batches.SelectMany(b => b));
    }

    [Theory]
    [InlineData(60_000, 0.2, 48_000)]
    [InlineData(60_000, 0.0, 60_000)]
    [InlineData(1000, 0.25, 750)]
    public void TrainCount_holds_out_the_validation_split(int total, double split, int train)
    {
        Assert.Equal(train, EpochSchedule.TrainCount(total, split));
    }

    [Theory]
    [InlineData(1001, 0.2, 800)]
    [InlineData(10, 0.25, 7)]
    [InlineData(999, 0.1, 899)]
    public void TrainCount_rounds_the_training_part_down_as_keras_does(int total, double split, int train)
    {
        // Keras (train_validation_split): split_at = floor(total * (1 - validation_split)); the rest is validation.
        Assert.Equal((int)Math.Floor(total * (1.0 - split)), train);
        Assert.Equal(train, EpochSchedule.TrainCount(total, split));
    }

    [Fact]
    public void StepsPerEpoch_of_mnist_at_batch_64_is_750()
    {
        Assert.Equal(750, EpochSchedule.StepsPerEpoch(48_000, 64));
    }
}
