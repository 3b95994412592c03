// How a GEMM kernel starts each output element before it adds the products.
namespace Cnn.Engine.Kernels;

/// <summary>What an output element holds before the products are added to it.</summary>
public enum GemmInit
{
    /// <summary>Start from zero (overwrite the destination).</summary>
    Zero,
    /// <summary>Start from the bias of the output column.</summary>
    Bias,
    /// <summary>Start from the destination's current value (accumulate).</summary>
    Accumulate,
}
