// DataPlaneServer on loopback with a TestProbe as the parameter server actor: a worker that says hello with the
// run id is joined and its gradient frames arrive as DataPlaneGradient with every header field carried over; a
// stranger with another run id, a gradient of the wrong length or a frame of the wrong kind gets its connection
// closed, and nothing of it reaches the parameter server. A run that takes gradients in the model's exchange
// segments reads each segment into its range; a part the run does not take, or a segment of the wrong length, also
// closes the connection.
using Akka.TestKit;
using Akka.TestKit.Xunit2;
using Cnn.Coordinator.Cluster;
using Cnn.Engine.Models;
using Cnn.Engine.Training;
using Cnn.Messages;
using Xunit;
using Xunit.Abstractions;
using static Cnn.Cluster.Tests.Support.Contributions;

namespace Cnn.Cluster.Tests;

public sealed class DataPlaneServerTests : TestKit
{
    private const string RunId = "run-data-plane";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);
    private static readonly Model SeedCnn = Presets.Create("seed-cnn");

    private readonly DataPlaneServer _server;
    private readonly TestProbe _parameterServer;

    public DataPlaneServerTests(ITestOutputHelper output) : base(output: output)
    {
        var state = new ParameterServerState(RunId, SeedCnn.Parameters, SeedCnn.Parameters.Initialize(1), new Adam(SeedCnn.Parameters));
        _server = new DataPlaneServer("127.0.0.1", 0, "127.0.0.1", state, Sys.Log);
        _parameterServer = CreateTestProbe("parameter-server");
        _server.Attach(_parameterServer.Ref);
    }

    private static int Floats => SeedCnn.Parameters.Count;

    private FrameConnection Connect(string runId, string workerId) => FrameConnection.Connect("127.0.0.1", _server.Port, runId, workerId, Patience);

    private static float[] Gradient(int floats)
    {
        var g = new float[floats];
        for (int i = 0; i < g.Length; i++) g[i] = (i % 17 - 8) * 0.25f;
        return g;
    }

    // The server closed the connection: the client's next read ends with an IOException (end of stream or reset).
    // The server may refuse a connection (its Hello, or a header) and close it while the frame is still being
    // written: the write then fails with a broken pipe, which is the refusal this test expects, not an error.
    private static void WriteUnlessClosed(FrameConnection connection, FrameHeader header, float[] body)
    {
        try
        {
            connection.Write(header, body);
        }
        catch (IOException)
        {
        }
    }

    private static void AssertClosedByServer(FrameConnection connection)
    {
        Task<FrameHeader> read = Task.Run(connection.ReadHeader);
        Assert.True(((IAsyncResult)read).AsyncWaitHandle.WaitOne(Patience), "the server kept the connection open");
        Assert.IsAssignableFrom<IOException>(read.Exception?.GetBaseException());
    }

    [Fact]
    public void A_worker_with_the_run_id_is_joined_and_its_gradient_frames_reach_the_parameter_server_with_their_header()
    {
        using FrameConnection connection = Connect(RunId, "worker-7");
        float[] gradient = Gradient(Floats);

        var joined = _parameterServer.ExpectMsg<ParameterServerActor.DataPlaneJoined>(Patience);
        connection.Write(new FrameHeader(FrameKind.Gradient, 3, 3, 4, 2, 8, 16, 5, 12.5, 7.25, 0), gradient);
        var arrived = _parameterServer.ExpectMsg<ParameterServerActor.DataPlaneGradient>(Patience);

        Assert.Equal("worker-7", joined.WorkerId);
        Assert.Equal(new ContributionHeader(RunId, 3, 3, 4, 2, 8, Floats, 12.5, 5, 16, "worker-7", 7.25), arrived.Header);
        AssertBitIdentical(gradient, arrived.Gradients, "gradient");
    }

    [Fact]
    public void A_connection_for_another_run_is_closed_and_nothing_of_it_reaches_the_parameter_server()
    {
        using FrameConnection stranger = Connect("run-guessed", "intruder");
        WriteUnlessClosed(stranger, new FrameHeader(FrameKind.Gradient, 0, 0, 0, 8, 8, 64, 0, 1.0, 1.0, 0), Gradient(Floats));

        AssertClosedByServer(stranger);
        _parameterServer.ExpectNoMsg(TimeSpan.FromMilliseconds(300));
    }

    [Theory]
    [InlineData("short gradient")]
    [InlineData("long gradient")]
    [InlineData("weights frame")]
    [InlineData("segment to a run that takes gradients whole")]
    public void A_frame_that_breaks_the_format_closes_the_connection_before_it_reaches_the_parameter_server(string fault)
    {
        using FrameConnection connection = Connect(RunId, "worker-1");
        _parameterServer.ExpectMsg<ParameterServerActor.DataPlaneJoined>(Patience);
        var header = new FrameHeader(fault == "weights frame" ? FrameKind.Weights : FrameKind.Gradient, 0, 0, 0, 8, 8, 64, 0, 1.0, 1.0, 0,
            Part: fault.StartsWith("segment") ? (byte)1 : FrameHeader.Whole);

        WriteUnlessClosed(connection, header, Gradient(fault switch { "short gradient" => Floats - 1, "long gradient" => Floats + 1, _ => Floats }));

        var closed = _parameterServer.ExpectMsg<ParameterServerActor.DataPlaneClosed>(Patience);
        Assert.Equal("worker-1", closed.WorkerId);
        AssertClosedByServer(connection);
        _parameterServer.ExpectNoMsg(TimeSpan.FromMilliseconds(200));
    }

    private DataPlaneServer SegmentedServer(TestProbe parameterServer)
    {
        var state = new ParameterServerState(RunId, SeedCnn.Parameters, SeedCnn.Parameters.Initialize(1), new Adam(SeedCnn.Parameters),
            segments: SeedCnn.ExchangeSegments);
        var server = new DataPlaneServer("127.0.0.1", 0, "127.0.0.1", state, Sys.Log);
        server.Attach(parameterServer.Ref);
        return server;
    }

    [Fact]
    public void In_a_run_that_takes_segments_each_segment_frame_is_read_into_its_range_and_reaches_the_parameter_server_as_that_segment()
    {
        TestProbe probe = CreateTestProbe();
        using DataPlaneServer server = SegmentedServer(probe);
        using FrameConnection connection = FrameConnection.Connect("127.0.0.1", server.Port, RunId, "worker-2", Patience);
        probe.ExpectMsg<ParameterServerActor.DataPlaneJoined>(Patience);
        float[] gradient = Gradient(Floats);
        IReadOnlyList<ExchangeSegment> segments = SeedCnn.ExchangeSegments;

        for (int s = 0; s < segments.Count; s++)
        {
            connection.Write(new FrameHeader(FrameKind.Gradient, 0, 0, 0, 8, 8, 64, 0, 0, 0, 0, (byte)(s + 1)), gradient.AsSpan(segments[s].From, segments[s].Length));
            var arrived = probe.ExpectMsg<ParameterServerActor.DataPlaneGradient>(Patience);

            Assert.Equal(s, arrived.Segment);
            Assert.Equal(Floats, arrived.Gradients.Length);
            AssertBitIdentical(gradient.AsSpan(segments[s].From, segments[s].Length).ToArray(),
                arrived.Gradients.AsSpan(segments[s].From, segments[s].Length).ToArray(), $"segment {s}");
        }
    }

    [Theory]
    [InlineData("whole gradient")]
    [InlineData("part past the last segment")]
    [InlineData("segment of the wrong length")]
    public void In_a_run_that_takes_segments_a_frame_it_does_not_take_closes_the_connection(string fault)
    {
        TestProbe probe = CreateTestProbe();
        using DataPlaneServer server = SegmentedServer(probe);
        using FrameConnection connection = FrameConnection.Connect("127.0.0.1", server.Port, RunId, "worker-3", Patience);
        probe.ExpectMsg<ParameterServerActor.DataPlaneJoined>(Patience);
        int segments = SeedCnn.ExchangeSegments.Count;
        var (part, floats) = fault switch
        {
            "whole gradient" => (FrameHeader.Whole, Floats),
            "part past the last segment" => ((byte)(segments + 1), SeedCnn.ExchangeSegments[^1].Length),
            _ => ((byte)1, SeedCnn.ExchangeSegments[0].Length - 1),
        };

        WriteUnlessClosed(connection, new FrameHeader(FrameKind.Gradient, 0, 0, 0, 8, 8, 64, 0, 0, 0, 0, part), Gradient(floats));

        probe.ExpectMsg<ParameterServerActor.DataPlaneClosed>(Patience);
        AssertClosedByServer(connection);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _server.Dispose();
        base.Dispose(disposing);
    }
}
