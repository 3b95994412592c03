// Idx: reads one IDX file (the format of MNIST and Fashion-MNIST), raw or gzip-compressed.
//
// Layout: two zero bytes, a type code, the number of dimensions, then one big-endian uint32 per
// dimension (outermost first), then the values row-major. Only type 0x08 (unsigned byte) is accepted,
// because that is what image and label files use and the dataset keeps pixels as bytes.
//
// Gzip is detected by its magic bytes 1f 8b, not by the name: browsers often decompress a download
// and keep the ".gz" name, or the other way round.
//
// Every check that can fail on a user's file (missing, unreadable, wrong magic, wrong type, bad
// dimensions, truncated, trailing bytes, damaged gzip) throws CnnUserException with one line naming
// the file, what was expected and what was found. Deliberately not done: memory mapping or streaming
// the values; the largest file is 47 MB and callers want it in one array anyway.
using System.Buffers.Binary;
using System.Globalization;
using System.IO.Compression;

namespace Cnn.Engine.Data;

/// <summary>
/// The content of an IDX file: its dimensions (outermost first) and its unsigned-byte values in
/// row-major order. <see cref="Data"/> has exactly the product of <see cref="Dimensions"/> bytes.
/// </summary>
public sealed record IdxArray(string Path, int[] Dimensions, byte[] Data);

/// <summary>Reads IDX files of unsigned bytes, raw or gzip-compressed.</summary>
public static class Idx
{
    private const byte UnsignedByteType = 0x08;
    private const int MaxDimensions = 4;

    /// <summary>
    /// Reads and validates an IDX file of unsigned bytes with 1 to 4 dimensions. Gzip content is
    /// recognised by its magic bytes whatever the file is called.
    /// </summary>
    /// <exception cref="CnnUserException">The file is missing, unreadable or not a valid IDX file.</exception>
    public static IdxArray Read(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (Directory.Exists(path))
        {
            throw new CnnUserException($"{path}: is a directory, expected an IDX file");
        }
        if (!File.Exists(path))
        {
            throw new CnnUserException($"{path}: file not found");
        }

        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16);
            bool gzip = StartsWithGzipMagic(file);
            file.Position = 0;
            if (gzip)
            {
                using var content = new GZipStream(file, CompressionMode.Decompress);
                return ReadContent(path, content, knownLength: null);
            }
            return ReadContent(path, file, knownLength: file.Length);
        }
        catch (InvalidDataException e)
        {
            throw new CnnUserException($"{path}: damaged gzip data: {OneLine(e.Message)}", e);
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

    /// <param name="knownLength">The raw file length, which lets size errors show up before any
    /// large allocation; null for gzip, whose decompressed length is only known by reading it.</param>
    private static IdxArray ReadContent(string path, Stream content, long? knownLength)
    {
        string fileHas = knownLength is null ? "the decompressed file has" : "the file has";

        Span<byte> magic = stackalloc byte[4];
        int got = ReadFully(content, magic);
        if (got < magic.Length)
        {
            throw new CnnUserException($"{path}: too short for an IDX file: expected at least a 4-byte magic number but {fileHas} {got} bytes");
        }
        if (magic[0] != 0 || magic[1] != 0)
        {
            throw new CnnUserException($"{path}: not an IDX file: expected the magic number to start with bytes 00 00 but found {magic[0]:x2} {magic[1]:x2}");
        }
        if (magic[2] != UnsignedByteType)
        {
            throw new CnnUserException($"{path}: unsupported IDX type code 0x{magic[2]:x2} ({TypeName(magic[2])}): only 0x08 (unsigned byte) is supported");
        }
        int rank = magic[3];
        if (rank is < 1 or > MaxDimensions)
        {
            throw new CnnUserException($"{path}: expected 1 to {MaxDimensions} dimensions but the header says {rank}");
        }

        int headerLength = 4 + 4 * rank;
        Span<byte> dimensionBytes = stackalloc byte[4 * MaxDimensions];
        dimensionBytes = dimensionBytes[..(4 * rank)];
        got = ReadFully(content, dimensionBytes);
        if (got < dimensionBytes.Length)
        {
            throw new CnnUserException($"{path}: truncated header: expected {headerLength} bytes for {rank} dimensions but {fileHas} {4 + got} bytes");
        }

        var dimensions = new int[rank];
        long count = 1;
        for (int i = 0; i < rank; i++)
        {
            uint dimension = BinaryPrimitives.ReadUInt32BigEndian(dimensionBytes[(4 * i)..]);
            if (dimension == 0 || dimension > int.MaxValue)
            {
                throw new CnnUserException($"{path}: dimension {i + 1} of {rank} is {dimension}, expected a size between 1 and {int.MaxValue}");
            }
            dimensions[i] = (int)dimension;
            // Both factors stay below 2^31, so the product fits in a long before this check stops it.
            count *= dimension;
            if (count > Array.MaxLength)
            {
                throw new CnnUserException($"{path}: the header declares {string.Join("x", dimensions[..(i + 1)])} values, more than one array can hold");
            }
        }

        long expectedLength = headerLength + count;
        string expected = $"expected {Bytes(expectedLength)} ({Describe(dimensions)})";
        if (knownLength is long length && length != expectedLength)
        {
            throw SizeMismatch(path, expected, fileHas, length, expectedLength);
        }

        var data = new byte[count];
        int read = ReadFully(content, data);
        if (read < data.Length)
        {
            throw SizeMismatch(path, expected, fileHas, headerLength + read, expectedLength);
        }
        long trailing = CountRemaining(content);
        if (trailing > 0)
        {
            throw SizeMismatch(path, expected, fileHas, expectedLength + trailing, expectedLength);
        }

        return new IdxArray(path, dimensions, data);
    }

    private static CnnUserException SizeMismatch(string path, string expected, string fileHas, long actualLength, long expectedLength)
    {
        string problem = actualLength < expectedLength ? "truncated" : "unexpected bytes after the data";
        return new CnnUserException($"{path}: {problem}: {expected} but {fileHas} {Bytes(actualLength)}");
    }

    private static bool StartsWithGzipMagic(Stream stream)
    {
        Span<byte> start = stackalloc byte[2];
        return ReadFully(stream, start) == 2 && start[0] == 0x1f && start[1] == 0x8b;
    }

    /// <summary>Reads until the buffer is full or the stream ends; returns how many bytes were read.</summary>
    private static int ReadFully(Stream stream, Span<byte> buffer)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int n = stream.Read(buffer[total..]);
            if (n == 0)
            {
                break;
            }
            total += n;
        }
        return total;
    }

    private static long CountRemaining(Stream stream)
    {
        Span<byte> scratch = stackalloc byte[8192];
        long total = 0;
        int n;
        while ((n = stream.Read(scratch)) > 0)
        {
            total += n;
        }
        return total;
    }

    private static string Describe(int[] dimensions)
    {
        string kind = dimensions.Length switch
        {
            1 => "labels",
            3 => "images",
            _ => "values",
        };
        return $"{string.Join("x", dimensions)} {kind}";
    }

    private static string Bytes(long count) =>
        count.ToString("N0", CultureInfo.InvariantCulture) + (count == 1 ? " byte" : " bytes");

    private static string TypeName(byte code) => code switch
    {
        0x09 => "signed byte",
        0x0b => "int16",
        0x0c => "int32",
        0x0d => "float32",
        0x0e => "float64",
        _ => "not an IDX type",
    };

    private static string OneLine(string message) => message.ReplaceLineEndings(" ").Trim();
}
