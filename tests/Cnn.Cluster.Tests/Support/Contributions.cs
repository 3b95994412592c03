// Building contributions for the parameter server the way a worker sends them: a header and the gradient sum of
// one tree node, either whole (the TCP data plane's path) or cut into GradientChunk messages with TensorChunks
// (the Akka path), and comparing float arrays bit for bit.
using System.Runtime.InteropServices;
using Cnn.Coordinator.Cluster;
using Cnn.Engine.Training;
using Cnn.Messages;
using Xunit;

namespace Cnn.Cluster.Tests.Support;

/// <summary>How a contribution reaches the parameter server.</summary>
public enum Route
{
    /// <summary>Accept(ContributionHeader, float[]): a whole gradient read from the data plane.</summary>
    Whole,
    /// <summary>Accept(GradientChunk) for every chunk, in order.</summary>
    Chunks,
}

/// <summary>Contribution builders and bitwise comparison.</summary>
public static class Contributions
{
    /// <summary>The header of <paramref name="sum"/> for step 0 at version 0 of <see cref="OneStep"/>'s run.</summary>
    public static ContributionHeader Header(GradientSum sum, int totalFloats, string worker = "worker-1") =>
        new(OneStep.RunId, 0, 0, sum.Node.First, sum.Node.Count, OneStep.Leaves, totalFloats, sum.LossSum, sum.Correct, sum.Samples, worker, 1.5);

    /// <summary>The chunks a worker sends for <paramref name="h"/> and <paramref name="gradients"/>, in index order.</summary>
    public static List<GradientChunk> Chunks(ContributionHeader h, float[] gradients)
    {
        int count = TensorChunks.ChunkCount(gradients.Length);
        var chunks = new List<GradientChunk>(count);
        for (int i = 0; i < count; i++)
        {
            byte[] data = TensorChunks.Slice(gradients, i, out int offset);
            chunks.Add(new GradientChunk(h.RunId, h.Step, h.Version, h.NodeFirst, h.NodeCount, h.LeafCount, i, count, offset, h.TotalFloats, data,
                h.LossSum, h.Correct, h.Samples, h.WorkerId, h.ComputeMilliseconds));
        }
        return chunks;
    }

    /// <summary>
    /// Hands one contribution to <paramref name="server"/> by <paramref name="route"/> and returns the outcome that
    /// decides it: for chunks, the first outcome that is neither Partial nor Ignored. (How many reasons one
    /// contribution may draw is ParameterServerStateTests' business, not this helper's.)
    /// </summary>
    public static ChunkOutcome Submit(ParameterServerState server, ContributionHeader h, float[] gradients, Route route)
    {
        if (route == Route.Whole) return server.Accept(h, gradients);
        List<ChunkOutcome> outcomes = Chunks(h, gradients).Select(server.Accept).ToList();
        ChunkOutcome? decisive = outcomes.FirstOrDefault(o => o is not (ChunkOutcome.Partial or ChunkOutcome.Ignored));
        Assert.True(decisive is not null, $"no chunk decided the contribution: {string.Join(", ", outcomes)}");
        return decisive;
    }

    /// <summary>The single outcome of a sequence of chunk outcomes that is neither Partial nor Ignored.</summary>
    public static ChunkOutcome Decisive(IReadOnlyList<ChunkOutcome> outcomes)
    {
        var decisive = outcomes.Where(o => o is not (ChunkOutcome.Partial or ChunkOutcome.Ignored)).ToList();
        Assert.True(decisive.Count == 1, $"expected one deciding outcome, got: {string.Join(", ", outcomes)}");
        return decisive[0];
    }

    /// <summary>Asserts that two float arrays hold the same bits, naming the first difference.</summary>
    public static void AssertBitIdentical(float[] expected, float[] actual, string what)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: {actual.Length} floats, expected {expected.Length}");
        if (MemoryMarshal.AsBytes(expected.AsSpan()).SequenceEqual(MemoryMarshal.AsBytes(actual.AsSpan()))) return;
        int i = 0;
        while (BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i])) i++;
        Assert.Fail($"{what}: float {i} is {actual[i]:R}, expected {expected[i]:R} (and maybe more differ)");
    }
}
