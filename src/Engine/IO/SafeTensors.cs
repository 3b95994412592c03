// SafeTensors: reads and writes the safetensors format, so checkpoints open in Python
// (safetensors.numpy.load_file / torch) and Python-made files open here.
//
// Layout:  [u64 little-endian N][N bytes of UTF-8 JSON header, space-padded][raw little-endian data]
// Header:  { "__metadata__": { string: string },
//            "<name>": { "dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end] }, ... }
// Offsets count from the start of the data region. This writer pads the header to a multiple of 8
// so the data is 8-byte aligned, and packs tensors in the order given, without gaps.
//
// Reading trusts nothing: a damaged or truncated checkpoint is a user problem and must give a
// one-line CnnUserException naming the file, never a stack trace. The checks follow the reference
// Rust implementation: sane header length, valid JSON, F32 only, offsets inside the data region,
// shape product * 4 == byte length, and tensors that tile the data region exactly (no gap, no
// overlap, nothing after the last one). The last rule is what catches a truncated file.
//
// Deliberately not done: dtypes other than F32 (the engine is float32 only), memory mapping (the
// checkpoints of this project are a few MB) and a checksum of the data (the format has no place for
// one; atomic writes already rule out torn files, which is the damage we actually expect).
using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Cnn.Engine.IO;

/// <summary>A named float32 tensor: <see cref="Data"/> holds the product of <see cref="Shape"/> values, row-major.</summary>
public sealed record SafeTensor(string Name, int[] Shape, float[] Data);

/// <summary>Reads and writes float32 tensors in the safetensors format.</summary>
public static class SafeTensors
{
    private const string MetadataKey = "__metadata__";
    private const string Float32 = "F32";
    private const ulong MaxHeaderBytes = 100_000_000;

    /// <summary>
    /// Writes <paramref name="tensors"/>, in this order, and <paramref name="metadata"/> to
    /// <paramref name="path"/> atomically: readers see the old file or the complete new one.
    /// </summary>
    /// <exception cref="ArgumentException">A name is empty, repeated or "__metadata__", or a shape does not match its data.</exception>
    /// <exception cref="CnnUserException">The directory cannot be written.</exception>
    public static void Write(string path, IReadOnlyList<SafeTensor> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(tensors);
        ArgumentNullException.ThrowIfNull(metadata);
        CheckTensors(tensors);

        byte[] header = BuildHeader(tensors, metadata);
        AtomicFile.Write(path, stream =>
        {
            Span<byte> headerLength = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(headerLength, (ulong)header.Length);
            stream.Write(headerLength);
            stream.Write(header);
            foreach (SafeTensor tensor in tensors)
            {
                WriteLittleEndian(stream, tensor.Data);
            }
        });
    }

    /// <summary>
    /// Reads every tensor, in the order of their data in the file, and the metadata (empty if absent).
    /// </summary>
    /// <exception cref="CnnUserException">The file is missing, unreadable, truncated or not valid safetensors with F32 tensors.</exception>
    public static (IReadOnlyList<SafeTensor> Tensors, IReadOnlyDictionary<string, string> Metadata) Read(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path))
        {
            throw new CnnUserException($"{path}: file not found");
        }

        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16);
            long fileLength = file.Length;
            if (fileLength < 8)
            {
                throw Problem(path, $"truncated: the file has {fileLength} bytes, fewer than the 8-byte header length");
            }

            Span<byte> prefix = stackalloc byte[8];
            file.ReadExactly(prefix);
            ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
            if (headerLength > MaxHeaderBytes)
            {
                throw Problem(path, $"not a safetensors file: the header length {headerLength} is over the {MaxHeaderBytes / 1_000_000} MB limit");
            }
            if ((long)headerLength > fileLength - 8)
            {
                throw Problem(path, $"truncated: the header needs {headerLength} bytes but only {fileLength - 8} follow the header length");
            }

            var header = new byte[headerLength];
            file.ReadExactly(header);
            long dataStart = 8 + (long)headerLength;
            long dataLength = fileLength - dataStart;

            (List<Entry> entries, Dictionary<string, string> metadata) = ParseHeader(path, header);
            CheckLayout(path, entries, dataLength);

            var tensors = new List<SafeTensor>(entries.Count);
            foreach (Entry entry in entries)
            {
                var data = new float[(entry.End - entry.Begin) / sizeof(float)];
                file.Position = dataStart + entry.Begin;
                file.ReadExactly(MemoryMarshal.AsBytes(data.AsSpan()));
                if (!BitConverter.IsLittleEndian)
                {
                    ReverseEndianness(data);
                }
                tensors.Add(new SafeTensor(entry.Name, entry.Shape, data));
            }
            return (tensors, metadata);
        }
        catch (EndOfStreamException e)
        {
            // Only possible if the file shrank while being read: the layout was checked against its length.
            throw new CnnUserException($"{path}: truncated while reading: {OneLine(e.Message)}", e);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new CnnUserException($"{path}: cannot read the file: permission denied", e);
        }
        catch (IOException e)
        {
            throw new CnnUserException($"{path}: cannot read the file: {OneLine(e.Message)}", e);
        }
    }

    private static void CheckTensors(IReadOnlyList<SafeTensor> tensors)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (SafeTensor tensor in tensors)
        {
            ArgumentNullException.ThrowIfNull(tensor, nameof(tensors));
            if (string.IsNullOrEmpty(tensor.Name) || tensor.Name == MetadataKey)
            {
                throw new ArgumentException($"tensor name '{tensor.Name}' is empty or reserved", nameof(tensors));
            }
            if (!names.Add(tensor.Name))
            {
                throw new ArgumentException($"tensor name '{tensor.Name}' appears twice", nameof(tensors));
            }
            long count = 1;
            foreach (int dimension in tensor.Shape)
            {
                if (dimension < 0)
                {
                    throw new ArgumentException($"tensor '{tensor.Name}' has a negative dimension in shape ({string.Join(", ", tensor.Shape)})", nameof(tensors));
                }
                count = Math.Min(count * dimension, long.MaxValue / int.MaxValue);
            }
            if (count != tensor.Data.Length)
            {
                throw new ArgumentException($"tensor '{tensor.Name}' has shape ({string.Join(", ", tensor.Shape)}) but {tensor.Data.Length} values", nameof(tensors));
            }
        }
    }

    private static byte[] BuildHeader(IReadOnlyList<SafeTensor> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        var buffer = new ArrayBufferWriter<byte>();
        // Relaxed escaping keeps names such as "conv2d_1/kernel" readable in a hex dump; any JSON reader
        // decodes both forms.
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            if (metadata.Count > 0)
            {
                json.WriteStartObject(MetadataKey);
                foreach ((string key, string value) in metadata)
                {
                    json.WriteString(key, value);
                }
                json.WriteEndObject();
            }

            long offset = 0;
            foreach (SafeTensor tensor in tensors)
            {
                long end = offset + (long)tensor.Data.Length * sizeof(float);
                json.WriteStartObject(tensor.Name);
                json.WriteString("dtype", Float32);
                json.WriteStartArray("shape");
                foreach (int dimension in tensor.Shape)
                {
                    json.WriteNumberValue(dimension);
                }
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(end);
                json.WriteEndArray();
                json.WriteEndObject();
                offset = end;
            }
            json.WriteEndObject();
        }

        int padded = (buffer.WrittenCount + 7) / 8 * 8;
        var header = new byte[padded];
        buffer.WrittenSpan.CopyTo(header);
        header.AsSpan(buffer.WrittenCount).Fill((byte)' ');
        return header;
    }

    private static (List<Entry> Entries, Dictionary<string, string> Metadata) ParseHeader(string path, byte[] header)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(header);
        }
        catch (JsonException e)
        {
            throw Problem(path, $"not a safetensors file: the header is not valid JSON ({OneLine(e.Message)})");
        }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw Problem(path, $"not a safetensors file: the header is a JSON {document.RootElement.ValueKind}, expected an object");
            }

            var entries = new List<Entry>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var names = new HashSet<string>(StringComparer.Ordinal);
            foreach (JsonProperty property in document.RootElement.EnumerateObject())
            {
                if (!names.Add(property.Name))
                {
                    throw Problem(path, $"the header names '{property.Name}' twice");
                }
                if (property.Name == MetadataKey)
                {
                    ReadMetadata(path, property.Value, metadata);
                }
                else
                {
                    entries.Add(ReadEntry(path, property.Name, property.Value));
                }
            }
            return (entries, metadata);
        }
    }

    private static void ReadMetadata(string path, JsonElement element, Dictionary<string, string> metadata)
    {
        if (element.ValueKind != JsonValueKind.Object)
        {
            throw Problem(path, $"{MetadataKey} is a JSON {element.ValueKind}, expected an object of strings");
        }
        foreach (JsonProperty item in element.EnumerateObject())
        {
            if (item.Value.ValueKind != JsonValueKind.String)
            {
                throw Problem(path, $"{MetadataKey} entry '{item.Name}' is a JSON {item.Value.ValueKind}, expected a string");
            }
            metadata[item.Name] = item.Value.GetString()!;
        }
    }

    private static Entry ReadEntry(string path, string name, JsonElement element)
    {
        if (element.ValueKind != JsonValueKind.Object)
        {
            throw Problem(path, $"tensor '{name}' is a JSON {element.ValueKind}, expected an object with dtype, shape and data_offsets");
        }
        if (!element.TryGetProperty("dtype", out JsonElement dtype) || dtype.ValueKind != JsonValueKind.String)
        {
            throw Problem(path, $"tensor '{name}' has no dtype string");
        }
        if (dtype.GetString() != Float32)
        {
            throw Problem(path, $"tensor '{name}' has dtype {dtype.GetString()}, only {Float32} is supported");
        }

        if (!element.TryGetProperty("shape", out JsonElement shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
        {
            throw Problem(path, $"tensor '{name}' has no shape array");
        }
        var shape = new int[shapeElement.GetArrayLength()];
        int i = 0;
        foreach (JsonElement dimension in shapeElement.EnumerateArray())
        {
            if (dimension.ValueKind != JsonValueKind.Number || !dimension.TryGetInt32(out shape[i]) || shape[i] < 0)
            {
                throw Problem(path, $"tensor '{name}' has shape {shapeElement.GetRawText()}, expected sizes between 0 and {int.MaxValue}");
            }
            i++;
        }

        if (!element.TryGetProperty("data_offsets", out JsonElement offsets) || offsets.ValueKind != JsonValueKind.Array
            || offsets.GetArrayLength() != 2
            || !TryGetOffset(offsets[0], out long begin) || !TryGetOffset(offsets[1], out long end))
        {
            throw Problem(path, $"tensor '{name}' needs data_offsets as two non-negative integers [begin, end]");
        }
        return new Entry(name, shape, begin, end);
    }

    private static bool TryGetOffset(JsonElement element, out long value)
    {
        value = 0;
        return element.ValueKind == JsonValueKind.Number && element.TryGetInt64(out value) && value >= 0;
    }

    /// <summary>
    /// Sorts the entries by offset and checks that they tile [0, dataLength) exactly, each with
    /// shape product * 4 bytes.
    /// </summary>
    private static void CheckLayout(string path, List<Entry> entries, long dataLength)
    {
        entries.Sort((a, b) => a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin) : a.End.CompareTo(b.End));

        long position = 0;
        string previous = "";
        foreach (Entry entry in entries)
        {
            string offsets = $"data_offsets [{entry.Begin}, {entry.End}]";
            if (entry.End < entry.Begin)
            {
                throw Problem(path, $"tensor '{entry.Name}' has {offsets} that end before they begin");
            }
            long byteLength = entry.End - entry.Begin;
            long count = 1;
            foreach (int dimension in entry.Shape)
            {
                // Capped so that absurd shapes cannot overflow; a capped count never matches a real length.
                count = Math.Min(count * dimension, long.MaxValue / int.MaxValue);
            }
            if (count * sizeof(float) != byteLength)
            {
                throw Problem(path, $"tensor '{entry.Name}' has shape [{string.Join(", ", entry.Shape)}], {count * sizeof(float)} bytes as F32, but {offsets} span {byteLength} bytes");
            }
            if (entry.End > dataLength)
            {
                throw Problem(path, $"truncated: tensor '{entry.Name}' has {offsets} but the data region holds only {dataLength} bytes");
            }
            if (count > Array.MaxLength)
            {
                throw Problem(path, $"tensor '{entry.Name}' has {count} values, more than one array can hold");
            }
            if (entry.Begin < position)
            {
                throw Problem(path, $"tensor '{entry.Name}' has {offsets}, overlapping tensor '{previous}' which ends at {position}");
            }
            if (entry.Begin > position)
            {
                throw Problem(path, $"tensor '{entry.Name}' has {offsets}, leaving a gap after byte {position}: tensors must be packed");
            }
            position = entry.End;
            previous = entry.Name;
        }

        if (position != dataLength)
        {
            throw Problem(path, $"{dataLength - position} unexpected bytes after the last tensor (the tensors cover {position} of {dataLength} data bytes)");
        }
    }

    private static void WriteLittleEndian(Stream stream, float[] data)
    {
        if (BitConverter.IsLittleEndian)
        {
            stream.Write(MemoryMarshal.AsBytes(data.AsSpan()));
            return;
        }
        Span<byte> chunk = stackalloc byte[4096];
        for (int start = 0; start < data.Length; start += chunk.Length / sizeof(float))
        {
            int n = Math.Min(chunk.Length / sizeof(float), data.Length - start);
            for (int i = 0; i < n; i++)
            {
                BinaryPrimitives.WriteSingleLittleEndian(chunk[(i * sizeof(float))..], data[start + i]);
            }
            stream.Write(chunk[..(n * sizeof(float))]);
        }
    }

    private static void ReverseEndianness(float[] data)
    {
        Span<int> bits = MemoryMarshal.Cast<float, int>(data.AsSpan());
        BinaryPrimitives.ReverseEndianness(bits, bits);
    }

    private static CnnUserException Problem(string path, string problem) => new($"{path}: {problem}");

    private static string OneLine(string message) => message.ReplaceLineEndings(" ").Trim();

    private sealed record Entry(string Name, int[] Shape, long Begin, long End);
}
