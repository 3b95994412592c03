// Both programs cap the GC's young-generation budget (Directory.Build.props). Without the cap the GC sizes it from
// the L3 cache, and on a host with a large one a 5-epoch local-cluster run peaked at 290 MB of resident memory,
// close to issue 3's 300 MB; with it, 230 MB. The runtime reads the cap from each program's runtimeconfig.json.
// Both also turn dynamic PGO off: its second, instrumented compilation of every hot method cost a local-cluster run
// about 3 s of one core's time in its first epoch, for no measured gain once warm (docs/performance.md, thirty-first session).
using System.Text.Json;
using Xunit;

namespace Cnn.Coordinator.Tests;

public sealed class RuntimeConfigTests
{
    [Theory]
    [InlineData("Cnn.Coordinator")]
    [InlineData("Cnn.Worker")]
    public void The_program_caps_the_young_generation_budget_at_16_MB(string program) =>
        Assert.Equal(16L << 20, Setting(program, "System.GC.Gen0MaxBudget").GetInt64());

    [Theory]
    [InlineData("Cnn.Coordinator")]
    [InlineData("Cnn.Worker")]
    public void The_program_runs_without_dynamic_PGO(string program) =>
        Assert.False(Setting(program, "System.Runtime.TieredPGO").GetBoolean());

    // One configProperties entry of the program's runtimeconfig.json; the test fails if the file or the entry is missing.
    private static JsonElement Setting(string program, string name)
    {
        string path = Path.Combine(AppContext.BaseDirectory, program + ".runtimeconfig.json");
        Assert.True(File.Exists(path), $"{path} is missing");
        using JsonDocument config = JsonDocument.Parse(File.ReadAllText(path));
        JsonElement properties = config.RootElement.GetProperty("runtimeOptions").GetProperty("configProperties");
        Assert.True(properties.TryGetProperty(name, out JsonElement value), $"{path} does not set {name}");
        return value.Clone();
    }
}
