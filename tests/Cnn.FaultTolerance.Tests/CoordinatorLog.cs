// The coordinator's stdout with a stopwatch: a background thread reads what NodeProcess has captured every 20 ms
// and stamps each new line with the time it was first seen, so a test can tell when each step completed (the
// progress line "  k/10 [====...]" follows the step at once) and when a cluster event was printed, and can
// measure times and throughput from the outside without changing the programs.
//
// Steps are numbered like run.json's events: the global, 1-based count of steps done, from the "Epoch e/E"
// header and the "k/n" progress lines ((e - 1) * n + k).
//
// Deliberately not here: starting or stopping processes (NodeProcess), and assertions beyond "the run ended or
// got stuck".
using System.Diagnostics;
using System.Text.RegularExpressions;
using Cnn.MultiNode.Tests;
using Xunit.Sdk;

namespace Cnn.FaultTolerance.Tests;

/// <summary>A step the coordinator reported done (1-based global count) and when the line was seen.</summary>
public readonly record struct StepSeen(long Step, TimeSpan At);

/// <summary>A line of the coordinator's stdout and when it was seen.</summary>
public readonly record struct LineSeen(string Text, TimeSpan At);

/// <summary>Timestamped stdout of one coordinator process (see file header).</summary>
public sealed partial class CoordinatorLog : IDisposable
{
    private readonly NodeProcess _node;
    private readonly Stopwatch _clock;
    private readonly List<LineSeen> _lines = [];
    private readonly List<StepSeen> _steps = [];
    private readonly Thread _reader;
    private volatile bool _stopped;
    private int _consumed;   // characters of the output already split into lines
    private int _epoch = 1;  // 1-based epoch of the last header seen

    /// <summary>Starts reading <paramref name="node"/>'s stdout, stamping lines with <paramref name="clock"/>.</summary>
    public CoordinatorLog(NodeProcess node, Stopwatch clock)
    {
        _node = node;
        _clock = clock;
        _reader = new Thread(() =>
        {
            while (!_stopped)
            {
                Poll();
                Thread.Sleep(20);
            }
        }) { IsBackground = true, Name = $"log of {node.Name}" };
        _reader.Start();
    }

    /// <summary>The clock's time now.</summary>
    public TimeSpan Now => _clock.Elapsed;

    /// <summary>The steps seen so far, in order.</summary>
    public IReadOnlyList<StepSeen> Steps
    {
        get
        {
            Poll();
            lock (_lines) return _steps.ToList();
        }
    }

    /// <summary>The lines seen so far.</summary>
    public IReadOnlyList<LineSeen> Lines
    {
        get
        {
            Poll();
            lock (_lines) return _lines.ToList();
        }
    }

    /// <summary>The last step reported done, or 0.</summary>
    public long LastStep => Steps is { Count: > 0 } s ? s[^1].Step : 0;

    /// <summary>When a line containing <paramref name="text"/> was first seen, or null.</summary>
    public TimeSpan? TimeOf(string text) => Lines.FirstOrDefault(l => l.Text.Contains(text, StringComparison.Ordinal)) is { Text: not null } found ? found.At : null;

    /// <summary>When step <paramref name="step"/> or a later one was first reported done, or null.</summary>
    public TimeSpan? TimeOfStep(long step) => Steps.FirstOrDefault(s => s.Step >= step) is { At: var at, Step: > 0 } ? at : null;

    /// <summary>
    /// Waits until step <paramref name="step"/> or a later one that satisfies <paramref name="where"/> is reported done;
    /// fails the test if the process ends first or after <paramref name="timeout"/>.
    /// </summary>
    public void WaitForStep(long step, TimeSpan timeout, Func<long, bool>? where = null)
    {
        var clock = Stopwatch.StartNew();
        while (LastStep is var last && (last < step || (where is not null && !where(last))))
        {
            if (!_node.IsRunning) throw new XunitException($"{_node.Name} ended before step {step} (last step seen {last})\n{_node}");
            if (clock.Elapsed > timeout) throw new XunitException($"{_node.Name} did not reach step {step} in {timeout.TotalSeconds:0}s (last step seen {last})\n{_node}");
            Thread.Sleep(10);
        }
    }

    /// <summary>
    /// Waits until a line containing <paramref name="text"/> is seen and returns when; fails the test if the process
    /// ends first or after <paramref name="timeout"/>.
    /// </summary>
    public TimeSpan WaitForLine(string text, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        for (; ; Thread.Sleep(5))
        {
            if (TimeOf(text) is { } at) return at;
            if (!_node.IsRunning) throw new XunitException($"{_node.Name} ended before printing '{text}'\n{_node}");
            if (clock.Elapsed > timeout) throw new XunitException($"{_node.Name} did not print '{text}' in {timeout.TotalSeconds:0}s\n{_node}");
        }
    }

    /// <summary>
    /// Waits for the process to end and returns its exit code. Fails the test when it runs longer than
    /// <paramref name="timeout"/>, or when, once steps have started, none completes for <paramref name="stall"/>: the
    /// message then gives the last step, the contributions the parameter server refused and the output's tail.
    /// </summary>
    public int WaitForExit(TimeSpan timeout, TimeSpan stall)
    {
        var clock = Stopwatch.StartNew();
        while (_node.IsRunning)
        {
            if (clock.Elapsed > timeout)
                throw new XunitException($"{_node.Name} still runs after {timeout.TotalSeconds:0}s (last step seen {LastStep})\n{_node}");
            if (Steps is { Count: > 0 } steps && Now - steps[^1].At > stall)
            {
                string refused = string.Join('\n', Lines.Select(l => l.Text).Where(t => t.Contains("Rejected a contribution", StringComparison.Ordinal)).TakeLast(6));
                throw new XunitException($"{_node.Name} is stuck: no step completed for {stall.TotalSeconds:0}s after {steps[^1].Step} of {FaultRuns.MaxSteps} steps.\n"
                    + $"Last contributions the parameter server refused:\n{(refused.Length == 0 ? "(none)" : refused)}\n{_node}");
            }
            Thread.Sleep(50);
        }
        int code = _node.WaitForExit(TimeSpan.FromSeconds(30));
        Poll();
        return code;
    }

    // Splits the output captured since the last call into lines and stamps them; a partial last line waits for its end.
    private void Poll()
    {
        string text = _node.Out;
        TimeSpan now = _clock.Elapsed;
        lock (_lines)
        {
            int end = text.LastIndexOf('\n');
            if (end < _consumed) return;
            foreach (string raw in text[_consumed..end].Split('\n'))
            {
                string line = raw.TrimEnd('\r');
                _lines.Add(new LineSeen(line, now));
                if (EpochHeader().Match(line) is { Success: true } header) _epoch = int.Parse(header.Groups[1].Value);
                else if (Progress().Match(line) is { Success: true } progress)
                {
                    long step = (long)(_epoch - 1) * int.Parse(progress.Groups[2].Value) + int.Parse(progress.Groups[1].Value);
                    if (_steps.Count == 0 || step > _steps[^1].Step) _steps.Add(new StepSeen(step, now));
                }
            }
            _consumed = end + 1;
        }
    }

    [GeneratedRegex(@"^Epoch (\d+)/\d+$")]
    private static partial Regex EpochHeader();

    [GeneratedRegex(@"^\s*(\d+)/(\d+) \[")]
    private static partial Regex Progress();

    /// <inheritdoc/>
    public void Dispose()
    {
        _stopped = true;
        _reader.Join(TimeSpan.FromSeconds(2));
    }
}
