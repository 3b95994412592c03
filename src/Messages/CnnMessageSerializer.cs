// The Akka serializer of every ICnnMessage: MessagePack with integer keys, one short manifest per type.
//
// A peer is untrusted input. FromBinary therefore reads with MessagePackSerializerOptions.Standard (attribute
// contracts only: no typeless resolver, no contractless resolver, so a payload can never name a type to create)
// in MessagePackSecurity.UntrustedData mode, refuses payloads above MaxMessageBytes before parsing, demands that
// the payload is exactly one MessagePack array with at least as many elements as the type has keys, that no
// bytes trail it, that no non-nullable reference is nil and that every enum value is defined. Anything else is a
// SerializationException with a one-line reason naming the manifest, which makes Akka.Remote drop the message
// and keep the connection. MessagePack bounds every allocation by the payload length (a string, binary or array
// header cannot claim more elements than bytes remain), so random input can neither hang nor allocate absurdly.
//
// ToBinary applies the same checks to what this node sends, so a bug (a null field, a tensor not cut into
// chunks) fails at the sender with a clear reason instead of at every receiver.
//
// It deliberately does not check what the values mean (step numbers, chunk geometry, finite floats): that is
// the receiving state classes' job (TensorAssembler, ParameterServerState), which answer with a reason.
using System.Reflection;
using System.Runtime.Serialization;
using Akka.Actor;
using Akka.Serialization;
using MessagePack;

namespace Cnn.Messages;

/// <summary>
/// Serializes every <see cref="ICnnMessage"/> with MessagePack (integer keys, byte[] as bin) under a short string
/// manifest. Malformed input of any kind raises <see cref="SerializationException"/> and nothing else.
/// </summary>
public sealed class CnnMessageSerializer : SerializerWithStringManifest
{
    /// <summary>The serializer identifier on the wire; identical on every node.</summary>
    public const int SerializerId = 4711;

    /// <summary>The name the serializer is registered under in Akka's configuration.</summary>
    public const string SerializerName = "cnn-messagepack";

    /// <summary>
    /// Largest serialized message, in bytes, accepted in either direction. A full tensor chunk takes about 64 KB;
    /// this leaves room for growth while staying well under <see cref="CnnNode.MaximumFrameSizeBytes"/>, whose
    /// remainder carries Akka's envelope (recipient path, sender, manifest).
    /// </summary>
    public const int MaxMessageBytes = 196_608;

    // MessagePackSerializerOptions.Standard is StandardResolver: attribute-based formatters only.
    private static readonly MessagePackSerializerOptions Options =
        MessagePackSerializerOptions.Standard.WithSecurity(MessagePackSecurity.UntrustedData);

    // The one table of wire types. Manifests are part of the protocol: never reuse or change one, add new rows.
    private static readonly WireType[] Table =
    [
        new WireType<RegisterWorker>("rw"),
        new WireType<WorkerAccepted>("wa"),
        new WireType<WorkerRefused>("wr"),
        new WireType<ComputeGradients>("cg"),
        new WireType<EvaluateRange>("er"),
        new WireType<EvaluationResult>("es"),
        new WireType<WeightsRequest>("wq"),
        new WireType<WeightsChunk>("wc"),
        new WireType<GradientChunk>("gc"),
        new WireType<ContributionRejected>("cr"),
        new WireType<LeafStarted>("ls"),
        new WireType<StealRequest>("sq"),
        new WireType<StealGrant>("sg"),
        new WireType<LeafClaimed>("lc"),
        new WireType<NotAMember>("nm"),
    ];

    private static readonly Dictionary<Type, WireType> ByType = Table.ToDictionary(w => w.Type);
    private static readonly Dictionary<string, WireType> ByManifest = Table.ToDictionary(w => w.Manifest, StringComparer.Ordinal);

    /// <summary>Created by Akka from configuration or by Akka.Hosting's <c>WithCustomSerializer</c>.</summary>
    public CnnMessageSerializer(ExtendedActorSystem system) : base(system)
    {
    }

    /// <inheritdoc />
    public override int Identifier => SerializerId;

    /// <summary>The short manifest of a wire message ("rw", "wc", ...).</summary>
    /// <exception cref="SerializationException">The type is not in the table of wire types.</exception>
    public override string Manifest(object o) => ManifestOf(o);

    /// <summary>The MessagePack bytes of a wire message.</summary>
    /// <exception cref="SerializationException">Unknown type, a nil where none is allowed, or too large.</exception>
    public override byte[] ToBinary(object obj) => Encode(obj);

    /// <summary>Reads a wire message; anything malformed raises <see cref="SerializationException"/>.</summary>
    /// <exception cref="SerializationException">Unknown manifest, malformed, truncated or wrong-shaped bytes.</exception>
    public override object FromBinary(byte[] bytes, string manifest) =>
        bytes is null ? throw Fail(manifest, "no payload") : Decode(bytes, manifest);

    /// <summary>The short manifest of a wire message, without an ActorSystem (the data plane's message frames).</summary>
    /// <exception cref="SerializationException">The type is not in the table of wire types.</exception>
    public static string ManifestOf(object o) => Lookup(o).Manifest;

    /// <summary><see cref="ToBinary"/> without an ActorSystem: the same bytes and the same checks.</summary>
    /// <exception cref="SerializationException">Unknown type, a nil where none is allowed, or too large.</exception>
    public static byte[] Encode(object obj)
    {
        var wire = Lookup(obj);
        var problem = wire.Check(obj);
        if (problem is not null)
            throw Fail(wire.Manifest, $"refusing to send {wire.Type.Name}: {problem}");

        byte[] bytes;
        try
        {
            bytes = wire.Serialize(obj);
        }
        catch (Exception e)
        {
            throw Fail(wire.Manifest, $"cannot write {wire.Type.Name}: {OneLine(e)}");
        }

        if (bytes.Length > MaxMessageBytes)
            throw Fail(wire.Manifest, $"{wire.Type.Name} takes {bytes.Length} bytes, more than {MaxMessageBytes}: cut tensors with TensorChunks");
        return bytes;
    }

    /// <summary><see cref="FromBinary"/> without an ActorSystem: the same untrusted-data reading and checks.</summary>
    /// <exception cref="SerializationException">Unknown manifest, malformed, truncated or wrong-shaped bytes.</exception>
    public static object Decode(ReadOnlyMemory<byte> bytes, string manifest)
    {
        if (manifest is null || !ByManifest.TryGetValue(manifest, out var wire))
            throw Fail(manifest, "unknown manifest");
        if (bytes.Length > MaxMessageBytes)
            throw Fail(manifest, $"payload of {bytes.Length} bytes exceeds {MaxMessageBytes}");

        object? message;
        try
        {
            var reader = new MessagePackReader(bytes);
            if (reader.End || reader.NextMessagePackType != MessagePackType.Array)
                throw Fail(manifest, $"{wire.Type.Name} must be a MessagePack array");
            var fields = reader.ReadArrayHeader();
            if (fields < wire.KeyCount)
                throw Fail(manifest, $"{wire.Type.Name} has {fields} fields, expected at least {wire.KeyCount}");

            message = wire.Deserialize(bytes, out var bytesRead);
            if (bytesRead != bytes.Length)
                throw Fail(manifest, $"{bytes.Length - bytesRead} bytes trail the {wire.Type.Name}");
        }
        catch (SerializationException)
        {
            throw;
        }
        catch (Exception e)
        {
            throw Fail(manifest, $"malformed {wire.Type.Name}: {OneLine(e)}");
        }

        var problem = message is null ? "nil message" : wire.Check(message);
        if (problem is not null)
            throw Fail(manifest, $"malformed {wire.Type.Name}: {problem}");
        return message!;
    }

    private static WireType Lookup(object? o)
    {
        if (o is not null && ByType.TryGetValue(o.GetType(), out var wire))
            return wire;
        throw new SerializationException(
            $"CnnMessageSerializer has no manifest for {o?.GetType().FullName ?? "null"}: add the type to its table");
    }

    private static SerializationException Fail(string? manifest, string reason) =>
        new($"CnnMessageSerializer, manifest '{manifest}': {reason}");

    // MessagePack nests the real cause; the innermost message on one line is the useful reason.
    private static string OneLine(Exception e)
    {
        while (e.InnerException is not null)
            e = e.InnerException;
        return $"{e.GetType().Name}: {e.Message}".ReplaceLineEndings(" ");
    }

    /// <summary>
    /// Builds the MessagePack formatter of every wire type now, as the first message of each type would (MessagePack
    /// emits them at run time): a node's start-up can do it on an idle core instead of in its first exchanges.
    /// Returns the types prepared; throws for a type MessagePack cannot build a formatter for.
    /// </summary>
    public static IReadOnlyList<Type> WarmUp()
    {
        foreach (WireType type in Table) type.Prepare();
        return Table.Select(t => t.Type).ToList();
    }

    /// <summary>One row of the table: a wire type, its manifest, its shape and the checks MessagePack cannot do.</summary>
    private abstract class WireType
    {
        private readonly PropertyInfo[] _nonNullable;
        private readonly PropertyInfo[] _enums;

        protected WireType(Type type, string manifest)
        {
            Type = type;
            Manifest = manifest;
            var keyed = type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
                .Select(p => (Property: p, Key: p.GetCustomAttribute<KeyAttribute>()))
                .Where(p => p.Key is not null)
                .ToArray();
            KeyCount = keyed.Length == 0 ? 0 : keyed.Max(p => p.Key!.IntKey ?? -1) + 1;
            var nullability = new NullabilityInfoContext();
            _nonNullable = keyed
                .Select(p => p.Property)
                .Where(p => !p.PropertyType.IsValueType && nullability.Create(p).ReadState == NullabilityState.NotNull)
                .ToArray();
            _enums = keyed.Select(p => p.Property).Where(p => p.PropertyType.IsEnum).ToArray();
        }

        public Type Type { get; }

        public string Manifest { get; }

        /// <summary>Number of MessagePack array elements a complete message has (highest key + 1).</summary>
        public int KeyCount { get; }

        public abstract byte[] Serialize(object message);

        /// <summary>Has MessagePack build the type's formatter now (it emits one per type at its first use).</summary>
        public abstract void Prepare();

        public abstract object? Deserialize(ReadOnlyMemory<byte> bytes, out int bytesRead);

        /// <summary>Null when the message is well formed, else the reason.</summary>
        public string? Check(object message)
        {
            foreach (var p in _nonNullable)
                if (p.GetValue(message) is null)
                    return $"{p.Name} is nil";
            foreach (var p in _enums)
                if (!Enum.IsDefined(p.PropertyType, p.GetValue(message)!))
                    return $"{p.Name} = {Convert.ToInt64(p.GetValue(message))} is not a {p.PropertyType.Name}";
            return null;
        }
    }

    private sealed class WireType<T>(string manifest) : WireType(typeof(T), manifest) where T : class, ICnnMessage
    {
        public override byte[] Serialize(object message) => MessagePackSerializer.Serialize((T)message, Options);

        public override void Prepare() => Options.Resolver.GetFormatterWithVerify<T>();

        public override object? Deserialize(ReadOnlyMemory<byte> bytes, out int bytesRead) =>
            MessagePackSerializer.Deserialize<T>(bytes, Options, out bytesRead);
    }
}
