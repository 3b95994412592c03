// `cnn plot history --run DIR --png OUT`: a run's training and validation accuracy and loss per epoch, two
// panels (Plots/HistoryPlot), from the run directory that `cnn train --out DIR` wrote. history.csv is read when it
// is there (it is written at every epoch end, so it also covers a run still going or one that crashed);
// otherwise the history array of run.json. Either file is checked line by line, and a damaged one is named with
// the line or the JSON problem.
//
// Deliberately not here: other run figures (throughput, cluster statistics); run.json has them as numbers.
using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Cnn.Coordinator.Plots;
using Cnn.Coordinator.Runs;
using Cnn.Engine;

namespace Cnn.Coordinator.Commands;

/// <summary>The <c>plot</c> command and its <c>history</c> subcommand.</summary>
public static class PlotCommand
{
    private const string CsvHeader = "epoch,loss,accuracy,val_loss,val_accuracy,seconds,images_per_second";

    /// <summary>The command, writing to <paramref name="io"/>.</summary>
    public static Command Create(CliOutput io)
    {
        var run = new Option<string>("--run") { Description = "Run directory of `cnn train` (its --out)", Required = true };
        Option<string?> png = CheckpointInputs.PngOption("PNG file to write", required: true);
        var history = new Command("history", "Draw a run's accuracy and loss per epoch, training and validation.") { run, png };
        history.SetAction(parse =>
        {
            string directory = parse.GetValue(run)!, output = parse.GetValue(png)!;
            (IReadOnlyList<HistoryRow> rows, string source) = ReadHistory(directory);
            HistoryPlot.Write(output, rows);
            if (PlotFile.FontWarning is string warning) io.Error.WriteLine(warning);
            io.Out.WriteLine($"{rows.Count} epoch(s) from {source} written to {output}");
            return 0;
        });
        return new Command("plot", "Draw a training run's figures as PNG pictures.") { history };
    }

    /// <summary>The epochs of the run in <paramref name="directory"/> and the file they were read from.</summary>
    /// <exception cref="CnnUserException">The directory holds no history, or a damaged one.</exception>
    public static (IReadOnlyList<HistoryRow> Rows, string Source) ReadHistory(string directory)
    {
        if (!Directory.Exists(directory)) throw new CnnUserException($"--run {directory}: no such directory");
        string csv = Path.Combine(directory, RunDirectory.HistoryFile), json = Path.Combine(directory, RunDirectory.SummaryFile);
        IReadOnlyList<HistoryRow> rows;
        string source;
        if (File.Exists(csv))
        {
            (rows, source) = (ReadCsv(csv), csv);
        }
        else if (File.Exists(json))
        {
            (rows, source) = (ReadRunJson(json), json);
        }
        else
        {
            throw new CnnUserException($"--run {directory}: no {RunDirectory.HistoryFile} or {RunDirectory.SummaryFile} there: is it the --out directory of `cnn train`?");
        }
        if (rows.Count == 0) throw new CnnUserException($"{source}: no epoch in it yet, so there is nothing to plot");
        return (rows, source);
    }

    private static List<HistoryRow> ReadCsv(string path)
    {
        string[] lines = ReadAllLines(path);
        if (lines.Length == 0 || lines[0].Trim() != CsvHeader)
        {
            throw new CnnUserException($"{path}: line 1 should be the header '{CsvHeader}': not a history.csv of `cnn train`, or damaged");
        }
        var rows = new List<HistoryRow>();
        for (int i = 1; i < lines.Length; i++)
        {
            if (lines[i].Trim().Length == 0) continue;
            string[] f = lines[i].Split(',');
            if (f.Length != 7) throw new CnnUserException($"{path}: line {i + 1} has {f.Length} fields, not 7");
            try
            {
                rows.Add(new HistoryRow(
                    int.Parse(f[0], CultureInfo.InvariantCulture),
                    Number(f[1]), Number(f[2]), Optional(f[3]), Optional(f[4]), Number(f[5]), Number(f[6])));
            }
            catch (Exception e) when (e is FormatException or OverflowException)
            {
                throw new CnnUserException($"{path}: line {i + 1} is not a row of numbers: '{lines[i]}'", e);
            }
        }
        return rows;
    }

    private static IReadOnlyList<HistoryRow> ReadRunJson(string path)
    {
        string text = string.Join('\n', ReadAllLines(path));
        try
        {
            using JsonDocument document = JsonDocument.Parse(text);
            if (!document.RootElement.TryGetProperty("history", out JsonElement history) || history.ValueKind != JsonValueKind.Array)
            {
                throw new CnnUserException($"{path}: no \"history\" array: not a run.json of `cnn train`, or damaged");
            }
            return history.Deserialize<List<HistoryRow>>(RunJson.Options) ?? [];
        }
        catch (JsonException e)
        {
            throw new CnnUserException($"{path}: not a valid run.json: {e.Message.ReplaceLineEndings(" ")}", e);
        }
    }

    private static string[] ReadAllLines(string path)
    {
        try
        {
            return File.ReadAllLines(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CnnUserException($"{path}: cannot read the file: {e.Message.ReplaceLineEndings(" ")}", e);
        }
    }

    private static double Number(string field) => double.Parse(field, NumberStyles.Float, CultureInfo.InvariantCulture);

    private static double? Optional(string field) => field.Length == 0 ? null : Number(field);
}
