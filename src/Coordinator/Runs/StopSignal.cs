// Ctrl-C (SIGINT) and SIGTERM (docker stop, a scheduler's preemption) during `cnn train`. The first signal asks
// the training loop to stop after the step in flight and to save a checkpoint there, so that `cnn train --resume`
// continues with the same bits as a run that was never stopped; the process then exits with 128 + the signal
// number (130, 143), as a shell expects of a program a signal stopped. A second signal ends the process at once,
// for a step that does not finish (a cluster waiting for workers).
//
// The runtime's own handling is cancelled for the first signal: it would run every ActorSystem's shutdown hook,
// which takes the local cluster's workers away in the middle of a step.
using System.Runtime.InteropServices;

namespace Cnn.Coordinator.Runs;

/// <summary>The stop request of a training process (see file header).</summary>
public sealed class StopSignal : IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly TextWriter _error;
    private readonly PosixSignalRegistration[] _registrations;
    private int _received;

    /// <summary>Listens for SIGINT and SIGTERM; messages go to <paramref name="error"/>.</summary>
    public StopSignal(TextWriter error)
    {
        _error = error;
        _registrations = [Register(PosixSignal.SIGINT), Register(PosixSignal.SIGTERM)];
    }

    /// <summary>Cancelled when the first signal arrives.</summary>
    public CancellationToken Token => _stop.Token;

    /// <summary>The first signal received, or null.</summary>
    public PosixSignal? Signal { get; private set; }

    /// <summary>The exit code of a process stopped by <paramref name="signal"/>: 128 + its number.</summary>
    public static int ExitCode(PosixSignal signal) => signal == PosixSignal.SIGINT ? 130 : 143;

    /// <summary>The signal's usual name.</summary>
    public static string Name(PosixSignal signal) => signal == PosixSignal.SIGINT ? "SIGINT" : "SIGTERM";

    private PosixSignalRegistration Register(PosixSignal signal) => PosixSignalRegistration.Create(signal, context =>
    {
        context.Cancel = true;
        if (Interlocked.Increment(ref _received) == 1)
        {
            Signal = signal;
            _error.WriteLine($"cnn: {Name(signal)}: stopping after the current step and saving a checkpoint (send it again to stop at once)");
            _stop.Cancel();
            return;
        }
        _error.WriteLine($"cnn: {Name(signal)} again: stopping at once, without a checkpoint of the current step");
        _error.Flush();
        Environment.Exit(ExitCode(signal));
    });

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (PosixSignalRegistration r in _registrations) r.Dispose();
        _stop.Dispose();
    }
}

/// <summary>
/// Training stopped on request after <paramref name="step"/> steps; <paramref name="hasCheckpoint"/> when the run
/// directory <paramref name="directory"/> holds a checkpoint of that step (false when no step was trained yet).
/// </summary>
public sealed class RunInterruptedException(long step, string directory, bool hasCheckpoint) : Exception($"stopped after step {step}")
{
    /// <summary>Steps done (the checkpoint's position).</summary>
    public long Step { get; } = step;

    /// <summary>The run directory.</summary>
    public string Directory { get; } = directory;

    /// <summary>True when the directory holds a checkpoint of <see cref="Step"/>, so the run can be resumed.</summary>
    public bool HasCheckpoint { get; } = hasCheckpoint;
}
