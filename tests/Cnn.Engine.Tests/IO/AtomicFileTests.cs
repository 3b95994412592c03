// Tests for AtomicFile: the target gets the whole new content, an old file survives a failed write,
// no temp file is left behind either way, and an unwritable place gives a one-line CnnUserException.
using System.Text;
using Cnn.Engine.IO;
using Xunit;

namespace Cnn.Engine.Tests.IO;

public sealed class AtomicFileTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("cnn-atomic-tests-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [Fact]
    public void AtomicFile_writes_text_as_utf8_without_a_byte_order_mark()
    {
        string path = Path.Combine(dir, "config.json");

        AtomicFile.WriteAllText(path, "{\"name\": \"é\"}");

        Assert.Equal(Encoding.UTF8.GetBytes("{\"name\": \"é\"}"), File.ReadAllBytes(path));
        Assert.Equal(["config.json"], Directory.GetFiles(dir).Select(Path.GetFileName));
    }

    [Fact]
    public void AtomicFile_replaces_an_existing_file_with_the_new_bytes()
    {
        string path = Path.Combine(dir, "weights.bin");
        File.WriteAllBytes(path, new byte[1000]);

        AtomicFile.WriteAllBytes(path, [1, 2, 3]);

        Assert.Equal(new byte[] { 1, 2, 3 }, File.ReadAllBytes(path));
        Assert.Single(Directory.GetFiles(dir));
    }

    [Fact]
    public void AtomicFile_streams_through_the_callback_into_a_temp_file_next_to_the_target()
    {
        string path = Path.Combine(dir, "model.safetensors");
        string? seenDuringWrite = null;

        AtomicFile.Write(path, stream =>
        {
            stream.Write([42]);
            seenDuringWrite = Directory.GetFiles(dir).Select(Path.GetFileName).Single();
        });

        Assert.Matches(@"^\.model\.safetensors\.[^.]+\.[^.]+\.tmp$", seenDuringWrite);
        Assert.Equal(new byte[] { 42 }, File.ReadAllBytes(path));
    }

    [Fact]
    public void AtomicFile_keeps_the_old_file_and_removes_the_temp_file_when_the_write_fails()
    {
        string path = Path.Combine(dir, "checkpoint.safetensors");
        File.WriteAllText(path, "old");

        Assert.Throws<InvalidOperationException>(() => AtomicFile.Write(path, stream =>
        {
            stream.Write([1, 2, 3]);
            throw new InvalidOperationException("writer failed");
        }));

        Assert.Equal("old", File.ReadAllText(path));
        Assert.Single(Directory.GetFiles(dir));
    }

    [Fact]
    public void AtomicFile_names_the_path_when_the_directory_does_not_exist()
    {
        string path = Path.Combine(dir, "missing", "out.txt");

        var error = Assert.Throws<CnnUserException>(() => AtomicFile.WriteAllText(path, "x"));

        Assert.StartsWith($"{path}: cannot write the file: ", error.Message);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public void AtomicFile_names_the_path_when_the_parent_is_a_file()
    {
        string parent = Path.Combine(dir, "plain-file");
        File.WriteAllText(parent, "");
        string path = Path.Combine(parent, "out.txt");

        var error = Assert.Throws<CnnUserException>(() => AtomicFile.WriteAllBytes(path, [1]));

        Assert.StartsWith($"{path}: cannot write the file: ", error.Message);
    }

    [Fact]
    public void AtomicFile_names_the_path_when_the_target_is_a_directory()
    {
        string path = Path.Combine(dir, "taken");
        Directory.CreateDirectory(path);

        var error = Assert.Throws<CnnUserException>(() => AtomicFile.WriteAllText(path, "x"));

        Assert.StartsWith($"{path}: cannot write the file: ", error.Message);
        Assert.Equal(["taken"], Directory.GetFileSystemEntries(dir).Select(Path.GetFileName));
    }
}
