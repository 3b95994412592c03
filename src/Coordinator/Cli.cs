// The `cnn` command line: builds the command tree (one file per command under Commands/), parses, and turns
// mistakes into the project's error contract: one line on stderr, exit code 2, no stack trace. That covers both
// parse errors (an unknown option, a value that is not a number) and CnnUserException from anywhere below.
// Any other exception escapes with its stack trace, because it is a bug.
//
// Writers are parameters, not Console, so that tests run commands in-process and read what they print.
//
// Deliberately not here: what the commands do, and System.CommandLine's own exception handler (it would print
// a stack trace for user mistakes and hide bugs behind exit code 1).
using System.CommandLine;
using System.CommandLine.Help;
using Cnn.Coordinator.Commands;
using Cnn.Engine;

namespace Cnn.Coordinator;

/// <summary>Where a command writes: normal output, errors, and whether the output is a terminal.</summary>
/// <param name="Out">Normal output (progress, tables, results).</param>
/// <param name="Error">Warnings and errors.</param>
/// <param name="Interactive">True when <paramref name="Out"/> is a terminal, so progress can be redrawn in place.</param>
public sealed record CliOutput(TextWriter Out, TextWriter Error, bool Interactive);

/// <summary>Entry point of the <c>cnn</c> command.</summary>
public static class Cli
{
    /// <summary>Exit code for a user mistake.</summary>
    public const int UserError = 2;

    /// <summary>Runs <c>cnn</c> with <paramref name="args"/>; returns the exit code.</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error, bool interactive = false)
    {
        var io = new CliOutput(output, error, interactive);
        // A plain Command named "cnn" rather than RootCommand, whose name (shown in every usage line) is the
        // assembly's file name, Cnn.Coordinator.
        var root = new Command("cnn", "cnn: train convolutional networks on MNIST, exactly, on one machine or a cluster.")
        {
            new HelpOption(),
            new VersionOption(),
            SummaryCommand.Create(io),
            DataCommand.Create(io),
            TrainCommand.Create(io),
            BenchCommand.Create(io),
            EvaluateCommand.Create(io),
            PredictCommand.Create(io),
            VisualizeCommand.Create(io),
            PlotCommand.Create(io),
        };
        ParseResult parse = root.Parse(args);
        if (parse.Errors.Count > 0 && parse.Action is not HelpAction)
        {
            error.WriteLine($"error: {OneLine(parse.Errors[0].Message)} (see cnn --help)");
            return UserError;
        }
        try
        {
            return parse.Invoke(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false });
        }
        catch (CnnUserException e)
        {
            output.Flush();
            error.WriteLine($"error: {OneLine(e.Message)}");
            return UserError;
        }
    }

    private static string OneLine(string message) => message.ReplaceLineEndings(" ").Trim();
}
