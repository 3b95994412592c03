// The worker's side of work stealing without an ActorSystem: a claim is taken once and only for its step and leaf,
// claims that come after the worker's share is done are dropped (so re-dealt work is never skipped), and a thief has
// its answer once the grant of its step came (a leaf, or none), or none once the data plane is closed. A worker stops
// asking for leaves of a step once any part of the next weights has come (then every leaf has been started).
using Cnn.Worker;
using Xunit;

namespace Cnn.Cluster.Tests;

public sealed class StealStateTests
{
    [Fact]
    public void A_claim_is_taken_once_for_its_step_and_leaf_only()
    {
        var state = new StealState();
        state.Claimed(4, 7);

        Assert.False(state.TakeClaim(4, 6));
        Assert.False(state.TakeClaim(5, 7));
        Assert.True(state.TakeClaim(4, 7));
        Assert.False(state.TakeClaim(4, 7));
    }

    [Fact]
    public void A_claim_that_comes_after_the_share_is_done_is_dropped_and_one_before_is_forgotten()
    {
        var state = new StealState();
        state.Claimed(4, 7);
        state.ShareDone(4);
        Assert.False(state.TakeClaim(4, 7)); // forgotten: the owner had begun the leaf

        state.Claimed(4, 7); // late
        Assert.False(state.TakeClaim(4, 7));

        state.Claimed(5, 3); // the next step's still counts
        Assert.True(state.TakeClaim(5, 3));
    }

    [Fact]
    public void A_thief_has_its_answer_once_the_grant_of_its_step_came_with_the_leaf_or_none()
    {
        var state = new StealState();
        Assert.False(state.TryGetGrant(6, out int? leaf));
        Assert.Null(leaf);

        state.Granted(5, 2); // another step's answer
        Assert.False(state.TryGetGrant(6, out leaf));
        state.Granted(6, 3);
        Assert.True(state.TryGetGrant(6, out leaf));
        Assert.Equal(3, leaf);

        state.Granted(7, -1); // none
        Assert.True(state.TryGetGrant(7, out leaf));
        Assert.Null(leaf);
    }

    [Fact]
    public void A_waiting_thief_has_its_answer_none_once_the_data_plane_is_closed()
    {
        var state = new StealState();
        state.Close(); // nobody will answer
        Assert.True(state.TryGetGrant(6, out int? leaf));
        Assert.Null(leaf);
    }

    [Fact]
    public void A_step_is_over_once_newer_weights_arrived_and_an_older_version_changes_nothing()
    {
        var state = new StealState();
        Assert.False(state.StepOver(3));

        state.WeightsArrived(3);
        Assert.False(state.StepOver(3));
        state.WeightsArrived(4);
        state.WeightsArrived(2);

        Assert.True(state.StepOver(3));
        Assert.False(state.StepOver(4));
    }

    [Theory]
    [InlineData(false)] // a tail segment of the next weights
    [InlineData(true)]  // the next weights whole
    public void A_worker_may_steal_from_a_step_until_part_of_the_next_weights_arrives(bool whole)
    {
        var state = new StealState();
        Assert.True(state.MayStealFrom(3));

        state.PartArrived(2);
        state.PartArrived(3); // this step's own weights, or older ones, say nothing about its leaves
        state.WeightsArrived(3);
        Assert.True(state.MayStealFrom(3));

        if (whole) state.WeightsArrived(4);
        else state.PartArrived(4);
        state.PartArrived(2); // an older part does not bring the newest back

        Assert.False(state.MayStealFrom(3));
        Assert.True(state.MayStealFrom(4));
        Assert.Equal(whole, state.StepOver(3)); // a tail alone does not end the step: its head is still to come
    }
}
