// Where a run stands between two steps: the global step, the epoch in progress and how far into it, the running
// totals of that epoch, and the rows of the finished epochs. It is what a checkpoint must carry beyond the
// weights for a resumed run to continue as if it had never stopped, including its printed metrics and its
// history.csv; it travels in the checkpoint's metadata under "run/" keys.
//
// Deliberately not here: the weights and the optimizer state (the backend holds them, Engine/IO/Checkpoint
// stores them) and the shuffle (rebuilt from seed and epoch).
using System.Globalization;
using System.Text.Json;
using Cnn.Engine;
using Cnn.Engine.IO;
using Cnn.Engine.Training;

namespace Cnn.Coordinator.Runs;

/// <summary>One line of history.csv: the metrics of one epoch.</summary>
/// <param name="Epoch">1-based epoch number.</param>
/// <param name="Loss">Mean training loss over the epoch's steps.</param>
/// <param name="Accuracy">Training accuracy over the epoch's steps.</param>
/// <param name="ValLoss">Mean validation loss at the epoch's end, or null without a validation split.</param>
/// <param name="ValAccuracy">Validation accuracy at the epoch's end, or null without a validation split.</param>
/// <param name="Seconds">Wall time of the epoch, validation included.</param>
/// <param name="ImagesPerSecond">Training images per second of training time (validation excluded).</param>
public sealed record HistoryRow(int Epoch, double Loss, double Accuracy, double? ValLoss, double? ValAccuracy, double Seconds, double ImagesPerSecond);

/// <summary>The position and running totals of a run (see file header).</summary>
public sealed class RunState
{
    private const string HistoryKey = "run/history";
    private const string LossKey = "run/epochLossSum";
    private const string CorrectKey = "run/epochCorrect";
    private const string SamplesKey = "run/epochSamples";
    private const string TrainSecondsKey = "run/epochTrainSeconds";
    private const string SecondsKey = "run/epochSeconds";

    /// <summary>Optimizer steps done since the start of the run.</summary>
    public long Step { get; set; }
    /// <summary>The 0-based epoch in progress.</summary>
    public int Epoch { get; set; }
    /// <summary>Steps of <see cref="Epoch"/> done.</summary>
    public int StepInEpoch { get; set; }
    /// <summary>Training loss summed over the samples of the epoch so far.</summary>
    public double EpochLossSum { get; set; }
    /// <summary>Correct predictions of the epoch so far.</summary>
    public long EpochCorrect { get; set; }
    /// <summary>Samples trained in the epoch so far.</summary>
    public long EpochSamples { get; set; }
    /// <summary>Seconds spent in training steps in the epoch so far.</summary>
    public double EpochTrainSeconds { get; set; }
    /// <summary>Wall seconds of the epoch so far, before the current session's.</summary>
    public double EpochSecondsBefore { get; set; }
    /// <summary>Rows of the finished epochs.</summary>
    public List<HistoryRow> History { get; } = [];

    /// <summary>Mean training loss of the epoch so far (0 before the first step).</summary>
    public double EpochLoss => EpochSamples == 0 ? 0 : EpochLossSum / EpochSamples;
    /// <summary>Training accuracy of the epoch so far (0 before the first step).</summary>
    public double EpochAccuracy => EpochSamples == 0 ? 0 : (double)EpochCorrect / EpochSamples;

    /// <summary>Adds one finished step.</summary>
    public void Add(StepMetrics metrics, double seconds)
    {
        Step++;
        StepInEpoch++;
        EpochLossSum += metrics.LossSum;
        EpochCorrect += metrics.Correct;
        EpochSamples += metrics.Samples;
        EpochTrainSeconds += seconds;
    }

    /// <summary>Closes the epoch: records its row and moves to the start of the next one.</summary>
    public void FinishEpoch(HistoryRow row)
    {
        History.Add(row);
        Epoch++;
        StepInEpoch = 0;
        EpochLossSum = 0;
        EpochCorrect = 0;
        EpochSamples = 0;
        EpochTrainSeconds = 0;
        EpochSecondsBefore = 0;
    }

    /// <summary>The checkpoint metadata of this state; <paramref name="epochSecondsNow"/> is the wall time of the current epoch so far.</summary>
    public Dictionary<string, string> ToMetadata(double epochSecondsNow) => new()
    {
        [HistoryKey] = JsonSerializer.Serialize(History, RunJson.Options),
        [LossKey] = EpochLossSum.ToString("R", CultureInfo.InvariantCulture),
        [CorrectKey] = EpochCorrect.ToString(CultureInfo.InvariantCulture),
        [SamplesKey] = EpochSamples.ToString(CultureInfo.InvariantCulture),
        [TrainSecondsKey] = EpochTrainSeconds.ToString("R", CultureInfo.InvariantCulture),
        [SecondsKey] = epochSecondsNow.ToString("R", CultureInfo.InvariantCulture),
    };

    /// <summary>The state stored in a checkpoint read from <paramref name="path"/>.</summary>
    /// <exception cref="CnnUserException">The run metadata is missing or unreadable.</exception>
    public static RunState FromCheckpoint(string path, CheckpointInfo info)
    {
        IReadOnlyDictionary<string, string> extra = info.Extra ?? new Dictionary<string, string>();
        string Get(string key) => extra.TryGetValue(key, out string? value)
            ? value
            : throw new CnnUserException($"{path}: metadata '{key}' is missing: the checkpoint was not written by `cnn train`");
        try
        {
            var state = new RunState
            {
                Step = info.Step,
                Epoch = info.Epoch,
                StepInEpoch = info.StepInEpoch,
                EpochLossSum = double.Parse(Get(LossKey), CultureInfo.InvariantCulture),
                EpochCorrect = long.Parse(Get(CorrectKey), CultureInfo.InvariantCulture),
                EpochSamples = long.Parse(Get(SamplesKey), CultureInfo.InvariantCulture),
                EpochTrainSeconds = double.Parse(Get(TrainSecondsKey), CultureInfo.InvariantCulture),
                EpochSecondsBefore = double.Parse(Get(SecondsKey), CultureInfo.InvariantCulture),
            };
            state.History.AddRange(JsonSerializer.Deserialize<List<HistoryRow>>(Get(HistoryKey), RunJson.Options) ?? []);
            return state;
        }
        catch (Exception e) when (e is FormatException or OverflowException or JsonException)
        {
            throw new CnnUserException($"{path}: the run metadata is damaged: {e.Message.ReplaceLineEndings(" ")}", e);
        }
    }
}
