// Dropout in training: Backward against finite differences (the mask is a function of seed, step and sample
// id, so every forward pass of the check draws the same mask), the mask of a sample does not depend on its
// position in the batch, it changes with the step, kept elements are scaled by 1 / (1 - rate), about `rate`
// of them are dropped, and inference (or rate 0) is the identity.
using Cnn.Engine.Layers;
using Xunit;

namespace Cnn.Engine.Tests.Layers;

public sealed class DropoutTests
{
    [Fact]
    public void Dropout_training_backward_matches_finite_differences()
    {
        var h = new LayerHarness(new Dropout(0.3f), [TensorShape.Image(4, 4, 3)], batch: 3, new Random(111));

        GradientCheck.Run(h, seed: 10, coordinates: 100);
    }

    [Fact]
    public void Dropout_mask_of_a_sample_does_not_depend_on_its_position_in_the_batch()
    {
        const int size = 50;
        var first = new LayerHarness(new Dropout(0.5f), [TensorShape.Flat(size)], batch: 3, new Random(112));
        var second = new LayerHarness(new Dropout(0.5f), [TensorShape.Flat(size)], batch: 2, new Random(113));
        Array.Fill(first.Inputs[0], 1f);
        Array.Fill(second.Inputs[0], 1f);
        first.Call.SampleIds = [5, 9, 42];
        second.Call.SampleIds = [42, 5];

        float[] a = first.Forward(), b = second.Forward();

        Assert.Equal(a.AsSpan(2 * size, size).ToArray(), b.AsSpan(0, size).ToArray());
        Assert.Equal(a.AsSpan(0, size).ToArray(), b.AsSpan(size, size).ToArray());
        Assert.NotEqual(a.AsSpan(0, size).ToArray(), a.AsSpan(size, size).ToArray());
    }

    [Fact]
    public void Dropout_mask_changes_with_the_step_and_the_seed()
    {
        var h = new LayerHarness(new Dropout(0.5f), [TensorShape.Flat(64)], batch: 1, new Random(114));
        Array.Fill(h.Inputs[0], 1f);

        float[] atStep3 = h.Forward();
        h.Call.Step = 4;
        float[] atStep4 = h.Forward();
        h.Call.Seed = 999;
        float[] otherSeed = h.Forward();

        Assert.NotEqual(atStep3, atStep4);
        Assert.NotEqual(atStep4, otherSeed);
    }

    [Fact]
    public void Dropout_drops_about_rate_of_the_elements_and_scales_the_others()
    {
        const float rate = 0.25f;
        var h = new LayerHarness(new Dropout(rate), [TensorShape.Flat(1000)], batch: 10, new Random(115));
        Array.Fill(h.Inputs[0], 1f);

        float[] y = h.Forward();

        Assert.All(y, v => Assert.True(v == 0f || v == 1f / (1f - rate), $"{v} is neither dropped nor scaled"));
        double dropped = y.Count(v => v == 0f) / (double)y.Length;
        Assert.InRange(dropped, rate - 0.02, rate + 0.02);
    }

    [Fact]
    public void Dropout_is_the_identity_in_inference_and_at_rate_zero()
    {
        var inference = new LayerHarness(new Dropout(0.5f), [TensorShape.Flat(40)], batch: 2, new Random(116), training: false);
        var rateZero = new LayerHarness(new Dropout(0f), [TensorShape.Flat(40)], batch: 2, new Random(117));

        Assert.Equal(inference.Inputs[0], inference.Forward());
        Assert.Equal(rateZero.Inputs[0], rateZero.Forward());
    }

    [Fact]
    public void Dropout_rejects_a_rate_outside_zero_to_one()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new Dropout(1f));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Dropout(-0.1f));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Dropout(float.NaN));
    }
}
