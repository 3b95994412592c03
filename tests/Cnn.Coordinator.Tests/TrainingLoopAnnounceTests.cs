// The epoch loop's promise to a cluster backend: it announces the next step (which a cluster then computes and
// applies on its own) only when the loop will not read the weights or the optimizer state before asking for that
// step, so a checkpoint can never mix two steps. A recording backend around the single-process one checks every
// read against the announcement outstanding at that moment.
using Cnn.Coordinator.Runs;
using Cnn.Engine.Data;
using Cnn.Engine.Models;
using Cnn.Engine.Training;
using Xunit;
using static Cnn.Coordinator.Tests.TestSupport;

namespace Cnn.Coordinator.Tests;

public sealed class TrainingLoopAnnounceTests : IDisposable
{
    private readonly Scratch _scratch = new();

    private sealed class RecordingBackend(LocalBackend inner) : ITrainingBackend
    {
        private long? _announced;
        private long _done;

        public List<string> Violations { get; } = [];
        public int Announcements { get; private set; }
        public int Workers => inner.Workers;
        public int Threads => inner.Threads;
        public float[] Weights => Read(inner.Weights);
        public Adam Adam => Read(inner.Adam);

        public StepMetrics Step(int[] batchIds, long step)
        {
            StepMetrics metrics = inner.Step(batchIds, step);
            _done = step + 1;
            return metrics;
        }

        public void Announce(int[] nextBatchIds, long nextStep)
        {
            _announced = nextStep;
            Announcements++;
        }

        public LossAndAccuracy Evaluate(IDataSource data, int[] ids) => inner.Evaluate(data, ids);

        public void Dispose() => inner.Dispose();

        private T Read<T>(T value)
        {
            if (_announced is long next && next >= _done) Violations.Add($"state read after {_done} steps while step {next} was announced");
            return value;
        }
    }

    [Fact]
    public void No_step_is_announced_across_a_checkpoint()
    {
        string data = WriteSyntheticMnist(_scratch.Path("data"));
        var settings = new TrainSettings
        {
            DataDirectory = data, OutDirectory = _scratch.Path("run"), Epochs = 2, BatchSize = 32, MicroBatch = 8, ValidationSplit = 0.5,
            CheckpointEvery = 3, NoCluster = true, Threads = 1,
        };
        Model model = Presets.Create(settings.Model);
        TrainingData training = TrainingData.Load(data, model, settings.ValidationSplit, TextWriter.Null);
        var adam = new Adam(model.Parameters, settings.LearningRate);
        using var backend = new RecordingBackend(new LocalBackend(model, model.Parameters.Initialize(1), adam, training.TrainSource, 1, 8, 1));
        var loop = new TrainingLoop(backend, model, settings, training, new RunReporter(TextWriter.Null, false), RunDirectory.Prepare(settings.OutDirectory, false));

        loop.Run(new RunState(), null);

        Assert.True(backend.Announcements > 0, "the loop announced nothing: the test would prove nothing");
        Assert.Empty(backend.Violations);
    }

    public void Dispose() => _scratch.Dispose();
}
