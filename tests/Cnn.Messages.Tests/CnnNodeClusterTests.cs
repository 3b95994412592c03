// Tests that two nodes configured by CnnNode form a cluster over real TCP on loopback and carry a tensor:
// the coordinator is the TestKit's own system, built from the plain CnnNode.Config on a free port and joined to
// itself; the worker is built through Akka.Hosting and WithCnnNode with the coordinator as its seed. Every chunk
// crosses a node boundary, so the serializer binding, the frame size and the socket buffers are all exercised.
// It does not test failure handling: the Split Brain Resolver's timings belong to the coordinator's tests.
using System.Diagnostics;
using System.Runtime.InteropServices;
using Akka.Actor;
using Akka.Cluster;
using Akka.TestKit.Xunit2;
using Xunit;
using Xunit.Abstractions;

namespace Cnn.Messages.Tests;

public sealed class CnnNodeClusterTests : TestKit
{
    private readonly ITestOutputHelper _output;

    public CnnNodeClusterTests(ITestOutputHelper output)
        : base(CnnNode.Config(new CnnNodeOptions { Role = CnnNode.CoordinatorRole }), CnnNode.SystemName, output)
    {
        _output = output;
    }

    [Fact]
    public void A_worker_joins_the_coordinator_quickly_and_sends_it_six_megabytes_of_weights_in_chunks()
    {
        var coordinator = Cluster.Get(Sys);
        coordinator.Join(coordinator.SelfAddress);
        var clock = Stopwatch.StartNew();
        using var worker = HostedNode.Start(new CnnNodeOptions
        {
            Role = CnnNode.WorkerRole,
            SeedNodes = [CnnNode.SeedAddress(coordinator.SelfAddress.Host!, coordinator.SelfAddress.Port!.Value)],
        });

        AwaitCondition(() => UpMembers(Sys) == 2 && UpMembers(worker.System) == 2, TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(20));
        var formed = clock.Elapsed;
        _output.WriteLine($"cluster of 2 Up after {formed.TotalMilliseconds:F0} ms");

        var weights = new float[1_500_000];
        new Random(5).NextBytes(MemoryMarshal.AsBytes(weights.AsSpan()));
        var count = TensorChunks.ChunkCount(weights.Length);
        var inbox = worker.System.ActorSelection(TestActor.Path.ToStringWithAddress(coordinator.SelfAddress));
        clock.Restart();
        for (var i = count - 1; i >= 0; i--)
        {
            var data = TensorChunks.Slice(weights, i, out var offset);
            inbox.Tell(new WeightsChunk("run-1", 3, i, count, offset, weights.Length, data));
        }
        var assembler = new TensorAssembler(weights.Length);
        for (var i = 0; i < count; i++)
        {
            var chunk = ExpectMsg<WeightsChunk>(TimeSpan.FromSeconds(10));
            Assert.True(assembler.Add(chunk.ChunkIndex, chunk.ChunkCount, chunk.Offset, chunk.TotalFloats, chunk.Data, out var error), error);
        }
        _output.WriteLine($"{count} chunks, 6 MB, crossed in {clock.Elapsed.TotalMilliseconds:F0} ms");

        Assert.True(formed < TimeSpan.FromSeconds(5), $"the cluster took {formed.TotalSeconds:F1} s to form");
        Assert.True(MemoryMarshal.AsBytes(weights.AsSpan()).SequenceEqual(MemoryMarshal.AsBytes(assembler.Result.AsSpan())));
        Assert.Equal(["coordinator"], coordinator.State.Members.Single(m => m.Address == coordinator.SelfAddress).Roles);
        Assert.Contains(coordinator.State.Members, m => m.HasRole(CnnNode.WorkerRole));
    }

    private static int UpMembers(ActorSystem system) =>
        Cluster.Get(system).State.Members.Count(m => m.Status == MemberStatus.Up);
}
