// ThreadTeam: every item runs exactly once whatever the team size, the caller is member 0 (so one thread
// means inline), members are within the team, a failing item surfaces as an exception from Run, and the team
// is reusable after it. An item that cancels surfaces as that cancellation, unless another item failed.
using System.Collections.Concurrent;
using Cnn.Engine.Training;
using Xunit;

namespace Cnn.Engine.Tests.Training;

public sealed class ThreadTeamTests
{
    [Theory]
    [InlineData(1, 0)]
    [InlineData(1, 10)]
    [InlineData(2, 1)]
    [InlineData(3, 2)]
    [InlineData(3, 100)]
    public void ThreadTeam_runs_every_item_exactly_once(int size, int count)
    {
        using var team = new ThreadTeam(size);
        var runs = new int[count];
        var members = new ConcurrentBag<int>();

        for (int round = 0; round < 3; round++)
            team.Run(count, (item, member) =>
            {
                Interlocked.Increment(ref runs[item]);
                members.Add(member);
            });

        Assert.All(runs, r => Assert.Equal(3, r));
        Assert.All(members, m => Assert.InRange(m, 0, size - 1));
    }

    [Fact]
    public void ThreadTeam_of_one_runs_on_the_calling_thread()
    {
        using var team = new ThreadTeam(1);
        int caller = Environment.CurrentManagedThreadId, seen = -1;

        team.Run(1, (_, _) => seen = Environment.CurrentManagedThreadId);

        Assert.Equal(caller, seen);
    }

    [Fact]
    public void ThreadTeam_rethrows_a_failing_item_s_exception_as_itself_and_stays_usable()
    {
        using var team = new ThreadTeam(2);

        var e = Assert.Throws<InvalidOperationException>(() => team.Run(20, (item, _) =>
        {
            if (item == 7) throw new InvalidOperationException("item 7");
        }));
        Assert.Equal("item 7", e.Message);
        Assert.Contains(nameof(ThreadTeam_rethrows_a_failing_item_s_exception_as_itself_and_stays_usable), e.StackTrace); // the item's own frames

        int done = 0;
        team.Run(5, (_, _) => Interlocked.Increment(ref done));
        Assert.Equal(5, done);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void ThreadTeam_passes_a_cancelling_item_through_as_itself_and_stays_usable(int size)
    {
        using var team = new ThreadTeam(size);
        var cancel = new OperationCanceledException("item 4 abandoned");

        var e = Assert.Throws<OperationCanceledException>(() => team.Run(20, (item, _) =>
        {
            if (item == 4) throw cancel;
        }));
        Assert.Same(cancel, e);

        int done = 0;
        team.Run(5, (_, _) => Interlocked.Increment(ref done));
        Assert.Equal(5, done);
    }

    [Fact]
    public void ThreadTeam_reports_a_failure_rather_than_a_cancellation_of_the_same_run()
    {
        using var team = new ThreadTeam(2);
        using var bothStarted = new Barrier(2);

        var e = Assert.Throws<InvalidOperationException>(() => team.Run(2, (item, _) =>
        {
            bothStarted.SignalAndWait();
            if (item == 1) throw new InvalidOperationException("item 1");
            Thread.Sleep(20); // the failure is reported first, the cancellation after it
            throw new OperationCanceledException("item 0 abandoned");
        }));
        Assert.Equal("item 1", e.Message);
    }
}
