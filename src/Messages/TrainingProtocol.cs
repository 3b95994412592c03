// The coordinator <-> worker conversation, in the order it happens:
//
//   Worker                               Coordinator
//     | -- RegisterWorker --------------->  |   at start-up, and again after a coordinator restart
//     | <------- WorkerAccepted / Refused -- |   refused: dataset hash or numerics fingerprint differ;
//     |                                      |   accepted: run id and where the tensor data plane listens
//     | <------------- ComputeGradients ---- |   per step: sample ids of the batch and the subtrees to compute
//     |          (gradients go to the parameter server, ParameterProtocol.cs)
//     | <------------------ EvaluateRange -- |   validation / test: ids to evaluate with a weights version
//     | -- EvaluationResult --------------> |
//
// Every request carries the run id, the step and the weights version; every reply echoes them. Keys are
// append-only: never renumber a key, add new ones at the end.
using MessagePack;

namespace Cnn.Messages;

/// <summary>
/// A worker announces itself: identity, capacity and what it computes with. Cpus: the CPUs its computing threads are
/// pinned to, one per thread, or null when the scheduler places them (for run.json; it changes no result).
/// </summary>
[MessagePackObject]
public sealed record RegisterWorker(
    [property: Key(0)] string WorkerId,
    [property: Key(1)] int Threads,
    [property: Key(2)] string DatasetSha256,
    [property: Key(3)] string NumericsFingerprint,
    [property: Key(4)] int ProtocolVersion,
    [property: Key(5)] int[]? Cpus = null) : ICnnMessage;

/// <summary>
/// The coordinator takes the worker into the run and says what to build. DataPlaneEndpoint is "host:port" of the
/// parameter server's tensor data plane (Messages/DataPlane.cs), or empty when tensors travel as chunked Akka messages.
/// WorkStealing: a worker that has sent its share of a step asks for another worker's last leaf (StealProtocol.cs).
/// </summary>
[MessagePackObject]
public sealed record WorkerAccepted(
    [property: Key(0)] string RunId,
    [property: Key(1)] string WorkerId,
    [property: Key(2)] string Model,
    [property: Key(3)] int MicroBatch,
    [property: Key(4)] ulong Seed,
    [property: Key(5)] string DataPlaneEndpoint,
    [property: Key(6)] bool WorkStealing = false) : ICnnMessage;

/// <summary>The coordinator refuses the worker, with the reason it logs too.</summary>
[MessagePackObject]
public sealed record WorkerRefused(
    [property: Key(0)] string WorkerId,
    [property: Key(1)] string Reason) : ICnnMessage;

/// <summary>
/// The coordinator does not take a registration from a node that is not a member of its cluster (joining or up),
/// and says so: the node is left from another incarnation of the cluster (the coordinator was restarted) or was
/// removed from it while it could not hear. The worker's host then starts a new node and joins again, instead of
/// waiting for its own Split Brain Resolver to down the old one.
/// </summary>
[MessagePackObject]
public sealed record NotAMember(
    [property: Key(0)] string WorkerId,
    [property: Key(1)] string Reason) : ICnnMessage;

/// <summary>
/// Compute the gradient sums of whole subtrees of one batch with weights <c>Version</c>. Subtree i covers leaves
/// [NodeFirst[i], NodeFirst[i] + NodeCount[i]); BatchIds are the global sample ids of the whole batch, in order.
/// </summary>
[MessagePackObject]
public sealed record ComputeGradients(
    [property: Key(0)] string RunId,
    [property: Key(1)] long Step,
    [property: Key(2)] long Version,
    [property: Key(3)] int[] BatchIds,
    [property: Key(4)] int MicroBatch,
    [property: Key(5)] int[] NodeFirst,
    [property: Key(6)] int[] NodeCount) : ICnnMessage;

/// <summary>Which dataset an evaluation reads.</summary>
public enum EvaluationSet
{
    /// <summary>The held-out end of the training file.</summary>
    Validation = 0,
    /// <summary>The test file.</summary>
    Test = 1,
}

/// <summary>Evaluate ids [Start, Start + Count) of a set with weights <c>Version</c> (inference mode).</summary>
[MessagePackObject]
public sealed record EvaluateRange(
    [property: Key(0)] string RunId,
    [property: Key(1)] long EvaluationId,
    [property: Key(2)] long Version,
    [property: Key(3)] EvaluationSet Set,
    [property: Key(4)] int Start,
    [property: Key(5)] int Count) : ICnnMessage;

/// <summary>Loss sum and correct count of one evaluated range.</summary>
[MessagePackObject]
public sealed record EvaluationResult(
    [property: Key(0)] string RunId,
    [property: Key(1)] long EvaluationId,
    [property: Key(2)] int Start,
    [property: Key(3)] int Count,
    [property: Key(4)] double LossSum,
    [property: Key(5)] int Correct,
    [property: Key(6)] string WorkerId) : ICnnMessage;
