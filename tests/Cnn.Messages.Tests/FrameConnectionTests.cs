// Both ends of a plain data-plane connection keep their sockets in blocking mode at the operating system's level:
// the worker's because FrameConnection.Connect connects synchronously, the parameter server's because .NET leaves
// the sockets FrameListener accepts blocking. An asynchronous operation would have switched a socket to
// non-blocking for good, and its reads would then wait on .NET's socket event thread. Checked in /proc/self/fdinfo,
// where the flags of a non-blocking descriptor hold O_NONBLOCK; a socket connected with ConnectAsync is the control
// that the check sees the difference. A refused connection throws the connect's own SocketException; one that does
// not complete within the timeout (a listener whose backlog is full drops the SYN) throws TimeoutException.
// (Linux, as the rest of the multi-process tests.)
using System.Net;
using System.Net.Sockets;
using Cnn.Messages;
using Cnn.Tests.Shared;
using Xunit;

namespace Cnn.Messages.Tests;

public sealed class FrameConnectionTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Both_ends_of_a_plain_connection_keep_their_sockets_blocking_where_an_asynchronous_connect_does_not()
    {
        var accepted = new TaskCompletionSource<FrameConnection>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var listener = new FrameListener("127.0.0.1", 0, c => accepted.TrySetResult(c));
        using var control = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await control.ConnectAsync(IPAddress.Loopback, listener.Port);
        using FrameConnection controlServerEnd = await accepted.Task.WaitAsync(Patience);
        accepted = new TaskCompletionSource<FrameConnection>(TaskCreationOptions.RunContinuationsAsynchronously);

        using FrameConnection worker = FrameConnection.Connect("127.0.0.1", listener.Port, "run-1", "worker-1", Patience);
        using FrameConnection server = await accepted.Task.WaitAsync(Patience);

        Assert.True(SocketMode.IsNonBlocking(control));
        Assert.False(SocketMode.IsNonBlocking(worker.Socket));
        Assert.False(SocketMode.IsNonBlocking(server.Socket));
    }

    [Fact]
    public void A_refused_connection_throws_the_connects_own_socket_exception()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop(); // nothing listens there now

        var e = Assert.Throws<SocketException>(() => FrameConnection.Connect("127.0.0.1", port, "run-1", "worker-1", Patience));

        Assert.Equal(SocketError.ConnectionRefused, e.SocketErrorCode);
    }

    [Fact]
    public void A_connection_that_does_not_complete_in_time_throws_timeout_naming_the_address()
    {
        using var listener = new Socket(SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(0); // never accepts: once its backlog is full, the kernel drops further SYNs
        int port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        var filling = new List<Socket>();
        try
        {
            for (int i = 0; i < 4; i++)
            {
                var s = new Socket(SocketType.Stream, ProtocolType.Tcp);
                filling.Add(s);
                s.ConnectAsync(IPAddress.Loopback, port); // completes or hangs; either way it fills the backlog
            }
            Thread.Sleep(200);

            var e = Assert.Throws<TimeoutException>(() => FrameConnection.Connect("127.0.0.1", port, "run-1", "worker-1", TimeSpan.FromMilliseconds(500)));

            Assert.Contains($"127.0.0.1:{port}", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            foreach (Socket s in filling) s.Dispose();
        }
    }
}
