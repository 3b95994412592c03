// The Akka logger of every node: Akka's standard one-line output, minus the remoting endpoint reports of a
// peer going away ("Association with remote system ... has failed; address is now gated", "Disassociated",
// each with a stack trace) and the transport's report of a connection that closed late while its node stopped
// ("Unable to REMOVE channel"). Every stopping peer causes them, also at the normal end of a run; the coordinator
// reports a lost worker itself, in one line, with what it did about it (CoordinatorActor). Everything else is
// printed as Akka would, on standard error: standard output carries what the programs report (progress lines,
// tables, results, JSON), so that `cnn train > run.log` or `cnn bench --json` gets only that.
//
// CnnStartupLogger is the same for the minimal logger Akka uses before the loggers start and after they stop
// (akka.stdout-logger-class): Akka's own writes to standard output, so that a node's last lines ("Remoting shut
// down.") would land among the results.
using Akka.Actor;
using Akka.Dispatch;
using Akka.Event;

namespace Cnn.Messages;

/// <summary>The minimal logger of a node's start and stop, on standard error (see file header).</summary>
public sealed class CnnStartupLogger : MinimalLogger
{
    /// <inheritdoc/>
    protected override void Log(object message)
    {
        if (message is LogEvent e && CnnLogger.IsAssociationNoise(e)) return;
        Console.Error.WriteLine(message.ToString());
    }
}

/// <summary>Standard error logger without remoting association noise (see file header).</summary>
public sealed class CnnLogger : ReceiveActor, IRequiresMessageQueue<ILoggerMessageQueueSemantics>
{
    /// <summary>The logger.</summary>
    public CnnLogger()
    {
        Receive<InitializeLogger>(_ => Sender.Tell(new LoggerInitialized()));
        Receive<LogEvent>(e =>
        {
            if (IsAssociationNoise(e)) return;
            Console.Error.WriteLine(e.ToString());
        });
    }

    /// <summary>
    /// True for the endpoint reports of a peer going away, and for the TCP transport's report of a connection
    /// that closes after the transport has already let go of it while stopping ("Unable to REMOVE channel ...
    /// May not shut down cleanly", one per connection, in some stops): the connection is closed all the same.
    /// </summary>
    public static bool IsAssociationNoise(LogEvent e) =>
        e.LogLevel() is LogLevel.WarningLevel or LogLevel.ErrorLevel
        && (e.LogSource.Contains("endpointManager", StringComparison.Ordinal)
                && (e.Cause?.GetType().Name is "EndpointDisassociatedException" or "EndpointAssociationException"
                    || e.Message?.ToString() is { } text && (text.Contains("Disassociated", StringComparison.Ordinal) || text.Contains("address is now gated", StringComparison.Ordinal)))
            || e.LogSource.StartsWith("Tcp", StringComparison.Ordinal) && e.LogSource.Contains("Handler", StringComparison.Ordinal)
                && e.Message?.ToString() is { } closing && closing.StartsWith("Unable to REMOVE channel", StringComparison.Ordinal));
}
