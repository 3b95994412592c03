// One real training step, computed once for the parameter server's tests: seed-cnn's initial weights, the gradient
// sums of one batch of 64 samples (8 leaves of 8) for every node of its reduction tree, computed by the engine's
// LeafComputer as a worker computes them, and what LocalTrainer (the --no-cluster path) holds after the same step:
// weights, Adam m and v, loss and accuracy. The parameter server fed any exact cover of the tree must end with
// these bits.
using Cnn.Engine;
using Cnn.Engine.Data;
using Cnn.Engine.Models;
using Cnn.Engine.Training;

namespace Cnn.Cluster.Tests.Support;

/// <summary>Gradients of one batch and the single-process result of its step (see file header).</summary>
public sealed class OneStep
{
    public const string RunId = "run-test";
    public const int Batch = 64;
    public const int MicroBatch = 8;
    public const int Leaves = 8;
    public const ulong Seed = 3;

    private readonly Dictionary<TreeNode, GradientSum> _sums = [];

    public OneStep()
    {
        Model = Presets.Create("seed-cnn");
        Initial = Model.Parameters.Initialize(Seed);
        ArraySource data = Images(Batch * 2, Seed);
        BatchIds = Enumerable.Range(0, Batch).Select(i => (i * 37 + 5) % data.Count).ToArray();

        using (var computer = new LeafComputer(Model, threads: 2, MicroBatch))
        {
            // Every node of the tree over 8 leaves: depth by depth, each depth one exact cover. Compute returns views
            // of the computer's leaf buffers, valid until the next call, so each sum is copied at once.
            List<TreeNode> level = [GradientTree.Root(Leaves)];
            while (level.Count > 0)
            {
                foreach (GradientSum sum in computer.Compute(Initial, data, BatchIds, level, step: 0, Seed))
                    _sums[sum.Node] = new GradientSum(sum.Node, (float[])sum.Gradients.Clone(), sum.LossSum, sum.Correct, sum.Samples);
                level = level.Where(n => n.Count > 1).SelectMany(n => { var (l, r) = GradientTree.Children(n); return new[] { l, r }; }).ToList();
            }
        }

        var adam = new Adam(Model.Parameters);
        using var trainer = new LocalTrainer(Model, (float[])Initial.Clone(), adam, threads: 2, MicroBatch, Seed);
        Metrics = trainer.Step(data, BatchIds, 0);
        Expected = trainer.Weights;
        ExpectedM = adam.M;
        ExpectedV = adam.V;
    }

    public Model Model { get; }
    public ParameterLayout Layout => Model.Parameters;
    public int[] BatchIds { get; }

    /// <summary>Weights before the step.</summary>
    public float[] Initial { get; }

    /// <summary>LocalTrainer's weights, Adam m and v, and metrics after the step.</summary>
    public float[] Expected { get; }
    public float[] ExpectedM { get; }
    public float[] ExpectedV { get; }
    public StepMetrics Metrics { get; }

    /// <summary>All tree nodes of the batch.</summary>
    public IReadOnlyCollection<TreeNode> Nodes => _sums.Keys;

    /// <summary>The gradient sum of <paramref name="node"/> (a fresh copy the caller may hand over).</summary>
    public GradientSum Sum(TreeNode node)
    {
        GradientSum s = _sums[node];
        return new GradientSum(s.Node, (float[])s.Gradients.Clone(), s.LossSum, s.Correct, s.Samples);
    }

    /// <summary>
    /// A fresh parameter server at the initial weights, with step 0 open unless told otherwise; <paramref name="segmented"/>:
    /// contributions come in the model's exchange segments.
    /// </summary>
    public Cnn.Coordinator.Cluster.ParameterServerState Server(bool beginStep = true, bool segmented = false)
    {
        var server = new Cnn.Coordinator.Cluster.ParameterServerState(RunId, Layout, (float[])Initial.Clone(), new Adam(Layout),
            segments: segmented ? Model.ExchangeSegments : null);
        if (beginStep) server.BeginStep(0, Batch, MicroBatch);
        return server;
    }

    /// <summary>Seeded images in [0, 1]: a random prototype per class plus noise, so the loss and gradients are realistic.</summary>
    public static ArraySource Images(int count, ulong seed)
    {
        var rng = new Rng(seed);
        const int size = 28 * 28, classes = 10;
        var prototypes = new float[classes * size];
        for (int i = 0; i < prototypes.Length; i++) prototypes[i] = rng.NextFloat();
        int[] labels = Enumerable.Range(0, count).Select(i => (int)(rng.NextUInt64() % classes)).ToArray();
        var features = new float[count * size];
        for (int n = 0; n < count; n++)
            for (int i = 0; i < size; i++)
                features[n * size + i] = 0.7f * prototypes[labels[n] * size + i] + 0.3f * rng.NextFloat();
        return new ArraySource(TensorShape.Image(28, 28, 1), features, labels);
    }
}
