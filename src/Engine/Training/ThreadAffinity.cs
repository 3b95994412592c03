// Pins a thread to one CPU, on Linux (sched_setaffinity on the calling thread); elsewhere it reports that it cannot.
// A local cluster gives each in-process worker's computing threads CPUs of their own (LocalCluster.AddWorkersAsync):
// on the 2-vCPU development host, left to the scheduler, the two workers' computations of a step started on the
// same vCPU in a share of steps while the other idled, and the worker on the slower vCPU finished well after the
// other (docs/performance.md, thirty-fifth session). `--no-cluster`'s team measured no faster pinned, so it is not.
using System.Runtime.InteropServices;

namespace Cnn.Engine.Training;

/// <summary>CPU affinity of threads (see file header).</summary>
public static partial class ThreadAffinity
{
    private const int MaskWords = 16; // a cpu_set_t of 1,024 CPUs

    /// <summary>CPU numbers run from 0 to MaxCpus - 1 (glibc's cpu_set_t).</summary>
    public const int MaxCpus = MaskWords * 64;

    /// <summary>
    /// The CPUs this process may run on, in ascending order; null where that cannot be read (not Linux, or the call
    /// failed), in which case nothing is pinned.
    /// </summary>
    public static IReadOnlyList<int>? AllowedCpus()
    {
        if (!OperatingSystem.IsLinux()) return null;
        var mask = new ulong[MaskWords];
        if (SchedGetAffinity(0, MaskWords * sizeof(ulong), mask) != 0) return null;
        var cpus = new List<int>();
        for (int cpu = 0; cpu < MaxCpus; cpu++)
            if ((mask[cpu / 64] & (1UL << (cpu % 64))) != 0) cpus.Add(cpu);
        return cpus.Count > 0 ? cpus : null;
    }

    /// <summary>
    /// Pins the calling thread to <paramref name="cpu"/>; false when it cannot (not Linux, a CPU out of range, or one the
    /// process may not use), leaving the thread where it was.
    /// </summary>
    public static bool PinCurrentThread(int cpu)
    {
        if (!OperatingSystem.IsLinux() || cpu < 0 || cpu >= MaxCpus) return false;
        var mask = new ulong[MaskWords];
        mask[cpu / 64] = 1UL << (cpu % 64);
        return SchedSetAffinity(0, MaskWords * sizeof(ulong), mask) == 0;
    }

    /// <summary>
    /// True when this process may run on every one of <paramref name="cpus"/> (so pinning to them cannot be refused);
    /// false where the CPUs cannot be read.
    /// </summary>
    public static bool MayUseAll(IReadOnlyList<int> cpus) => AllowedCpus() is { } allowed && cpus.All(allowed.Contains);

    /// <summary>
    /// The CPUs of each of <paramref name="workers"/> workers of <paramref name="threadsPerWorker"/> threads numbered from
    /// <paramref name="firstWorker"/>: consecutive runs of <paramref name="allowed"/>, one CPU per thread; null when
    /// nothing may be pinned (CPUs unknown) or the threads of all the workers up to these would not each get a CPU of
    /// their own.
    /// </summary>
    public static IReadOnlyList<int>[]? Plan(IReadOnlyList<int>? allowed, int firstWorker, int workers, int threadsPerWorker)
    {
        if (allowed is null || workers < 1 || threadsPerWorker < 1) return null;
        if ((long)(firstWorker + workers) * threadsPerWorker > allowed.Count) return null;
        return Enumerable.Range(firstWorker, workers)
            .Select(w => (IReadOnlyList<int>)Enumerable.Range(w * threadsPerWorker, threadsPerWorker).Select(i => allowed[i]).ToArray())
            .ToArray();
    }

    [LibraryImport("libc", EntryPoint = "sched_getaffinity", SetLastError = true)]
    private static partial int SchedGetAffinity(int pid, nint size, [Out] ulong[] mask);

    [LibraryImport("libc", EntryPoint = "sched_setaffinity", SetLastError = true)]
    private static partial int SchedSetAffinity(int pid, nint size, ulong[] mask);
}
