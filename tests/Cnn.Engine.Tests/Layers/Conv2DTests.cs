// Conv2D: Backward against finite differences over every combination of padding (valid, same), stride (1, 2),
// kernel (1, 3), fused ReLU (off, on), input channels (1, 3) and filters (4, 16, 20), on a batch big enough
// that the input gradient runs through more than one block of rows; Forward against a direct convolution
// written from Keras's definition of `same` padding (extra padding at the bottom and right); output shapes
// and the errors a user sees; and which kernel Forward reads when the weights sit off a cache line.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Cnn.Engine.Kernels;
using Cnn.Engine.Layers;
using Cnn.Engine.Tests.Kernels;
using Xunit;

namespace Cnn.Engine.Tests.Layers;

public sealed class Conv2DTests
{
    public static TheoryData<Padding, int, int, bool, int, int> Configurations()
    {
        var data = new TheoryData<Padding, int, int, bool, int, int>();
        foreach (Padding padding in new[] { Padding.Valid, Padding.Same })
            foreach (int stride in new[] { 1, 2 })
                foreach (int kernel in new[] { 1, 3 })
                    foreach (bool relu in new[] { false, true })
                        foreach ((int cin, int cout) in new[] { (1, 4), (3, 16), (3, 20) })
                            data.Add(padding, stride, kernel, relu, cin, cout);
        return data;
    }

    // conv2 of seed-cnn in weights the GC put off a cache line: Forward reads the kernel itself until PrepareWeights
    // has seen the weights and the runner says so, then PrepareWeights' aligned copy, with the same output bits.
    [Fact]
    public void Forward_reads_the_aligned_copy_of_a_kernel_off_a_cache_line_only_once_the_weights_are_prepared()
    {
        var conv = new Conv2D(64, 3, Activation.Relu);
        var h = new LayerHarness(conv, [TensorShape.Image(13, 13, 32)], batch: 4, new Random(5));
        float[] off = KernelAssert.ArrayAt(h.Weights.Length, aligned: false);
        h.Weights.CopyTo(off, 0);
        h.Call.Weights = off;
        ReadOnlySpan<float> slice = off.AsSpan(0, 3 * 3 * 32 * 64);
        float[] expected = h.Forward();

        Assert.True(Unsafe.AreSame(ref MemoryMarshal.GetReference(conv.ForwardKernel(h.Call)), ref off[0]));
        conv.PrepareWeights(h.Call);
        Assert.False(h.Call.WeightsPrepared); // a caller that did not say so still reads the kernel itself
        Assert.True(Unsafe.AreSame(ref MemoryMarshal.GetReference(conv.ForwardKernel(h.Call)), ref off[0]));
        h.Call.WeightsPrepared = true;
        ReadOnlySpan<float> kernel = conv.ForwardKernel(h.Call);
        Assert.True(AlignedBuffer.IsAligned(kernel));
        KernelAssert.BitIdentical(slice, kernel, "the aligned copy");
        KernelAssert.BitIdentical(expected, h.Forward(), "the output from the copy");
    }

    // The GC may move a small weights array between PrepareWeights and Forward. Prepared on a cache line (no copy),
    // then read off one: Forward must read the kernel itself, not a copy that was never made (CI caught a null
    // dereference in a gradient check at 128 bits) or one left from older weights, which would change the bits.
    [Fact]
    public void Forward_reads_the_kernel_itself_when_the_weights_prepared_on_a_cache_line_have_moved_off_it()
    {
        var conv = new Conv2D(64, 3, Activation.Relu);
        var h = new LayerHarness(conv, [TensorShape.Image(13, 13, 32)], batch: 4, new Random(6));
        float[] older = KernelAssert.ArrayAt(h.Weights.Length, aligned: false);
        for (int i = 0; i < older.Length; i++) older[i] = h.Weights[i] * 0.5f + 0.25f;
        h.Call.Weights = older;
        conv.PrepareWeights(h.Call); // an older version, off a cache line: copied
        float[] on = KernelAssert.ArrayAt(h.Weights.Length, aligned: true);
        h.Weights.CopyTo(on, 0);
        h.Call.Weights = on;
        conv.PrepareWeights(h.Call); // the new version, on a cache line: no copy
        float[] expected = h.Forward();

        float[] moved = KernelAssert.ArrayAt(h.Weights.Length, aligned: false); // the same array, after the GC moved it
        h.Weights.CopyTo(moved, 0);
        h.Call.Weights = moved;
        h.Call.WeightsPrepared = true;
        Assert.True(Unsafe.AreSame(ref MemoryMarshal.GetReference(conv.ForwardKernel(h.Call)), ref moved[0]));
        KernelAssert.BitIdentical(expected, h.Forward(), "the output after the move");
    }

    [Theory]
    [MemberData(nameof(Configurations))]
    public void Conv2D_backward_matches_finite_differences(Padding padding, int stride, int kernel, bool relu, int cin, int cout)
    {
        var rng = new Random((((int)padding * 3 + stride) * 5 + kernel) * 1000 + (relu ? 500 : 0) + cin * 50 + cout);
        var conv = new Conv2D(cout, kernel, relu ? Activation.Relu : Activation.None, stride, padding);
        // 3 x 9 x 8 images: 126 output pixels for a valid 3x3 stride-1 convolution, more than one backward block.
        var h = new LayerHarness(conv, [TensorShape.Image(9, 8, cin)], batch: 3, rng);

        // With the fused ReLU a kernel step moves every output pixel of a filter; a smaller step keeps most of
        // them on their side of zero.
        GradientCheck.Run(h, seed: 7, step: relu ? 1e-3f : 1e-2f, discreteState: relu ? GradientCheck.PositiveOutputs : null);
    }

    [Theory]
    [MemberData(nameof(Configurations))]
    public void Conv2D_forward_matches_a_direct_convolution_with_keras_padding(Padding padding, int stride, int kernel, bool relu, int cin, int cout)
    {
        var rng = new Random(17 + cin * 31 + cout);
        const int batch = 2, height = 7, width = 6;
        var conv = new Conv2D(cout, kernel, relu ? Activation.Relu : Activation.None, stride, padding);
        var h = new LayerHarness(conv, [TensorShape.Image(height, width, cin)], batch, rng, training: false);

        float[] y = h.Forward();

        int outH = conv.OutputShape.Height, outW = conv.OutputShape.Width;
        int padTop = 0, padLeft = 0;
        if (padding == Padding.Same)
        {
            padTop = Math.Max((outH - 1) * stride + kernel - height, 0) / 2;
            padLeft = Math.Max((outW - 1) * stride + kernel - width, 0) / 2;
        }
        float[] x = h.Inputs[0], w = h.Weights;
        int biasAt = kernel * kernel * cin * cout;
        for (int n = 0; n < batch; n++)
            for (int oy = 0; oy < outH; oy++)
                for (int ox = 0; ox < outW; ox++)
                    for (int o = 0; o < cout; o++)
                    {
                        double sum = w[biasAt + o];
                        for (int ky = 0; ky < kernel; ky++)
                            for (int kx = 0; kx < kernel; kx++)
                            {
                                int iy = oy * stride + ky - padTop, ix = ox * stride + kx - padLeft;
                                if (iy < 0 || ix < 0 || iy >= height || ix >= width) continue;
                                for (int c = 0; c < cin; c++)
                                    sum += (double)x[((n * height + iy) * width + ix) * cin + c] * w[((ky * kernel + kx) * cin + c) * cout + o];
                            }
                        if (relu) sum = Math.Max(sum, 0);
                        float actual = y[((n * outH + oy) * outW + ox) * cout + o];
                        Assert.True(Math.Abs(actual - sum) <= 1e-5 * (1 + Math.Abs(sum)),
                            $"y[{n}, {oy}, {ox}, {o}] = {actual}, direct convolution {sum}");
                    }
    }

    [Theory]
    [InlineData(28, 28, 3, 1, Padding.Valid, 26, 26)]
    [InlineData(28, 28, 3, 1, Padding.Same, 28, 28)]
    [InlineData(28, 28, 3, 2, Padding.Valid, 13, 13)]
    [InlineData(28, 28, 3, 2, Padding.Same, 14, 14)]
    [InlineData(7, 6, 3, 2, Padding.Same, 4, 3)]
    [InlineData(7, 6, 1, 2, Padding.Valid, 4, 3)]
    public void Conv2D_output_shape_follows_keras(int height, int width, int kernel, int stride, Padding padding, int outH, int outW)
    {
        var conv = new Conv2D(5, kernel, strides: stride, padding: padding);
        _ = new LayerHarness(conv, [TensorShape.Image(height, width, 2)], 1, new Random(1));

        Assert.Equal(TensorShape.Image(outH, outW, 5), conv.OutputShape);
        Assert.Equal([kernel, kernel, 2, 5], conv.ParameterSpecs[0].Shape);
        Assert.Equal([5], conv.ParameterSpecs[1].Shape);
    }

    [Fact]
    public void Conv2D_after_a_flat_input_names_the_shape_and_suggests_the_cause()
    {
        var e = Assert.Throws<ArgumentException>(() => new LayerHarness(new Conv2D(4, 3), [TensorShape.Flat(576)], 1, new Random(1)));

        Assert.Contains("(None, 576)", e.Message);
        Assert.Contains("Flatten or Dense", e.Message);
    }

    [Fact]
    public void Conv2D_with_a_kernel_larger_than_the_input_is_rejected_with_both_sizes()
    {
        var e = Assert.Throws<ArgumentException>(() => new LayerHarness(new Conv2D(4, 5), [TensorShape.Image(3, 3, 2)], 1, new Random(1)));

        Assert.Contains("5x5", e.Message);
        Assert.Contains("(None, 3, 3, 2)", e.Message);
    }

    [Fact]
    public void Conv2D_rejects_unsupported_arguments()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new Conv2D(0, 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Conv2D(4, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Conv2D(4, 3, strides: 3));
        Assert.Throws<ArgumentException>(() => new Conv2D(4, 3, Activation.Softmax));
    }
}
