// What a training run prints, in the manner of Keras's fit():
//
//   Epoch 1/5
//    375/750 [==============>...............] 6.1s ETA 6.1s - loss: 0.2563 - accuracy: 0.9227 - 3,934 images/s
//   ...
//    750/750 [==============================] 12.9s - loss: 0.1654 - accuracy: 0.9498 - 3,921 images/s - val_loss: 0.0585 - val_accuracy: 0.9828
//
// On a terminal the progress line is rewritten in place with \r, at most ten times a second; anywhere else (CI
// logs, tests) a line is printed at every tenth of the epoch, so a log shows the progress without thousands of
// lines. The epoch's final line always ends with a newline.
//
// Deliberately not here: files (RunDirectory) and any computation of the metrics (TrainingLoop, RunState).
using System.Diagnostics;
using System.Globalization;
using Cnn.Engine.Models;

namespace Cnn.Coordinator.Runs;

/// <summary>Prints the progress of a training run (see file header).</summary>
public sealed class RunReporter
{
    private const int BarWidth = 30;
    private static readonly long RedrawTicks = Stopwatch.Frequency / 10;

    private readonly TextWriter _out;
    private readonly bool _interactive;
    private int _total;
    private int _first;
    private int _lastTenth;
    private long _lastDraw;
    private int _lastLength;

    /// <summary>A reporter writing to <paramref name="output"/>; <paramref name="interactive"/> when it is a terminal.</summary>
    public RunReporter(TextWriter output, bool interactive)
    {
        _out = output;
        _interactive = interactive;
    }

    /// <summary>The writer, for one-off lines.</summary>
    public TextWriter Out => _out;

    /// <summary>Prints the epoch header; <paramref name="firstStep"/> steps of the epoch were done before (a resume).</summary>
    public void BeginEpoch(int epoch, int epochs, int stepsPerEpoch, int firstStep)
    {
        _out.WriteLine($"Epoch {epoch + 1}/{epochs}");
        _total = stepsPerEpoch;
        _first = firstStep;
        _lastTenth = firstStep * 10 / stepsPerEpoch;
        _lastDraw = 0;
        _lastLength = 0;
    }

    /// <summary>
    /// Reports that <paramref name="done"/> steps of the epoch are done, after <paramref name="seconds"/> of the epoch of
    /// which <paramref name="sessionSeconds"/> in this process (the ETA is estimated from those).
    /// </summary>
    public void Step(int done, double seconds, double sessionSeconds, double loss, double accuracy, double imagesPerSecond)
    {
        if (done >= _total) return; // the final line comes from EndEpoch, with the validation metrics
        if (_interactive)
        {
            long now = Stopwatch.GetTimestamp();
            if (now - _lastDraw < RedrawTicks) return;
            _lastDraw = now;
            Redraw(Line(done, seconds, Eta(done, sessionSeconds), loss, accuracy, imagesPerSecond));
        }
        else
        {
            int tenth = done * 10 / _total;
            if (tenth <= _lastTenth) return;
            _lastTenth = tenth;
            _out.WriteLine(Line(done, seconds, Eta(done, sessionSeconds), loss, accuracy, imagesPerSecond));
        }
    }

    /// <summary>Prints the epoch's final line, after <paramref name="done"/> of its steps (fewer when stopped early).</summary>
    public void EndEpoch(int done, HistoryRow row)
    {
        string line = Line(done, row.Seconds, eta: null, row.Loss, row.Accuracy, row.ImagesPerSecond);
        if (row.ValLoss is double valLoss && row.ValAccuracy is double valAccuracy)
        {
            line += string.Create(CultureInfo.InvariantCulture, $" - val_loss: {valLoss:F4} - val_accuracy: {valAccuracy:F4}");
        }
        if (_interactive) Redraw(line);
        else _out.Write(line);
        _out.WriteLine();
        _out.Flush();
    }

    /// <summary>Prints the test result.</summary>
    public void Test(LossAndAccuracy test, double seconds) =>
        _out.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"test_loss: {test.LossSum / test.Samples:F4} - test_accuracy: {(double)test.Correct / test.Samples:F4} ({test.Samples:N0} images, {seconds:F1}s)"));

    private double? Eta(int done, double sessionSeconds) =>
        done > _first ? sessionSeconds / (done - _first) * (_total - done) : null;

    private string Line(int done, double seconds, double? eta, double loss, double accuracy, double imagesPerSecond)
    {
        string width = _total.ToString(CultureInfo.InvariantCulture);
        string step = done.ToString(CultureInfo.InvariantCulture).PadLeft(width.Length);
        string time = eta is double e
            ? string.Create(CultureInfo.InvariantCulture, $"{seconds:F1}s ETA {e:F1}s")
            : string.Create(CultureInfo.InvariantCulture, $"{seconds:F1}s");
        return string.Create(CultureInfo.InvariantCulture,
            $"{step}/{width} [{Bar(done, _total)}] {time} - loss: {loss:F4} - accuracy: {accuracy:F4} - {imagesPerSecond:N0} images/s");
    }

    /// <summary>A Keras-style bar: '=' for done, '>' at the head, '.' for the rest.</summary>
    public static string Bar(int done, int total)
    {
        int filled = total == 0 ? BarWidth : (int)((long)done * BarWidth / total);
        if (filled >= BarWidth) return new string('=', BarWidth);
        return new string('=', filled) + ">" + new string('.', BarWidth - filled - 1);
    }

    private void Redraw(string line)
    {
        // Pad with spaces so that a shorter line fully covers the longer one it replaces.
        _out.Write('\r' + line.PadRight(_lastLength));
        _lastLength = line.Length;
        _out.Flush();
    }
}
