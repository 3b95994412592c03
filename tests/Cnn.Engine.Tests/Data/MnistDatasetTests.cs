// Tests for MnistDataset: loading a split from IDX files (raw and gzip) and from a directory with the
// standard names, the checks that tie images to labels, the content hash nodes compare, and Slice.
// The IDX files are tiny (a few 3x2 images) and written by IdxBuilder into a temp directory.
using System.Security.Cryptography;
using Cnn.Engine.Data;
using Xunit;

namespace Cnn.Engine.Tests.Data;

public sealed class MnistDatasetTests : IDisposable
{
    private const int Rows = 3;
    private const int Columns = 2;

    private readonly string dir = Directory.CreateTempSubdirectory("cnn-mnist-tests-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [Fact]
    public void Load_reads_images_and_labels_with_their_sizes()
    {
        byte[] pixels = IdxBuilder.Sequence(5 * Rows * Columns);
        string images = IdxBuilder.Write(dir, "images", IdxBuilder.Bytes([5, Rows, Columns], pixels));
        string labels = IdxBuilder.Write(dir, "labels", IdxBuilder.Bytes([5], [3, 1, 4, 1, 5]));

        MnistDataset data = MnistDataset.Load(images, labels, "train");

        Assert.Equal("train", data.Name);
        Assert.Equal(5, data.Count);
        Assert.Equal(Rows, data.Rows);
        Assert.Equal(Columns, data.Columns);
        Assert.Equal(pixels, data.Images);
        Assert.Equal(new byte[] { 3, 1, 4, 1, 5 }, data.Labels);
    }

    [Fact]
    public void Load_reads_gz_files()
    {
        byte[] pixels = IdxBuilder.Sequence(2 * Rows * Columns);
        string images = IdxBuilder.Write(dir, "images.gz", IdxBuilder.Gzip(IdxBuilder.Bytes([2, Rows, Columns], pixels)));
        string labels = IdxBuilder.Write(dir, "labels.gz", IdxBuilder.Gzip(IdxBuilder.Bytes([2], [9, 0])));

        MnistDataset data = MnistDataset.Load(images, labels, "test");

        Assert.Equal(pixels, data.Images);
        Assert.Equal(new byte[] { 9, 0 }, data.Labels);
    }

    [Fact]
    public void Load_rejects_image_and_label_counts_that_differ_naming_both_files_and_counts()
    {
        string images = IdxBuilder.Write(dir, "images", IdxBuilder.Bytes([3, Rows, Columns], new byte[3 * Rows * Columns]));
        string labels = IdxBuilder.Write(dir, "labels", IdxBuilder.Bytes([2], [1, 2]));

        string message = Rejects(() => MnistDataset.Load(images, labels, "train"));

        Assert.Equal($"{images} has 3 images but {labels} has 2 labels: are they from the same split?", message);
    }

    [Fact]
    public void Load_rejects_a_label_of_ten_or_more_naming_the_file_and_the_first_bad_index()
    {
        string images = IdxBuilder.Write(dir, "images", IdxBuilder.Bytes([4, Rows, Columns], new byte[4 * Rows * Columns]));
        string labels = IdxBuilder.Write(dir, "labels", IdxBuilder.Bytes([4], [1, 9, 10, 200]));

        string message = Rejects(() => MnistDataset.Load(images, labels, "train"));

        Assert.Equal($"{labels}: label 10 at index 2 is not a digit 0 to 9", message);
    }

    [Fact]
    public void Load_rejects_images_that_are_not_three_dimensional()
    {
        string images = IdxBuilder.Write(dir, "images", IdxBuilder.Bytes([2], [1, 2]));
        string labels = IdxBuilder.Write(dir, "labels", IdxBuilder.Bytes([2], [1, 2]));

        string message = Rejects(() => MnistDataset.Load(images, labels, "train"));

        Assert.StartsWith($"{images}: expected images as a 3-D array (count, rows, columns) but the file holds a 1-D array (2)", message);
    }

    [Fact]
    public void Load_rejects_labels_that_are_not_one_dimensional()
    {
        string images = IdxBuilder.Write(dir, "images", IdxBuilder.Bytes([2, Rows, Columns], new byte[2 * Rows * Columns]));

        string message = Rejects(() => MnistDataset.Load(images, images, "train"));

        Assert.StartsWith($"{images}: expected labels as a 1-D array (count) but the file holds a 3-D array (2x3x2)", message);
    }

    [Fact]
    public void LoadDirectory_finds_the_standard_names_raw_or_gz()
    {
        WriteSplit("train", count: 5, gzip: false);
        WriteSplit("t10k", count: 2, gzip: true);

        (MnistDataset train, MnistDataset test) = MnistDataset.LoadDirectory(dir);

        Assert.Equal(("train", 5), (train.Name, train.Count));
        Assert.Equal(("test", 2), (test.Name, test.Count));
        Assert.True(MnistFetcher.HasAll(dir));
    }

    [Fact]
    public void LoadDirectory_names_the_directory_and_the_missing_file_and_suggests_cnn_data_fetch()
    {
        WriteSplit("train", count: 5, gzip: false);
        IdxBuilder.Write(dir, "t10k-images-idx3-ubyte.gz", IdxBuilder.Gzip(IdxBuilder.Bytes([1, Rows, Columns], new byte[Rows * Columns])));

        string message = Rejects(() => MnistDataset.LoadDirectory(dir));

        Assert.Equal($"{dir}: missing t10k-labels-idx1-ubyte (raw or .gz): run `cnn data fetch` to download MNIST, or copy the files there", message);
        Assert.False(MnistFetcher.HasAll(dir));
    }

    [Fact]
    public void LoadDirectory_rejects_a_directory_that_does_not_exist()
    {
        string missing = Path.Combine(dir, "nowhere");

        string message = Rejects(() => MnistDataset.LoadDirectory(missing));

        Assert.StartsWith($"{missing}: data directory not found: run `cnn data fetch`", message);
    }

    [Fact]
    public void LoadTestSplit_reads_only_the_test_files_so_evaluation_works_without_the_training_split()
    {
        WriteSplit("t10k", count: 3, gzip: true);
        IdxBuilder.Write(dir, "train-images-idx3-ubyte", [0, 1, 2]); // damaged, and its labels missing: LoadDirectory refuses them

        MnistDataset test = MnistDataset.LoadTestSplit(dir);

        Assert.Equal(("test", 3), (test.Name, test.Count));
        Assert.Contains("missing train-labels-idx1-ubyte", Rejects(() => MnistDataset.LoadDirectory(dir)));
    }

    [Fact]
    public void LoadTestSplit_names_the_missing_test_file_and_a_missing_directory()
    {
        WriteSplit("train", count: 5, gzip: false);
        IdxBuilder.Write(dir, "t10k-labels-idx1-ubyte", IdxBuilder.Bytes([1], [3]));

        Assert.Equal($"{dir}: missing t10k-images-idx3-ubyte (raw or .gz): run `cnn data fetch` to download MNIST, or copy the files there",
            Rejects(() => MnistDataset.LoadTestSplit(dir)));
        string nowhere = Path.Combine(dir, "nowhere");
        Assert.StartsWith($"{nowhere}: data directory not found: run `cnn data fetch`", Rejects(() => MnistDataset.LoadTestSplit(nowhere)));
    }

    [Fact]
    public void Sha256_hashes_the_sizes_then_the_labels_then_the_images()
    {
        byte[] pixels = IdxBuilder.Sequence(2 * Rows * Columns);
        var data = new MnistDataset("any", pixels, [4, 2], 2, Rows, Columns);
        byte[] expected = [2, 0, 0, 0, Rows, 0, 0, 0, Columns, 0, 0, 0, 4, 2, .. pixels];

        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(expected)), data.Sha256());
        Assert.Same(data.Sha256(), data.Sha256());
    }

    [Fact]
    public void Sha256_agrees_for_raw_and_gz_copies_and_ignores_the_name()
    {
        WriteSplit("train", count: 4, gzip: false);
        WriteSplit("t10k", count: 4, gzip: true);
        (MnistDataset train, MnistDataset test) = MnistDataset.LoadDirectory(dir);

        Assert.Equal(train.Sha256(), test.Sha256());
    }

    [Fact]
    public void Sha256_changes_when_one_label_changes()
    {
        byte[] pixels = IdxBuilder.Sequence(2 * Rows * Columns);
        var a = new MnistDataset("a", pixels, [4, 2], 2, Rows, Columns);
        var b = new MnistDataset("b", pixels, [4, 3], 2, Rows, Columns);

        Assert.NotEqual(a.Sha256(), b.Sha256());
    }

    [Fact]
    public void Slice_copies_a_contiguous_range_such_as_the_last_fifth_for_validation()
    {
        byte[] pixels = IdxBuilder.Sequence(10 * Rows * Columns);
        var data = new MnistDataset("train", pixels, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 10, Rows, Columns);

        MnistDataset validation = data.Slice(8, 2, "validation");

        Assert.Equal(("validation", 2, Rows, Columns), (validation.Name, validation.Count, validation.Rows, validation.Columns));
        Assert.Equal(new byte[] { 8, 9 }, validation.Labels);
        Assert.Equal(pixels[(8 * Rows * Columns)..], validation.Images);
        validation.Images[0] ^= 0xff;
        Assert.Equal(IdxBuilder.Sequence(10 * Rows * Columns), data.Images);
    }

    [Fact]
    public void Slice_rejects_a_range_past_the_end()
    {
        var data = new MnistDataset("train", new byte[3 * Rows * Columns], [0, 1, 2], 3, Rows, Columns);

        Assert.Throws<ArgumentOutOfRangeException>(() => data.Slice(2, 2, "validation"));
    }

    private void WriteSplit(string prefix, int count, bool gzip)
    {
        byte[] images = IdxBuilder.Bytes([count, Rows, Columns], IdxBuilder.Sequence(count * Rows * Columns));
        byte[] labels = IdxBuilder.Bytes([count], Enumerable.Range(0, count).Select(i => (byte)(i % 10)).ToArray());
        string suffix = gzip ? ".gz" : "";
        IdxBuilder.Write(dir, $"{prefix}-images-idx3-ubyte{suffix}", gzip ? IdxBuilder.Gzip(images) : images);
        IdxBuilder.Write(dir, $"{prefix}-labels-idx1-ubyte{suffix}", gzip ? IdxBuilder.Gzip(labels) : labels);
    }

    private static string Rejects(Action action)
    {
        var error = Assert.Throws<CnnUserException>(action);
        Assert.DoesNotContain('\n', error.Message);
        return error.Message;
    }
}
