// What `cnn bench --local-workers/--workers` reports of its ratio: the median of the repeat pairs with, from 6 pairs
// on, the 95% confidence interval of that median, on the table's ratio line and as ratioInterval in --json (null, and
// no interval on the line, below 6 pairs); and, for a local cluster, the process's CPU time per step of both paths.
// The measurement itself needs a cluster and minutes; these tests build the result it returns.
using System.Text.Json;
using Cnn.Coordinator.Commands;
using Cnn.Coordinator.Runs;
using Xunit;

namespace Cnn.Coordinator.Tests;

public sealed class ClusterBenchOutputTests
{
    private static ClusterBenchResult Result(double[] ratios, CpuPerStep? cpu = null)
    {
        double[] cluster = ratios.Select(r => 4000 * r).ToArray(), local = ratios.Select(_ => 4000.0).ToArray();
        double median = ratios.Order().ElementAt(ratios.Length / 2);
        var report = new BackendReport([], 100, 18.4, 16.9, 16.1, 1.5, 0.081, 800_000, "tcp data plane", []);
        return new ClusterBenchResult("seed-cnn", "local cluster", 2, 1, 2,
            new ThroughputResult(64, 400, ratios.Length, 60, median * 4000, cluster), new ThroughputResult(64, 400, ratios.Length, 60, 4000, local),
            median, MedianInterval.Of(ratios), new ThroughputResult(1000, 1, 5, 1, 12_000, [12_000]), 1.1, report, true,
            new MemoryResult(250 << 20, 40 << 20), MachineInfo.Current, 300, cpu);
    }

    private static string[] Lines(ClusterBenchResult result)
    {
        var output = new StringWriter();
        BenchCommand.PrintCluster(result, output);
        return output.ToString().Split('\n').Select(l => l.TrimEnd()).ToArray();
    }

    [Fact]
    public void A_local_cluster_bench_prints_the_cpu_time_per_step_of_both_paths_and_the_cluster_s_excess()
    {
        double[] ratios = [0.91, 0.84, 0.88, 0.80, 0.87, 0.86, 0.93, 0.85, 0.89];
        Assert.Equal("cpu        36.42 ms of this process's CPU time a cluster step, 32.10 ms a --no-cluster step (+13.5 %: the cluster's threads beside the computation, and kernel time)",
            Lines(Result(ratios, new CpuPerStep(36.42, 32.1))).Single(l => l.StartsWith("cpu", StringComparison.Ordinal)));
        Assert.DoesNotContain(Lines(Result(ratios)), l => l.StartsWith("cpu", StringComparison.Ordinal)); // worker processes: not this process's
        JsonElement cpu = JsonDocument.Parse(JsonSerializer.Serialize(Result(ratios, new CpuPerStep(36.42, 32.1)), RunJson.Options)).RootElement.GetProperty("cpu");
        Assert.Equal(36.42, cpu.GetProperty("clusterMilliseconds").GetDouble());
        Assert.Equal(32.1, cpu.GetProperty("noClusterMilliseconds").GetDouble());
    }

    private static string RatioLine(ClusterBenchResult result) => Lines(result).Single(l => l.StartsWith("ratio", StringComparison.Ordinal));

    [Fact]
    public void The_ratio_line_gives_the_median_and_its_95_percent_interval()
    {
        // 9 pairs: the interval is the 2nd smallest to the 2nd largest.
        double[] ratios = [0.91, 0.84, 0.88, 0.80, 0.87, 0.86, 0.93, 0.85, 0.89];
        Assert.Equal("ratio      87.0 % of --no-cluster (median of the 9 repeat pairs; 95 % confidence interval of the median 84.0 % to 91.0 %); "
            + "weights after the same steps identical: yes", RatioLine(Result(ratios)));
    }

    [Fact]
    public void Below_6_pairs_the_ratio_line_has_no_interval()
    {
        Assert.Equal("ratio      86.0 % of --no-cluster (median of the 5 repeat pairs); weights after the same steps identical: yes",
            RatioLine(Result([0.84, 0.86, 0.88, 0.80, 0.90])));
    }

    [Fact]
    public void The_json_carries_the_interval_or_null()
    {
        JsonElement with = JsonDocument.Parse(JsonSerializer.Serialize(Result([0.91, 0.84, 0.88, 0.80, 0.87, 0.86, 0.93, 0.85, 0.89]), RunJson.Options))
            .RootElement.GetProperty("ratioInterval");
        Assert.Equal(0.84, with.GetProperty("low").GetDouble());
        Assert.Equal(0.91, with.GetProperty("high").GetDouble());
        Assert.Equal(2, with.GetProperty("rank").GetInt32());
        Assert.Equal(9, with.GetProperty("count").GetInt32());
        Assert.Equal(0.9609375, with.GetProperty("coverage").GetDouble(), 12);

        JsonElement without = JsonDocument.Parse(JsonSerializer.Serialize(Result([0.84, 0.86, 0.88, 0.80, 0.90]), RunJson.Options))
            .RootElement.GetProperty("ratioInterval");
        Assert.Equal(JsonValueKind.Null, without.ValueKind);
    }
}
