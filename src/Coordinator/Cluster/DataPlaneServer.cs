// The parameter server's end of the data plane (Messages/DataPlane.cs): listens beside the coordinator node,
// checks each connection's Hello (the run id is the token), and runs one reader thread per worker that reads
// gradient frames (whole, or an exchange segment into its range) straight into buffers rented from the parameter
// server and posts them to its actor. The
// actor does everything else (checks, reduction, weights broadcast); a connection that breaks the frame format
// or says hello with the wrong run id is closed and logged. With TLS, a connection whose handshake fails (no
// client certificate, one from another CA) is logged with the peer's address and the reason, and closed.
//
// With work stealing, the readers also take the workers' part of the stealing conversation (Messages/
// StealProtocol.cs) and answer it themselves on the board (StealBoard), writing the claim to the owner's newest
// connection and the answer to the thief's: a thief waits for its answer with its core idle, so the answer must not
// wait for the actor's turn on the thread pool, whose threads the other workers' computations hold.
using System.Reflection;
using System.Runtime.CompilerServices;
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
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, FrameConnection> _newest = new(); // each worker's newest connection
    private IActorRef? _server;

    /// <summary>
    /// Listens on <paramref name="bindHost"/>:<paramref name="port"/> (0 = any free port) for the run of
    /// <paramref name="state"/>; workers are told to connect to <paramref name="publicHost"/>. With
    /// <paramref name="tls"/>, only workers whose certificates chain to its CA get through. With
    /// <paramref name="workStealing"/>, it answers the workers' steal requests on <see cref="Steals"/>.
    /// </summary>
    public DataPlaneServer(string bindHost, int port, string publicHost, ParameterServerState state, ILoggingAdapter log, NodeTls? tls = null,
        bool workStealing = false)
    {
        Steals = workStealing ? new StealBoard() : null;
        _runId = state.RunId;
        _state = state;
        _log = log;
        _listener = new FrameListener(bindHost, port, Accept, tls,
            (remote, reason) => _log.Warning("Data plane: refused the TLS connection of {0}: {1}", remote, reason));
        Host = publicHost;
        IsEncrypted = tls is not null;
    }

    /// <summary>The work-stealing board (null: stealing off), shared with the parameter server actor.</summary>
    public StealBoard? Steals { get; }

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

    /// <summary>
    /// Compiles the reader now (see Read), so that a node that calls this while it starts does not compile it when its
    /// first worker connects.
    /// </summary>
    public static void PrepareReader() =>
        RuntimeHelpers.PrepareMethod(typeof(DataPlaneServer).GetMethod(nameof(Read), BindingFlags.NonPublic | BindingFlags.Instance)!.MethodHandle);

    // A reader thread's loop, for the whole life of its connection. Compiled optimized at its first call, for the
    // reason the worker's reader is (Worker/WorkerDataPlane.cs, Run): without that, the tiered JIT compiles it
    // again part-way, on this thread, while the worker's frames wait (traced: at step 1,085 to 1,145 of a local
    // cluster, a step held up 62 to 116 ms).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
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
            _newest[worker] = connection;
            _server!.Tell(new ParameterServerActor.DataPlaneJoined(connection, worker));
            while (true)
            {
                FrameHeader header = connection.ReadHeader();
                if (header.Kind == FrameKind.Message)
                {
                    Steal(connection, worker, connection.ReadMessage(header));
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
            _newest.TryRemove(new KeyValuePair<string, FrameConnection>(worker, connection));
            _server?.Tell(new ParameterServerActor.DataPlaneClosed(connection, worker));
            connection.Dispose();
        }
    }

    // A message of the work-stealing conversation from `worker`. With stealing off, or for a step that is not open
    // (StealBoard.Request), the thief gets no leaf; the owner hears of a grant before the thief does, so that it is the
    // likelier to skip the leaf.
    private void Steal(FrameConnection connection, string worker, ICnnMessage message)
    {
        switch (message)
        {
            case LeafStarted started when started.RunId == _runId && started.WorkerId == worker:
                Steals?.Started(started.Step, worker, started.Leaf);
                break;
            case StealRequest request when request.RunId == _runId && request.WorkerId == worker:
                (string Owner, int Leaf)? grant = Steals?.Request(request.Step, request.Version, worker);
                if (grant is { } g && _newest.TryGetValue(g.Owner, out FrameConnection? owner))
                {
                    try
                    {
                        owner.WriteMessage(new LeafClaimed(_runId, request.Step, g.Leaf));
                    }
                    catch (Exception e) when (e is IOException or ObjectDisposedException or System.Net.Sockets.SocketException)
                    {
                        // The owner's connection is gone: its reader reports the loss, and the leaf is computed twice at worst.
                    }
                }
                connection.WriteMessage(new StealGrant(_runId, request.Step, request.Version, grant?.Leaf ?? -1));
                break;
            case StealRequest or LeafStarted:
                _log.Warning("Data plane: ignored a {0} of worker {1} that names another run or worker", message.GetType().Name, worker);
                break;
            default:
                throw new InvalidDataException($"a {message.GetType().Name} where gradients or work stealing were expected");
        }
    }

    /// <inheritdoc/>
    public void Dispose() => _listener.Dispose();
}
