// The worker <-> parameter server conversation, in the order it happens:
//
//   Worker                                      ParameterServer
//     | -- WeightsRequest ----------------------> |   after joining: send me the current weights
//     | <---------------------------- WeightsChunk |   weights of a version, in chunks (also broadcast after every step)
//     | -- GradientChunk -----------------------> |   one subtree's gradient sum, in chunks, with its loss and counts
//     | <-------------------- ContributionRejected |   stale, duplicate, unknown subtree, wrong length, not finite
//
// Tensors travel as raw little-endian float32 bytes (never as MessagePack arrays of floats) cut into chunks of
// at most TensorChunks.MaxChunkFloats floats, so that no message comes near maximum-frame-size and no buffer
// lands on the large object heap. Every chunk repeats the small header of its tensor, so chunks may arrive in
// any order and a half-sent tensor from a dead worker is simply never completed. Keys are append-only.
using MessagePack;

namespace Cnn.Messages;

/// <summary>A worker asks for the newest weights (it holds <c>HaveVersion</c>, or -1).</summary>
[MessagePackObject]
public sealed record WeightsRequest(
    [property: Key(0)] string RunId,
    [property: Key(1)] string WorkerId,
    [property: Key(2)] long HaveVersion) : ICnnMessage;

/// <summary>One chunk of the weights of <c>Version</c>: floats [Offset, Offset + Data.Length / 4) of TotalFloats.</summary>
[MessagePackObject]
public sealed record WeightsChunk(
    [property: Key(0)] string RunId,
    [property: Key(1)] long Version,
    [property: Key(2)] int ChunkIndex,
    [property: Key(3)] int ChunkCount,
    [property: Key(4)] int Offset,
    [property: Key(5)] int TotalFloats,
    [property: Key(6)] byte[] Data) : ICnnMessage;

/// <summary>
/// One chunk of the gradient sum of subtree [NodeFirst, NodeFirst + NodeCount) of step <c>Step</c> (a batch of
/// LeafCount leaves), computed with weights <c>Version</c>. The loss sum, correct count, sample count and
/// compute time of the subtree ride on every chunk.
/// </summary>
[MessagePackObject]
public sealed record GradientChunk(
    [property: Key(0)] string RunId,
    [property: Key(1)] long Step,
    [property: Key(2)] long Version,
    [property: Key(3)] int NodeFirst,
    [property: Key(4)] int NodeCount,
    [property: Key(5)] int LeafCount,
    [property: Key(6)] int ChunkIndex,
    [property: Key(7)] int ChunkCount,
    [property: Key(8)] int Offset,
    [property: Key(9)] int TotalFloats,
    [property: Key(10)] byte[] Data,
    [property: Key(11)] double LossSum,
    [property: Key(12)] int Correct,
    [property: Key(13)] int Samples,
    [property: Key(14)] string WorkerId,
    [property: Key(15)] double ComputeMilliseconds) : ICnnMessage;

/// <summary>The parameter server dropped a contribution, and why.</summary>
[MessagePackObject]
public sealed record ContributionRejected(
    [property: Key(0)] string RunId,
    [property: Key(1)] long Step,
    [property: Key(2)] long Version,
    [property: Key(3)] int NodeFirst,
    [property: Key(4)] int NodeCount,
    [property: Key(5)] string Reason) : ICnnMessage;
