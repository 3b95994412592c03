// `cnn` lowers the priority of a `dotnet run` that started it (src/Coordinator/Launcher.cs). These tests check how it
// recognises that launcher and that the lowering reaches every thread of a real process. Linux only, like the feature.
using System.Diagnostics;
using Xunit;

namespace Cnn.Coordinator.Tests;

public sealed class LauncherTests
{
    [Theory]
    [InlineData(true, "dotnet", "run", "-c", "Release", "--project", "src/Coordinator", "--", "train")]
    [InlineData(true, "/usr/share/dotnet/dotnet", "run")]
    [InlineData(false, "dotnet", "exec", "src/Coordinator/bin/Release/net10.0/r2r/Cnn.Coordinator.dll", "train")]
    [InlineData(false, "dotnet", "test", "--", "run")]
    [InlineData(false, "bash", "run")]
    [InlineData(false, "/usr/bin/dotnet-run", "run")]
    [InlineData(false, "dotnet")]
    [InlineData(false)]
    public void Only_the_SDK_s_dotnet_run_is_the_launcher_to_yield_to(bool expected, params string[] arguments) =>
        Assert.Equal(expected, Launcher.IsDotnetRun(arguments));

    [Fact]
    public void The_parent_is_read_after_the_command_name_even_when_the_name_holds_spaces_and_parentheses() =>
        Assert.Equal(977, ParentOfLine("4242 (In-proc (Node) 1 ) S 977 4242 977 0 -1 4194560 100 0 0 0 5 2 0 0 20 0 28 0\n"));

    [Theory]
    [InlineData("")]
    [InlineData("4242 bash S 977\n")]
    [InlineData("4242 (bash)")]
    [InlineData("4242 (bash) S\n")]
    [InlineData("4242 (bash) S x 4242\n")]
    public void A_stat_line_not_in_the_expected_form_gives_no_parent(string line) =>
        Assert.Equal(0, ParentOfLine(line));

    [Fact]
    public void The_parent_of_a_process_we_start_is_this_process()
    {
        if (!OperatingSystem.IsLinux())
            return;
        WithChild(child => Assert.Equal(Environment.ProcessId, Launcher.ParentOf($"/proc/{child}/stat")));
    }

    [Fact]
    public void Every_thread_of_the_process_is_set_to_the_lowest_priority()
    {
        if (!OperatingSystem.IsLinux())
            return;
        WithChild(child =>
        {
            int lowered = Launcher.LowerPriority(child);

            int[] after = Niceness(child);
            Assert.Equal(after.Length, lowered);
            Assert.All(after, nice => Assert.Equal(19, nice));
        });
    }

    // Launcher.ParentOf of a stat file holding `line`.
    private static int ParentOfLine(string line)
    {
        string path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, line);
            return Launcher.ParentOf(path);
        }
        finally
        {
            File.Delete(path);
        }
    }

    // Runs a check on a child process of ours that waits, and ends it after.
    private static void WithChild(Action<int> check)
    {
        using var child = Process.Start(new ProcessStartInfo("sleep", "30") { UseShellExecute = false })!;
        try
        {
            check(child.Id);
        }
        finally
        {
            child.Kill();
            child.WaitForExit();
        }
    }

    private static int[] Niceness(int pid) =>
        Directory.GetDirectories($"/proc/{pid}/task")
            .Select(task => int.Parse(Launcher.StatFields(Path.Combine(task, "stat"))[16])) // nice is field 19 of the line
            .ToArray();
}
