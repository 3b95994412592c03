// The two data-plane reader loops, the parameter server's (DataPlaneServer.Read) and the worker's
// (WorkerDataPlane.Run), are entered once per connection and loop for the whole run. They must be compiled
// optimized at their first call: otherwise the tiered JIT compiles them again part-way through the run (on-stack
// replacement), on the reader's own thread, and the step whose frames it should read waits (see the methods'
// comments). These tests hold the attribute that says so in place, and check that the local cluster's warm-up can
// compile both readers ahead of time (the methods are found by name).
using System.Reflection;
using Cnn.Coordinator.Cluster;
using Cnn.Worker;
using Xunit;

namespace Cnn.Cluster.Tests;

public sealed class DataPlaneReaderCompilationTests
{
    [Theory]
    [InlineData(typeof(DataPlaneServer), "Read")]
    [InlineData(typeof(WorkerDataPlane), "Run")]
    public void A_reader_loop_is_compiled_optimized_from_its_first_call(Type owner, string method)
    {
        MethodInfo reader = owner.GetMethod(method, BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static)
            ?? throw new InvalidOperationException($"{owner.Name}.{method} is gone");
        Assert.True(reader.MethodImplementationFlags.HasFlag(MethodImplAttributes.AggressiveOptimization),
            $"{owner.Name}.{method} runs for the whole run and must not be left to tiered compilation");
    }

    [Fact]
    public void The_readers_can_be_compiled_ahead_of_their_first_connection()
    {
        DataPlaneServer.PrepareReader();
        WorkerActor.PrepareDataPlaneReader();
    }
}
