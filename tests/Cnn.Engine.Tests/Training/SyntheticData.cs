// Seeded synthetic image data for the training tests: every class has a random prototype image and each
// sample is its class's prototype plus noise, scaled to [0, 1] like MNIST pixels, so a model can learn it
// in a few steps. Labels cycle through the classes in a shuffled order.
using Cnn.Engine.Data;

namespace Cnn.Engine.Tests.Training;

internal static class SyntheticData
{
    public static ArraySource Images(int count, ulong seed, int height = 28, int width = 28, int channels = 1, int classes = 10)
    {
        var rng = new Rng(seed);
        int size = height * width * channels;
        var prototypes = new float[classes * size];
        for (int i = 0; i < prototypes.Length; i++) prototypes[i] = rng.NextFloat();
        int[] labels = Enumerable.Range(0, count).Select(i => i % classes).ToArray();
        rng.Shuffle(labels);
        var features = new float[count * size];
        for (int n = 0; n < count; n++)
            for (int i = 0; i < size; i++)
                features[n * size + i] = 0.7f * prototypes[labels[n] * size + i] + 0.3f * rng.NextFloat();
        return new ArraySource(TensorShape.Image(height, width, channels), features, labels);
    }
}
