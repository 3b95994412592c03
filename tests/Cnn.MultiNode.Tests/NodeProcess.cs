// Real OS processes of the built programs for the multi-node tests: `dotnet Cnn.Coordinator.dll ...` and
// `dotnet Cnn.Worker.dll ...`, run from their own bin directories (the configuration this test assembly was
// built in), with a clean CNN_* environment plus what the test sets, and their output captured line by line.
// Dispose kills the whole process tree, so a failing test leaves nothing running.
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Reflection;
using System.Text;

namespace Cnn.MultiNode.Tests;

/// <summary>The repository and the programs built from it.</summary>
public static class Programs
{
    private static string Metadata(string key) =>
        typeof(Programs).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == key).Value!;

    /// <summary>The repository root (the directory of Cnn.Distributed.sln).</summary>
    public static string RepositoryRoot { get; } = Metadata("RepositoryRoot");

    /// <summary>The configuration this test assembly, and so the programs it runs, was built in.</summary>
    public static string Configuration { get; } = Metadata("Configuration");

    /// <summary>The built coordinator (`cnn`).</summary>
    public static string Coordinator => Built("Coordinator", "Cnn.Coordinator.dll");

    /// <summary>The built worker host.</summary>
    public static string Worker => Built("Worker", "Cnn.Worker.dll");

    /// <summary>A file of the repository.</summary>
    public static string File(string relative) => Path.Combine(RepositoryRoot, relative);

    private static string Built(string project, string dll)
    {
        string path = Path.Combine(RepositoryRoot, "src", project, "bin", Configuration, "net10.0", dll);
        if (!System.IO.File.Exists(path)) throw new FileNotFoundException($"{path} is not built: build the solution in {Configuration} first", path);
        return path;
    }
}

/// <summary>One running program (see file header).</summary>
public sealed class NodeProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _out = new();
    private readonly StringBuilder _error = new();
    private readonly TaskCompletionSource _outClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _errorClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private NodeProcess(Process process, string name)
    {
        _process = process;
        Name = name;
    }

    /// <summary>A name for messages.</summary>
    public string Name { get; }

    /// <summary>
    /// Starts <c>dotnet <paramref name="dll"/> <paramref name="args"/></c> with <paramref name="environment"/> on top of a
    /// CNN_*-free environment, through <paramref name="launcher"/> when given (e.g. runuser, to drop root).
    /// </summary>
    public static NodeProcess Start(string name, string dll, IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null,
        IReadOnlyList<string>? launcher = null)
    {
        var info = new ProcessStartInfo(launcher is { Count: > 0 } ? launcher[0] : "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetDirectoryName(dll)!,
        };
        if (launcher is { Count: > 0 })
        {
            foreach (string a in launcher.Skip(1)) info.ArgumentList.Add(a);
            info.ArgumentList.Add("dotnet");
        }
        info.ArgumentList.Add(dll);
        foreach (string a in args) info.ArgumentList.Add(a);
        foreach (string key in info.Environment.Keys.Where(k => k.StartsWith("CNN_", StringComparison.Ordinal)).ToList()) info.Environment.Remove(key);
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        foreach (var (key, value) in environment ?? new Dictionary<string, string>()) info.Environment[key] = value;
        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var node = new NodeProcess(process, name);
        process.OutputDataReceived += (_, e) => node.Append(node._out, node._outClosed, e.Data);
        process.ErrorDataReceived += (_, e) => node.Append(node._error, node._errorClosed, e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return node;
    }

    /// <summary>Everything written to stdout so far.</summary>
    public string Out
    {
        get { lock (_out) return _out.ToString(); }
    }

    /// <summary>Everything written to stderr so far.</summary>
    public string Error
    {
        get { lock (_error) return _error.ToString(); }
    }

    /// <summary>The non-empty lines of stderr.</summary>
    public string[] ErrorLines => Error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>Sends POSIX signal <paramref name="signal"/> (2 = SIGINT, 15 = SIGTERM) to the process.</summary>
    public void Signal(int signal)
    {
        if (Kill(_process.Id, signal) != 0) throw new InvalidOperationException($"kill({_process.Id}, {signal}) failed: errno {Marshal.GetLastPInvokeError()}");
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    /// <summary>True while the process runs.</summary>
    public bool IsRunning => !_process.HasExited;

    /// <summary>Waits for the exit (and the end of its output); fails the test after <paramref name="timeout"/>.</summary>
    public int WaitForExit(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout))
            throw new TimeoutException($"{Name} still runs after {timeout.TotalSeconds:0}s; its output:\n{Tail(Out)}\n{Tail(Error)}");
        Task.WaitAll([_outClosed.Task, _errorClosed.Task], TimeSpan.FromSeconds(10));
        return _process.ExitCode;
    }

    /// <summary>Waits until stdout or stderr contains <paramref name="text"/>; false after <paramref name="timeout"/> or when the process ended without it.</summary>
    public bool WaitForOutput(string text, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < timeout)
        {
            if (Out.Contains(text, StringComparison.Ordinal) || Error.Contains(text, StringComparison.Ordinal)) return true;
            if (_process.HasExited && _outClosed.Task.IsCompleted && _errorClosed.Task.IsCompleted)
                return Out.Contains(text, StringComparison.Ordinal) || Error.Contains(text, StringComparison.Ordinal);
            Thread.Sleep(100);
        }
        return false;
    }

    /// <summary>The last lines of <paramref name="text"/>, for failure messages.</summary>
    public static string Tail(string text, int lines = 30) => string.Join('\n', text.Split('\n').TakeLast(lines));

    /// <inheritdoc/>
    public override string ToString() => $"{Name}:\n--- stdout\n{Tail(Out)}\n--- stderr\n{Tail(Error)}";

    private void Append(StringBuilder buffer, TaskCompletionSource closed, string? line)
    {
        if (line is null)
        {
            closed.TrySetResult();
            return;
        }
        lock (buffer) buffer.AppendLine(line);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
        }
        _process.Dispose();
    }
}
