// Tests for CnnMessageSerializer as Akka resolves it in a node configured by WithCnnNode: every wire type,
// found by reflection, round-trips field by field; tensors travel as one bin blob; and every malformed input
// (random bytes under every manifest, truncations, corruptions, nils, undefined enums, wrong field counts,
// trailing bytes, oversize payloads, unknown manifests) gives a one-line SerializationException and nothing else.
using System.Buffers;
using System.Runtime.Serialization;
using Akka.Serialization;
using MessagePack;
using Xunit;

namespace Cnn.Messages.Tests;

public sealed class CnnMessageSerializerTests(HostedNode node) : IClassFixture<HostedNode>
{
    private static readonly MessagePackSerializerOptions Options = MessagePackSerializerOptions.Standard;

    private readonly Serialization _serialization = node.System.Serialization;

    private CnnMessageSerializer Serializer =>
        Assert.IsType<CnnMessageSerializer>(_serialization.FindSerializerForType(typeof(ICnnMessage)));

    public static TheoryData<string> WireTypeNames() => SampleMessages.WireTypeNames();

    public static TheoryData<string> ManifestsAndStrangers()
    {
        var data = new TheoryData<string>();
        foreach (var type in SampleMessages.WireTypes)
            data.Add(ManifestOf(type));
        foreach (var stranger in new[] { "", "zz", "RW", "rw ", "Cnn.Messages.WeightsChunk" })
            data.Add(stranger);
        return data;
    }

    [Fact]
    public void Every_wire_type_has_its_own_short_manifest()
    {
        var manifests = SampleMessages.WireTypes.Select(ManifestOf).ToArray();

        Assert.NotEmpty(manifests);
        Assert.Equal(manifests.Length, manifests.Distinct(StringComparer.Ordinal).Count());
        Assert.All(manifests, m => Assert.InRange(m.Length, 1, 3));
    }

    [Fact]
    public void WarmUp_builds_the_formatter_of_every_wire_type()
    {
        // `cnn train` calls it on an idle core while the local cluster starts; a type MessagePack cannot build a
        // formatter for would fail here rather than in a node's first exchange.
        // (Asking a resolver afterwards proves nothing: it would build a missing formatter itself.)
        IReadOnlyList<Type> prepared = CnnMessageSerializer.WarmUp();

        Assert.Equal(SampleMessages.WireTypes.OrderBy(t => t.FullName), prepared.OrderBy(t => t.FullName));
    }

    [Theory]
    [MemberData(nameof(WireTypeNames))]
    public void Every_wire_message_round_trips_through_the_serializer_the_actor_system_picks_for_it(string typeName)
    {
        var message = SampleMessages.Create(SampleMessages.ByName(typeName));

        var serializer = _serialization.FindSerializerFor(message);
        var manifest = Serialization.ManifestFor(serializer, message);
        var bytes = serializer.ToBinary(message);
        var back = _serialization.Deserialize(bytes, serializer.Identifier, manifest);

        Assert.IsType<CnnMessageSerializer>(serializer);
        Assert.Equal(CnnMessageSerializer.SerializerId, serializer.Identifier);
        Assert.Null(SampleMessages.Difference(message, back));
    }

    [Fact]
    public void A_chunk_carries_its_tensor_bytes_as_one_MessagePack_bin_blob()
    {
        var data = new byte[TensorChunks.MaxChunkFloats * sizeof(float)];
        new Random(3).NextBytes(data);
        var chunk = new WeightsChunk("run", 7, 2, 5, 2 * TensorChunks.MaxChunkFloats, 5 * TensorChunks.MaxChunkFloats, data);

        var bytes = Serializer.ToBinary(chunk);

        var reader = new MessagePackReader(bytes);
        Assert.Equal(7, reader.ReadArrayHeader());
        reader.Skip();
        reader.Skip();
        reader.Skip();
        reader.Skip();
        reader.Skip();
        reader.Skip();
        Assert.Equal(MessagePackType.Binary, reader.NextMessagePackType);
        Assert.Equal(data, reader.ReadBytes()!.Value.ToArray());
        Assert.InRange(bytes.Length, data.Length, data.Length + 64);
    }

    [Theory]
    [MemberData(nameof(ManifestsAndStrangers))]
    public void Random_bytes_under_any_manifest_raise_SerializationException_and_nothing_else(string manifest)
    {
        foreach (var (bytes, what) in RandomInputs(withHeaderFor: null))
            AssertRejected(Outcome(() => Serializer.FromBinary(bytes, manifest)), manifest, what);
    }

    [Theory]
    [MemberData(nameof(WireTypeNames))]
    public void Random_fields_behind_the_right_array_header_give_SerializationException_or_a_well_formed_message(string typeName)
    {
        // Behind a correct header, random bytes now and then spell valid fields (two short strings and an int
        // are a WeightsRequest), so acceptance is allowed here, but only of a complete message of the type.
        var type = SampleMessages.ByName(typeName);
        var manifest = ManifestOf(type);
        foreach (var (bytes, what) in RandomInputs(withHeaderFor: type))
        {
            object? back = null;
            var error = Outcome(() => back = Serializer.FromBinary(bytes, manifest));
            if (error is null)
                AssertWellFormed(type, back, what);
            else
                AssertRejected(error, manifest, what);
        }
    }

    // Random byte arrays of many lengths and seeds; with a type, the first byte is that type's array header.
    private static IEnumerable<(byte[] Bytes, string What)> RandomInputs(Type? withHeaderFor)
    {
        int[] lengths = [0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 255, 256, 1000, 4096, 65_536, 70_001];
        foreach (var length in lengths)
        {
            var seeds = length > 4096 ? 8 : 150;
            for (var seed = 0; seed < seeds; seed++)
            {
                var bytes = new byte[length];
                new Random(seed * 7919 + length).NextBytes(bytes);
                if (withHeaderFor is not null && length > 0)
                    bytes[0] = (byte)(0x90 + SampleMessages.KeyedProperties(withHeaderFor).Length);
                yield return (bytes, $"{length} random bytes, seed {seed}");
            }
        }
    }

    [Fact]
    public void A_payload_larger_than_the_limit_is_rejected_before_it_is_parsed()
    {
        var bytes = new byte[CnnMessageSerializer.MaxMessageBytes + 1];

        var error = Outcome(() => Serializer.FromBinary(bytes, "wc"));

        AssertRejected(error, "wc", "oversize payload");
        Assert.Contains($"exceeds {CnnMessageSerializer.MaxMessageBytes}", error!.Message);
    }

    [Theory]
    [MemberData(nameof(WireTypeNames))]
    public void Every_truncation_of_a_valid_message_raises_SerializationException(string typeName)
    {
        var message = SampleMessages.Create(SampleMessages.ByName(typeName));
        var manifest = Serializer.Manifest(message);
        var bytes = Serializer.ToBinary(message);

        for (var length = 0; length < bytes.Length; length++)
        {
            var prefix = bytes[..length];
            AssertRejected(Outcome(() => Serializer.FromBinary(prefix, manifest)), manifest, $"first {length} of {bytes.Length} bytes");
        }
    }

    [Theory]
    [MemberData(nameof(WireTypeNames))]
    public void A_corrupted_byte_gives_SerializationException_or_a_well_formed_message_of_the_same_type(string typeName)
    {
        var type = SampleMessages.ByName(typeName);
        var message = SampleMessages.Create(type);
        var manifest = Serializer.Manifest(message);
        var bytes = Serializer.ToBinary(message);

        // Every header byte, and a stride through long blobs.
        var positions = Enumerable.Range(0, bytes.Length).Where(i => i < 256 || i % 97 == 0);
        foreach (var position in positions)
        {
            foreach (var flip in new byte[] { 0x01, 0x10, 0x80, 0xFF })
            {
                var corrupted = (byte[])bytes.Clone();
                corrupted[position] ^= flip;
                object? back = null;

                var error = Outcome(() => back = Serializer.FromBinary(corrupted, manifest));

                if (error is null)
                    AssertWellFormed(type, back, $"byte {position} xor {flip:X2}");
                else
                    AssertRejected(error, manifest, $"byte {position} xor {flip:X2}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(WireTypeNames))]
    public void A_nil_in_any_non_nullable_field_is_rejected_with_the_field_name_and_one_in_a_nullable_field_is_read(string typeName)
    {
        var type = SampleMessages.ByName(typeName);
        var message = SampleMessages.Create(type);
        var manifest = Serializer.Manifest(message);
        var properties = SampleMessages.KeyedProperties(type);
        var nullability = new System.Reflection.NullabilityInfoContext();

        for (var key = 0; key < properties.Length; key++)
        {
            if (properties[key].PropertyType.IsValueType)
                continue;
            var bytes = Encode(message, properties.Length, nilKey: key);
            object? back = null;

            var error = Outcome(() => back = Serializer.FromBinary(bytes, manifest));

            if (nullability.Create(properties[key]).ReadState == System.Reflection.NullabilityState.Nullable)
            {
                Assert.True(error is null, $"nil {properties[key].Name} (nullable) under '{manifest}' was refused: {error?.Message}");
                Assert.Null(properties[key].GetValue(back));
                continue;
            }
            AssertRejected(error, manifest, $"nil {properties[key].Name}");
            Assert.Contains($"{properties[key].Name} is nil", error!.Message);
        }
    }

    [Fact]
    public void An_evaluation_set_outside_the_enum_is_rejected()
    {
        var message = new EvaluateRange("run", 4, 9, EvaluationSet.Test, 0, 100);
        var bytes = Encode(message, 6, replaceKey: 3, replacement: 7);

        var error = Outcome(() => Serializer.FromBinary(bytes, "er"));

        AssertRejected(error, "er", "Set = 7");
        Assert.Contains("Set = 7 is not a EvaluationSet", error!.Message);
    }

    [Theory]
    [MemberData(nameof(WireTypeNames))]
    public void A_message_with_fewer_fields_than_its_type_has_keys_is_rejected(string typeName)
    {
        var message = SampleMessages.Create(SampleMessages.ByName(typeName));
        var manifest = Serializer.Manifest(message);
        var keys = SampleMessages.KeyedProperties(message.GetType()).Length;
        var bytes = Encode(message, keys - 1);

        var error = Outcome(() => Serializer.FromBinary(bytes, manifest));

        AssertRejected(error, manifest, "one field short");
        Assert.Contains($"has {keys - 1} fields, expected at least {keys}", error!.Message);
    }

    [Fact]
    public void Fields_appended_by_a_newer_sender_are_skipped()
    {
        var message = new WorkerRefused("worker-3", "dataset hash differs");
        var bytes = Encode(message, 3);

        var back = Serializer.FromBinary(bytes, "wr");

        Assert.Equal(message, back);
    }

    [Fact]
    public void Bytes_trailing_a_complete_message_are_rejected()
    {
        var bytes = Serializer.ToBinary(new WeightsRequest("run", "worker-1", 12)).Append((byte)0xC0).ToArray();

        var error = Outcome(() => Serializer.FromBinary(bytes, "wq"));

        AssertRejected(error, "wq", "trailing nil");
        Assert.Contains("1 bytes trail the WeightsRequest", error!.Message);
    }

    [Fact]
    public void A_message_of_another_type_under_a_manifest_is_rejected()
    {
        var bytes = Serializer.ToBinary(new WeightsRequest("run", "worker-1", 12));

        var error = Outcome(() => Serializer.FromBinary(bytes, "gc"));

        AssertRejected(error, "gc", "a WeightsRequest read as a GradientChunk");
    }

    [Fact]
    public void The_sender_refuses_a_message_with_a_null_field()
    {
        var error = Outcome(() => Serializer.ToBinary(new WorkerRefused(null!, "no reason")));

        AssertRejected(error, "wr", "null WorkerId");
        Assert.Contains("WorkerId is nil", error!.Message);
    }

    [Fact]
    public void The_sender_refuses_a_message_too_large_for_one_frame_and_says_to_chunk_it()
    {
        var tensor = new byte[CnnMessageSerializer.MaxMessageBytes];
        var error = Outcome(() => Serializer.ToBinary(new WeightsChunk("run", 1, 0, 1, 0, tensor.Length / 4, tensor)));

        AssertRejected(error, "wc", "oversize chunk");
        Assert.Contains("cut tensors with TensorChunks", error!.Message);
    }

    [Fact]
    public void An_object_that_is_not_a_wire_message_has_no_manifest()
    {
        var error = Outcome(() => Serializer.Manifest("just a string"));

        Assert.IsType<SerializationException>(error);
        Assert.Contains("System.String", error!.Message);
    }

    // Manifests come from the serializer itself, read once from a node of its own (MemberData runs before fixtures).
    private static readonly Lazy<Dictionary<Type, string>> Manifests = new(() =>
    {
        using var probe = new HostedNode();
        var serializer = (CnnMessageSerializer)probe.System.Serialization.FindSerializerForType(typeof(ICnnMessage));
        return SampleMessages.WireTypes.ToDictionary(t => t, t => serializer.Manifest(SampleMessages.Create(t)));
    });

    private static string ManifestOf(Type type) => Manifests.Value[type];

    private static Exception? Outcome(Func<object> action)
    {
        try
        {
            action();
            return null;
        }
        catch (Exception e)
        {
            return e;
        }
    }

    private static void AssertRejected(Exception? error, string manifest, string what)
    {
        Assert.True(error is not null, $"{what} under '{manifest}' was accepted");
        Assert.True(error is SerializationException, $"{what} under '{manifest}' threw {error}");
        Assert.Contains($"manifest '{manifest}'", error.Message);
        Assert.DoesNotContain('\n', error.Message);
    }

    private static void AssertWellFormed(Type type, object? message, string what)
    {
        Assert.True(message is not null && message.GetType() == type, $"{what} gave {message?.GetType().Name ?? "null"}");
        foreach (var p in SampleMessages.KeyedProperties(type))
            Assert.True(p.PropertyType.IsValueType || p.GetValue(message) is not null, $"{what}: {p.Name} came back null");
    }

    // The MessagePack array of a message's fields, written by hand: fieldCount elements, the message's own
    // values except a nil at nilKey or a replacement int at replaceKey, and ints past the last key.
    private static byte[] Encode(object message, int fieldCount, int nilKey = -1, int replaceKey = -1, int replacement = 0)
    {
        var properties = SampleMessages.KeyedProperties(message.GetType());
        var buffer = new ArrayBufferWriter<byte>();
        var writer = new MessagePackWriter(buffer);
        writer.WriteArrayHeader(fieldCount);
        for (var key = 0; key < fieldCount; key++)
        {
            if (key == nilKey)
                writer.WriteNil();
            else if (key == replaceKey || key >= properties.Length)
                writer.Write(key == replaceKey ? replacement : 12_345);
            else
                MessagePackSerializer.Serialize(properties[key].PropertyType, ref writer, properties[key].GetValue(message), Options);
        }
        writer.Flush();
        return buffer.WrittenSpan.ToArray();
    }
}
