// AtomicFile: write a whole file so that readers see either the old content or the new one, never a
// half-written file. That matters because checkpoints and datasets are written while other processes
// (another node, a resumed run) may read them, and a crash mid-write must not leave a damaged
// checkpoint under the real name.
//
// How: write to ".<name>.<random>.tmp" in the same directory (same file system, so the final rename is
// atomic), flush to the disk, then rename over the target. On any failure the temp file is removed.
//
// Deliberately not done: fsync of the directory after the rename (.NET has no portable way to open a
// directory), so after a power cut the rename itself may be lost and the old file is what remains,
// which is still a whole file. Missing directories are not created: the caller decides where files go.
namespace Cnn.Engine.IO;

/// <summary>
/// Writes files atomically: the target path holds either its previous content or the complete new
/// content, never a partial write.
/// </summary>
public static class AtomicFile
{
    /// <summary>
    /// Writes a file through <paramref name="write"/>, then replaces <paramref name="path"/> with it in
    /// one rename. If <paramref name="write"/> throws, the target is left untouched.
    /// </summary>
    /// <exception cref="CnnUserException">The directory cannot be written.</exception>
    public static void Write(string path, Action<Stream> write)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(write);

        string fullPath = Path.GetFullPath(path);
        string directory = Path.GetDirectoryName(fullPath) ?? throw new CnnUserException($"{path}: not a file path");
        string temp = Path.Combine(directory, $".{Path.GetFileName(fullPath)}.{Path.GetRandomFileName()}.tmp");

        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 16))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, fullPath, overwrite: true);
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            // DirectoryNotFoundException is an IOException, so it lands here too.
            TryDelete(temp);
            throw new CnnUserException($"{path}: cannot write the file: {OneLine(e.Message)}", e);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>Atomically writes <paramref name="text"/> as UTF-8 (no byte order mark).</summary>
    /// <exception cref="CnnUserException">The directory cannot be written.</exception>
    public static void WriteAllText(string path, string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        Write(path, stream =>
        {
            using var writer = new StreamWriter(stream, new System.Text.UTF8Encoding(encoderShouldEmitUTF8Identifier: false), bufferSize: 1 << 16, leaveOpen: true);
            writer.Write(text);
        });
    }

    /// <summary>Atomically writes <paramref name="bytes"/>.</summary>
    /// <exception cref="CnnUserException">The directory cannot be written.</exception>
    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        // A span cannot be captured by a lambda, so the bytes are copied once. That extra buffer is the
        // price of sharing one write path; large writers stream through Write instead.
        byte[] copy = bytes.ToArray();
        Write(path, stream => stream.Write(copy));
    }

    private static void TryDelete(string temp)
    {
        try
        {
            File.Delete(temp);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The original error is the one worth reporting; a leftover dot-file is harmless.
        }
    }

    private static string OneLine(string message) =>
        message.ReplaceLineEndings(" ").Trim();
}
