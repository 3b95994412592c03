// Faults delivered the way an operating system delivers them: SIGKILL (kill -9: no shutdown hook, no goodbye to
// the cluster, sockets reset by the kernel), SIGSTOP and SIGCONT (a frozen process that still holds its sockets,
// like a long GC pause or a swapped-out VM), and SIGTERM (an orderly stop, as `docker stop` asks for one). NodeProcess does not expose its process id, so the process is
// found in /proc among this test process's children by its command line and environment (every node the
// harness starts is a direct child: `dotnet X.dll` runs the program in the host process).
//
// Deliberately not here: which process to disturb and when (the tests).
using System.Runtime.InteropServices;

namespace Cnn.FaultTolerance.Tests;

/// <summary>Finds child processes and sends them signals (Linux; see file header).</summary>
public static partial class Signals
{
    /// <summary>Linux signal numbers.</summary>
    public enum Signal
    {
        /// <summary>kill -9.</summary>
        Kill = 9,
        /// <summary>Continue a stopped process.</summary>
        Continue = 18,
        /// <summary>Terminate politely (what `docker stop` and `kill` send).</summary>
        Terminate = 15,
        /// <summary>Stop (freeze) a process; it cannot be caught.</summary>
        Stop = 19,
    }

    /// <summary>Sends <paramref name="signal"/> to <paramref name="pid"/>; throws if the kernel refuses.</summary>
    public static void Send(int pid, Signal signal)
    {
        if (kill(pid, (int)signal) != 0)
            throw new InvalidOperationException($"kill({pid}, {signal}) failed: errno {Marshal.GetLastPInvokeError()}");
    }

    /// <summary>The child of this process started with <c>environmentEntry</c> (for example CNN_WORKER_ID=worker-2) in its environment.</summary>
    public static int ChildWithEnvironment(string environmentEntry) =>
        Child(p => Entries(p, "environ").Contains(environmentEntry), $"with {environmentEntry} in its environment");

    /// <summary>The child of this process whose command line holds <paramref name="flag"/> followed by <paramref name="value"/>.</summary>
    public static int ChildWithArgument(string flag, string value) =>
        Child(p =>
        {
            string[] args = Entries(p, "cmdline");
            int at = Array.IndexOf(args, flag);
            return at >= 0 && at + 1 < args.Length && args[at + 1] == value;
        }, $"with {flag} {value} on its command line");

    private static int Child(Func<int, bool> matches, string what)
    {
        int self = Environment.ProcessId;
        var found = new List<int>();
        foreach (string dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid)) continue;
            try
            {
                // /proc/PID/stat is "pid (comm) state ppid ...", and comm may hold spaces and parentheses.
                string stat = File.ReadAllText(Path.Combine(dir, "stat"));
                string[] rest = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                if (int.Parse(rest[1]) == self && rest[0] != "Z" && matches(pid)) found.Add(pid);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
            {
                // The process ended while being read: it is not the one.
            }
        }
        return found.Count == 1 ? found[0]
            : throw new InvalidOperationException($"expected one child process {what}, found {found.Count} ({string.Join(", ", found)})");
    }

    private static string[] Entries(int pid, string file) =>
        File.ReadAllText($"/proc/{pid}/{file}").Split('\0', StringSplitOptions.RemoveEmptyEntries);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int signal);
}
