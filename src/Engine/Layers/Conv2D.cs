// Conv2D: 2-D convolution over NHWC, k x k kernel, stride 1 or 2, `valid` or `same` padding, optional fused
// ReLU. The product runs through the indirect GEMM (Kernels/Gemm.cs): no im2col buffer is built.
//
//   x:      (batch, height, width, cin)
//   kernel: (kh, kw, cin, cout) as Keras lays it out; bias: (cout)
//   y:      (batch, outHeight, outWidth, cout)
//
// Forward keeps nothing beyond its input and output (owned by the model). With `same` padding the input is
// first copied into a zero-padded buffer in the scratch and the convolution is `valid` over it.
// Backward overwrites dKernel, dBias and dx:
//   dY  = relu ? dy * (y > 0) : dy                      (in place)
//   dKernel[k, o] = sum over output pixels p of X(p, k) * dY[p, o]     (GEMM with A transposed)
//   dBias[o]      = sum over p of dY[p, o]
//   dx            = scatter-add over p of (dY[p, :] . kernel^T)        (GEMM, then the adjoint of the indirect read)
// The input gradient is computed in blocks of rows so the intermediate (rows, kh*kw*cin) block stays in cache.
using Cnn.Engine.Kernels;
using Cnn.Engine.Models;

namespace Cnn.Engine.Layers;

/// <summary>Keras Conv2D.</summary>
public sealed class Conv2D : Layer
{
    private const int BackwardBlockRows = 96;
    private ParameterSpec[] _specs = [];
    private int _padTop, _padLeft, _paddedHeight, _paddedWidth;

    /// <summary>A convolution with <paramref name="filters"/> output channels and a square kernel.</summary>
    public Conv2D(int filters, int kernelSize, Activation activation = Activation.None, int strides = 1, Padding padding = Padding.Valid)
    {
        if (filters <= 0) throw new ArgumentOutOfRangeException(nameof(filters), filters, "Conv2D needs at least one filter.");
        if (kernelSize <= 0) throw new ArgumentOutOfRangeException(nameof(kernelSize), kernelSize, "Conv2D kernel size must be positive.");
        if (strides is not (1 or 2)) throw new ArgumentOutOfRangeException(nameof(strides), strides, "Conv2D supports strides 1 and 2.");
        if (activation == Activation.Softmax) throw new ArgumentException("Conv2D does not take a softmax activation.", nameof(activation));
        Filters = filters;
        KernelSize = kernelSize;
        Activation = activation;
        Strides = strides;
        Padding = padding;
    }

    /// <summary>The only reader of the output masks the gradient already (MaxPooling2D.FusesReluBackward; set by the model).</summary>
    internal bool ReluBackwardFusedIntoReader { get; set; }

    /// <summary>Output channels.</summary>
    public int Filters { get; }
    /// <summary>Kernel height and width.</summary>
    public int KernelSize { get; }
    /// <summary>Fused activation.</summary>
    public Activation Activation { get; }
    /// <summary>Stride in both directions.</summary>
    public int Strides { get; }
    /// <summary>Padding mode.</summary>
    public Padding Padding { get; }

    /// <inheritdoc/>
    public override string TypeName => "Conv2D";
    /// <inheritdoc/>
    public override string NamePrefix => "conv2d";
    /// <inheritdoc/>
    public override IReadOnlyList<ParameterSpec> ParameterSpecs => _specs;

    private bool IsPadded => _padTop != 0 || _padLeft != 0 || _paddedHeight != Input.Height || _paddedWidth != Input.Width;
    private int K => KernelSize * KernelSize * Input.Channels;

    /// <inheritdoc/>
    protected override TensorShape InferOutputShape(TensorShape[] inputs)
    {
        TensorShape x = inputs[0];
        if (x.IsFlat)
            throw new ArgumentException($"Conv2D '{Name}' expected (batch, height, width, channels) but got {x}: is a Flatten or Dense before it?");
        int outH, outW;
        if (Padding == Padding.Valid)
        {
            if (x.Height < KernelSize || x.Width < KernelSize)
                throw new ArgumentException($"Conv2D '{Name}' with a {KernelSize}x{KernelSize} kernel cannot run on {x}: the input is smaller than the kernel.");
            outH = (x.Height - KernelSize) / Strides + 1;
            outW = (x.Width - KernelSize) / Strides + 1;
            _paddedHeight = x.Height;
            _paddedWidth = x.Width;
        }
        else
        {
            outH = (x.Height + Strides - 1) / Strides;
            outW = (x.Width + Strides - 1) / Strides;
            int padH = Math.Max((outH - 1) * Strides + KernelSize - x.Height, 0);
            int padW = Math.Max((outW - 1) * Strides + KernelSize - x.Width, 0);
            _padTop = padH / 2;
            _padLeft = padW / 2;
            _paddedHeight = x.Height + padH;
            _paddedWidth = x.Width + padW;
        }
        int fanIn = KernelSize * KernelSize * x.Channels, fanOut = KernelSize * KernelSize * Filters;
        _specs =
        [
            new ParameterSpec("kernel", [KernelSize, KernelSize, x.Channels, Filters], ParameterKind.Kernel, fanIn, fanOut),
            new ParameterSpec("bias", [Filters], ParameterKind.Bias),
        ];
        return TensorShape.Image(outH, outW, Filters);
    }

    private sealed class Scratch
    {
        public required int[] Rows;        // (maxBatch * outH * outW): offset of each output pixel's first tap
        public required int[] Segments;    // (kh): offset of kernel row ky from a pixel's first tap
        public required int[] BlockRows;   // (BackwardBlockRows): r * cout, dY rows as a dense A
        public required float[] Padded;   // (maxBatch, paddedH, paddedW, cin) or empty
        public required float[] DPadded;  // same size as Padded
        public required AlignedBuffer Transposed; // (cout, K): kernel transposed for the input gradient, aligned as Gemm likes B
        public required float[] DCols;     // (BackwardBlockRows, K)
        public AlignedBuffer? KernelCopy;  // (K, cout): the kernel on a cache line, made when the weights array puts it off one
        public bool KernelCopied;          // PrepareWeights found the kernel off a cache line and copied it: Forward reads the copy
    }

    /// <inheritdoc/>
    public override object? CreateScratch(int maxBatch)
    {
        TensorShape y = OutputShape;
        int cin = Input.Channels;
        var rows = new int[maxBatch * y.Height * y.Width];
        int i = 0;
        for (int n = 0; n < maxBatch; n++)
            for (int oy = 0; oy < y.Height; oy++)
                for (int ox = 0; ox < y.Width; ox++)
                    rows[i++] = ((n * _paddedHeight + oy * Strides) * _paddedWidth + ox * Strides) * cin;
        var segments = new int[KernelSize];
        for (int ky = 0; ky < KernelSize; ky++) segments[ky] = ky * _paddedWidth * cin;
        var blockRows = new int[BackwardBlockRows];
        for (int r = 0; r < blockRows.Length; r++) blockRows[r] = r * Filters;
        int paddedSize = IsPadded ? maxBatch * _paddedHeight * _paddedWidth * cin : 0;
        return new Scratch
        {
            Rows = rows, Segments = segments, BlockRows = blockRows,
            Padded = new float[paddedSize], DPadded = new float[paddedSize],
            Transposed = new AlignedBuffer(Filters * K), DCols = new float[BackwardBlockRows * K],
        };
    }

    /// <inheritdoc/>
    public override void Forward(LayerCall call)
    {
        var s = (Scratch)call.Scratch!;
        ReadOnlySpan<float> src = Source(call, s, copy: true);
        int pixels = call.Batch * OutputShape.Height * OutputShape.Width;
        Gemm.Multiply(src, s.Rows.AsSpan(0, pixels), s.Segments, KernelSize * Input.Channels, ForwardKernel(call), Filters,
            call.Output.AsSpan(0, pixels * Filters), call.Weights.AsSpan(SliceOffset(1), Filters), GemmInit.Bias,
            Activation == Activation.Relu);
    }

    /// <inheritdoc/>
    public override void Backward(LayerCall call)
    {
        var s = (Scratch)call.Scratch!;
        int pixels = call.Batch * OutputShape.Height * OutputShape.Width;
        Span<float> dY = call.DOutput.AsSpan(0, pixels * Filters);
        if (Activation == Activation.Relu && !ReluBackwardFusedIntoReader) Activations.ReluBackward(call.Output.AsSpan(0, pixels * Filters), dY, dY);

        ReadOnlySpan<float> src = Source(call, s, copy: false);
        int segmentLength = KernelSize * Input.Channels;
        Gemm.MultiplyTransposedA(src, s.Rows.AsSpan(0, pixels), s.Segments, segmentLength, dY, Filters,
            call.Gradients.AsSpan(SliceOffset(0), _specs[0].Size), accumulate: false);
        Gemm.ColumnSums(dY, pixels, Filters, call.Gradients.AsSpan(SliceOffset(1), Filters));
        call.SignalParameterGradients();

        float[]? dx = call.DInputs[0];
        if (dx is null) return;
        Span<float> dSrc = IsPadded
            ? s.DPadded.AsSpan(0, call.Batch * _paddedHeight * _paddedWidth * Input.Channels)
            : dx.AsSpan(0, call.Batch * Input.Size);
        dSrc.Clear();
        int k = K;
        ReadOnlySpan<int> one = [0];
        for (int start = 0; start < pixels; start += BackwardBlockRows)
        {
            int count = Math.Min(BackwardBlockRows, pixels - start);
            Span<float> dCols = s.DCols.AsSpan(0, count * k);
            Gemm.Multiply(dY.Slice(start * Filters, count * Filters), s.BlockRows.AsSpan(0, count), one, Filters,
                s.Transposed.Span, k, dCols, default, GemmInit.Zero, relu: false);
            Gemm.ScatterAddRows(dCols, s.Rows.AsSpan(start, count), s.Segments, segmentLength, dSrc);
        }
        if (IsPadded) Crop(dSrc, call.Batch, dx);
    }

    /// <inheritdoc/>
    public override void PrepareWeights(LayerCall call)
    {
        var s = (Scratch)call.Scratch!;
        ReadOnlySpan<float> kernel = call.Weights.AsSpan(SliceOffset(0), _specs[0].Size);
        Transpose(kernel, K, Filters, s.Transposed.Span);
        // Forward's product reads its kernel as B, which Gemm copies to a cache line for every leaf when the array
        // puts it off one (Gemm.Multiply). A worker's weights arrive in whichever array the GC placed, so the copy
        // is made here instead, once per weights version. Whether Forward reads it is decided here too, not from where
        // the array is when Forward runs: the GC may move a small array in between, and a kernel found on a cache line
        // here has no copy (or an older version's) to read.
        s.KernelCopied = !AlignedBuffer.IsAligned(kernel);
        if (!s.KernelCopied) return;
        s.KernelCopy ??= new AlignedBuffer(kernel.Length);
        kernel.CopyTo(s.KernelCopy.Span);
    }

    // The kernel as Forward's B: the copy PrepareWeights made, when the runner says these weights are the ones it
    // prepared and they had the kernel off a cache line; else the kernel itself.
    internal ReadOnlySpan<float> ForwardKernel(LayerCall call)
    {
        var s = (Scratch)call.Scratch!;
        return call.WeightsPrepared && s.KernelCopied ? s.KernelCopy!.Span : call.Weights.AsSpan(SliceOffset(0), _specs[0].Size);
    }

    // The buffer the convolution reads: the input itself, or its zero-padded copy.
    private ReadOnlySpan<float> Source(LayerCall call, Scratch s, bool copy)
    {
        if (!IsPadded) return call.Inputs[0].AsSpan(0, call.Batch * Input.Size);
        int c = Input.Channels, rowLength = Input.Width * c;
        Span<float> padded = s.Padded.AsSpan(0, call.Batch * _paddedHeight * _paddedWidth * c);
        if (copy)
        {
            padded.Clear();
            float[] x = call.Inputs[0];
            for (int n = 0; n < call.Batch; n++)
                for (int y = 0; y < Input.Height; y++)
                    x.AsSpan((n * Input.Height + y) * rowLength, rowLength)
                        .CopyTo(padded.Slice(((n * _paddedHeight + y + _padTop) * _paddedWidth + _padLeft) * c));
        }
        return padded;
    }

    private void Crop(ReadOnlySpan<float> dPadded, int batch, float[] dx)
    {
        int c = Input.Channels, rowLength = Input.Width * c;
        for (int n = 0; n < batch; n++)
            for (int y = 0; y < Input.Height; y++)
                dPadded.Slice(((n * _paddedHeight + y + _padTop) * _paddedWidth + _padLeft) * c, rowLength)
                    .CopyTo(dx.AsSpan((n * Input.Height + y) * rowLength, rowLength));
    }

    // t (cols, rows) = a (rows, cols)^T, in 16 x 16 tiles so that both sides stay in cache.
    internal static void Transpose(ReadOnlySpan<float> a, int rows, int cols, Span<float> t)
    {
        const int Tile = 16;
        for (int r0 = 0; r0 < rows; r0 += Tile)
            for (int c0 = 0; c0 < cols; c0 += Tile)
                for (int r = r0; r < Math.Min(r0 + Tile, rows); r++)
                    for (int c = c0; c < Math.Min(c0 + Tile, cols); c++)
                        t[c * rows + r] = a[r * cols + c];
    }
}
