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
    public void The_program_caps_the_young_generation_budget_at_16_MB(string program)
    {
        JsonElement properties = ConfigProperties(program);
        Assert.True(properties.TryGetProperty("System.GC.Gen0MaxBudget", out JsonElement budget), $"{program}.runtimeconfig.json does not set System.GC.Gen0MaxBudget");
        Assert.Equal(16L << 20, budget.GetInt64());
    }

    [Theory]
    [InlineData("Cnn.Coordinator")]
    [InlineData("Cnn.Worker")]
    public void The_program_runs_without_dynamic_PGO(string program)
    {
        JsonElement properties = ConfigProperties(program);
        Assert.True(properties.TryGetProperty("System.Runtime.TieredPGO", out JsonElement pgo), $"{program}.runtimeconfig.json does not set System.Runtime.TieredPGO");
        Assert.False(pgo.GetBoolean());
    }

    private static JsonElement ConfigProperties(string program)
    {
        string path = Path.Combine(AppContext.BaseDirectory, program + ".runtimeconfig.json");
        Assert.True(File.Exists(path), $"{path} is missing");
        using JsonDocument config = JsonDocument.Parse(File.ReadAllText(path));
        return config.RootElement.GetProperty("runtimeOptions").GetProperty("configProperties").Clone();
    }
}
