using System.Runtime.InteropServices;

namespace Cnn.Coordinator;

/// <summary>
/// The process that started <c>cnn</c>, when it is the SDK's <c>dotnet run</c>. That process only waits for us, yet
/// right after its build it spends seconds of CPU in its tiered JIT, recompiling the MSBuild code it has just run
/// (about 4.6 s of one core over the first 8 s of a training run on a 2-core machine). Those seconds fell on the
/// cluster's start and first steps: through <c>dotnet run</c> the first step came 1.74 to 1.98 s after process start,
/// against 1.32 to 1.70 s with the launcher's threads at the lowest priority (docs/performance.md).
/// So on Linux <c>cnn</c> lowers the priority of a <c>dotnet run</c> parent to the lowest (nice 19); it still runs
/// whenever a core is free, and it does nothing but wait and pass the exit code on.
/// </summary>
internal static partial class Launcher
{
    private const int LowestPriority = 19;

    /// <summary>Lowers the parent's priority if it is <c>dotnet run</c>. Best effort: never throws.</summary>
    public static void YieldToUsIfDotnetRun()
    {
        if (!OperatingSystem.IsLinux())
            return;
        try
        {
            int parent = ParentOf("/proc/self/stat");
            if (parent > 1 && IsDotnetRun(ReadArguments($"/proc/{parent}/cmdline")))
                LowerPriority(parent);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The parent exited or /proc is not readable: nothing to yield to.
        }
    }

    /// <summary>True for the command line of the SDK's <c>dotnet run</c> (the host, then <c>run</c>).</summary>
    public static bool IsDotnetRun(IReadOnlyList<string> arguments) =>
        arguments.Count >= 2
        && Path.GetFileName(arguments[0]) is "dotnet" or "dotnet.exe"
        && arguments[1] == "run";

    /// <summary>
    /// Sets every thread of a process to nice 19. On Linux a priority belongs to a thread, so the process's
    /// threads are set one by one; a thread started later inherits the priority of the one that starts it.
    /// Returns how many threads were set.
    /// </summary>
    public static int LowerPriority(int pid)
    {
        int lowered = 0;
        foreach (string task in Directory.EnumerateDirectories($"/proc/{pid}/task"))
        {
            if (int.TryParse(Path.GetFileName(task), out int tid) && SetPriority(PriorityProcess, tid, LowestPriority) == 0)
                lowered++;
        }
        return lowered;
    }

    /// <summary>
    /// The parent's process id, from a <c>/proc/PID/stat</c> line (the field after the state); 0 when the line is
    /// not in that form.
    /// </summary>
    internal static int ParentOf(string statPath)
    {
        string[] fields = StatFields(statPath);
        return fields.Length > 1 && int.TryParse(fields[1], System.Globalization.CultureInfo.InvariantCulture, out int parent) ? parent : 0;
    }

    /// <summary>
    /// The fields of a <c>/proc/PID/stat</c> or <c>/proc/PID/task/TID/stat</c> line after the command name, from the
    /// state on (field 3 of the line is index 0); none when the line has no command name.
    /// </summary>
    internal static string[] StatFields(string statPath)
    {
        string stat = File.ReadAllText(statPath);
        // The command name in parentheses may hold spaces and parentheses; the fields after its last ')' do not.
        int end = stat.LastIndexOf(')');
        return end < 0 || end + 2 > stat.Length ? [] : stat[(end + 2)..].Split(' ');
    }

    private static string[] ReadArguments(string cmdlinePath) =>
        File.ReadAllText(cmdlinePath).Split('\0', StringSplitOptions.RemoveEmptyEntries);

    private const int PriorityProcess = 0; // PRIO_PROCESS: on Linux, `who` is a thread id

    // "libc": the runtime maps that name to the C library's real file (libc.so.6 with glibc).
    [LibraryImport("libc", EntryPoint = "setpriority", SetLastError = true)]
    private static partial int SetPriority(int which, int who, int priority);
}
