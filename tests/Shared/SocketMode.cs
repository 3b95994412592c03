// Whether a socket's descriptor is in non-blocking mode at the operating system's level, read from
// /proc/self/fdinfo (Linux), where the file status flags of a non-blocking descriptor hold O_NONBLOCK. Shared (as a
// linked file) by the tests that check the data plane keeps its sockets blocking, plain and TLS.
using System.Net.Sockets;

namespace Cnn.Tests.Shared;

/// <summary>Reads a socket's O_NONBLOCK flag (see file header).</summary>
public static class SocketMode
{
    private const int NonBlockingFlag = 0x800; // O_NONBLOCK on Linux (04000 octal)

    /// <summary>True when <paramref name="socket"/>'s descriptor has O_NONBLOCK set.</summary>
    public static bool IsNonBlocking(Socket socket)
    {
        string line = File.ReadLines($"/proc/self/fdinfo/{socket.SafeHandle.DangerousGetHandle()}").First(l => l.StartsWith("flags:", StringComparison.Ordinal));
        return (Convert.ToInt32(line["flags:".Length..].Trim(), 8) & NonBlockingFlag) != 0;
    }
}
