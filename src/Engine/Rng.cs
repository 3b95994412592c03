// The project's own random numbers. System.Random's algorithm may change between .NET versions and differs
// between its seeded and unseeded forms; a seed here must give the same weights, shuffles and dropout masks
// on every machine and runtime, so the algorithms are written out: SplitMix64 to expand a seed and to hash
// counters, xoshiro256** for streams. Not for cryptography.
namespace Cnn.Engine;

/// <summary>A seeded xoshiro256** generator with a stable, documented algorithm.</summary>
public sealed class Rng
{
    private ulong _s0, _s1, _s2, _s3;

    /// <summary>Starts a stream from <paramref name="seed"/>, expanded with SplitMix64.</summary>
    public Rng(ulong seed)
    {
        ulong x = seed;
        _s0 = SplitMix64(ref x);
        _s1 = SplitMix64(ref x);
        _s2 = SplitMix64(ref x);
        _s3 = SplitMix64(ref x);
    }

    /// <summary>A stream for a named purpose (weights, shuffle of epoch e, ...) derived from one run seed.</summary>
    public static Rng For(ulong seed, ulong purpose, ulong index = 0) => new(Hash(seed, purpose, index));

    /// <summary>The next 64 random bits.</summary>
    public ulong NextUInt64()
    {
        ulong result = RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>A float uniform in [0, 1) with 24 random bits.</summary>
    public float NextFloat() => (NextUInt64() >> 40) * (1.0f / (1 << 24));

    /// <summary>A double uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>An integer uniform in [0, bound), without modulo bias (Lemire's method).</summary>
    public int NextInt(int bound)
    {
        if (bound <= 0) throw new ArgumentOutOfRangeException(nameof(bound));
        uint threshold = unchecked((uint)-bound) % (uint)bound; // (2^32 - bound) mod bound
        while (true)
        {
            ulong r = NextUInt64() >> 32;
            ulong m = r * (uint)bound;
            if ((uint)m >= threshold) return (int)(m >> 32);
        }
    }

    /// <summary>Fisher-Yates shuffle in place.</summary>
    public void Shuffle(Span<int> items)
    {
        for (int i = items.Length - 1; i > 0; i--)
        {
            int j = NextInt(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    /// <summary>A stateless hash of three counters, for values that must not depend on who computes them.</summary>
    public static ulong Hash(ulong a, ulong b, ulong c)
    {
        ulong x = a;
        ulong h = SplitMix64(ref x);
        x = h ^ b;
        h = SplitMix64(ref x);
        x = h ^ c;
        return SplitMix64(ref x);
    }

    private static ulong SplitMix64(ref ulong x)
    {
        x += 0x9E3779B97F4A7C15UL;
        ulong z = x;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private static ulong RotateLeft(ulong x, int k) => (x << k) | (x >> (64 - k));
}
