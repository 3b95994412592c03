// FrameConnection.Connect on plain TCP leaves its socket in blocking mode at the operating system's level, where an
// asynchronous connect would have switched it to non-blocking for good (reads would then wait on .NET's socket
// event thread). Checked in /proc/self/fdinfo, where the flags of a non-blocking descriptor hold O_NONBLOCK; a
// socket connected with ConnectAsync is the control that the check sees the difference. A refused connection
// throws the connect's own SocketException. (Linux, as the rest of the multi-process tests.)
using System.Net;
using System.Net.Sockets;
using Cnn.Messages;
using Xunit;

namespace Cnn.Messages.Tests;

public sealed class FrameConnectionTests
{
    private const int NonBlockingFlag = 0x800; // O_NONBLOCK on Linux (04000 octal)

    // The file status flags of a socket's descriptor, from /proc/self/fdinfo.
    private static int Flags(Socket socket)
    {
        string line = File.ReadLines($"/proc/self/fdinfo/{socket.SafeHandle.DangerousGetHandle()}").First(l => l.StartsWith("flags:", StringComparison.Ordinal));
        return Convert.ToInt32(line["flags:".Length..].Trim(), 8);
    }

    [Fact]
    public async Task A_plain_connection_keeps_its_socket_blocking_where_an_asynchronous_connect_does_not()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        try
        {
            int port = ((IPEndPoint)listener.LocalEndpoint).Port;
            using var control = new Socket(SocketType.Stream, ProtocolType.Tcp);
            await control.ConnectAsync(IPAddress.Loopback, port);

            using FrameConnection connection = FrameConnection.Connect("127.0.0.1", port, "run-1", "worker-1", TimeSpan.FromSeconds(10));

            Assert.NotEqual(0, Flags(control) & NonBlockingFlag);
            Assert.Equal(0, Flags(connection.Socket) & NonBlockingFlag);
        }
        finally
        {
            listener.Stop();
        }
    }

    [Fact]
    public void A_refused_connection_throws_the_connects_own_socket_exception()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop(); // nothing listens there now

        var e = Assert.Throws<SocketException>(() => FrameConnection.Connect("127.0.0.1", port, "run-1", "worker-1", TimeSpan.FromSeconds(10)));

        Assert.Equal(SocketError.ConnectionRefused, e.SocketErrorCode);
    }
}
