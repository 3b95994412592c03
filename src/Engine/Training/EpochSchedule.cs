// Which samples make up each batch. The training part of the data (the first samples, before the Keras
// validation split) is shuffled at every epoch with a stream derived from the run seed and the epoch number,
// so the schedule of any epoch can be rebuilt from (seed, epoch) alone: a resumed run or another node gets
// the same batches. The last batch of an epoch may be partial, as in Keras.
namespace Cnn.Engine.Training;

/// <summary>The batches of an epoch.</summary>
public static class EpochSchedule
{
    /// <summary>Batches per epoch of <paramref name="trainCount"/> samples.</summary>
    public static int StepsPerEpoch(int trainCount, int batchSize) => (trainCount + batchSize - 1) / batchSize;

    /// <summary>The shuffled order of sample ids 0..trainCount-1 in epoch <paramref name="epoch"/> (0-based).</summary>
    public static int[] Order(ulong seed, int epoch, int trainCount)
    {
        var order = new int[trainCount];
        for (int i = 0; i < trainCount; i++) order[i] = i;
        Rng.For(seed, 0x5EED, (ulong)epoch).Shuffle(order);
        return order;
    }

    /// <summary>The sample ids of batch <paramref name="index"/> of an epoch whose order is <paramref name="order"/>.</summary>
    public static int[] Batch(int[] order, int index, int batchSize)
    {
        int start = index * batchSize;
        return order.AsSpan(start, Math.Min(batchSize, order.Length - start)).ToArray();
    }

    /// <summary>Samples used for training when the last <paramref name="validationSplit"/> are held out (Keras's rounding).</summary>
    public static int TrainCount(int total, double validationSplit) => (int)Math.Floor(total * (1.0 - validationSplit));
}
