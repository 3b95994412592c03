// SIMD GEMM kernels, the engine's workhorse: convolution and dense layers, forward and both backward
// products, all go through these three functions.
//
// "Indirect" GEMM: the rows of A are not a dense matrix but offsets into a buffer, and each row's k range is
// cut into segments at fixed offsets from the row start. A convolution then needs no im2col copy: for an
// NHWC image, the taps of one kernel row (kx = 0..kw-1, all input channels) are contiguous in memory, so
// output pixel m reads segment ky at rows[m] + ky * (width * channels), of length kw * channels, and k runs
// in the (kh, kw, cin) order of the Keras kernel. A dense layer is one segment of length K at rows[m] = m * K.
//
// Summation order is fixed by the shapes alone: every output element starts from its initial value and adds
// products in ascending k (or m) through fma, exactly like Kernels/Reference/GemmReference, so results are
// bit-identical to the reference and independent of thread count. The microkernels hold a 6 x 64 tile of C in
// 24 zmm registers (AVX-512); narrower column blocks use 6 x 32 and 6 x 16 tiles, and a scalar tail. Machines
// without AVX-512 but with vectors and a fused multiply-add use 6 x 2 tiles of Vector<float>: 6 x 16 with AVX2,
// 6 x 8 with 128-bit vectors (ARM64's NEON: Apple silicon, Graviton), 12 accumulators either way, which fit the 16
// vector registers of x64 and leave room in ARM64's 32. DOTNET_PreferredVectorBitWidth=128 (or 256) gives this
// machine those widths, which is how CI checks them. Every path gives the reference's bits. Machines with none
// take the reference path (correct, about 70 times slower): see Numerics.Fingerprint.
// The microkernels at the end of the file (six AVX-512, two Vector<float>) are written out one per tile width
// instead of one generic loop: the JIT keeps the accumulators in registers only when they are distinct locals.
// They differ only in the vector width, the number of columns, and in where A comes from (a row of the indirect
// GEMM, or a column of A for the transposed product); change one, change all.
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Cnn.Engine.Kernels.Reference;

namespace Cnn.Engine.Kernels;

/// <summary>SIMD matrix products with indirect rows (see file header).</summary>
public static unsafe class Gemm
{
    private const int Rows = 6;
    private const int TransposedChunk = 64;
    private const int StackLimit = 4096; // ints; beyond this, index arrays come from the pool

    /// <summary>Which kernels run: AVX-512 tiles, Vector&lt;float&gt; tiles, or the scalar reference. All give the same bits.</summary>
    public enum KernelPath
    {
        /// <summary>The scalar reference loops.</summary>
        Scalar,
        /// <summary>6 x 2 tiles of Vector&lt;float&gt; with fused multiply-add: 6 x 16 with AVX2, 6 x 8 with 128-bit vectors (ARM64).</summary>
        Vector,
        /// <summary>6 x 64 / 32 / 16 tiles in zmm registers (AVX-512).</summary>
        Avx512,
    }

    /// <summary>The best path this machine runs.</summary>
    public static KernelPath BestPath { get; } =
        Vector512.IsHardwareAccelerated ? KernelPath.Avx512
        : System.Numerics.Vector.IsHardwareAccelerated && (System.Runtime.Intrinsics.X86.Fma.IsSupported || System.Runtime.Intrinsics.Arm.AdvSimd.IsSupported)
            ? KernelPath.Vector
        : KernelPath.Scalar;

    /// <summary>The path in use; tests lower it to check the Vector&lt;float&gt; path against the reference on an AVX-512 machine.</summary>
    public static KernelPath Path { get; internal set; } = BestPath;

    /// <summary>True when a SIMD path runs (else the scalar reference).</summary>
    public static bool IsAccelerated => Path != KernelPath.Scalar;

    /// <summary>
    /// C[i, 0:n] = init + sum_k A(i, k) * B[k, 0:n], optionally followed by max(0, .), where
    /// A(i, k) = a[rows[i] + segments[k / segmentLength] + k % segmentLength] and B is (K, n) row-major.
    /// C is (rows.Length, n) row-major. <paramref name="bias"/> has n elements when init is Bias.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    public static void Multiply(ReadOnlySpan<float> a, ReadOnlySpan<int> rows, ReadOnlySpan<int> segments, int segmentLength,
        ReadOnlySpan<float> b, int n, Span<float> c, ReadOnlySpan<float> bias, GemmInit init, bool relu)
    {
        int m = rows.Length;
        if (m == 0 || n == 0) return;
        if (!IsAccelerated)
        {
            GemmReference.Multiply(a, rows, segments, segmentLength, b, n, c, bias, init, relu);
            return;
        }
        // Every tile of 6 rows reloads B: when B starts off a cache line and enough tiles reuse it, multiply from
        // an aligned copy (AlignedBuffer). The copy holds the same values, so the bits do not change.
        if (m >= PackRows && !AlignedBuffer.IsAligned(b)) b = AlignedCopy(b);
        // One row offset per tile row; large products take a pooled array instead of the stack.
        int tileCount = Rows * ((m + Rows - 1) / Rows);
        int[]? rented = tileCount > StackLimit ? System.Buffers.ArrayPool<int>.Shared.Rent(tileCount) : null;
        try
        {
            MultiplyTiles(a, rows, segments, segmentLength, b, n, c, bias, init, relu, rented is null ? stackalloc int[tileCount] : rented.AsSpan(0, tileCount));
        }
        finally
        {
            if (rented is not null) System.Buffers.ArrayPool<int>.Shared.Return(rented);
        }
    }

    // From 32 tiles up: the tiles load B 32 times or more, the copy reads it once and writes it once (about 1% of
    // conv2's forward product of a leaf; see AlignedBuffer).
    internal const int PackRows = 32 * Rows;

    [ThreadStatic] private static AlignedBuffer? t_packedB;

    private static ReadOnlySpan<float> AlignedCopy(ReadOnlySpan<float> b)
    {
        if (t_packedB is null || t_packedB.Length < b.Length) t_packedB = new AlignedBuffer(b.Length);
        Span<float> copy = t_packedB.Span[..b.Length];
        b.CopyTo(copy);
        return copy;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MultiplyTiles(ReadOnlySpan<float> a, ReadOnlySpan<int> rows, ReadOnlySpan<int> segments, int segmentLength,
        ReadOnlySpan<float> b, int n, Span<float> c, ReadOnlySpan<float> bias, GemmInit init, bool relu, Span<int> tileRows)
    {
        int m = rows.Length;
        fixed (float* pa = a, pb = b, pc = c, pBias = bias)
        fixed (int* pRows = rows, pSeg = segments, pTiles = tileRows)
        {
            // Rows past the end repeat the last valid row: computed, never stored.
            for (int t = 0; t < tileRows.Length; t++) pTiles[t] = pRows[Math.Min(t, m - 1)];
            // Column blocks outermost: one block of B (K x 64) is reused by every row tile while it is in cache.
            int col = 0;
            if (Path == KernelPath.Avx512)
            {
                for (; col + 64 <= n; col += 64) RowTiles(64, pa, pTiles, m, pSeg, segments.Length, segmentLength, pb, n, pc, pBias, init, relu, col);
                for (; col + 32 <= n; col += 32) RowTiles(32, pa, pTiles, m, pSeg, segments.Length, segmentLength, pb, n, pc, pBias, init, relu, col);
            }
            int narrow = Path == KernelPath.Avx512 ? 16 : 2 * Vector<float>.Count;
            for (; col + narrow <= n; col += narrow) RowTiles(narrow, pa, pTiles, m, pSeg, segments.Length, segmentLength, pb, n, pc, pBias, init, relu, col);
            if (col < n)
                for (int i0 = 0; i0 < m; i0 += Rows)
                    TailColumns(pa, pRows + i0, Math.Min(Rows, m - i0), pSeg, segments.Length, segmentLength, pb, n, pc + (long)i0 * n, pBias, init, relu, col);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RowTiles(int width, float* pa, int* pTiles, int m, int* pSeg, int segmentCount, int segmentLength,
        float* pb, int n, float* pc, float* pBias, GemmInit init, bool relu, int col)
    {
        for (int i0 = 0; i0 < m; i0 += Rows)
        {
            int valid = Math.Min(Rows, m - i0);
            float* c0 = pc + (long)i0 * n + col;
            float* c1 = c0 + n * Math.Min(1, valid - 1), c2 = c0 + n * Math.Min(2, valid - 1);
            float* c3 = c0 + n * Math.Min(3, valid - 1), c4 = c0 + n * Math.Min(4, valid - 1), c5 = c0 + n * Math.Min(5, valid - 1);
            int* tile = pTiles + i0;
            if (width == 64) Kernel6x64(pa, tile, pSeg, segmentCount, segmentLength, pb + col, n, c0, c1, c2, c3, c4, c5, valid, pBias + col, init, relu);
            else if (width == 32) Kernel6x32(pa, tile, pSeg, segmentCount, segmentLength, pb + col, n, c0, c1, c2, c3, c4, c5, valid, pBias + col, init, relu);
            else if (Path == KernelPath.Avx512) Kernel6x16(pa, tile, pSeg, segmentCount, segmentLength, pb + col, n, c0, c1, c2, c3, c4, c5, valid, pBias + col, init, relu);
            else KernelVector6x2(pa, tile, pSeg, segmentCount, segmentLength, pb + col, n, c0, c1, c2, c3, c4, c5, valid, pBias + col, init, relu);
        }
    }

    /// <summary>
    /// dW[k, 0:n] (= or +=) sum over i of A(i, k) * D[i, 0:n], with A indexed as in <see cref="Multiply"/> and D
    /// (rows.Length, n) row-major; dW is (K, n) row-major. The sum runs over i in ascending order.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    public static void MultiplyTransposedA(ReadOnlySpan<float> a, ReadOnlySpan<int> rows, ReadOnlySpan<int> segments, int segmentLength,
        ReadOnlySpan<float> d, int n, Span<float> c, bool accumulate)
    {
        int m = rows.Length;
        if (n == 0) return;
        if (!IsAccelerated || m == 0)
        {
            GemmReference.MultiplyTransposedA(a, rows, segments, segmentLength, d, n, c, accumulate);
            return;
        }
        int k = segments.Length * segmentLength;
        if (k == 0) return;
        // Offsets of every k from a row start; k-blocks of 6 may span segments (the broadcasts are single loads).
        int[]? rentedK = k + Rows > StackLimit ? System.Buffers.ArrayPool<int>.Shared.Rent(k + Rows) : null;
        Span<int> kOffsets = rentedK is null ? stackalloc int[k + Rows] : rentedK.AsSpan(0, k + Rows);
        try
        {
            MultiplyTransposedAChunks(a, rows, segments, segmentLength, d, n, c, accumulate, kOffsets);
        }
        finally
        {
            if (rentedK is not null) System.Buffers.ArrayPool<int>.Shared.Return(rentedK);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MultiplyTransposedAChunks(ReadOnlySpan<float> a, ReadOnlySpan<int> rows, ReadOnlySpan<int> segments, int segmentLength,
        ReadOnlySpan<float> d, int n, Span<float> c, bool accumulate, Span<int> kOffsets)
    {
        int m = rows.Length, segmentCount = segments.Length, k = segmentCount * segmentLength;
        for (int s = 0; s < segmentCount; s++)
            for (int j = 0; j < segmentLength; j++) kOffsets[s * segmentLength + j] = segments[s] + j;
        for (int t = k; t < k + Rows; t++) kOffsets[t] = kOffsets[k - 1];
        fixed (float* pa = a, pd = d, pc = c)
        fixed (int* pRows = rows, pk = kOffsets)
        {
            // The i range is cut into chunks whose D rows stay in L1 across all k-blocks. The partial sum is
            // stored and reloaded between chunks, which is exact: the fma sequence per element is unchanged.
            for (int i0 = 0; i0 < m; i0 += TransposedChunk)
            {
                int chunk = Math.Min(TransposedChunk, m - i0);
                bool add = accumulate || i0 > 0;
                for (int k0 = 0; k0 < k; k0 += Rows)
                {
                    int valid = Math.Min(Rows, k - k0);
                    float* c0 = pc + (long)k0 * n;
                    float* c1 = c0 + n * Math.Min(1, valid - 1), c2 = c0 + n * Math.Min(2, valid - 1);
                    float* c3 = c0 + n * Math.Min(3, valid - 1), c4 = c0 + n * Math.Min(4, valid - 1), c5 = c0 + n * Math.Min(5, valid - 1);
                    int* kIndex = pk + k0;
                    float* dChunk = pd + (long)i0 * n;
                    int col = 0;
                    if (Path == KernelPath.Vector)
                        for (int width = 2 * Vector<float>.Count; col + width <= n; col += width)
                            KernelAtBVector6x2(pa, pRows + i0, chunk, kIndex, dChunk + col, n, c0 + col, c1 + col, c2 + col, c3 + col, c4 + col, c5 + col, valid, add);
                    for (; col + 64 <= n; col += 64)
                        KernelAtB6x64(pa, pRows + i0, chunk, kIndex, dChunk + col, n, c0 + col, c1 + col, c2 + col, c3 + col, c4 + col, c5 + col, valid, add);
                    for (; col + 32 <= n; col += 32)
                        KernelAtB6x32(pa, pRows + i0, chunk, kIndex, dChunk + col, n, c0 + col, c1 + col, c2 + col, c3 + col, c4 + col, c5 + col, valid, add);
                    for (; col + 16 <= n; col += 16)
                        KernelAtB6x16(pa, pRows + i0, chunk, kIndex, dChunk + col, n, c0 + col, c1 + col, c2 + col, c3 + col, c4 + col, c5 + col, valid, add);
                    for (; col < n; col++)
                        for (int r = 0; r < valid; r++)
                        {
                            float* dst = c0 + (long)r * n + col;
                            float acc = add ? *dst : 0f;
                            for (int i = i0; i < i0 + chunk; i++) acc = MathF.FusedMultiplyAdd(pa[pRows[i] + kIndex[r]], pd[(long)i * n + col], acc);
                            *dst = acc;
                        }
                }
            }
        }
    }

    /// <summary>
    /// sums[col] = sum over i ascending of D[i, col], for D (m, n) row-major: the bias gradient, and batch
    /// normalization's mean and beta gradient. Each column block is summed in registers from zero, row by row, the
    /// reference's order (a convolution's D has thousands of rows of 32 or 64 columns, so one library call per row
    /// cost more than the additions).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    public static void ColumnSums(ReadOnlySpan<float> d, int m, int n, Span<float> sums)
    {
        if (d.Length < (long)m * n || sums.Length < n) throw new ArgumentException($"D needs {(long)m * n} floats and sums {n}");
        if (Path == KernelPath.Scalar)
        {
            GemmReference.ColumnSums(d, m, n, sums);
            return;
        }
        int col = 0;
        fixed (float* pd = d, ps = sums)
        {
            if (Path == KernelPath.Avx512)
            {
                for (; col + 32 <= n; col += 32)
                {
                    Vector512<float> a0 = Vector512<float>.Zero, a1 = Vector512<float>.Zero;
                    for (int i = 0; i < m; i++)
                    {
                        float* row = pd + (long)i * n + col;
                        a0 += Vector512.Load(row);
                        a1 += Vector512.Load(row + 16);
                    }
                    a0.Store(ps + col);
                    a1.Store(ps + col + 16);
                }
                for (; col + 16 <= n; col += 16)
                {
                    Vector512<float> a0 = Vector512<float>.Zero;
                    for (int i = 0; i < m; i++) a0 += Vector512.Load(pd + (long)i * n + col);
                    a0.Store(ps + col);
                }
            }
            for (; col + Vector<float>.Count <= n; col += Vector<float>.Count)
            {
                Vector<float> a0 = Vector<float>.Zero;
                for (int i = 0; i < m; i++) a0 += Vector.Load(pd + (long)i * n + col);
                a0.Store(ps + col);
            }
            for (; col < n; col++)
            {
                float acc = 0f;
                for (int i = 0; i < m; i++) acc += pd[(long)i * n + col];
                ps[col] = acc;
            }
        }
    }

    /// <summary>
    /// x[rows[i] + segments[s] + j] += cols[i, s * segmentLength + j], rows in ascending order: the adjoint of the
    /// indirect read (col2im), used for the input gradient of a convolution.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    public static void ScatterAddRows(ReadOnlySpan<float> cols, ReadOnlySpan<int> rows, ReadOnlySpan<int> segments, int segmentLength, Span<float> x)
    {
        if (Path == KernelPath.Scalar)
        {
            GemmReference.ScatterAddRows(cols, rows, segments, segmentLength, x);
            return;
        }
        if (Path == KernelPath.Vector)
        {
            // The same element-wise additions in the same order, through the Accumulate kernel.
            int width = segments.Length * segmentLength;
            for (int i = 0; i < rows.Length; i++)
                for (int s = 0; s < segments.Length; s++)
                    Accumulate.Add(x.Slice(rows[i] + segments[s], segmentLength), cols.Slice(i * width + s * segmentLength, segmentLength));
            return;
        }
        int k = segments.Length * segmentLength;
        int vectorEnd = segmentLength & ~15;
        fixed (float* pc = cols, px = x)
        fixed (int* pRows = rows, pSeg = segments)
        {
            float* src = pc;
            for (int i = 0; i < rows.Length; i++)
                for (int s = 0; s < segments.Length; s++, src += segmentLength)
                {
                    float* dst = px + pRows[i] + pSeg[s];
                    int j = 0;
                    for (; j < vectorEnd; j += 16) (Vector512.Load(dst + j) + Vector512.Load(src + j)).Store(dst + j);
                    for (; j < segmentLength; j++) dst[j] += src[j];
                }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TailColumns(float* a, int* rows, int valid, int* segments, int segmentCount, int segmentLength,
        float* b, int n, float* c, float* bias, GemmInit init, bool relu, int firstColumn)
    {
        for (int r = 0; r < valid; r++)
            for (int col = firstColumn; col < n; col++)
            {
                float acc = init switch { GemmInit.Zero => 0f, GemmInit.Bias => bias[col], _ => c[(long)r * n + col] };
                int k = 0;
                for (int s = 0; s < segmentCount; s++)
                {
                    float* ap = a + rows[r] + segments[s];
                    for (int j = 0; j < segmentLength; j++, k++) acc = MathF.FusedMultiplyAdd(ap[j], b[(long)k * n + col], acc);
                }
                c[(long)r * n + col] = relu ? MathF.Max(acc, 0f) : acc;
            }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Start(GemmInit init, float* c, float* bias) => init switch
    {
        GemmInit.Zero => Vector512<float>.Zero,
        GemmInit.Bias => Vector512.Load(bias),
        _ => Vector512.Load(c),
    };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Activate(Vector512<float> v, bool relu) => relu ? Vector512.Max(v, Vector512<float>.Zero) : v;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store4(float* c, bool relu, Vector512<float> v0, Vector512<float> v1, Vector512<float> v2, Vector512<float> v3)
    {
        Activate(v0, relu).Store(c);
        Activate(v1, relu).Store(c + 16);
        Activate(v2, relu).Store(c + 32);
        Activate(v3, relu).Store(c + 48);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store2(float* c, bool relu, Vector512<float> v0, Vector512<float> v1)
    {
        Activate(v0, relu).Store(c);
        Activate(v1, relu).Store(c + 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store1(float* c, bool relu, Vector512<float> v0) => Activate(v0, relu).Store(c);


    // C[6 rows, 64 columns] of the indirect GEMM: 6 x 4 accumulators held in zmm registers for the whole k loop.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel6x64(float* a, int* rowOffsets, int* segments, int segmentCount, int segmentLength,
        float* b, int n, float* c0Ptr, float* c1Ptr, float* c2Ptr, float* c3Ptr, float* c4Ptr, float* c5Ptr,
        int rowsValid, float* bias, GemmInit init, bool relu)
    {
            Vector512<float> c00 = Start(init, c0Ptr + 0, bias + 0);
            Vector512<float> c01 = Start(init, c0Ptr + 16, bias + 16);
            Vector512<float> c02 = Start(init, c0Ptr + 32, bias + 32);
            Vector512<float> c03 = Start(init, c0Ptr + 48, bias + 48);
            Vector512<float> c10 = Start(init, c1Ptr + 0, bias + 0);
            Vector512<float> c11 = Start(init, c1Ptr + 16, bias + 16);
            Vector512<float> c12 = Start(init, c1Ptr + 32, bias + 32);
            Vector512<float> c13 = Start(init, c1Ptr + 48, bias + 48);
            Vector512<float> c20 = Start(init, c2Ptr + 0, bias + 0);
            Vector512<float> c21 = Start(init, c2Ptr + 16, bias + 16);
            Vector512<float> c22 = Start(init, c2Ptr + 32, bias + 32);
            Vector512<float> c23 = Start(init, c2Ptr + 48, bias + 48);
            Vector512<float> c30 = Start(init, c3Ptr + 0, bias + 0);
            Vector512<float> c31 = Start(init, c3Ptr + 16, bias + 16);
            Vector512<float> c32 = Start(init, c3Ptr + 32, bias + 32);
            Vector512<float> c33 = Start(init, c3Ptr + 48, bias + 48);
            Vector512<float> c40 = Start(init, c4Ptr + 0, bias + 0);
            Vector512<float> c41 = Start(init, c4Ptr + 16, bias + 16);
            Vector512<float> c42 = Start(init, c4Ptr + 32, bias + 32);
            Vector512<float> c43 = Start(init, c4Ptr + 48, bias + 48);
            Vector512<float> c50 = Start(init, c5Ptr + 0, bias + 0);
            Vector512<float> c51 = Start(init, c5Ptr + 16, bias + 16);
            Vector512<float> c52 = Start(init, c5Ptr + 32, bias + 32);
            Vector512<float> c53 = Start(init, c5Ptr + 48, bias + 48);
            Vector512<float> x;
            float* bk = b;
            for (int s = 0; s < segmentCount; s++)
            {
                float* a0 = a + rowOffsets[0] + segments[s], a1 = a + rowOffsets[1] + segments[s], a2 = a + rowOffsets[2] + segments[s];
                float* a3 = a + rowOffsets[3] + segments[s], a4 = a + rowOffsets[4] + segments[s], a5 = a + rowOffsets[5] + segments[s];
                for (int j = 0; j < segmentLength; j++, bk += n)
                {
                    Vector512<float> b0 = Vector512.Load(bk + 0);
                    Vector512<float> b1 = Vector512.Load(bk + 16);
                    Vector512<float> b2 = Vector512.Load(bk + 32);
                    Vector512<float> b3 = Vector512.Load(bk + 48);
                    x = Vector512.Create(a0[j]);
                    c00 = Vector512.FusedMultiplyAdd(x, b0, c00);
                    c01 = Vector512.FusedMultiplyAdd(x, b1, c01);
                    c02 = Vector512.FusedMultiplyAdd(x, b2, c02);
                    c03 = Vector512.FusedMultiplyAdd(x, b3, c03);
                    x = Vector512.Create(a1[j]);
                    c10 = Vector512.FusedMultiplyAdd(x, b0, c10);
                    c11 = Vector512.FusedMultiplyAdd(x, b1, c11);
                    c12 = Vector512.FusedMultiplyAdd(x, b2, c12);
                    c13 = Vector512.FusedMultiplyAdd(x, b3, c13);
                    x = Vector512.Create(a2[j]);
                    c20 = Vector512.FusedMultiplyAdd(x, b0, c20);
                    c21 = Vector512.FusedMultiplyAdd(x, b1, c21);
                    c22 = Vector512.FusedMultiplyAdd(x, b2, c22);
                    c23 = Vector512.FusedMultiplyAdd(x, b3, c23);
                    x = Vector512.Create(a3[j]);
                    c30 = Vector512.FusedMultiplyAdd(x, b0, c30);
                    c31 = Vector512.FusedMultiplyAdd(x, b1, c31);
                    c32 = Vector512.FusedMultiplyAdd(x, b2, c32);
                    c33 = Vector512.FusedMultiplyAdd(x, b3, c33);
                    x = Vector512.Create(a4[j]);
                    c40 = Vector512.FusedMultiplyAdd(x, b0, c40);
                    c41 = Vector512.FusedMultiplyAdd(x, b1, c41);
                    c42 = Vector512.FusedMultiplyAdd(x, b2, c42);
                    c43 = Vector512.FusedMultiplyAdd(x, b3, c43);
                    x = Vector512.Create(a5[j]);
                    c50 = Vector512.FusedMultiplyAdd(x, b0, c50);
                    c51 = Vector512.FusedMultiplyAdd(x, b1, c51);
                    c52 = Vector512.FusedMultiplyAdd(x, b2, c52);
                    c53 = Vector512.FusedMultiplyAdd(x, b3, c53);
                }
            }
            if (rowsValid > 0) Store4(c0Ptr, relu, c00, c01, c02, c03);
            if (rowsValid > 1) Store4(c1Ptr, relu, c10, c11, c12, c13);
            if (rowsValid > 2) Store4(c2Ptr, relu, c20, c21, c22, c23);
            if (rowsValid > 3) Store4(c3Ptr, relu, c30, c31, c32, c33);
            if (rowsValid > 4) Store4(c4Ptr, relu, c40, c41, c42, c43);
            if (rowsValid > 5) Store4(c5Ptr, relu, c50, c51, c52, c53);
    }


    // dW[6 k-rows, 64 columns] += sum over i of A(i, k) * D[i, :]: 6 x 4 accumulators, i ascending.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void KernelAtB6x64(float* a, int* rows, int m, int* kIndex, float* d, int n,
        float* c0Ptr, float* c1Ptr, float* c2Ptr, float* c3Ptr, float* c4Ptr, float* c5Ptr, int rowsValid, bool accumulate)
    {
        GemmInit init = accumulate ? GemmInit.Accumulate : GemmInit.Zero;
        float* bias = null;
        const bool relu = false;
            Vector512<float> c00 = Start(init, c0Ptr + 0, bias + 0);
            Vector512<float> c01 = Start(init, c0Ptr + 16, bias + 16);
            Vector512<float> c02 = Start(init, c0Ptr + 32, bias + 32);
            Vector512<float> c03 = Start(init, c0Ptr + 48, bias + 48);
            Vector512<float> c10 = Start(init, c1Ptr + 0, bias + 0);
            Vector512<float> c11 = Start(init, c1Ptr + 16, bias + 16);
            Vector512<float> c12 = Start(init, c1Ptr + 32, bias + 32);
            Vector512<float> c13 = Start(init, c1Ptr + 48, bias + 48);
            Vector512<float> c20 = Start(init, c2Ptr + 0, bias + 0);
            Vector512<float> c21 = Start(init, c2Ptr + 16, bias + 16);
            Vector512<float> c22 = Start(init, c2Ptr + 32, bias + 32);
            Vector512<float> c23 = Start(init, c2Ptr + 48, bias + 48);
            Vector512<float> c30 = Start(init, c3Ptr + 0, bias + 0);
            Vector512<float> c31 = Start(init, c3Ptr + 16, bias + 16);
            Vector512<float> c32 = Start(init, c3Ptr + 32, bias + 32);
            Vector512<float> c33 = Start(init, c3Ptr + 48, bias + 48);
            Vector512<float> c40 = Start(init, c4Ptr + 0, bias + 0);
            Vector512<float> c41 = Start(init, c4Ptr + 16, bias + 16);
            Vector512<float> c42 = Start(init, c4Ptr + 32, bias + 32);
            Vector512<float> c43 = Start(init, c4Ptr + 48, bias + 48);
            Vector512<float> c50 = Start(init, c5Ptr + 0, bias + 0);
            Vector512<float> c51 = Start(init, c5Ptr + 16, bias + 16);
            Vector512<float> c52 = Start(init, c5Ptr + 32, bias + 32);
            Vector512<float> c53 = Start(init, c5Ptr + 48, bias + 48);
            Vector512<float> x;
            int k0 = kIndex[0], k1 = kIndex[1], k2 = kIndex[2], k3 = kIndex[3], k4 = kIndex[4], k5 = kIndex[5];
            float* bk = d;
            for (int i = 0; i < m; i++, bk += n)
            {
                    float* ap = a + rows[i];
                    Vector512<float> b0 = Vector512.Load(bk + 0);
                    Vector512<float> b1 = Vector512.Load(bk + 16);
                    Vector512<float> b2 = Vector512.Load(bk + 32);
                    Vector512<float> b3 = Vector512.Load(bk + 48);
                    x = Vector512.Create(ap[k0]);
                    c00 = Vector512.FusedMultiplyAdd(x, b0, c00);
                    c01 = Vector512.FusedMultiplyAdd(x, b1, c01);
                    c02 = Vector512.FusedMultiplyAdd(x, b2, c02);
                    c03 = Vector512.FusedMultiplyAdd(x, b3, c03);
                    x = Vector512.Create(ap[k1]);
                    c10 = Vector512.FusedMultiplyAdd(x, b0, c10);
                    c11 = Vector512.FusedMultiplyAdd(x, b1, c11);
                    c12 = Vector512.FusedMultiplyAdd(x, b2, c12);
                    c13 = Vector512.FusedMultiplyAdd(x, b3, c13);
                    x = Vector512.Create(ap[k2]);
                    c20 = Vector512.FusedMultiplyAdd(x, b0, c20);
                    c21 = Vector512.FusedMultiplyAdd(x, b1, c21);
                    c22 = Vector512.FusedMultiplyAdd(x, b2, c22);
                    c23 = Vector512.FusedMultiplyAdd(x, b3, c23);
                    x = Vector512.Create(ap[k3]);
                    c30 = Vector512.FusedMultiplyAdd(x, b0, c30);
                    c31 = Vector512.FusedMultiplyAdd(x, b1, c31);
                    c32 = Vector512.FusedMultiplyAdd(x, b2, c32);
                    c33 = Vector512.FusedMultiplyAdd(x, b3, c33);
                    x = Vector512.Create(ap[k4]);
                    c40 = Vector512.FusedMultiplyAdd(x, b0, c40);
                    c41 = Vector512.FusedMultiplyAdd(x, b1, c41);
                    c42 = Vector512.FusedMultiplyAdd(x, b2, c42);
                    c43 = Vector512.FusedMultiplyAdd(x, b3, c43);
                    x = Vector512.Create(ap[k5]);
                    c50 = Vector512.FusedMultiplyAdd(x, b0, c50);
                    c51 = Vector512.FusedMultiplyAdd(x, b1, c51);
                    c52 = Vector512.FusedMultiplyAdd(x, b2, c52);
                    c53 = Vector512.FusedMultiplyAdd(x, b3, c53);
            }
            if (rowsValid > 0) Store4(c0Ptr, relu, c00, c01, c02, c03);
            if (rowsValid > 1) Store4(c1Ptr, relu, c10, c11, c12, c13);
            if (rowsValid > 2) Store4(c2Ptr, relu, c20, c21, c22, c23);
            if (rowsValid > 3) Store4(c3Ptr, relu, c30, c31, c32, c33);
            if (rowsValid > 4) Store4(c4Ptr, relu, c40, c41, c42, c43);
            if (rowsValid > 5) Store4(c5Ptr, relu, c50, c51, c52, c53);
    }


    // C[6 rows, 32 columns] of the indirect GEMM: 6 x 2 accumulators held in zmm registers for the whole k loop.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel6x32(float* a, int* rowOffsets, int* segments, int segmentCount, int segmentLength,
        float* b, int n, float* c0Ptr, float* c1Ptr, float* c2Ptr, float* c3Ptr, float* c4Ptr, float* c5Ptr,
        int rowsValid, float* bias, GemmInit init, bool relu)
    {
            Vector512<float> c00 = Start(init, c0Ptr + 0, bias + 0);
            Vector512<float> c01 = Start(init, c0Ptr + 16, bias + 16);
            Vector512<float> c10 = Start(init, c1Ptr + 0, bias + 0);
            Vector512<float> c11 = Start(init, c1Ptr + 16, bias + 16);
            Vector512<float> c20 = Start(init, c2Ptr + 0, bias + 0);
            Vector512<float> c21 = Start(init, c2Ptr + 16, bias + 16);
            Vector512<float> c30 = Start(init, c3Ptr + 0, bias + 0);
            Vector512<float> c31 = Start(init, c3Ptr + 16, bias + 16);
            Vector512<float> c40 = Start(init, c4Ptr + 0, bias + 0);
            Vector512<float> c41 = Start(init, c4Ptr + 16, bias + 16);
            Vector512<float> c50 = Start(init, c5Ptr + 0, bias + 0);
            Vector512<float> c51 = Start(init, c5Ptr + 16, bias + 16);
            Vector512<float> x;
            float* bk = b;
            for (int s = 0; s < segmentCount; s++)
            {
                float* a0 = a + rowOffsets[0] + segments[s], a1 = a + rowOffsets[1] + segments[s], a2 = a + rowOffsets[2] + segments[s];
                float* a3 = a + rowOffsets[3] + segments[s], a4 = a + rowOffsets[4] + segments[s], a5 = a + rowOffsets[5] + segments[s];
                for (int j = 0; j < segmentLength; j++, bk += n)
                {
                    Vector512<float> b0 = Vector512.Load(bk + 0);
                    Vector512<float> b1 = Vector512.Load(bk + 16);
                    x = Vector512.Create(a0[j]);
                    c00 = Vector512.FusedMultiplyAdd(x, b0, c00);
                    c01 = Vector512.FusedMultiplyAdd(x, b1, c01);
                    x = Vector512.Create(a1[j]);
                    c10 = Vector512.FusedMultiplyAdd(x, b0, c10);
                    c11 = Vector512.FusedMultiplyAdd(x, b1, c11);
                    x = Vector512.Create(a2[j]);
                    c20 = Vector512.FusedMultiplyAdd(x, b0, c20);
                    c21 = Vector512.FusedMultiplyAdd(x, b1, c21);
                    x = Vector512.Create(a3[j]);
                    c30 = Vector512.FusedMultiplyAdd(x, b0, c30);
                    c31 = Vector512.FusedMultiplyAdd(x, b1, c31);
                    x = Vector512.Create(a4[j]);
                    c40 = Vector512.FusedMultiplyAdd(x, b0, c40);
                    c41 = Vector512.FusedMultiplyAdd(x, b1, c41);
                    x = Vector512.Create(a5[j]);
                    c50 = Vector512.FusedMultiplyAdd(x, b0, c50);
                    c51 = Vector512.FusedMultiplyAdd(x, b1, c51);
                }
            }
            if (rowsValid > 0) Store2(c0Ptr, relu, c00, c01);
            if (rowsValid > 1) Store2(c1Ptr, relu, c10, c11);
            if (rowsValid > 2) Store2(c2Ptr, relu, c20, c21);
            if (rowsValid > 3) Store2(c3Ptr, relu, c30, c31);
            if (rowsValid > 4) Store2(c4Ptr, relu, c40, c41);
            if (rowsValid > 5) Store2(c5Ptr, relu, c50, c51);
    }


    // dW[6 k-rows, 32 columns] += sum over i of A(i, k) * D[i, :]: 6 x 2 accumulators, i ascending.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void KernelAtB6x32(float* a, int* rows, int m, int* kIndex, float* d, int n,
        float* c0Ptr, float* c1Ptr, float* c2Ptr, float* c3Ptr, float* c4Ptr, float* c5Ptr, int rowsValid, bool accumulate)
    {
        GemmInit init = accumulate ? GemmInit.Accumulate : GemmInit.Zero;
        float* bias = null;
        const bool relu = false;
            Vector512<float> c00 = Start(init, c0Ptr + 0, bias + 0);
            Vector512<float> c01 = Start(init, c0Ptr + 16, bias + 16);
            Vector512<float> c10 = Start(init, c1Ptr + 0, bias + 0);
            Vector512<float> c11 = Start(init, c1Ptr + 16, bias + 16);
            Vector512<float> c20 = Start(init, c2Ptr + 0, bias + 0);
            Vector512<float> c21 = Start(init, c2Ptr + 16, bias + 16);
            Vector512<float> c30 = Start(init, c3Ptr + 0, bias + 0);
            Vector512<float> c31 = Start(init, c3Ptr + 16, bias + 16);
            Vector512<float> c40 = Start(init, c4Ptr + 0, bias + 0);
            Vector512<float> c41 = Start(init, c4Ptr + 16, bias + 16);
            Vector512<float> c50 = Start(init, c5Ptr + 0, bias + 0);
            Vector512<float> c51 = Start(init, c5Ptr + 16, bias + 16);
            Vector512<float> x;
            int k0 = kIndex[0], k1 = kIndex[1], k2 = kIndex[2], k3 = kIndex[3], k4 = kIndex[4], k5 = kIndex[5];
            float* bk = d;
            for (int i = 0; i < m; i++, bk += n)
            {
                    float* ap = a + rows[i];
                    Vector512<float> b0 = Vector512.Load(bk + 0);
                    Vector512<float> b1 = Vector512.Load(bk + 16);
                    x = Vector512.Create(ap[k0]);
                    c00 = Vector512.FusedMultiplyAdd(x, b0, c00);
                    c01 = Vector512.FusedMultiplyAdd(x, b1, c01);
                    x = Vector512.Create(ap[k1]);
                    c10 = Vector512.FusedMultiplyAdd(x, b0, c10);
                    c11 = Vector512.FusedMultiplyAdd(x, b1, c11);
                    x = Vector512.Create(ap[k2]);
                    c20 = Vector512.FusedMultiplyAdd(x, b0, c20);
                    c21 = Vector512.FusedMultiplyAdd(x, b1, c21);
                    x = Vector512.Create(ap[k3]);
                    c30 = Vector512.FusedMultiplyAdd(x, b0, c30);
                    c31 = Vector512.FusedMultiplyAdd(x, b1, c31);
                    x = Vector512.Create(ap[k4]);
                    c40 = Vector512.FusedMultiplyAdd(x, b0, c40);
                    c41 = Vector512.FusedMultiplyAdd(x, b1, c41);
                    x = Vector512.Create(ap[k5]);
                    c50 = Vector512.FusedMultiplyAdd(x, b0, c50);
                    c51 = Vector512.FusedMultiplyAdd(x, b1, c51);
            }
            if (rowsValid > 0) Store2(c0Ptr, relu, c00, c01);
            if (rowsValid > 1) Store2(c1Ptr, relu, c10, c11);
            if (rowsValid > 2) Store2(c2Ptr, relu, c20, c21);
            if (rowsValid > 3) Store2(c3Ptr, relu, c30, c31);
            if (rowsValid > 4) Store2(c4Ptr, relu, c40, c41);
            if (rowsValid > 5) Store2(c5Ptr, relu, c50, c51);
    }


    // C[6 rows, 16 columns] of the indirect GEMM: 6 x 1 accumulators held in zmm registers for the whole k loop.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel6x16(float* a, int* rowOffsets, int* segments, int segmentCount, int segmentLength,
        float* b, int n, float* c0Ptr, float* c1Ptr, float* c2Ptr, float* c3Ptr, float* c4Ptr, float* c5Ptr,
        int rowsValid, float* bias, GemmInit init, bool relu)
    {
            Vector512<float> c00 = Start(init, c0Ptr + 0, bias + 0);
            Vector512<float> c10 = Start(init, c1Ptr + 0, bias + 0);
            Vector512<float> c20 = Start(init, c2Ptr + 0, bias + 0);
            Vector512<float> c30 = Start(init, c3Ptr + 0, bias + 0);
            Vector512<float> c40 = Start(init, c4Ptr + 0, bias + 0);
            Vector512<float> c50 = Start(init, c5Ptr + 0, bias + 0);
            Vector512<float> x;
            float* bk = b;
            for (int s = 0; s < segmentCount; s++)
            {
                float* a0 = a + rowOffsets[0] + segments[s], a1 = a + rowOffsets[1] + segments[s], a2 = a + rowOffsets[2] + segments[s];
                float* a3 = a + rowOffsets[3] + segments[s], a4 = a + rowOffsets[4] + segments[s], a5 = a + rowOffsets[5] + segments[s];
                for (int j = 0; j < segmentLength; j++, bk += n)
                {
                    Vector512<float> b0 = Vector512.Load(bk + 0);
                    x = Vector512.Create(a0[j]);
                    c00 = Vector512.FusedMultiplyAdd(x, b0, c00);
                    x = Vector512.Create(a1[j]);
                    c10 = Vector512.FusedMultiplyAdd(x, b0, c10);
                    x = Vector512.Create(a2[j]);
                    c20 = Vector512.FusedMultiplyAdd(x, b0, c20);
                    x = Vector512.Create(a3[j]);
                    c30 = Vector512.FusedMultiplyAdd(x, b0, c30);
                    x = Vector512.Create(a4[j]);
                    c40 = Vector512.FusedMultiplyAdd(x, b0, c40);
                    x = Vector512.Create(a5[j]);
                    c50 = Vector512.FusedMultiplyAdd(x, b0, c50);
                }
            }
            if (rowsValid > 0) Store1(c0Ptr, relu, c00);
            if (rowsValid > 1) Store1(c1Ptr, relu, c10);
            if (rowsValid > 2) Store1(c2Ptr, relu, c20);
            if (rowsValid > 3) Store1(c3Ptr, relu, c30);
            if (rowsValid > 4) Store1(c4Ptr, relu, c40);
            if (rowsValid > 5) Store1(c5Ptr, relu, c50);
    }


    // dW[6 k-rows, 16 columns] += sum over i of A(i, k) * D[i, :]: 6 x 1 accumulators, i ascending.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void KernelAtB6x16(float* a, int* rows, int m, int* kIndex, float* d, int n,
        float* c0Ptr, float* c1Ptr, float* c2Ptr, float* c3Ptr, float* c4Ptr, float* c5Ptr, int rowsValid, bool accumulate)
    {
        GemmInit init = accumulate ? GemmInit.Accumulate : GemmInit.Zero;
        float* bias = null;
        const bool relu = false;
            Vector512<float> c00 = Start(init, c0Ptr + 0, bias + 0);
            Vector512<float> c10 = Start(init, c1Ptr + 0, bias + 0);
            Vector512<float> c20 = Start(init, c2Ptr + 0, bias + 0);
            Vector512<float> c30 = Start(init, c3Ptr + 0, bias + 0);
            Vector512<float> c40 = Start(init, c4Ptr + 0, bias + 0);
            Vector512<float> c50 = Start(init, c5Ptr + 0, bias + 0);
            Vector512<float> x;
            int k0 = kIndex[0], k1 = kIndex[1], k2 = kIndex[2], k3 = kIndex[3], k4 = kIndex[4], k5 = kIndex[5];
            float* bk = d;
            for (int i = 0; i < m; i++, bk += n)
            {
                    float* ap = a + rows[i];
                    Vector512<float> b0 = Vector512.Load(bk + 0);
                    x = Vector512.Create(ap[k0]);
                    c00 = Vector512.FusedMultiplyAdd(x, b0, c00);
                    x = Vector512.Create(ap[k1]);
                    c10 = Vector512.FusedMultiplyAdd(x, b0, c10);
                    x = Vector512.Create(ap[k2]);
                    c20 = Vector512.FusedMultiplyAdd(x, b0, c20);
                    x = Vector512.Create(ap[k3]);
                    c30 = Vector512.FusedMultiplyAdd(x, b0, c30);
                    x = Vector512.Create(ap[k4]);
                    c40 = Vector512.FusedMultiplyAdd(x, b0, c40);
                    x = Vector512.Create(ap[k5]);
                    c50 = Vector512.FusedMultiplyAdd(x, b0, c50);
            }
            if (rowsValid > 0) Store1(c0Ptr, relu, c00);
            if (rowsValid > 1) Store1(c1Ptr, relu, c10);
            if (rowsValid > 2) Store1(c2Ptr, relu, c20);
            if (rowsValid > 3) Store1(c3Ptr, relu, c30);
            if (rowsValid > 4) Store1(c4Ptr, relu, c40);
            if (rowsValid > 5) Store1(c5Ptr, relu, c50);
    }

    // The Vector<float> microkernel of the indirect GEMM: a 6 x (2 x Vector<float>.Count) tile of C in 12 vector
    // registers, 6 x 16 with AVX2 and 6 x 8 with 128-bit vectors.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void KernelVector6x2(float* a, int* rowOffsets, int* segments, int segmentCount, int segmentLength,
        float* b, int n, float* c0Ptr, float* c1Ptr, float* c2Ptr, float* c3Ptr, float* c4Ptr, float* c5Ptr,
        int rowsValid, float* bias, GemmInit init, bool relu)
    {
        Vector<float> c00 = StartVector(init, c0Ptr + 0, bias + 0);
        Vector<float> c01 = StartVector(init, c0Ptr + Vector<float>.Count, bias + Vector<float>.Count);
        Vector<float> c10 = StartVector(init, c1Ptr + 0, bias + 0);
        Vector<float> c11 = StartVector(init, c1Ptr + Vector<float>.Count, bias + Vector<float>.Count);
        Vector<float> c20 = StartVector(init, c2Ptr + 0, bias + 0);
        Vector<float> c21 = StartVector(init, c2Ptr + Vector<float>.Count, bias + Vector<float>.Count);
        Vector<float> c30 = StartVector(init, c3Ptr + 0, bias + 0);
        Vector<float> c31 = StartVector(init, c3Ptr + Vector<float>.Count, bias + Vector<float>.Count);
        Vector<float> c40 = StartVector(init, c4Ptr + 0, bias + 0);
        Vector<float> c41 = StartVector(init, c4Ptr + Vector<float>.Count, bias + Vector<float>.Count);
        Vector<float> c50 = StartVector(init, c5Ptr + 0, bias + 0);
        Vector<float> c51 = StartVector(init, c5Ptr + Vector<float>.Count, bias + Vector<float>.Count);
        Vector<float> x;
        float* bk = b;
        for (int s = 0; s < segmentCount; s++)
        {
            float* a0 = a + rowOffsets[0] + segments[s], a1 = a + rowOffsets[1] + segments[s], a2 = a + rowOffsets[2] + segments[s];
            float* a3 = a + rowOffsets[3] + segments[s], a4 = a + rowOffsets[4] + segments[s], a5 = a + rowOffsets[5] + segments[s];
            for (int j = 0; j < segmentLength; j++, bk += n)
            {
                Vector<float> b0 = Vector.Load(bk + 0);
                Vector<float> b1 = Vector.Load(bk + Vector<float>.Count);
                x = new Vector<float>(a0[j]);
                c00 = Vector.FusedMultiplyAdd(x, b0, c00);
                c01 = Vector.FusedMultiplyAdd(x, b1, c01);
                x = new Vector<float>(a1[j]);
                c10 = Vector.FusedMultiplyAdd(x, b0, c10);
                c11 = Vector.FusedMultiplyAdd(x, b1, c11);
                x = new Vector<float>(a2[j]);
                c20 = Vector.FusedMultiplyAdd(x, b0, c20);
                c21 = Vector.FusedMultiplyAdd(x, b1, c21);
                x = new Vector<float>(a3[j]);
                c30 = Vector.FusedMultiplyAdd(x, b0, c30);
                c31 = Vector.FusedMultiplyAdd(x, b1, c31);
                x = new Vector<float>(a4[j]);
                c40 = Vector.FusedMultiplyAdd(x, b0, c40);
                c41 = Vector.FusedMultiplyAdd(x, b1, c41);
                x = new Vector<float>(a5[j]);
                c50 = Vector.FusedMultiplyAdd(x, b0, c50);
                c51 = Vector.FusedMultiplyAdd(x, b1, c51);
            }
        }
        if (rowsValid > 0) StoreVector2(c0Ptr, relu, c00, c01);
        if (rowsValid > 1) StoreVector2(c1Ptr, relu, c10, c11);
        if (rowsValid > 2) StoreVector2(c2Ptr, relu, c20, c21);
        if (rowsValid > 3) StoreVector2(c3Ptr, relu, c30, c31);
        if (rowsValid > 4) StoreVector2(c4Ptr, relu, c40, c41);
        if (rowsValid > 5) StoreVector2(c5Ptr, relu, c50, c51);
    }

    // The Vector<float> microkernel of the transposed product: dW[6 k-rows, 2 x Vector<float>.Count columns] over i ascending.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void KernelAtBVector6x2(float* a, int* rows, int m, int* kIndex, float* d, int n,
        float* c0Ptr, float* c1Ptr, float* c2Ptr, float* c3Ptr, float* c4Ptr, float* c5Ptr, int rowsValid, bool accumulate)
    {
        GemmInit init = accumulate ? GemmInit.Accumulate : GemmInit.Zero;
        float* bias = null;
        const bool relu = false;
        Vector<float> c00 = StartVector(init, c0Ptr + 0, bias + 0);
        Vector<float> c01 = StartVector(init, c0Ptr + Vector<float>.Count, bias + Vector<float>.Count);
        Vector<float> c10 = StartVector(init, c1Ptr + 0, bias + 0);
        Vector<float> c11 = StartVector(init, c1Ptr + Vector<float>.Count, bias + Vector<float>.Count);
        Vector<float> c20 = StartVector(init, c2Ptr + 0, bias + 0);
        Vector<float> c21 = StartVector(init, c2Ptr + Vector<float>.Count, bias + Vector<float>.Count);
        Vector<float> c30 = StartVector(init, c3Ptr + 0, bias + 0);
        Vector<float> c31 = StartVector(init, c3Ptr + Vector<float>.Count, bias + Vector<float>.Count);
        Vector<float> c40 = StartVector(init, c4Ptr + 0, bias + 0);
        Vector<float> c41 = StartVector(init, c4Ptr + Vector<float>.Count, bias + Vector<float>.Count);
        Vector<float> c50 = StartVector(init, c5Ptr + 0, bias + 0);
        Vector<float> c51 = StartVector(init, c5Ptr + Vector<float>.Count, bias + Vector<float>.Count);
        Vector<float> x;
        int k0 = kIndex[0], k1 = kIndex[1], k2 = kIndex[2], k3 = kIndex[3], k4 = kIndex[4], k5 = kIndex[5];
        float* bk = d;
        for (int i = 0; i < m; i++, bk += n)
        {
            float* ap = a + rows[i];
            Vector<float> b0 = Vector.Load(bk + 0);
            Vector<float> b1 = Vector.Load(bk + Vector<float>.Count);
            x = new Vector<float>(ap[k0]);
            c00 = Vector.FusedMultiplyAdd(x, b0, c00);
            c01 = Vector.FusedMultiplyAdd(x, b1, c01);
            x = new Vector<float>(ap[k1]);
            c10 = Vector.FusedMultiplyAdd(x, b0, c10);
            c11 = Vector.FusedMultiplyAdd(x, b1, c11);
            x = new Vector<float>(ap[k2]);
            c20 = Vector.FusedMultiplyAdd(x, b0, c20);
            c21 = Vector.FusedMultiplyAdd(x, b1, c21);
            x = new Vector<float>(ap[k3]);
            c30 = Vector.FusedMultiplyAdd(x, b0, c30);
            c31 = Vector.FusedMultiplyAdd(x, b1, c31);
            x = new Vector<float>(ap[k4]);
            c40 = Vector.FusedMultiplyAdd(x, b0, c40);
            c41 = Vector.FusedMultiplyAdd(x, b1, c41);
            x = new Vector<float>(ap[k5]);
            c50 = Vector.FusedMultiplyAdd(x, b0, c50);
            c51 = Vector.FusedMultiplyAdd(x, b1, c51);
        }
        if (rowsValid > 0) StoreVector2(c0Ptr, relu, c00, c01);
        if (rowsValid > 1) StoreVector2(c1Ptr, relu, c10, c11);
        if (rowsValid > 2) StoreVector2(c2Ptr, relu, c20, c21);
        if (rowsValid > 3) StoreVector2(c3Ptr, relu, c30, c31);
        if (rowsValid > 4) StoreVector2(c4Ptr, relu, c40, c41);
        if (rowsValid > 5) StoreVector2(c5Ptr, relu, c50, c51);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector<float> StartVector(GemmInit init, float* c, float* bias) => init switch
    {
        GemmInit.Zero => Vector<float>.Zero,
        GemmInit.Bias => Vector.Load(bias),
        _ => Vector.Load(c),
    };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreVector2(float* c, bool relu, Vector<float> v0, Vector<float> v1)
    {
        (relu ? Vector.Max(v0, Vector<float>.Zero) : v0).Store(c);
        (relu ? Vector.Max(v1, Vector<float>.Zero) : v1).Store(c + Vector<float>.Count);
    }
}
