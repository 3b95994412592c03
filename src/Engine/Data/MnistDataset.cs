// MnistDataset: one split of MNIST (or anything laid out like it, such as Fashion-MNIST) in memory,
// checked once at load so that training code can trust it.
//
// Pixels stay bytes: 60,000 images are 47 MB as bytes and would be 188 MB as floats. The engine
// scales them to [0, 1] when it gathers a batch.
//
// Deliberately not here: shuffling, batching, augmentation and the float conversion (the training
// loop owns those), and downloading (MnistFetcher). The Keras-style validation split is the LAST 20%
// of the training file, taken with Slice before any shuffling, so every node carves the same rows.
using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;

namespace Cnn.Engine.Data;

/// <summary>
/// A set of grayscale images with digit labels, as bytes: <see cref="Images"/> is
/// (count, rows, columns) row-major, <see cref="Labels"/> is (count) with values 0 to 9.
/// </summary>
public sealed class MnistDataset
{
    internal static readonly string[] StandardFileNames =
    [
        TrainImagesFile,
        TrainLabelsFile,
        TestImagesFile,
        TestLabelsFile,
    ];

    internal const string TrainImagesFile = "train-images-idx3-ubyte";
    internal const string TrainLabelsFile = "train-labels-idx1-ubyte";
    internal const string TestImagesFile = "t10k-images-idx3-ubyte";
    internal const string TestLabelsFile = "t10k-labels-idx1-ubyte";

    private const int ClassCount = 10;

    private string? sha256;

    /// <summary>
    /// Wraps arrays that already form a dataset. The arrays are kept, not copied.
    /// </summary>
    /// <exception cref="ArgumentException">The array lengths do not match the sizes, or a label is not 0 to 9.</exception>
    public MnistDataset(string name, byte[] images, byte[] labels, int count, int rows, int columns)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(columns);
        if (labels.Length != count)
        {
            throw new ArgumentException($"labels has {labels.Length} entries but count is {count}", nameof(labels));
        }
        if (images.Length != (long)count * rows * columns)
        {
            throw new ArgumentException($"images has {images.Length} bytes but ({count}, {rows}, {columns}) needs {(long)count * rows * columns}", nameof(images));
        }
        int bad = FirstLabelOutOfRange(labels);
        if (bad >= 0)
        {
            throw new ArgumentException($"label {labels[bad]} at index {bad} is not a digit 0 to 9", nameof(labels));
        }

        Name = name;
        Images = images;
        Labels = labels;
        Count = count;
        Rows = rows;
        Columns = columns;
    }

    /// <summary>A short name for logs, such as "train", "validation" or "test".</summary>
    public string Name { get; }

    /// <summary>Pixels, (count, rows, columns) row-major, 0 (background) to 255.</summary>
    public byte[] Images { get; }

    /// <summary>Digit labels, (count), each 0 to 9.</summary>
    public byte[] Labels { get; }

    /// <summary>Number of images.</summary>
    public int Count { get; }

    /// <summary>Image height in pixels.</summary>
    public int Rows { get; }

    /// <summary>Image width in pixels.</summary>
    public int Columns { get; }

    /// <summary>
    /// Loads an image file (3-D IDX: count, rows, columns) and its label file (1-D IDX), raw or gzip.
    /// </summary>
    /// <exception cref="CnnUserException">A file is missing or invalid, the counts differ, or a label is not 0 to 9.</exception>
    public static MnistDataset Load(string imagesPath, string labelsPath, string name)
    {
        IdxArray images = Idx.Read(imagesPath);
        if (images.Dimensions.Length != 3)
        {
            throw new CnnUserException($"{imagesPath}: expected images as a 3-D array (count, rows, columns) but the file holds a {images.Dimensions.Length}-D array ({string.Join("x", images.Dimensions)}): is this a label file?");
        }
        IdxArray labels = Idx.Read(labelsPath);
        if (labels.Dimensions.Length != 1)
        {
            throw new CnnUserException($"{labelsPath}: expected labels as a 1-D array (count) but the file holds a {labels.Dimensions.Length}-D array ({string.Join("x", labels.Dimensions)}): is this an image file?");
        }

        int count = images.Dimensions[0];
        if (labels.Dimensions[0] != count)
        {
            throw new CnnUserException($"{imagesPath} has {Number(count)} images but {labelsPath} has {Number(labels.Dimensions[0])} labels: are they from the same split?");
        }
        int bad = FirstLabelOutOfRange(labels.Data);
        if (bad >= 0)
        {
            throw new CnnUserException($"{labelsPath}: label {labels.Data[bad]} at index {Number(bad)} is not a digit 0 to 9");
        }

        return new MnistDataset(name, images.Data, labels.Data, count, images.Dimensions[1], images.Dimensions[2]);
    }

    /// <summary>
    /// Loads the training and test splits from a directory holding the four standard file names
    /// (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte),
    /// each raw or with a ".gz" suffix. Fashion-MNIST folders use the same names and work too.
    /// </summary>
    /// <exception cref="CnnUserException">The directory or a file is missing, or a file is invalid.</exception>
    public static (MnistDataset Train, MnistDataset Test) LoadDirectory(string dir)
    {
        string[] paths = FindRequired(dir, StandardFileNames);
        return (Load(paths[0], paths[1], "train"), Load(paths[2], paths[3], "test"));
    }

    /// <summary>
    /// Loads only the test split (t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, raw or ".gz") from a directory laid
    /// out as for <see cref="LoadDirectory"/>: what evaluation and prediction need, without reading the training file.
    /// </summary>
    /// <exception cref="CnnUserException">The directory or a test file is missing, or a file is invalid.</exception>
    public static MnistDataset LoadTestSplit(string dir)
    {
        string[] paths = FindRequired(dir, [TestImagesFile, TestLabelsFile]);
        return Load(paths[0], paths[1], "test");
    }

    // The paths of the standard files <paramref name="fileNames"/> in <paramref name="dir"/>, in that order; a
    // missing directory or file is a user error that says how to get the data.
    private static string[] FindRequired(string dir, string[] fileNames)
    {
        ArgumentException.ThrowIfNullOrEmpty(dir);
        if (!Directory.Exists(dir))
        {
            throw new CnnUserException($"{dir}: data directory not found: run `cnn data fetch` to download MNIST, or point to a folder holding the IDX files");
        }
        string?[] paths = fileNames.Select(file => FindStandardFile(dir, file)).ToArray();
        var missing = fileNames.Where((_, i) => paths[i] is null).ToList();
        if (missing.Count > 0)
        {
            throw new CnnUserException($"{dir}: missing {string.Join(", ", missing)} (raw or .gz): run `cnn data fetch` to download MNIST, or copy the files there");
        }
        return paths!;
    }

    /// <summary>
    /// SHA-256 (lowercase hex) of the content, so that nodes can check they train on the same data.
    /// It covers, in order: count, rows and columns as little-endian int32, then the label bytes, then
    /// the image bytes. The name is not included, and raw and gzip copies of a file agree.
    /// Computed on first use and cached.
    /// </summary>
    public string Sha256()
    {
        // A race computes the same string twice at worst; a reference assignment cannot tear.
        return sha256 ??= ComputeSha256();
    }

    /// <summary>
    /// Copies rows <paramref name="start"/> to <paramref name="start"/> + <paramref name="count"/> - 1
    /// into a new dataset called <paramref name="name"/>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The range is not inside the dataset.</exception>
    public MnistDataset Slice(int start, int count, string name)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(start);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if ((long)start + count > Count)
        {
            throw new ArgumentOutOfRangeException(nameof(count), $"rows [{start}, {(long)start + count}) are outside the {Count} rows of '{Name}'");
        }

        int imageSize = Rows * Columns;
        byte[] images = Images.AsSpan(start * imageSize, count * imageSize).ToArray();
        byte[] labels = Labels.AsSpan(start, count).ToArray();
        return new MnistDataset(name, images, labels, count, Rows, Columns);
    }

    /// <summary>Finds a standard file in a directory, raw preferred over ".gz"; null if neither exists.</summary>
    internal static string? FindStandardFile(string dir, string fileName)
    {
        string raw = Path.Combine(dir, fileName);
        if (File.Exists(raw))
        {
            return raw;
        }
        string gz = raw + ".gz";
        return File.Exists(gz) ? gz : null;
    }

    private string ComputeSha256()
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Span<byte> sizes = stackalloc byte[12];
        BinaryPrimitives.WriteInt32LittleEndian(sizes, Count);
        BinaryPrimitives.WriteInt32LittleEndian(sizes[4..], Rows);
        BinaryPrimitives.WriteInt32LittleEndian(sizes[8..], Columns);
        hash.AppendData(sizes);
        hash.AppendData(Labels);
        hash.AppendData(Images);
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    private static int FirstLabelOutOfRange(byte[] labels) =>
        labels.AsSpan().IndexOfAnyExceptInRange((byte)0, (byte)(ClassCount - 1));

    private static string Number(int value) => value.ToString("N0", CultureInfo.InvariantCulture);
}
