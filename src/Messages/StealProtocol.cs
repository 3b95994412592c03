// The work-stealing conversation of a step, on the data plane (Messages/DataPlane.cs), in the order it happens:
//
//   Owner (slower worker)          ParameterServer                 Thief (faster worker)
//     | -- LeafStarted ------------> |                                |   just before it starts the last leaf of its share
//     |                              | <------------- StealRequest -- |   its share is done and sent
//     | <-------------- LeafClaimed -- | -- StealGrant --------------> |   a leaf no owner has started, or Leaf = -1: none
//     |  skips the claimed leaf and  |                                |   computes the leaf and sends it as its own
//     |  sends its share as the      |                                |   subtree of one leaf
//     |  subtrees left               |                                |
//
// The parameter server decides, in the order the requests and announcements reach it, so one leaf is granted
// once. A leaf's gradient has the same bits whoever computes it, and the server reduces whatever subtrees cover
// the batch in the fixed tree order, so stealing never changes the weights. A worker does not ask once part of the
// next weights has reached it: the server updates a tail only when the whole batch's tails are in, so every leaf
// has been started by then (Worker/StealState.cs). Keys are append-only.
using MessagePack;

namespace Cnn.Messages;

/// <summary>Owner to server: the worker is about to start <c>Leaf</c>, the last leaf of its share of step <c>Step</c>.</summary>
[MessagePackObject]
public sealed record LeafStarted(
    [property: Key(0)] string RunId,
    [property: Key(1)] long Step,
    [property: Key(2)] string WorkerId,
    [property: Key(3)] int Leaf) : ICnnMessage;

/// <summary>Thief to server: the worker has sent its share of step <c>Step</c> (weights <c>Version</c>) and asks for a leaf.</summary>
[MessagePackObject]
public sealed record StealRequest(
    [property: Key(0)] string RunId,
    [property: Key(1)] long Step,
    [property: Key(2)] long Version,
    [property: Key(3)] string WorkerId) : ICnnMessage;

/// <summary>Server to thief: compute <c>Leaf</c> of step <c>Step</c> with weights <c>Version</c>, or nothing when Leaf is -1.</summary>
[MessagePackObject]
public sealed record StealGrant(
    [property: Key(0)] string RunId,
    [property: Key(1)] long Step,
    [property: Key(2)] long Version,
    [property: Key(3)] int Leaf) : ICnnMessage;

/// <summary>Server to owner: another worker computes <c>Leaf</c> of step <c>Step</c>; skip it unless it has begun.</summary>
[MessagePackObject]
public sealed record LeafClaimed(
    [property: Key(0)] string RunId,
    [property: Key(1)] long Step,
    [property: Key(2)] int Leaf) : ICnnMessage;
