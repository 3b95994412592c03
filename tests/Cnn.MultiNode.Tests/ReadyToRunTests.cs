// The ReadyToRun copy a Release build publishes (Directory.Build.targets), which `dotnet run -c Release` and
// deploy/local-cluster.sh start: both programs side by side, the libraries compiled ahead of time, our own
// assemblies left as IL for the tiered JIT. A Debug build publishes no such copy.
using System.Reflection.PortableExecutable;
using Xunit;

namespace Cnn.MultiNode.Tests;

public sealed class ReadyToRunTests
{
    private static readonly string Directory = Programs.File(Path.Combine("src", "Coordinator", "bin", Programs.Configuration, "net10.0", "r2r"));

    // Whether the assembly carries native code compiled ahead of time (a ReadyToRun image has a managed native header).
    private static bool IsReadyToRun(string file)
    {
        using var pe = new PEReader(File.OpenRead(file));
        return pe.PEHeaders.CorHeader is { } cor && cor.ManagedNativeHeaderDirectory.Size > 0;
    }

    [Fact]
    public void A_release_build_publishes_both_programs_with_the_libraries_compiled_ahead_of_time()
    {
        if (Programs.Configuration != "Release")
        {
            Assert.False(System.IO.Directory.Exists(Directory), $"{Directory}: only a Release build publishes a ReadyToRun copy");
            return;
        }
        foreach (string file in (string[])["Cnn.Coordinator.runtimeconfig.json", "Cnn.Worker.runtimeconfig.json"])
            Assert.True(File.Exists(Path.Combine(Directory, file)), $"{file} is missing from {Directory}");
        foreach (string library in (string[])["Akka.dll", "Akka.Remote.dll", "Akka.Cluster.dll", "DotNetty.Transport.dll", "Google.Protobuf.dll", "MessagePack.dll"])
            Assert.True(IsReadyToRun(Path.Combine(Directory, library)), $"{library} is not compiled ahead of time");
        foreach (string own in (string[])["Cnn.Engine.dll", "Cnn.Messages.dll", "Cnn.Worker.dll", "Cnn.Coordinator.dll"])
            Assert.False(IsReadyToRun(Path.Combine(Directory, own)), $"{own} should stay IL for the tiered JIT");
    }

    [Fact]
    public void Local_cluster_script_starts_the_ready_to_run_copies()
    {
        string script = File.ReadAllText(Programs.File("deploy/local-cluster.sh"));
        Assert.Contains("src/Coordinator/bin/Release/net10.0/r2r/Cnn.Coordinator.dll", script);
        Assert.Contains("src/Coordinator/bin/Release/net10.0/r2r/Cnn.Worker.dll", script);
    }
}
