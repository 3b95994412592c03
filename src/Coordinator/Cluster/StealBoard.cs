// Work stealing at the grain of a leaf, decided by the parameter server (Messages/StealProtocol.cs).
//
// The coordinator deals each step's leaves out in fixed shares, but on shared cores two workers seldom compute at
// the same speed at the same moment: without stealing, the step waits for the slower one while the faster idles.
// So a worker that has sent its share asks for a leaf, and the board grants it the last leaf of another worker's
// share when that worker has not announced starting it. Owners announce only their last leaf (one message a step),
// so that is the one leaf of each share that can be stolen; the owner skips it when it hears of the claim before
// starting it, and computes it anyway when it does not (then both copies arrive and the parameter server keeps the
// first cover; the bits are the same). The board holds each worker's first share of a step only: work re-dealt
// after a deadline is never stolen.
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

    private readonly object _gate = new();
    private readonly Dictionary<long, Dictionary<string, Share>> _steps = [];
    private readonly Dictionary<long, long> _versions = [];
    private readonly Dictionary<long, HashSet<string>> _thieves = [];
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
    /// <paramref name="version"/>. Its first share of a step counts; a later one (work re-dealt after a deadline) is not
    /// stealable.
    /// </summary>
    public void Assigned(long step, long version, string worker, IReadOnlyList<TreeNode> nodes)
    {
        lock (_gate)
        {
            if (!_steps.TryGetValue(step, out Dictionary<string, Share>? shares)) _steps[step] = shares = [];
            _versions[step] = version;
            if (shares.TryGetValue(worker, out Share? dealt))
            {
                dealt.Started = true; // its leaves are being dealt again: leave them be
                return;
            }
            shares[worker] = new Share(nodes.Count == 0 ? -1 : nodes.Max(n => n.End) - 1, nodes.Sum(n => n.Count));
        }
    }

    /// <summary><paramref name="worker"/> is about to start <paramref name="leaf"/> of step <paramref name="step"/>.</summary>
    public void Started(long step, string worker, int leaf)
    {
        lock (_gate)
            if (_steps.TryGetValue(step, out Dictionary<string, Share>? shares) && shares.TryGetValue(worker, out Share? share) && share.LastLeaf == leaf)
                share.Started = true;
    }

    /// <summary>
    /// <paramref name="thief"/> has computed its share of step <paramref name="step"/> with weights <paramref name="version"/>:
    /// the owner and leaf it may compute, or null. Grants the last leaf of the largest share (ties: the first dealt) that
    /// has two leaves or more, is not the thief's, and whose owner has not started it; a thief asks once a step, and only
    /// for a step whose work it was dealt with that version and that is not applied yet.
    /// </summary>
    public (string Owner, int Leaf)? Request(long step, long version, string thief)
    {
        lock (_gate)
        {
            if (!_steps.TryGetValue(step, out Dictionary<string, Share>? shares) || !shares.ContainsKey(thief) || _versions[step] != version) return null;
            if (!_thieves.TryGetValue(step, out HashSet<string>? asked)) _thieves[step] = asked = [];
            if (!asked.Add(thief)) return null;
            (string Owner, Share Share)? best = null;
            foreach (var (owner, share) in shares)
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
        {
            foreach (long old in _steps.Keys.Where(s => s < step).ToList())
            {
                _steps.Remove(old);
                _versions.Remove(old);
            }
            foreach (long old in _thieves.Keys.Where(s => s < step).ToList()) _thieves.Remove(old);
        }
    }
}
