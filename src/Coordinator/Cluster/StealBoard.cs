// Work stealing at the grain of a leaf, decided by the parameter server (Messages/StealProtocol.cs).
//
// The coordinator deals each step's leaves out in fixed shares, but on shared cores two workers seldom compute at
// the same speed at the same moment: without stealing, the step waits for the slower one while the faster idles.
// So a worker that has sent its share asks for a leaf, and the board grants it the last leaf of another worker's
// share when that worker has not announced starting it. Owners announce only their last leaf (one message a step),
// so that is the one leaf of each share that can be stolen; the owner skips it when it hears of the claim before
// starting it, and computes it anyway when it does not (then both copies arrive and the parameter server keeps the
// first cover; the bits are the same). Once any work of a step is dealt again (after a deadline), nothing more of
// that step is granted: stealing balances the deal, recovery is the deadline's.
//
// Thread-safe: the parameter server actor records the shares it deals and forgets applied steps; the data plane's
// reader threads record announcements and answer requests themselves, so that a thief's answer does not wait for
// the actor's turn on a thread pool whose threads the workers' computations hold.
using Cnn.Engine.Training;

namespace Cnn.Coordinator.Cluster;

/// <summary>Which leaves of the open steps can be stolen, and who took them (see file header).</summary>
public sealed class StealBoard
{
    private sealed class Share(int lastLeaf, int leaves)
    {
        public int LastLeaf { get; } = lastLeaf;
        public int Leaves { get; } = leaves;
        public bool Started { get; set; }
        public bool Stolen { get; set; }
    }

    // One step's deal: the weights version it is computed with, each worker's share, the thieves that have asked, and
    // whether some of its work was dealt again (then nothing is granted).
    private sealed class Deal(long version)
    {
        public long Version { get; } = version;
        public Dictionary<string, Share> Shares { get; } = [];
        public List<TreeNode> Dealt { get; } = [];
        public HashSet<string> Asked { get; } = [];
        public bool DealtAgain { get; set; }
    }

    private readonly object _gate = new();
    private readonly Dictionary<long, Deal> _steps = [];
    private long _granted;

    /// <summary>Leaves granted so far.</summary>
    public long Granted
    {
        get
        {
            lock (_gate) return _granted;
        }
    }

    /// <summary>
    /// <paramref name="worker"/> was given <paramref name="nodes"/> of step <paramref name="step"/>, to compute with weights
    /// <paramref name="version"/>. Work that was dealt before in this step (or a second share for one worker, or another
    /// version) is work dealt again after a deadline: from then on nothing of the step is granted.
    /// </summary>
    public void Assigned(long step, long version, string worker, IReadOnlyList<TreeNode> nodes)
    {
        lock (_gate)
        {
            if (!_steps.TryGetValue(step, out Deal? deal)) _steps[step] = deal = new Deal(version);
            if (deal.Version != version || deal.Shares.ContainsKey(worker)
                || nodes.Any(n => deal.Dealt.Any(d => n.First < d.End && d.First < n.End)))
            {
                deal.DealtAgain = true;
                return;
            }
            deal.Dealt.AddRange(nodes);
            deal.Shares[worker] = new Share(nodes.Count == 0 ? -1 : nodes.Max(n => n.End) - 1, nodes.Sum(n => n.Count));
        }
    }

    /// <summary><paramref name="worker"/> is about to start <paramref name="leaf"/> of step <paramref name="step"/>.</summary>
    public void Started(long step, string worker, int leaf)
    {
        lock (_gate)
            if (_steps.TryGetValue(step, out Deal? deal) && deal.Shares.TryGetValue(worker, out Share? share) && share.LastLeaf == leaf)
                share.Started = true;
    }

    /// <summary>
    /// <paramref name="thief"/> has computed its share of step <paramref name="step"/> with weights <paramref name="version"/>:
    /// the owner and leaf it may compute, or null. Grants the last leaf of the largest share (ties: the first dealt) that
    /// has two leaves or more, is not the thief's, and whose owner has not started it; a thief asks once a step, and only
    /// for a step whose work it was dealt with that version, that is not applied yet and none of whose work was dealt again.
    /// </summary>
    public (string Owner, int Leaf)? Request(long step, long version, string thief)
    {
        lock (_gate)
        {
            if (!_steps.TryGetValue(step, out Deal? deal) || deal.DealtAgain || deal.Version != version || !deal.Shares.ContainsKey(thief)) return null;
            if (!deal.Asked.Add(thief)) return null;
            (string Owner, Share Share)? best = null;
            foreach (var (owner, share) in deal.Shares)
                if (owner != thief && share.Leaves >= 2 && !share.Started && !share.Stolen && (best is null || share.Leaves > best.Value.Share.Leaves))
                    best = (owner, share);
            if (best is not { } chosen) return null;
            chosen.Share.Stolen = true;
            _granted++;
            return (chosen.Owner, chosen.Share.LastLeaf);
        }
    }

    /// <summary>Forgets the steps before <paramref name="step"/>: they are applied, and nothing of them can be granted.</summary>
    public void ForgetBefore(long step)
    {
        lock (_gate)
            foreach (long old in _steps.Keys.Where(s => s < step).ToList())
                _steps.Remove(old);
    }
}
