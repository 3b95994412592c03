// The parameter server's end of the data plane (Messages/DataPlane.cs): listens beside the coordinator node,
// checks each connection's Hello (the run id is the token), and runs one reader thread per worker that reads
// gradient frames (whole, or an exchange segment into its range) straight into buffers rented from the parameter
// server, and the work-stealing messages, and posts them to its actor. The
// actor does everything else (checks, reduction, weights broadcast); a connection that breaks the frame format
// or says hello with the wrong run id is closed and logged. With TLS, a connection whose handshake fails (no
// client certificate, one from another CA) is logged with the peer's address and the reason, and closed.
using Akka.Actor;
using Akka.Event;
using Cnn.Engine.Models;
using Cnn.Messages;

namespace Cnn.Coordinator.Cluster;

/// <summary>The listening side of the tensor data plane (see file header).</summary>
public sealed class DataPlaneServer : IDisposable
{
    private static readonly TimeSpan HelloTimeout = TimeSpan.FromSeconds(10);
    private readonly FrameListener _listener;
    private readonly string _runId;
    private readonly ParameterServerState _state;
    private readonly ILoggingAdapter _log;
    private IActorRef? _server;

    /// <summary>
    /// Listens on <paramref name="bindHost"/>:<paramref name="port"/> (0 = any free port) for the run of
    /// <paramref name="state"/>; workers are told to connect to <paramref name="publicHost"/>. With
    /// <paramref name="tls"/>, only workers whose certificates chain to its CA get through.
    /// </summary>
    public DataPlaneServer(string bindHost, int port, string publicHost, ParameterServerState state, ILoggingAdapter log, NodeTls? tls = null)
    {
        _runId = state.RunId;
        _state = state;
        _log = log;
        _listener = new FrameListener(bindHost, port, Accept, tls,
            (remote, reason) => _log.Warning("Data plane: refused the TLS connection of {0}: {1}", remote, reason));
        Host = publicHost;
        IsEncrypted = tls is not null;
    }

    /// <summary>True when connections must complete mutual TLS.</summary>
    public bool IsEncrypted { get; }

    /// <summary>The host workers connect to.</summary>
    public string Host { get; }

    /// <summary>The port workers connect to.</summary>
    public int Port => _listener.Port;

    /// <summary>"host:port", as sent to workers in WorkerAccepted.</summary>
    public string Endpoint => $"{Host}:{Port}";

    /// <summary>Sets the parameter server actor that receives the frames.</summary>
    public void Attach(IActorRef server) => _server = server;

    private void Accept(FrameConnection connection)
    {
        var reader = new Thread(() => Read(connection)) { IsBackground = true, Name = "cnn-data-plane" };
        reader.Start();
    }

    private void Read(FrameConnection connection)
    {
        string worker = "?";
        try
        {
            connection.ReadTimeout = HelloTimeout; // a peer that connects and says nothing must not hold this thread
            FrameHeader hello = connection.ReadHeader();
            (string runId, worker) = connection.ReadHello(hello);
            connection.ReadTimeout = null; // from here a quiet connection is a worker between steps
            if (runId != _runId)
            {
                _log.Warning("Data plane: refused a connection from {0} (worker {1}) for run {2}: this is run {3}", connection.Remote, worker, runId, _runId);
                connection.Dispose();
                return;
            }
            _server!.Tell(new ParameterServerActor.DataPlaneJoined(connection, worker));
            while (true)
            {
                FrameHeader header = connection.ReadHeader();
                if (header.Kind == FrameKind.Message)
                {
                    ICnnMessage message = connection.ReadMessage(header);
                    if (message is not (StealRequest or LeafStarted)) throw new InvalidDataException($"a {message.GetType().Name} where gradients or work stealing were expected");
                    _server.Tell(new ParameterServerActor.DataPlaneMessage(worker, message));
                    continue;
                }
                if (header.Kind != FrameKind.Gradient) throw new InvalidDataException($"a {header.Kind} frame where gradients were expected");
                int segment = header.SegmentIn(_state.Segments.Count); // whole, or one of the model's exchange segments
                ExchangeSegment range = _state.Segments[segment];
                if (header.BodyLength != range.Length * 4)
                    throw new InvalidDataException($"a gradient of {header.BodyLength / 4} floats where {range.Length} were expected");
                float[] buffer = _state.RentBuffer();
                connection.ReadTensor(header, buffer.AsSpan(range.From, range.Length));
                _server.Tell(new ParameterServerActor.DataPlaneGradient(new ContributionHeader(_runId, header.Step, header.Version, header.NodeFirst,
                    header.NodeCount, header.LeafCount, buffer.Length, header.LossSum, header.Correct, header.Samples, worker, header.ComputeMilliseconds),
                    buffer, segment));
            }
        }
        catch (Exception e) when (e is IOException or InvalidDataException or ObjectDisposedException or System.Net.Sockets.SocketException)
        {
            if (e is InvalidDataException) _log.Warning("Data plane: closed the connection of worker {0} at {1}: {2}", worker, connection.Remote, e.Message);
            _server?.Tell(new ParameterServerActor.DataPlaneClosed(connection, worker));
            connection.Dispose();
        }
    }

    /// <inheritdoc/>
    public void Dispose() => _listener.Dispose();
}
