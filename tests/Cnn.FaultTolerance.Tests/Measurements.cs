// The figures the fault-tolerance issue asks to measure (not assert): each test reports what it saw on the test
// output and appends it to measurements.txt beside the test assembly, so that a run leaves them in one place.
// (The projects build with InvariantGlobalization, so numbers print with a decimal point.)
using Xunit.Abstractions;

namespace Cnn.FaultTolerance.Tests;

/// <summary>Reports measured figures (see file header).</summary>
public static class Measurements
{
    private static readonly object Gate = new();

    /// <summary>The file the figures are appended to.</summary>
    public static string FilePath { get; } = Path.Combine(AppContext.BaseDirectory, "measurements.txt");

    /// <summary>Writes "<paramref name="test"/>: <paramref name="line"/>" to <paramref name="output"/> and the file.</summary>
    public static void Report(ITestOutputHelper output, string test, string line)
    {
        string text = $"{DateTime.UtcNow:yyyy-MM-dd HH:mm:ss}Z {test}: {line}";
        output.WriteLine(text);
        lock (Gate) File.AppendAllText(FilePath, text + Environment.NewLine);
    }

    /// <summary>Training images per second in the window (<paramref name="from"/>, <paramref name="to"/>]: the steps reported done in it, times the batch, over its length.</summary>
    public static double ImagesPerSecond(IReadOnlyList<StepSeen> steps, TimeSpan from, TimeSpan to, int batchSize = 64)
    {
        int done = steps.Count(s => s.At > from && s.At <= to);
        double seconds = (to - from).TotalSeconds;
        return seconds <= 0 ? 0 : done * batchSize / seconds;
    }
}
