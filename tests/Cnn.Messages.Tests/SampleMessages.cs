// Test support: every wire message type of Cnn.Messages found by reflection, an instance of each with
// non-default values in every field (built from its constructor, so a new field is covered without touching
// the tests), and a field-by-field comparison that compares arrays by content and floats by bits.
// It does not know any message type by name: a type whose field has a type it cannot fill fails loudly.
using System.Reflection;
using MessagePack;
using Xunit;

namespace Cnn.Messages.Tests;

internal static class SampleMessages
{
    /// <summary>Every concrete ICnnMessage type in Cnn.Messages.</summary>
    public static Type[] WireTypes { get; } = typeof(ICnnMessage).Assembly.GetTypes()
        .Where(t => typeof(ICnnMessage).IsAssignableFrom(t) && t is { IsInterface: false, IsAbstract: false })
        .OrderBy(t => t.Name, StringComparer.Ordinal)
        .ToArray();

    public static TheoryData<string> WireTypeNames()
    {
        var data = new TheoryData<string>();
        foreach (var t in WireTypes)
            data.Add(t.Name);
        return data;
    }

    public static Type ByName(string name) => WireTypes.Single(t => t.Name == name);

    /// <summary>An instance of <paramref name="type"/> whose every constructor argument differs from its default.</summary>
    public static object Create(Type type, int seed = 1)
    {
        var constructor = type.GetConstructors().OrderByDescending(c => c.GetParameters().Length).First();
        var random = new Random(seed);
        var arguments = constructor.GetParameters()
            .Select((p, i) => Value(p.ParameterType, $"{type.Name}.{p.Name}", i + 1, random))
            .ToArray();
        return constructor.Invoke(arguments);
    }

    private static object Value(Type type, string name, int position, Random random)
    {
        if (type == typeof(string)) return $"{name}/é✓/{random.Next()}";
        if (type == typeof(int)) return 1_000 * position + random.Next(1, 1000);
        if (type == typeof(long)) return (1L << 40) + position * 7L + random.Next(1, 1000);
        if (type == typeof(ulong)) return ulong.MaxValue - (ulong)position;
        if (type == typeof(double)) return Math.PI * position + random.NextDouble();
        if (type == typeof(float)) return MathF.E * position;
        if (type == typeof(bool)) return true;
        if (type == typeof(byte[]))
        {
            var bytes = new byte[1000 + position];
            random.NextBytes(bytes);
            return bytes;
        }
        if (type == typeof(int[])) return new[] { -1, 0, position, int.MaxValue, int.MinValue, random.Next() };
        if (type.IsEnum) return Enum.GetValues(type).Cast<object>().Last();
        throw new NotSupportedException($"SampleMessages cannot fill {name} of type {type.Name}: add a value for it");
    }

    /// <summary>The MessagePack-keyed properties of a wire type, in key order.</summary>
    public static PropertyInfo[] KeyedProperties(Type type) => type.GetProperties()
        .Where(p => p.GetCustomAttribute<KeyAttribute>() is not null)
        .OrderBy(p => p.GetCustomAttribute<KeyAttribute>()!.IntKey)
        .ToArray();

    /// <summary>Null when every keyed property of the two messages is equal (arrays by content, floats by bits).</summary>
    public static string? Difference(object expected, object actual)
    {
        if (expected.GetType() != actual.GetType())
            return $"type {actual.GetType().Name} instead of {expected.GetType().Name}";
        foreach (var p in KeyedProperties(expected.GetType()))
        {
            var (a, b) = (p.GetValue(expected), p.GetValue(actual));
            var same = (a, b) switch
            {
                (byte[] x, byte[] y) => x.AsSpan().SequenceEqual(y),
                (int[] x, int[] y) => x.AsSpan().SequenceEqual(y),
                (double x, double y) => BitConverter.DoubleToInt64Bits(x) == BitConverter.DoubleToInt64Bits(y),
                _ => Equals(a, b),
            };
            if (!same)
                return $"{p.Name} differs";
        }
        return null;
    }
}
