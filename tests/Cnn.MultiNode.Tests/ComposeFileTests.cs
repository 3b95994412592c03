// docker-compose.yml (and its TLS override) configure the programs only through variables the programs read:
// the worker service sets exactly the worker host's variables, the coordinator service only the coordinator's,
// deploy/local-cluster.sh starts workers with the same names as the compose file, and the coordinator waits for
// as many workers as the compose file starts by default. There is no Docker engine here, so these text-level
// checks are what keeps the deployment files honest. The YAML is read as text with a reader for the subset
// these files use (block mappings, lists and inline lists).
using System.Reflection;
using System.Text.RegularExpressions;
using Cnn.Coordinator.Commands;
using Cnn.Worker;
using Xunit;

namespace Cnn.MultiNode.Tests;

public sealed partial class ComposeFileTests
{
    private static readonly string[] WorkerVariables = typeof(WorkerOptions.Env).GetFields(BindingFlags.Public | BindingFlags.Static)
        .Where(f => f.IsLiteral).Select(f => (string)f.GetRawConstantValue()!).ToArray();

    [Fact]
    public void The_worker_service_sets_exactly_the_variables_the_worker_host_reads()
    {
        var names = Environment("docker-compose.yml", "worker").Concat(Environment("docker-compose.tls.yml", "worker")).ToHashSet();

        Assert.Equal(WorkerVariables.Order(), names.Order());
    }

    [Fact]
    public void The_coordinator_service_sets_only_variables_the_coordinator_reads()
    {
        var names = Environment("docker-compose.yml", "coordinator").Concat(Environment("docker-compose.tls.yml", "coordinator")).ToHashSet();

        Assert.Equal(TrainCommand.EnvironmentVariables.Order(), names.Order());
        Assert.Empty(Environment("docker-compose.yml", "data"));
    }

    [Fact]
    public void The_coordinator_waits_for_as_many_workers_as_the_compose_file_starts_by_default()
    {
        string compose = File.ReadAllText(Programs.File("docker-compose.yml"));

        string workers = WorkersDefault().Match(compose).Groups[1].Value;
        string replicas = Replicas().Match(compose).Groups[1].Value;

        Assert.Equal("3", workers);
        Assert.Equal(workers, replicas);
        Assert.Contains("--public-host", compose);
    }

    [Fact]
    public void The_local_cluster_script_gives_workers_the_variables_of_the_compose_file()
    {
        string script = File.ReadAllText(Programs.File("deploy/local-cluster.sh"));
        var exported = ExportedVariable().Matches(script).Select(m => m.Groups[1].Value).ToHashSet();

        var compose = Environment("docker-compose.yml", "worker").ToHashSet();
        var tls = Environment("docker-compose.tls.yml", "worker").ToHashSet();
        Assert.Subset(exported, compose);
        Assert.Subset(tls, exported.Except(compose).ToHashSet());
        Assert.Contains(WorkerOptions.Env.TlsCertificate, exported);
    }

    [Fact]
    public void The_image_entrypoint_gives_a_worker_bound_to_every_interface_its_container_host_name()
    {
        string entrypoint = File.ReadAllText(Programs.File("deploy/docker-entrypoint.sh"));

        Assert.Contains("CNN_PUBLIC_HOST=\"$(hostname)\"", entrypoint);
        Assert.Contains("exec dotnet /app/Cnn.Worker.dll", entrypoint);
        Assert.Contains("exec dotnet /app/Cnn.Coordinator.dll", entrypoint);
    }

    // The CNN_* keys of one service's `environment:` block (mapping or KEY=VALUE list form).
    private static IEnumerable<string> Environment(string file, string service)
    {
        string[] lines = File.ReadAllLines(Programs.File(file));
        int start = Array.FindIndex(lines, l => l == "services:");
        Assert.True(start >= 0, $"{file} has no services: block");
        int serviceLine = Array.FindIndex(lines, start, l => l == $"  {service}:");
        if (serviceLine < 0) yield break;
        bool inEnvironment = false;
        for (int i = serviceLine + 1; i < lines.Length; i++)
        {
            string line = lines[i];
            if (line.Trim().Length == 0 || line.TrimStart().StartsWith('#')) continue;
            int indent = line.Length - line.TrimStart().Length;
            if (indent <= 2) yield break;                  // the next service or top-level key
            if (indent == 4)
            {
                inEnvironment = line.Trim() == "environment:";
                continue;
            }
            if (!inEnvironment) continue;
            string entry = line.Trim().TrimStart('-').Trim();
            Match key = EnvironmentKey().Match(entry);
            Assert.True(key.Success, $"{file}: cannot read the environment entry '{entry}' of {service}");
            yield return key.Groups[1].Value;
        }
    }

    [GeneratedRegex(@"^([A-Z][A-Z0-9_]*)\s*[:=]")]
    private static partial Regex EnvironmentKey();

    [GeneratedRegex(@"--workers\s*\n\s*- ""\$\{CNN_WORKERS:-(\d+)\}""")]
    private static partial Regex WorkersDefault();

    [GeneratedRegex(@"replicas:\s*(\d+)")]
    private static partial Regex Replicas();

    [GeneratedRegex(@"\b(CNN_[A-Z_]+)=")]
    private static partial Regex ExportedVariable();
}
