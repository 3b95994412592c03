// Help and version: the usage lines name the command `cnn` (not the assembly, Cnn.Coordinator), every command
// is listed, and --version prints the version.
using Xunit;
using static Cnn.Coordinator.Tests.TestSupport;

namespace Cnn.Coordinator.Tests;

public sealed class CliHelpTests
{
    [Fact]
    public void Help_names_the_command_cnn_and_lists_every_command()
    {
        CliResult result = RunCnn("--help");

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("cnn [command] [options]", result.Out);
        Assert.DoesNotContain("Cnn.Coordinator", result.Out);
        foreach (string command in new[] { "summary", "data", "train", "bench", "evaluate", "predict", "visualize", "plot" })
            Assert.Matches($@"(?m)^\s+{command}\s", result.Out);
    }

    [Theory]
    [InlineData("train", "cnn train [options]")]
    [InlineData("data", "cnn data [command] [options]")]
    public void A_command_s_help_gives_its_usage_under_cnn(string command, string usage)
    {
        CliResult result = RunCnn(command, "--help");

        Assert.Equal(0, result.ExitCode);
        Assert.Contains(usage, result.Out);
    }

    [Fact]
    public void Version_prints_one_line()
    {
        CliResult result = RunCnn("--version");

        Assert.Equal(0, result.ExitCode);
        Assert.Matches(@"^\d+\.\d+\.\d+\S*\s*$", result.Out);
    }
}
