// target[i] += add[i]: the element-wise sum behind the tree reduction of gradients (every worker and the
// parameter server run it over the whole parameter buffer each step), the fan-in of gradients in a graph, and the
// col2im scatter on machines without AVX-512. AVX-512 takes the body, Vector<float> (8 lanes with AVX2, 4 with
// ARM64's 128-bit vectors) what is left or all of it without AVX-512, then scalar.
//
// Our own loop rather than TensorPrimitives.Add, which computes the same bits: the library's loops are compiled
// by the tiered JIT like any other code, so for the first seconds of a process they run unoptimized (tier 0, then
// the instrumented tier of dynamic PGO, where Vector512 operations are calls). Measured in a local cluster, where
// three ActorSystems keep the JIT busy, that phase lasted 300 to 450 steps at 1.5 to 2 times the step time.
// This method is compiled fully optimized on its first call, like every kernel here.
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Cnn.Engine.Kernels.Reference;

namespace Cnn.Engine.Kernels;

/// <summary>In-place element-wise addition (see file header).</summary>
public static class Accumulate
{
    /// <summary>target[i] += add[i] for every i; the spans have the same length and must not overlap unless equal.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    public static void Add(Span<float> target, ReadOnlySpan<float> add)
    {
        if (add.Length != target.Length) throw new ArgumentException($"adding {add.Length} floats to {target.Length}", nameof(add));
        int n = target.Length, i = 0;
        ref float t = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(target);
        ref float a = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(add);
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i + 64 <= n; i += 64)
            {
                (Vector512.LoadUnsafe(ref t, (nuint)i) + Vector512.LoadUnsafe(ref a, (nuint)i)).StoreUnsafe(ref t, (nuint)i);
                (Vector512.LoadUnsafe(ref t, (nuint)(i + 16)) + Vector512.LoadUnsafe(ref a, (nuint)(i + 16))).StoreUnsafe(ref t, (nuint)(i + 16));
                (Vector512.LoadUnsafe(ref t, (nuint)(i + 32)) + Vector512.LoadUnsafe(ref a, (nuint)(i + 32))).StoreUnsafe(ref t, (nuint)(i + 32));
                (Vector512.LoadUnsafe(ref t, (nuint)(i + 48)) + Vector512.LoadUnsafe(ref a, (nuint)(i + 48))).StoreUnsafe(ref t, (nuint)(i + 48));
            }
            for (; i + 16 <= n; i += 16)
                (Vector512.LoadUnsafe(ref t, (nuint)i) + Vector512.LoadUnsafe(ref a, (nuint)i)).StoreUnsafe(ref t, (nuint)i);
        }
        if (Vector.IsHardwareAccelerated)
            for (; i + Vector<float>.Count <= n; i += Vector<float>.Count)
                (Vector.LoadUnsafe(ref t, (nuint)i) + Vector.LoadUnsafe(ref a, (nuint)i)).StoreUnsafe(ref t, (nuint)i);
        AccumulateReference.Add(target[i..], add[i..]);
    }
}
