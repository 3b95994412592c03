// Dropout: in training, each element is kept with probability 1 - rate and scaled by 1 / (1 - rate), as Keras
// does; in inference it is the identity. The mask of an element is a hash of (run seed, step, global sample
// id, element index, layer): it does not depend on which worker or thread computes the sample, so a leaf
// recomputed elsewhere gets the same mask and the exactness property holds. Backward overwrites dx = dy * mask.
using System.Numerics.Tensors;

namespace Cnn.Engine.Layers;

/// <summary>Keras Dropout, seeded per sample.</summary>
public sealed class Dropout : Layer
{
    /// <summary>Drops a fraction <paramref name="rate"/> of the elements while training.</summary>
    public Dropout(float rate)
    {
        if (!(rate >= 0f && rate < 1f)) throw new ArgumentOutOfRangeException(nameof(rate), rate, "Dropout rate must be in [0, 1).");
        Rate = rate;
    }

    /// <summary>Fraction of elements dropped.</summary>
    public float Rate { get; }
    /// <inheritdoc/>
    public override string TypeName => "Dropout";
    /// <inheritdoc/>
    public override string NamePrefix => "dropout";

    /// <inheritdoc/>
    protected override TensorShape InferOutputShape(TensorShape[] inputs) => inputs[0];

    /// <inheritdoc/>
    public override object? CreateScratch(int maxBatch) => new float[maxBatch * Input.Size];

    /// <inheritdoc/>
    public override void Forward(LayerCall call)
    {
        int size = Input.Size, n = call.Batch * size;
        if (!call.Training || Rate == 0f)
        {
            call.Inputs[0].AsSpan(0, n).CopyTo(call.Output);
            return;
        }
        float[] mask = (float[])call.Scratch!;
        float keepScale = 1f / (1f - Rate);
        ulong stream = Rng.Hash(call.Seed ^ (ulong)LayerIndex, 0xD20F, (ulong)call.Step);
        for (int b = 0; b < call.Batch; b++)
        {
            ulong sampleKey = Rng.Hash(stream, (ulong)call.SampleIds[b], 0);
            for (int e = 0; e < size; e++)
            {
                ulong bits = Rng.Hash(sampleKey, (ulong)e, 1);
                float u = (bits >> 40) * (1.0f / (1 << 24));
                mask[b * size + e] = u >= Rate ? keepScale : 0f;
            }
        }
        TensorPrimitives.Multiply(call.Inputs[0].AsSpan(0, n), mask.AsSpan(0, n), call.Output.AsSpan(0, n));
    }

    /// <inheritdoc/>
    public override void Backward(LayerCall call)
    {
        if (call.DInputs[0] is not { } dx) return;
        int n = call.Batch * Input.Size;
        if (Rate == 0f) { call.DOutput.AsSpan(0, n).CopyTo(dx); return; }
        TensorPrimitives.Multiply(call.DOutput.AsSpan(0, n), ((float[])call.Scratch!).AsSpan(0, n), dx.AsSpan(0, n));
    }

    /// <summary>Position of the layer in its model, so two dropout layers draw different masks.</summary>
    internal int LayerIndex { get; set; }
}
