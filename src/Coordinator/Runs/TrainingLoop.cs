// The epoch loop, shared by every way of training: for each epoch, rebuild the shuffle from (seed, epoch), feed
// the batches to the backend in order, report, evaluate the held-out validation samples at the epoch's end, and
// checkpoint; after the last epoch, evaluate the test set and write run.json.
//
// Exactness across a stop and a resume rests on three things: the batches depend only on (seed, epoch, index in
// the epoch); the backend's step depends only on the weights, the optimizer state and the 0-based global step;
// and a checkpoint holds all three plus the position. A resumed run therefore ends with the same weights as an
// uninterrupted one, and --max-steps counts steps since the start of the run, not of the session.
//
// Checkpoints: at every epoch end, every --checkpoint-every steps if given, and where the run stops. The same
// position is never written twice, so checkpoint-prev.safetensors always holds an earlier step.
//
// A step is announced to the backend (a cluster starts it early) only when no checkpoint comes first: the cluster
// applies an announced step by itself, to the arrays a checkpoint reads. A stop request (the token: Ctrl-C,
// SIGTERM) ends the run after the step in flight, and after the announced step if there is one, with a checkpoint
// there; the epoch's partial row goes to history.csv without validation, and Run throws RunInterruptedException.
//
// Deliberately not here: parsing, data loading, the choice of backend and how the weights are computed.
using System.Diagnostics;
using System.Text.Json;
using Cnn.Engine.IO;
using Cnn.Engine.Models;
using Cnn.Engine.Training;

namespace Cnn.Coordinator.Runs;

/// <summary>Drives a backend through the epochs of a run and writes its artifacts (see file header).</summary>
public sealed class TrainingLoop
{
    /// <summary>The checkpoint metadata key holding the SHA-256 of the training data.</summary>
    public const string DataShaKey = "run/dataSha256";

    private readonly ITrainingBackend _backend;
    private readonly Model _model;
    private readonly TrainSettings _settings;
    private readonly TrainingData _data;
    private readonly RunReporter _reporter;
    private readonly RunDirectory _directory;
    private long _lastCheckpointStep = -1;

    /// <summary>A loop training <paramref name="model"/> through <paramref name="backend"/> as <paramref name="settings"/> say.</summary>
    public TrainingLoop(ITrainingBackend backend, Model model, TrainSettings settings, TrainingData data, RunReporter reporter, RunDirectory directory)
    {
        _backend = backend;
        _model = model;
        _settings = settings;
        _data = data;
        _reporter = reporter;
        _directory = directory;
    }

    /// <summary>Runs from <paramref name="state"/> (fresh, or read from a checkpoint) to the end; returns what run.json holds.</summary>
    public RunSummary Run(RunState state, long? resumedFromStep, CancellationToken stop = default)
    {
        var wall = Stopwatch.StartNew();
        if (resumedFromStep is long resumed) _lastCheckpointStep = resumed;
        int stepsPerEpoch = EpochSchedule.StepsPerEpoch(_data.TrainCount, _settings.BatchSize);
        long imagesThisSession = 0;
        double trainSecondsThisSession = 0;
        HistoryRow? partial = null;
        double? firstStepDone = null;

        while (state.Epoch < _settings.Epochs && !LimitReached(state) && !stop.IsCancellationRequested)
        {
            int epoch = state.Epoch;
            _reporter.BeginEpoch(epoch, _settings.Epochs, stepsPerEpoch, state.StepInEpoch);
            int[] order = EpochSchedule.Order(_settings.Seed, epoch, _data.TrainCount);
            var epochClock = Stopwatch.StartNew();
            double sessionTrainSeconds = 0;
            long sessionImages = 0;
            bool announced = false; // the next step was announced to the backend: it runs even after a stop request
            while (state.StepInEpoch < stepsPerEpoch && !LimitReached(state) && (announced || !stop.IsCancellationRequested))
            {
                int[] batch = EpochSchedule.Batch(order, state.StepInEpoch, _settings.BatchSize);
                // Never across a checkpoint: a cluster applies an announced step on its own, to the very arrays a
                // checkpoint reads, so the save would race it.
                announced = state.StepInEpoch + 1 < stepsPerEpoch && !(_settings.MaxSteps is long limit && state.Step + 1 >= limit)
                    && !CheckpointAfter(state.Step + 1) && !stop.IsCancellationRequested;
                if (announced) _backend.Announce(EpochSchedule.Batch(order, state.StepInEpoch + 1, _settings.BatchSize), state.Step + 1);
                long start = Stopwatch.GetTimestamp();
                StepMetrics metrics = _backend.Step(batch, state.Step);
                double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
                if (!double.IsFinite(metrics.LossSum))
                    throw new RunFailedException(RunFailedException.Diverged(state.Step, $"the loss is {metrics.LossSum}"));
                firstStepDone ??= (DateTime.Now - Process.GetCurrentProcess().StartTime).TotalSeconds;
                state.Add(metrics, seconds);
                sessionTrainSeconds += seconds;
                sessionImages += metrics.Samples;
                _reporter.Step(state.StepInEpoch, state.EpochSecondsBefore + epochClock.Elapsed.TotalSeconds, epochClock.Elapsed.TotalSeconds,
                    state.EpochLoss, state.EpochAccuracy, sessionImages / sessionTrainSeconds);
                if (CheckpointAfter(state.Step) && state.StepInEpoch < stepsPerEpoch)
                {
                    SaveCheckpoint(state, state.EpochSecondsBefore + epochClock.Elapsed.TotalSeconds);
                }
            }
            imagesThisSession += sessionImages;
            trainSecondsThisSession += sessionTrainSeconds;

            double secondsBeforeValidation = state.EpochSecondsBefore + epochClock.Elapsed.TotalSeconds;
            bool interrupted = state.StepInEpoch < stepsPerEpoch && !LimitReached(state);
            LossAndAccuracy? validation = _data.ValidationIds.Length == 0 || interrupted ? null : _backend.Evaluate(_data.TrainSource, _data.ValidationIds);
            double epochSeconds = state.EpochSecondsBefore + epochClock.Elapsed.TotalSeconds;
            var row = new HistoryRow(
                epoch + 1,
                state.EpochLoss,
                state.EpochAccuracy,
                validation is { } v ? v.LossSum / v.Samples : null,
                validation is { } w ? (double)w.Correct / w.Samples : null,
                epochSeconds,
                state.EpochTrainSeconds > 0 ? state.EpochSamples / state.EpochTrainSeconds : 0);
            _reporter.EndEpoch(state.StepInEpoch, row);

            if (state.StepInEpoch == stepsPerEpoch)
            {
                state.FinishEpoch(row);
                _directory.WriteHistory(state.History);
                SaveCheckpoint(state, 0);
            }
            else
            {
                // Stopped inside the epoch (--max-steps, a stop signal): the row goes to history.csv (and run.json), but the
                // checkpoint keeps only finished epochs, so a resume continues the epoch and writes its full row.
                partial = row;
                _directory.WriteHistory(state.History.Append(row));
                SaveCheckpoint(state, secondsBeforeValidation);
            }
        }
        if (stop.IsCancellationRequested && state.Epoch < _settings.Epochs && !LimitReached(state))
        {
            throw new RunInterruptedException(state.Step, _directory.Path, hasCheckpoint: _lastCheckpointStep == state.Step);
        }
        if (LimitReached(state) && state.Epoch < _settings.Epochs)
        {
            _reporter.Out.WriteLine($"Stopped after {state.Step} steps (--max-steps {_settings.MaxSteps}).");
        }

        var testClock = Stopwatch.StartNew();
        LossAndAccuracy test = _backend.Evaluate(_data.TestSource, _data.TestIds);
        _reporter.Test(test, testClock.Elapsed.TotalSeconds);

        List<HistoryRow> history = [.. state.History];
        if (partial is not null) history.Add(partial);
        HistoryRow? last = history.Count > 0 ? history[^1] : null;
        var summary = new RunSummary
        {
            Model = _model.Name,
            Epochs = _settings.Epochs,
            CompletedEpochs = state.Epoch,
            Steps = state.Step,
            BatchSize = _settings.BatchSize,
            MicroBatch = _settings.MicroBatch,
            LearningRate = _settings.LearningRate,
            Seed = _settings.Seed,
            ValidationSplit = _settings.ValidationSplit,
            Workers = _backend.Workers,
            Threads = _backend.Threads,
            WallSeconds = wall.Elapsed.TotalSeconds,
            TrainImagesPerSecond = trainSecondsThisSession > 0 ? imagesThisSession / trainSecondsThisSession : 0,
            TestLoss = test.LossSum / test.Samples,
            TestAccuracy = (double)test.Correct / test.Samples,
            ValLoss = last?.ValLoss,
            ValAccuracy = last?.ValAccuracy,
            WeightsSha256 = Checkpoint.WeightsSha256(_backend.Weights),
            DataSha256 = _data.Train.Sha256(),
            TestDataSha256 = _data.Test.Sha256(),
            TrainSamples = _data.TrainCount,
            ValidationSamples = _data.ValidationIds.Length,
            TestSamples = _data.TestIds.Length,
            ResumedFromStep = resumedFromStep,
            MaxSteps = _settings.MaxSteps,
            Machine = MachineInfo.Current,
            History = history,
            Cluster = _backend.Report(),
            FirstStepSecondsSinceProcessStart = firstStepDone,
        };
        _directory.WriteSummary(summary);
        Plots.HistoryPlot.Write(Path.Combine(_directory.Path, Plots.HistoryPlot.FileName), history);
        return summary;
    }

    private bool LimitReached(RunState state) => _settings.MaxSteps is long max && state.Step >= max;

    // True when --checkpoint-every asks for a checkpoint once <paramref name="steps"/> steps are done.
    private bool CheckpointAfter(long steps) => _settings.CheckpointEvery is int every && steps % every == 0;

    private void SaveCheckpoint(RunState state, double epochSeconds)
    {
        if (state.Step == _lastCheckpointStep) return;
        Dictionary<string, string> extra = state.ToMetadata(epochSeconds);
        extra[DataShaKey] = _data.Train.Sha256();
        var info = new CheckpointInfo(state.Step, state.Epoch, state.StepInEpoch, _settings.Seed, _settings.LearningRate,
            _settings.BatchSize, _settings.MicroBatch, _settings.ValidationSplit,
            JsonSerializer.Serialize(_settings, RunJson.Options), extra);
        _directory.SaveCheckpoint(_model, _backend.Weights, _backend.Adam, info);
        _lastCheckpointStep = state.Step;
    }
}
