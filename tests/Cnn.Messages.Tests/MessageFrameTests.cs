// Message frames carry a step's work from the parameter server's node to a worker on the data plane, so that no
// Akka message crosses the network in a step. A ComputeGradients written as a frame reads back equal, field by
// field; its body is not a whole number of floats, which the header accepts for messages and still refuses for
// tensors. A body that is not a well-formed wire message (no manifest, an unknown one, MessagePack that breaks
// the type's shape, bytes trailing it) is refused with InvalidDataException naming the reason, as the serializer
// refuses it over Akka; so is a message the serializer would not send (a nil field), before it is written.
using System.Buffers.Binary;
using System.Runtime.Serialization;
using System.Text;
using Cnn.Messages;
using Xunit;

namespace Cnn.Messages.Tests;

public sealed class MessageFrameTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);
    private static readonly ComputeGradients Work = new("run-7", 12, 12, [5, 9, 60_000 - 1, 0, 3, 4, 2, 8], 4, [0, 1], [1, 1]);
    private readonly FrameListener _listener;
    private readonly FrameConnection _worker;
    private readonly FrameConnection _server;

    public MessageFrameTests()
    {
        var accepted = new TaskCompletionSource<FrameConnection>(TaskCreationOptions.RunContinuationsAsynchronously);
        _listener = new FrameListener("127.0.0.1", 0, c => accepted.TrySetResult(c));
        _worker = FrameConnection.Connect("127.0.0.1", _listener.Port, "run-7", "worker-1", Patience);
        _server = accepted.Task.WaitAsync(Patience).GetAwaiter().GetResult();
        _server.ReadHello(_server.ReadHeader());
    }

    [Fact]
    public void A_step_s_work_written_as_a_message_frame_reads_back_equal()
    {
        _server.WriteMessage(Work);

        FrameHeader header = _worker.ReadHeader();
        var read = Assert.IsType<ComputeGradients>(_worker.ReadMessage(header));

        Assert.Equal(FrameKind.Message, header.Kind);
        Assert.NotEqual(0, header.BodyLength % 4); // "cg" and its MessagePack: not whole floats, and accepted
        Assert.Equal((Work.RunId, Work.Step, Work.Version, Work.MicroBatch), (read.RunId, read.Step, read.Version, read.MicroBatch));
        Assert.Equal(Work.BatchIds, read.BatchIds);
        Assert.Equal(Work.NodeFirst, read.NodeFirst);
        Assert.Equal(Work.NodeCount, read.NodeCount);
    }

    [Fact]
    public void Weights_after_a_message_frame_arrive_intact()
    {
        float[] weights = Enumerable.Range(0, 1000).Select(i => i * 0.5f).ToArray();
        _server.WriteMessage(Work);
        _server.Write(new FrameHeader(FrameKind.Weights, 13, 13, 0, 0, 0, 0, 0, 0, 0, 0), weights);

        _worker.ReadMessage(_worker.ReadHeader());
        FrameHeader next = _worker.ReadHeader();
        var read = new float[1000];
        _worker.ReadTensor(next, read);

        Assert.Equal((FrameKind.Weights, 13L), (next.Kind, next.Version));
        Assert.Equal(weights, read);
    }

    [Theory]
    [InlineData("no body", "without a manifest")]
    [InlineData("empty manifest", "without a manifest")]
    [InlineData("manifest longer than the body", "without a manifest")]
    [InlineData("unknown manifest", "unknown manifest")]
    [InlineData("not an array", "must be a MessagePack array")]
    [InlineData("too few fields", "expected at least 7")]
    [InlineData("trailing bytes", "bytes trail")]
    public void A_body_that_is_not_a_wire_message_is_refused_with_the_reason(string fault, string reason)
    {
        byte[] work = CnnMessageSerializer.Encode(Work);
        byte[] body = fault switch
        {
            "no body" => [],
            "empty manifest" => [0, .. work],
            "manifest longer than the body" => [40, (byte)'c', (byte)'g'],
            "unknown manifest" => [.. Manifested("zz"), .. work],
            "not an array" => [.. Manifested("cg"), 0xA3, (byte)'a', (byte)'b', (byte)'c'],
            "too few fields" => [.. Manifested("cg"), 0x92, 0xA1, (byte)'r', 0x01],
            _ => [.. Manifested("cg"), .. work, 0xC0],
        };
        WriteRaw(body);

        FrameHeader header = _worker.ReadHeader();
        var e = Assert.Throws<InvalidDataException>(() => _worker.ReadMessage(header));

        Assert.Contains(reason, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_message_the_serializer_would_not_send_is_refused_before_anything_is_written()
    {
        var broken = Work with { BatchIds = null! };

        var e = Assert.Throws<SerializationException>(() => _server.WriteMessage(broken));

        Assert.Contains("BatchIds is nil", e.Message, StringComparison.Ordinal);
        _server.WriteMessage(Work); // the connection is still in step: the next frame is whole
        Assert.IsType<ComputeGradients>(_worker.ReadMessage(_worker.ReadHeader()));
    }

    [Fact]
    public void The_header_takes_a_message_body_of_any_length_up_to_its_limit_and_still_wants_whole_floats_for_tensors()
    {
        static FrameHeader Header(FrameKind kind, int body)
        {
            var bytes = new byte[FrameHeader.Size];
            new FrameHeader(kind, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0).Write(bytes);
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(60), body);
            return FrameHeader.Read(bytes);
        }

        Assert.Equal(157, Header(FrameKind.Message, 157).BodyLength);
        Assert.Equal(FrameHeader.MaxMessageBodyBytes, Header(FrameKind.Message, FrameHeader.MaxMessageBodyBytes).BodyLength);
        Assert.Throws<InvalidDataException>(() => Header(FrameKind.Message, FrameHeader.MaxMessageBodyBytes + 1));
        Assert.Throws<InvalidDataException>(() => Header(FrameKind.Weights, 157));
        Assert.Throws<InvalidDataException>(() => Header(FrameKind.Gradient, 157));
    }

    private static byte[] Manifested(string manifest) => [(byte)manifest.Length, .. Encoding.ASCII.GetBytes(manifest)];

    // A frame as a faulty or hostile peer would write it: a valid header, then whatever body.
    private void WriteRaw(byte[] body)
    {
        var header = new byte[FrameHeader.Size];
        new FrameHeader(FrameKind.Message, 0, 0, 0, 0, 0, 0, 0, 0, 0, body.Length).Write(header);
        _server.Socket.Send(header);
        if (body.Length > 0) _server.Socket.Send(body);
    }

    public void Dispose()
    {
        _worker.Dispose();
        _server.Dispose();
        _listener.Dispose();
    }
}
