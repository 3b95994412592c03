// KernelAssert.ArrayAt, which the tests of weights on and off a cache line stand on. The pinned object heap fills a
// hole that fits before it allocates at its end, so holes left by freed arrays of one length, all at offsets other
// than the one wanted, catch try after try (CI once saw 256 tries of conv2's weights fail), and small holes swallow
// small fillers.
using Cnn.Engine.Kernels;
using Xunit;

namespace Cnn.Engine.Tests.Kernels;

public sealed class KernelAssertTests
{
    [Theory]
    [InlineData(4_099, true)]
    [InlineData(4_099, false)]
    [InlineData(18_496, true)] // seed-cnn conv2's weights with bias (the length CI failed on)
    public void ArrayAt_finds_the_offset_asked_for_past_hundreds_of_holes_at_other_offsets(int length, bool aligned)
    {
        // Spacers of 0 to 7 eight-byte steps between the arrays put them at every offset within a cache line; freeing
        // the arrays at the offset asked for leaves holes at the others, each big enough for an array of the length.
        var made = new List<float[]>();
        var spacers = new List<float[]>();
        for (int i = 0; i < 1200; i++)
        {
            made.Add(GC.AllocateArray<float>(length, pinned: true));
            spacers.Add(GC.AllocateArray<float>(2 * (i % 8), pinned: true));
        }
        List<float[]> kept = made.Where(a => AlignedBuffer.IsAligned(a) == aligned).ToList();
        int holes = made.Count - kept.Count;
        made.Clear();
        GC.Collect(2, GCCollectionMode.Forced, blocking: true);
        Assert.True(holes >= 100, $"{holes} holes");

        float[] array = KernelAssert.ArrayAt(length, aligned);

        Assert.Equal(length, array.Length);
        Assert.Equal(aligned, AlignedBuffer.IsAligned(array));
        GC.KeepAlive(kept);
        GC.KeepAlive(spacers);
    }
}
