// The data plane's 64-byte frame header: every field, the exchange segment in byte 5 included, survives a write
// and a read; a header that is not ours (magic), of an unknown kind, or with a body length out of range is refused
// with InvalidDataException, which closes the connection that sent it; so is a part that names no segment.
using System.Buffers.Binary;
using Cnn.Messages;
using Xunit;

namespace Cnn.Messages.Tests;

public sealed class FrameHeaderTests
{
    [Theory]
    [InlineData(FrameKind.Gradient, FrameHeader.Whole)]
    [InlineData(FrameKind.Gradient, 3)]
    [InlineData(FrameKind.Weights, 1)]
    [InlineData(FrameKind.Weights, 255)]
    public void Every_field_survives_a_write_and_a_read(FrameKind kind, byte part)
    {
        var header = new FrameHeader(kind, 1L << 40, 77, 4, 2, 8, 16, 5, 12.5, 7.25, 74_506 * 4, part);
        var bytes = new byte[FrameHeader.Size];

        header.Write(bytes);

        Assert.Equal(header, FrameHeader.Read(bytes));
        Assert.Equal(part, bytes[5]);
    }

    [Theory]
    [InlineData("magic")]
    [InlineData("kind")]
    [InlineData("negative body")]
    [InlineData("body above the limit")]
    [InlineData("body not whole floats")]
    public void A_header_that_breaks_the_format_is_refused(string fault)
    {
        var bytes = new byte[FrameHeader.Size];
        new FrameHeader(FrameKind.Gradient, 0, 0, 0, 8, 8, 64, 0, 0, 0, 400, 1).Write(bytes);
        switch (fault)
        {
            case "magic": bytes[0] ^= 0xFF; break;
            case "kind": bytes[4] = 9; break;
            case "negative body": BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(60), -4); break;
            case "body above the limit": BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(60), FrameHeader.MaxBodyBytes + 4); break;
            default: BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(60), 402); break;
        }

        Assert.Throws<InvalidDataException>(() => FrameHeader.Read(bytes));
    }

    [Fact]
    public void A_part_names_a_segment_of_a_cut_tensor_and_only_whole_for_one_that_is_not()
    {
        Assert.Equal(FrameHeader.Whole, FrameHeader.PartOf(0, 1));
        Assert.Equal([1, 2, 3], Enumerable.Range(0, 3).Select(s => (int)FrameHeader.PartOf(s, 3)));
        static FrameHeader WithPart(byte part) => new(FrameKind.Weights, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, part);

        Assert.Equal(0, WithPart(FrameHeader.Whole).SegmentIn(1));
        Assert.Equal([0, 1, 2], new byte[] { 1, 2, 3 }.Select(p => WithPart(p).SegmentIn(3)));
        Assert.Throws<InvalidDataException>(() => WithPart(1).SegmentIn(1));
        Assert.Throws<InvalidDataException>(() => WithPart(FrameHeader.Whole).SegmentIn(3));
        Assert.Throws<InvalidDataException>(() => WithPart(4).SegmentIn(3));
    }
}
