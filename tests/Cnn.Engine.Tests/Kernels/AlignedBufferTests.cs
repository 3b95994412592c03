// AlignedBuffer: the first float on a 64-byte boundary for any length, zeroed, and still there after the GC has
// compacted the heap (the buffer lives on the pinned object heap).
using Cnn.Engine.Kernels;
using Xunit;

namespace Cnn.Engine.Tests.Kernels;

public sealed class AlignedBufferTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(15)]
    [InlineData(16)]
    [InlineData(17)]
    [InlineData(18_432)]   // conv2's kernel
    [InlineData(100_000)]  // past the large object threshold
    public void A_buffer_of_any_length_starts_on_a_cache_line_and_is_zeroed(int length)
    {
        // A small pinned array before each buffer shifts where the next one lands on the pinned object heap, so the
        // buffers' underlying arrays start at different offsets within a cache line, not all at one by luck.
        var spacers = new List<float[]>();
        var buffers = new List<AlignedBuffer>();
        for (int i = 1; i <= 8; i++)
        {
            spacers.Add(GC.AllocateArray<float>(i, pinned: true));
            buffers.Add(new AlignedBuffer(length));
        }
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        foreach (AlignedBuffer buffer in buffers)
        {
            Assert.Equal(length, buffer.Length);
            Assert.Equal(length, buffer.Span.Length);
            Assert.True(AlignedBuffer.IsAligned(buffer.Span));
            Assert.All(buffer.Span.ToArray(), v => Assert.Equal(0f, v));
        }
        GC.KeepAlive(spacers);
    }

    [Fact]
    public void IsAligned_is_true_only_at_the_start_of_a_cache_line()
    {
        var buffer = new AlignedBuffer(64);
        for (int offset = 0; offset < 32; offset++)
            Assert.Equal(offset % 16 == 0, AlignedBuffer.IsAligned(buffer.Span[offset..]));
        Assert.True(AlignedBuffer.IsAligned([]));
    }

    [Fact]
    public void A_negative_length_is_refused() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new AlignedBuffer(-1));
}
