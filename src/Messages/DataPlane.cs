// The tensor data plane: plain TCP between each worker and the parameter server's node, for the two tensors of
// every step (the new weights down, the gradient sums up). Akka.Remote keeps membership, failure detection and
// the control messages; DESIGN.md's budget shows it costs 0.7 to 2 ms to move one 373 KB tensor, a multiple of
// what raw TCP on the same link costs, and the engine produces a gradient every few milliseconds.
//
// Frames: a fixed 64-byte little-endian header, then the body. A gradient or weights body is the raw float32
// bytes, read straight into the receiver's float buffer (no intermediate copy, no per-step allocation on the
// large object heap). A connection starts with a Hello frame carrying the run id and the worker id; the run id
// is a random token that only workers accepted over remoting learn, so a stranger cannot feed gradients in.
// The receiver checks every header (magic, kind, lengths) and closes a connection that breaks the format:
// nothing a peer sends reaches the weights without the parameter server's own checks afterwards.
//
// Byte 5 of the header says which part of the tensor the body is: 0 the whole tensor, k > 0 segment k - 1 of
// the model's exchange segments (Engine Model.ExchangeSegments), whose range both ends derive from the model. A
// run that cuts tensors sends a contribution's tails first, its head (with the loss and counts) last, and each
// new version's weights the same way; the receivers check the part against the model and the body's length.
//
// With TLS (a NodeTls given to both ends) every connection is an SslStream with mutual authentication: the
// worker presents its certificate, the listener requires one and checks both against the cluster's CA, the
// same material and check as Akka.Remote. A handshake that fails is reported to the listener's owner and the
// socket closed before a single frame is read. Without TLS the run id token is the only gate.
//
// Message frames carry the control messages of a step (its work, and the work-stealing conversation of
// StealProtocol.cs, in both directions), so that every per-step message travels this connection and none crosses
// Akka.Remote: the body is the message's manifest and the bytes CnnMessageSerializer gives Akka, read with the same
// untrusted-data checks.
//
// Not here: what the frames mean (ParameterServerState decides), retries (a lost connection is a lost worker).
using System.Buffers.Binary;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;

namespace Cnn.Messages;

/// <summary>Kinds of data-plane frames.</summary>
public enum FrameKind : byte
{
    /// <summary>Worker to server, first frame: run id and worker id.</summary>
    Hello = 1,
    /// <summary>Worker to server: one subtree's gradient sum.</summary>
    Gradient = 2,
    /// <summary>Server to worker: the weights of a version.</summary>
    Weights = 3,
    /// <summary>Either way: a control message (a step's work, work stealing), as CnnMessageSerializer writes it for Akka.</summary>
    Message = 4,
}

/// <summary>The fixed header of a data-plane frame.</summary>
public readonly record struct FrameHeader(
    FrameKind Kind, long Step, long Version, int NodeFirst, int NodeCount, int LeafCount, int Samples, int Correct,
    double LossSum, double ComputeMilliseconds, int BodyLength, byte Part = 0)
{
    /// <summary>Part: the whole tensor. Part k > 0 is segment k - 1 of the model's exchange segments.</summary>
    public const byte Whole = 0;

    /// <summary>The part that carries segment <paramref name="segment"/> of a tensor cut into <paramref name="segments"/> (one: the whole).</summary>
    public static byte PartOf(int segment, int segments) => segments == 1 ? Whole : checked((byte)(segment + 1));

    /// <summary>
    /// The segment this frame's part carries of a tensor cut into <paramref name="segments"/> (one: the whole);
    /// InvalidDataException when the part names none of them.
    /// </summary>
    public int SegmentIn(int segments) =>
        segments == 1 ? (Part == Whole ? 0 : throw new InvalidDataException($"part {Part}, but the tensor travels whole"))
        : Part >= 1 && Part <= segments ? Part - 1
        : throw new InvalidDataException($"part {Part}, but the tensor travels in segments 1 to {segments}");

    /// <summary>Header size in bytes.</summary>
    public const int Size = 64;
    private const uint Magic = 0x544E4E43; // "CNNT"

    /// <summary>Largest body accepted: 64 MB (16 M floats), far above any model here.</summary>
    public const int MaxBodyBytes = 64 << 20;

    /// <summary>Largest message body: the manifest's length byte, the manifest, and what Akka would accept.</summary>
    public const int MaxMessageBodyBytes = 1 + 255 + CnnMessageSerializer.MaxMessageBytes;

    /// <summary>Writes the header into <paramref name="bytes"/> (64 bytes).</summary>
    public void Write(Span<byte> bytes)
    {
        bytes[..Size].Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, Magic);
        bytes[4] = (byte)Kind;
        bytes[5] = Part;
        BinaryPrimitives.WriteInt64LittleEndian(bytes[8..], Step);
        BinaryPrimitives.WriteInt64LittleEndian(bytes[16..], Version);
        BinaryPrimitives.WriteInt32LittleEndian(bytes[24..], NodeFirst);
        BinaryPrimitives.WriteInt32LittleEndian(bytes[28..], NodeCount);
        BinaryPrimitives.WriteInt32LittleEndian(bytes[32..], LeafCount);
        BinaryPrimitives.WriteInt32LittleEndian(bytes[36..], Samples);
        BinaryPrimitives.WriteInt32LittleEndian(bytes[40..], Correct);
        BinaryPrimitives.WriteDoubleLittleEndian(bytes[44..], LossSum);
        BinaryPrimitives.WriteDoubleLittleEndian(bytes[52..], ComputeMilliseconds);
        BinaryPrimitives.WriteInt32LittleEndian(bytes[60..], BodyLength);
    }

    /// <summary>Reads a header; throws InvalidDataException on a bad magic, kind or length.</summary>
    public static FrameHeader Read(ReadOnlySpan<byte> bytes)
    {
        if (BinaryPrimitives.ReadUInt32LittleEndian(bytes) != Magic) throw new InvalidDataException("not a Cnn.Distributed data-plane frame (bad magic)");
        var kind = (FrameKind)bytes[4];
        if (!Enum.IsDefined(kind)) throw new InvalidDataException($"unknown frame kind {bytes[4]}");
        int body = BinaryPrimitives.ReadInt32LittleEndian(bytes[60..]);
        if (body < 0 || body > (kind == FrameKind.Message ? MaxMessageBodyBytes : MaxBodyBytes) || (kind is FrameKind.Gradient or FrameKind.Weights && body % 4 != 0))
            throw new InvalidDataException($"frame body of {body} bytes is out of range");
        return new FrameHeader(kind,
            BinaryPrimitives.ReadInt64LittleEndian(bytes[8..]), BinaryPrimitives.ReadInt64LittleEndian(bytes[16..]),
            BinaryPrimitives.ReadInt32LittleEndian(bytes[24..]), BinaryPrimitives.ReadInt32LittleEndian(bytes[28..]),
            BinaryPrimitives.ReadInt32LittleEndian(bytes[32..]), BinaryPrimitives.ReadInt32LittleEndian(bytes[36..]),
            BinaryPrimitives.ReadInt32LittleEndian(bytes[40..]), BinaryPrimitives.ReadDoubleLittleEndian(bytes[44..]),
            BinaryPrimitives.ReadDoubleLittleEndian(bytes[52..]), body, bytes[5]);
    }
}

/// <summary>One data-plane connection: framed, thread-safe writes; reads from one reader thread.</summary>
public sealed class FrameConnection : IDisposable
{
    private const int SocketBuffer = 4 << 20;

    /// <summary>How long one write may block before the connection counts as lost.</summary>
    public static readonly TimeSpan WriteTimeout = TimeSpan.FromSeconds(3);
    private readonly Socket _socket;
    private readonly Stream _stream; // NetworkStream, or an SslStream over it
    private readonly object _writeLock = new();
    private readonly byte[] _readHeader = new byte[FrameHeader.Size];
    private readonly byte[] _writeHeader = new byte[FrameHeader.Size];

    /// <summary>Wraps a connected socket (plain TCP).</summary>
    public FrameConnection(Socket socket) : this(socket, new NetworkStream(Configure(socket), ownsSocket: true))
    {
    }

    private FrameConnection(Socket socket, Stream stream)
    {
        _socket = socket;
        _stream = stream;
    }

    /// <summary>The peer's address.</summary>
    public EndPoint? Remote => _socket.RemoteEndPoint;

    /// <summary>The socket (for tests).</summary>
    internal Socket Socket => _socket;

    /// <summary>True when the connection runs TLS.</summary>
    public bool IsEncrypted => _stream is SslStream;

    /// <summary>
    /// Connects to <paramref name="host"/>:<paramref name="port"/>, with mutual TLS when <paramref name="tls"/> is given,
    /// and says hello. A refused TLS handshake throws <see cref="System.Security.Authentication.AuthenticationException"/>.
    /// </summary>
    public static FrameConnection Connect(string host, int port, string runId, string workerId, TimeSpan timeout, NodeTls? tls = null)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        Stream? stream = null;
        try
        {
            ConnectBlocking(socket, host, port, timeout);
            stream = new NetworkStream(Configure(socket), ownsSocket: true);
            if (tls is not null)
            {
                string? refusal = null;
                var ssl = new SslStream(stream, leaveInnerStreamOpen: false);
                stream = ssl;
                using var deadline = new CancellationTokenSource(timeout); // the handshake gets the timeout too, as the connect did
                try
                {
                    HandshakeBlocking(socket, deadline.Token, () => ssl.AuthenticateAsClient(tls.ClientOptions(host, reason => refusal = reason)),
                        $"no TLS handshake with the data plane at {host}:{port} within {timeout.TotalSeconds:0.#} s");
                }
                catch (System.Security.Authentication.AuthenticationException e) when (refusal is not null)
                {
                    throw new System.Security.Authentication.AuthenticationException($"the data plane at {host}:{port} is not trusted: {refusal}", e);
                }
            }
        }
        catch
        {
            if (stream is not null) stream.Dispose();
            else socket.Dispose();
            throw;
        }
        var connection = new FrameConnection(socket, stream);
        connection.WriteHello(runId, workerId);
        return connection;
    }

    // Connects without any asynchronous socket operation, so that the socket stays in blocking mode. On Linux, .NET
    // switches a socket to non-blocking mode for good at its first asynchronous operation; a blocking read then
    // waits for .NET's socket event thread to wake it instead of for the kernel, one more thread hand-off per frame.
    // Traced on a 2-vCPU VM: from the parameter server's write of the step's last weights to the worker's reader
    // holding them, a median 7 to 11 us against 52 to 76 us. (The listener's accepted sockets are blocking already.)
    // The connect runs on a thread of its own so that it can be given up after the timeout (Connect's catch then
    // disposes the socket, which ends it). Not on a pool thread: the caller is usually an actor, itself on a pool
    // thread, and with two workers connecting at once on two cores both pool threads waited for connects that had
    // no thread to run on until the pool added one (a local cluster's first step came 0.7 to 0.8 s late in about
    // half of the runs, every node silent in the meantime).
    private static void ConnectBlocking(Socket socket, string host, int port, TimeSpan timeout)
    {
        Exception? failure = null;
        var connect = new Thread(() =>
        {
            try
            {
                socket.Connect(host, port);
            }
            catch (Exception e)
            {
                failure = e;
            }
        }) { IsBackground = true, Name = "cnn-data-plane-connect" };
        connect.Start();
        if (!connect.Join(timeout))
            throw new TimeoutException($"no connection to the data plane at {host}:{port} within {timeout.TotalSeconds:0.#} s");
        if (failure is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure); // refused, unreachable, unknown host
    }

    // A TLS handshake through the synchronous SslStream calls, for the same reason as ConnectBlocking: the asynchronous
    // ones would switch the socket to non-blocking mode for good. When the token fires first (the timeout, or a
    // listener that stops), the socket is closed, which ends the handshake's blocked read, and the handshake throws
    // TimeoutException with <paramref name="timedOut"/> (for a listener that stops, the caller drops the error).
    private static void HandshakeBlocking(Socket socket, CancellationToken deadline, Action handshake, string timedOut)
    {
        try
        {
            using (deadline.Register(static s => ((Socket)s!).Dispose(), socket)) handshake();
        }
        catch (Exception e) when (deadline.IsCancellationRequested && e is IOException or SocketException or ObjectDisposedException or System.Security.Authentication.AuthenticationException)
        {
            throw new TimeoutException(timedOut, e);
        }
        // The registration is gone, but the token may have fired just as the handshake ended: the socket is closed then.
        if (deadline.IsCancellationRequested) throw new TimeoutException(timedOut);
    }

    /// <summary>
    /// The server end of a TLS connection: authenticates <paramref name="socket"/> with a client certificate required,
    /// blocking the calling thread (see HandshakeBlocking) until it completes or <paramref name="deadline"/> fires.
    /// </summary>
    internal static FrameConnection AcceptTls(Socket socket, NodeTls tls, Action<string> refused, CancellationToken deadline)
    {
        var ssl = new SslStream(new NetworkStream(Configure(socket), ownsSocket: true), leaveInnerStreamOpen: false);
        try
        {
            HandshakeBlocking(socket, deadline, () => ssl.AuthenticateAsServer(tls.ServerOptions(refused)), "timed out");
            return new FrameConnection(socket, ssl);
        }
        catch
        {
            ssl.Dispose();
            throw;
        }
    }

    private static Socket Configure(Socket socket)
    {
        socket.NoDelay = true;
        socket.SendBufferSize = SocketBuffer;
        socket.ReceiveBufferSize = SocketBuffer;
        // A peer that stops reading (a stopped process, a partition without a reset) must not block the writer
        // forever: after this long a write fails, and the connection is closed like a lost one.
        socket.SendTimeout = (int)WriteTimeout.TotalMilliseconds;
        return socket;
    }

    /// <summary>Sends the Hello frame.</summary>
    public void WriteHello(string runId, string workerId)
    {
        byte[] body = Encoding.UTF8.GetBytes(runId + "\n" + workerId);
        Write(new FrameHeader(FrameKind.Hello, 0, 0, 0, 0, 0, 0, 0, 0, 0, body.Length), body);
    }

    /// <summary>
    /// Sends a control message as a Message frame: the manifest (its length in one byte, then ASCII) and the
    /// bytes <see cref="CnnMessageSerializer"/> would give Akka, with the same checks.
    /// </summary>
    /// <exception cref="System.Runtime.Serialization.SerializationException">The message cannot be sent (see the serializer).</exception>
    public void WriteMessage(ICnnMessage message)
    {
        string manifest = CnnMessageSerializer.ManifestOf(message);
        byte[] payload = CnnMessageSerializer.Encode(message);
        var body = new byte[1 + manifest.Length + payload.Length];
        body[0] = checked((byte)manifest.Length);
        Encoding.ASCII.GetBytes(manifest, body.AsSpan(1));
        payload.CopyTo(body, 1 + manifest.Length);
        Write(new FrameHeader(FrameKind.Message, 0, 0, 0, 0, 0, 0, 0, 0, 0, body.Length), body);
    }

    /// <summary>
    /// Reads the body of a Message frame into the message it carries. A body that is not a well-formed wire message
    /// throws InvalidDataException with the serializer's reason (the reader closes such a connection).
    /// </summary>
    public ICnnMessage ReadMessage(FrameHeader header)
    {
        if (header.Kind != FrameKind.Message) throw new InvalidDataException($"a {header.Kind} frame where a message was expected");
        var body = new byte[header.BodyLength];
        _stream.ReadExactly(body);
        if (body.Length == 0 || body[0] == 0 || body.Length < 1 + body[0]) throw new InvalidDataException("a message frame without a manifest");
        string manifest = Encoding.ASCII.GetString(body, 1, body[0]);
        try
        {
            return (ICnnMessage)CnnMessageSerializer.Decode(body.AsMemory(1 + body[0]), manifest);
        }
        catch (System.Runtime.Serialization.SerializationException e)
        {
            throw new InvalidDataException(e.Message, e);
        }
    }

    /// <summary>Sends a frame whose body is the float tensor <paramref name="tensor"/>.</summary>
    public void Write(FrameHeader header, ReadOnlySpan<float> tensor) => Write(header with { BodyLength = tensor.Length * 4 }, MemoryMarshal.AsBytes(tensor));

    private void Write(FrameHeader header, ReadOnlySpan<byte> body)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("the data plane sends little-endian floats as they are in memory");
        lock (_writeLock)
        {
            header.Write(_writeHeader);
            _stream.Write(_writeHeader);
            _stream.Write(body);
        }
    }

    /// <summary>Reads the next header (blocking); throws EndOfStreamException when the peer closed.</summary>
    public FrameHeader ReadHeader()
    {
        _stream.ReadExactly(_readHeader);
        return FrameHeader.Read(_readHeader);
    }

    /// <summary>
    /// True when bytes of a frame have arrived and not been read: the next read will not wait for the peer. Over TLS only
    /// the socket's bytes count, not those the stream has decrypted already, so it may say false too soon.
    /// </summary>
    public bool DataAvailable => _socket.Available > 0;

    /// <summary>How long a blocking read may wait before it fails (null: forever), e.g. for a peer's Hello.</summary>
    public TimeSpan? ReadTimeout
    {
        set => _socket.ReceiveTimeout = value is { } t ? (int)t.TotalMilliseconds : 0;
    }

    /// <summary>Reads a Hello body: (run id, worker id).</summary>
    public (string RunId, string WorkerId) ReadHello(FrameHeader header)
    {
        if (header.Kind != FrameKind.Hello || header.BodyLength > 1024) throw new InvalidDataException("the connection did not start with a Hello frame");
        var body = new byte[header.BodyLength];
        _stream.ReadExactly(body);
        string[] parts = Encoding.UTF8.GetString(body).Split('\n');
        if (parts.Length != 2) throw new InvalidDataException("malformed Hello frame");
        return (parts[0], parts[1]);
    }

    /// <summary>Reads a tensor body of exactly <paramref name="destination"/>.Length floats.</summary>
    public void ReadTensor(FrameHeader header, Span<float> destination)
    {
        if (header.BodyLength != destination.Length * 4)
            throw new InvalidDataException($"a tensor of {header.BodyLength / 4} floats where {destination.Length} were expected");
        _stream.ReadExactly(MemoryMarshal.AsBytes(destination));
    }

    /// <inheritdoc/>
    public void Dispose() => _stream.Dispose();
}

/// <summary>The parameter server side: accepts worker connections and hands each to a callback.</summary>
public sealed class FrameListener : IDisposable
{
    // A peer gets this long to finish the TLS handshake; the accept loop never waits for it.
    private static readonly TimeSpan HandshakeTimeout = TimeSpan.FromSeconds(10);
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();

    /// <summary>
    /// Listens on <paramref name="host"/>:<paramref name="port"/> (0 = any free port). With <paramref name="tls"/>,
    /// every connection must complete a mutual TLS handshake first; each one that does not is reported to
    /// <paramref name="refused"/> with the peer's address and the reason, and closed.
    /// </summary>
    public FrameListener(string host, int port, Action<FrameConnection> accepted, NodeTls? tls = null, Action<EndPoint?, string>? refused = null)
    {
        IPAddress address = CnnNode.BindAddress(host) ?? throw new SocketException((int)SocketError.HostNotFound);
        _listener = new TcpListener(address, port);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _ = Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested)
            {
                Socket socket;
                try
                {
                    socket = await _listener.AcceptSocketAsync(_stop.Token);
                }
                catch (Exception) when (_stop.IsCancellationRequested)
                {
                    return;
                }
                catch (SocketException)
                {
                    continue;
                }
                if (tls is null) accepted(new FrameConnection(socket));
                else new Thread(() => Handshake(socket, tls, accepted, refused)) { IsBackground = true, Name = "cnn-tls-handshake" }.Start();
            }
        });
    }

    // On a thread of its own: the handshake blocks (FrameConnection.AcceptTls), and the accept loop never waits for it.
    private void Handshake(Socket socket, NodeTls tls, Action<FrameConnection> accepted, Action<EndPoint?, string>? refused)
    {
        EndPoint? remote = socket.RemoteEndPoint;
        string? reason = null;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        timeout.CancelAfter(HandshakeTimeout);
        FrameConnection connection;
        try
        {
            connection = FrameConnection.AcceptTls(socket, tls, r => reason = r, timeout.Token);
        }
        catch (Exception e) when (e is IOException or System.Security.Authentication.AuthenticationException or TimeoutException or SocketException or ObjectDisposedException)
        {
            if (!_stop.IsCancellationRequested)
                refused?.Invoke(remote, reason ?? $"TLS handshake failed ({(e is TimeoutException ? "timed out" : e.GetBaseException().Message.ReplaceLineEndings(" "))})");
            return;
        }
        accepted(connection);
    }

    /// <summary>The port listened on.</summary>
    public int Port { get; }

    /// <inheritdoc/>
    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
    }
}
