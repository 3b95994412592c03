// The data of a run: the training file split Keras's way (the LAST fraction held out for validation, before any
// shuffling, so ids trainCount..total-1 of the same dataset are the validation set and nothing is copied), and
// the t10k test set. Checks the image size against the model before any training starts.
//
// MNIST is fetched automatically only into a directory that holds none of the IDX files. A directory with some
// of them (a half-copied Fashion-MNIST folder, say) is left alone and reported, because filling its gaps with
// MNIST files would mix two datasets without a word.
//
// Deliberately not here: the shuffle and the batches (Engine/Training/EpochSchedule) and any float copy of the
// pixels (MnistSource converts on the way in).
using System.Globalization;
using Cnn.Engine;
using Cnn.Engine.Data;
using Cnn.Engine.Models;
using Cnn.Engine.Training;

namespace Cnn.Coordinator.Runs;

/// <summary>Training, validation and test samples of a run.</summary>
public sealed class TrainingData
{
    private TrainingData(string directory, MnistDataset train, MnistDataset test, int trainCount)
    {
        Directory = directory;
        Train = train;
        Test = test;
        TrainCount = trainCount;
        TrainSource = new MnistSource(train);
        TestSource = new MnistSource(test);
        ValidationIds = Enumerable.Range(trainCount, train.Count - trainCount).ToArray();
        TestIds = Enumerable.Range(0, test.Count).ToArray();
    }

    /// <summary>Where the files were read.</summary>
    public string Directory { get; }
    /// <summary>The whole training file (training and validation samples).</summary>
    public MnistDataset Train { get; }
    /// <summary>The test file.</summary>
    public MnistDataset Test { get; }
    /// <summary>Samples 0..TrainCount-1 of <see cref="Train"/> are trained on.</summary>
    public int TrainCount { get; }
    /// <summary>The training file as an engine data source (training and validation ids).</summary>
    public IDataSource TrainSource { get; }
    /// <summary>The test file as an engine data source.</summary>
    public IDataSource TestSource { get; }
    /// <summary>Ids of the held-out validation samples in <see cref="TrainSource"/>.</summary>
    public int[] ValidationIds { get; }
    /// <summary>Ids of all test samples in <see cref="TestSource"/>.</summary>
    public int[] TestIds { get; }

    /// <summary>
    /// Loads <paramref name="directory"/>, fetching MNIST first when it holds no IDX file at all, and checks the
    /// images against <paramref name="model"/>.
    /// </summary>
    /// <exception cref="CnnUserException">Missing or damaged files, images of another size, or no training samples left.</exception>
    public static TrainingData Load(string directory, Model model, double validationSplit, TextWriter log)
    {
        if (!HoldsAnyIdxFile(directory))
        {
            log.WriteLine($"No MNIST files in {directory}: fetching them.");
            MnistFetcher.FetchAsync(directory, log, CancellationToken.None).GetAwaiter().GetResult();
        }
        (MnistDataset train, MnistDataset test) = MnistDataset.LoadDirectory(directory);
        CheckShape(directory, "training", train, model);
        CheckShape(directory, "test", test, model);
        int trainCount = EpochSchedule.TrainCount(train.Count, validationSplit);
        if (trainCount < 1)
        {
            throw new CnnUserException(string.Create(CultureInfo.InvariantCulture,
                $"--validation-split {validationSplit} leaves no training image out of the {train.Count} in {directory}"));
        }
        return new TrainingData(directory, train, test, trainCount);
    }

    /// <summary>True when the directory exists and holds a file named like an IDX file (raw or .gz).</summary>
    public static bool HoldsAnyIdxFile(string directory) =>
        System.IO.Directory.Exists(directory) && System.IO.Directory.EnumerateFiles(directory, "*-idx?-ubyte*").Any();

    /// <summary>Throws when the images of <paramref name="data"/> do not fit the model's input.</summary>
    public static void CheckShape(string directory, string split, MnistDataset data, Model model)
    {
        TensorShape images = TensorShape.Image(data.Rows, data.Columns, 1);
        if (images != model.InputShape)
        {
            throw new CnnUserException($"{directory}: the {split} images are {images} but model '{model.Name}' takes {model.InputShape}");
        }
    }
}
