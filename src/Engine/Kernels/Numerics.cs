// Which code paths the kernels take on this machine. Two nodes give bit-identical results only when they run
// the same paths (the GEMM microkernels and the TensorPrimitives vector widths decide the rounding), so every
// worker reports this fingerprint when it joins and the coordinator refuses a mismatch.
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Cnn.Engine.Kernels;

/// <summary>The numerics fingerprint of this machine.</summary>
public static class Numerics
{
    /// <summary>Bump when a kernel's summation order changes.</summary>
    public const int KernelRevision = 1;

    /// <summary>E.g. "cnn-kernels/1 gemm=avx512 v512=1 v256=1 vector=8 fma=1 x64" (vector: the lanes of Vector&lt;float&gt;).</summary>
    public static string Fingerprint { get; } =
        $"cnn-kernels/{KernelRevision} gemm={Gemm.BestPath.ToString().ToLowerInvariant()} " +
        $"v512={(Vector512.IsHardwareAccelerated ? 1 : 0)} v256={(Vector256.IsHardwareAccelerated ? 1 : 0)} vector={System.Numerics.Vector<float>.Count} " +
        $"fma={(Fma.IsSupported ? 1 : 0)} {System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant()}";
}
