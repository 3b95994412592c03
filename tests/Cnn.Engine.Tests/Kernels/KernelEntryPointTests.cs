// The public SIMD kernels are compiled on their own, never inlined into their callers. Inlined into a large
// caller that dynamic PGO recompiles, a kernel's vector helpers (span slicing, Vector512.Create, CopyTo) can be
// left as calls with the vectors spilled to the stack when the caller's inlining budget runs out: that made the
// parameter server's Adam update 2.3 times slower. A kernel works on whole tensors, so the call costs nothing.
using System.Reflection;
using System.Runtime.CompilerServices;
using Cnn.Engine.Kernels;
using Xunit;

namespace Cnn.Engine.Tests.Kernels;

public sealed class KernelEntryPointTests
{
    [Fact]
    public void Every_public_optimised_kernel_is_never_inlined()
    {
        var kernels = typeof(AdamKernel).Assembly.GetTypes()
            .Where(t => t.Namespace == typeof(AdamKernel).Namespace && t.IsPublic)
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Static | BindingFlags.DeclaredOnly))
            .Where(m => m.MethodImplementationFlags.HasFlag(MethodImplAttributes.AggressiveOptimization))
            .ToList();

        Assert.Contains(kernels, m => m.DeclaringType == typeof(AdamKernel) && m.Name == nameof(AdamKernel.Update));
        Assert.True(kernels.Count >= 10, $"only {kernels.Count} optimised kernels found");
        Assert.All(kernels, m => Assert.True(m.MethodImplementationFlags.HasFlag(MethodImplAttributes.NoInlining),
            $"{m.DeclaringType!.Name}.{m.Name} is optimised aggressively but may be inlined"));
    }
}
