// ThreadAffinity: the plan gives each worker's threads CPUs of their own, in order, or nothing when they do not all
// fit or the CPUs are unknown; on Linux a pinned thread's own affinity is its one CPU, a team pins its helper threads
// to theirs, and a CPU the process may not use is refused with the thread left where it was.
using System.Collections.Concurrent;
using Cnn.Engine.Training;
using Xunit;

namespace Cnn.Engine.Tests.Training;

public sealed class ThreadAffinityTests
{
    [Fact]
    public void Plan_gives_each_worker_consecutive_allowed_cpus_one_per_thread()
    {
        int[] allowed = [0, 2, 3, 5, 6, 7];

        IReadOnlyList<int>[] plan = ThreadAffinity.Plan(allowed, firstWorker: 0, workers: 3, threadsPerWorker: 2)!;

        Assert.Equal([[0, 2], [3, 5], [6, 7]], plan.Select(p => p.ToArray()).ToArray());
        Assert.Equal([[3], [5]], ThreadAffinity.Plan(allowed, firstWorker: 2, workers: 2, threadsPerWorker: 1)!.Select(p => p.ToArray()).ToArray());
    }

    [Theory]
    [InlineData(0, 3, 2)] // 6 threads on 5 CPUs
    [InlineData(4, 2, 1)] // a fifth and a sixth worker of one thread, after four
    [InlineData(0, 0, 1)] // no worker
    [InlineData(0, 1, 0)] // no thread
    public void Plan_pins_nothing_when_the_threads_do_not_each_get_a_cpu(int firstWorker, int workers, int threadsPerWorker) =>
        Assert.Null(ThreadAffinity.Plan([0, 1, 2, 3, 4], firstWorker, workers, threadsPerWorker));

    [Fact]
    public void Plan_pins_nothing_where_the_cpus_are_unknown() => Assert.Null(ThreadAffinity.Plan(null, 0, 1, 1));

    [Fact]
    public void A_pinned_thread_runs_only_on_its_cpu_and_a_cpu_out_of_reach_is_refused()
    {
        IReadOnlyList<int>? allowed = ThreadAffinity.AllowedCpus();
        if (!OperatingSystem.IsLinux())
        {
            Assert.Null(allowed);
            Assert.False(ThreadAffinity.PinCurrentThread(0));
            Assert.False(ThreadAffinity.MayUseAll([0]));
            return;
        }
        Assert.NotNull(allowed);
        int cpu = allowed[^1];
        IReadOnlyList<int>? before = null, after = null, afterRefusal = null;
        bool pinned = false, refused = true, negative = true;
        var thread = new Thread(() =>
        {
            before = ThreadAffinity.AllowedCpus();
            pinned = ThreadAffinity.PinCurrentThread(cpu);
            after = ThreadAffinity.AllowedCpus();
            refused = ThreadAffinity.PinCurrentThread(1023); // no machine here has it, so the process may not use it
            negative = ThreadAffinity.PinCurrentThread(-1);
            afterRefusal = ThreadAffinity.AllowedCpus();
        });
        thread.Start();
        thread.Join();

        Assert.Equal(allowed, before);
        Assert.True(pinned);
        Assert.Equal([cpu], after);
        Assert.False(refused);
        Assert.False(negative);
        Assert.Equal([cpu], afterRefusal);
        Assert.Equal(allowed, ThreadAffinity.AllowedCpus()); // the test's own thread is untouched
        Assert.True(ThreadAffinity.MayUseAll(allowed));
        Assert.True(ThreadAffinity.MayUseAll([cpu, allowed[0]]));
        Assert.False(ThreadAffinity.MayUseAll([cpu, 1023]));
    }

    [Fact]
    public void A_team_pins_each_helper_thread_to_its_cpu_and_refuses_a_cpu_list_of_another_size()
    {
        Assert.Throws<ArgumentException>(() => new ThreadTeam(2, [0]));
        IReadOnlyList<int>? allowed = ThreadAffinity.AllowedCpus();
        if (allowed is null) return; // not Linux: nothing to pin (the test above checks that)
        int[] cpus = [allowed[0], allowed[^1], allowed[0]];
        using var team = new ThreadTeam(3, cpus);
        var seen = new ConcurrentDictionary<int, int[]>();

        // Enough slow items that every member takes some.
        team.Run(60, (_, member) =>
        {
            Thread.Sleep(2);
            seen.TryAdd(member, ThreadAffinity.AllowedCpus()!.ToArray());
        });

        Assert.Equal([allowed[^1]], seen[1]);
        Assert.Equal([allowed[0]], seen[2]);
        Assert.Equal(allowed, seen[0]); // the caller pins itself if it wants to
    }
}
