// StealBoard without an ActorSystem: which leaf a thief gets, and when it gets none. Only the last leaf of a share
// can be stolen, once, and only while its owner has not announced starting it; nothing of a step whose work was dealt
// again, and nothing for another step or weights version, is granted.
using Cnn.Coordinator.Cluster;
using Cnn.Engine.Training;
using Xunit;

namespace Cnn.Cluster.Tests;

public sealed class StealBoardTests
{
    private static StealBoard TwoShares(long step = 5)
    {
        var board = new StealBoard();
        board.Assigned(step, 0, "a", [new TreeNode(0, 4)]);
        board.Assigned(step, 0, "b", [new TreeNode(4, 4)]);
        return board;
    }

    [Fact]
    public void A_thief_gets_the_last_leaf_of_the_other_share_once()
    {
        StealBoard board = TwoShares();

        Assert.Equal(("b", 7), board.Request(5, 0, "a"));
        Assert.Null(board.Request(5, 0, "a")); // one request a step
        Assert.Equal(1, board.Granted);
    }

    [Fact]
    public void A_leaf_whose_owner_has_started_it_is_not_granted()
    {
        StealBoard board = TwoShares();
        board.Started(5, "b", 7);

        Assert.Null(board.Request(5, 0, "a"));
        Assert.Equal(0, board.Granted);
    }

    [Fact]
    public void Starting_another_leaf_than_the_last_changes_nothing()
    {
        StealBoard board = TwoShares();
        board.Started(5, "b", 6);

        Assert.Equal(("b", 7), board.Request(5, 0, "a"));
    }

    [Fact]
    public void A_stolen_leaf_is_not_granted_again_and_both_workers_can_be_thieves_of_each_other()
    {
        StealBoard board = TwoShares();

        Assert.Equal(("b", 7), board.Request(5, 0, "a"));
        Assert.Equal(("a", 3), board.Request(5, 0, "b"));
        Assert.Equal(2, board.Granted);
    }

    [Fact]
    public void With_three_shares_the_largest_one_is_robbed_first()
    {
        var board = new StealBoard();
        board.Assigned(5, 0, "a", [new TreeNode(0, 2)]);
        board.Assigned(5, 0, "b", [new TreeNode(2, 2), new TreeNode(4, 1)]);
        board.Assigned(5, 0, "c", [new TreeNode(5, 2)]);

        Assert.Equal(("b", 4), board.Request(5, 0, "a"));
        Assert.Equal(("a", 1), board.Request(5, 0, "c"));
    }

    [Fact]
    public void A_share_of_one_leaf_is_never_robbed()
    {
        var board = new StealBoard();
        board.Assigned(5, 0, "a", [new TreeNode(0, 1)]);
        board.Assigned(5, 0, "b", [new TreeNode(1, 1)]);

        Assert.Null(board.Request(5, 0, "a"));
    }

    [Theory]
    [InlineData("b")] // a's late share given to b as well
    [InlineData("c")] // or to a worker that joined during the step
    public void Once_work_of_a_step_is_dealt_again_nothing_of_that_step_is_granted(string to)
    {
        StealBoard board = TwoShares();
        board.Assigned(5, 0, to, [new TreeNode(0, 4)]);

        Assert.Null(board.Request(5, 0, "a"));
        Assert.Null(board.Request(5, 0, "b"));
        Assert.Null(board.Request(5, 0, "c"));
        Assert.Equal(0, board.Granted);
    }

    [Fact]
    public void A_share_dealt_with_another_version_counts_as_dealt_again()
    {
        StealBoard board = new();
        board.Assigned(5, 0, "a", [new TreeNode(0, 4)]);
        board.Assigned(5, 1, "b", [new TreeNode(4, 4)]);

        Assert.Null(board.Request(5, 0, "a"));
        Assert.Null(board.Request(5, 1, "b"));
    }

    [Fact]
    public void Requests_for_another_step_or_version_or_from_a_worker_without_a_share_get_nothing()
    {
        StealBoard board = TwoShares(step: 5);

        Assert.Null(board.Request(6, 0, "a"));
        Assert.Null(board.Request(5, 1, "a"));
        Assert.Null(board.Request(5, 0, "stranger"));
        Assert.Equal(0, board.Granted);
        Assert.Equal(("b", 7), board.Request(5, 0, "a"));
    }

    [Fact]
    public void Forgotten_steps_grant_nothing_and_later_ones_are_kept()
    {
        StealBoard board = TwoShares(step: 5);
        board.Assigned(6, 0, "a", [new TreeNode(0, 4)]);
        board.Assigned(6, 0, "b", [new TreeNode(4, 4)]);

        board.ForgetBefore(6);

        Assert.Null(board.Request(5, 0, "a"));
        Assert.Equal(("b", 7), board.Request(6, 0, "a"));
    }
}
