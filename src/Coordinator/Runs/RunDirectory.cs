// The run directory (--out) and the files in it, each written atomically so that a crash leaves the previous
// complete version, never a torn one:
//   history.csv                   one row per epoch
//   checkpoint.safetensors        the newest checkpoint
//   checkpoint-prev.safetensors   the one before, kept so that a damaged newest file still leaves a way back
//   checkpoint-prev-N.safetensors older ones, up to --keep-checkpoints in all (default 3)
//   run.json                      the run's summary
// Rotation is a chain of atomic renames (each kept file moves one place back, the oldest falls off), then the
// new file replaces the newest. A crash anywhere leaves whole files; --resume takes the newest that loads.
//
// The directory is checked by creating it and writing a probe file before any training, so an unwritable --out
// fails in the first second rather than after an epoch. A directory this class created is removed again if
// the run fails before writing anything into it.
//
// Deliberately not here: what goes into the checkpoint (Engine/IO/Checkpoint, RunState) and when checkpoints
// are taken (TrainingLoop).
using System.Globalization;
using System.Text;
using System.Text.Json;
using Cnn.Engine;
using Cnn.Engine.IO;
using Cnn.Engine.Models;
using Cnn.Engine.Training;

namespace Cnn.Coordinator.Runs;

/// <summary>The artifacts of one run (see file header).</summary>
public sealed class RunDirectory
{
    /// <summary>File name of the newest checkpoint.</summary>
    public const string CheckpointFile = "checkpoint.safetensors";
    /// <summary>File name of the previous checkpoint.</summary>
    public const string PreviousCheckpointFile = "checkpoint-prev.safetensors";
    /// <summary>File name of the per-epoch history.</summary>
    public const string HistoryFile = "history.csv";
    /// <summary>File name of the run summary.</summary>
    public const string SummaryFile = "run.json";

    private readonly bool _created;

    private RunDirectory(string path, bool created)
    {
        Path = path;
        _created = created;
    }

    /// <summary>The directory.</summary>
    public string Path { get; }

    /// <summary>Full path of the newest checkpoint.</summary>
    public string CheckpointPath => System.IO.Path.Combine(Path, CheckpointFile);

    /// <summary>Full path of the previous checkpoint.</summary>
    public string PreviousCheckpointPath => System.IO.Path.Combine(Path, PreviousCheckpointFile);

    /// <summary>
    /// Creates <paramref name="path"/> if needed and proves it writable. Without <paramref name="resume"/>, a directory
    /// already holding a run's checkpoint is refused rather than overwritten.
    /// </summary>
    /// <exception cref="CnnUserException">The directory cannot be created or written, or holds another run.</exception>
    public static RunDirectory Prepare(string path, bool resume)
    {
        bool existed = Directory.Exists(path);
        if (!existed && File.Exists(path)) throw new CnnUserException($"--out {path}: a file of that name exists; give a directory");
        var directory = new RunDirectory(path, created: !existed);
        try
        {
            Directory.CreateDirectory(path);
            string probe = System.IO.Path.Combine(path, $".probe-{Environment.ProcessId}.tmp");
            File.WriteAllBytes(probe, [1]);
            File.Delete(probe);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            directory.DiscardIfUnused();
            throw new CnnUserException($"--out {path}: cannot write there: {e.Message.ReplaceLineEndings(" ")}", e);
        }
        if (!resume && (File.Exists(directory.CheckpointPath) || File.Exists(directory.PreviousCheckpointPath)))
        {
            throw new CnnUserException($"--out {path} already holds a run ({CheckpointFile}): add --resume to continue it, or choose another --out");
        }
        return directory;
    }

    /// <summary>Removes the directory if this run created it and wrote nothing into it.</summary>
    public void DiscardIfUnused()
    {
        try
        {
            if (_created && Directory.Exists(Path) && !Directory.EnumerateFileSystemEntries(Path).Any()) Directory.Delete(Path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Best effort: the error that made the run fail is the one to report, not a leftover empty directory.
        }
    }

    /// <summary>
    /// The checkpoint to resume from: the newest, or the previous one when the newest is missing or damaged (said
    /// on <paramref name="log"/>).
    /// </summary>
    /// <returns>The checkpoint and the path it was read from.</returns>
    /// <exception cref="CnnUserException">There is no usable checkpoint.</exception>
    public (LoadedCheckpoint Checkpoint, string Path) LoadForResume(TextWriter log)
    {
        // Newest first; a damaged or missing file is reported and the next older one is tried.
        var candidates = CheckpointPaths().Where(File.Exists).ToList();
        if (candidates.Count == 0) throw new CnnUserException($"--resume: no {CheckpointFile} in {Path}");
        if (!File.Exists(CheckpointPath)) log.WriteLine($"warning: {CheckpointFile} is missing in {Path}; resuming from {System.IO.Path.GetFileName(candidates[0])}");
        for (int i = 0; i < candidates.Count; i++)
        {
            try
            {
                return (Checkpoint.Load(candidates[i], expectedModel: null), candidates[i]);
            }
            catch (CnnUserException e) when (i + 1 < candidates.Count)
            {
                log.WriteLine($"warning: {e.Message}; resuming from {System.IO.Path.GetFileName(candidates[i + 1])} instead");
            }
        }
        throw new InvalidOperationException("unreachable: the last candidate either loads or throws");
    }

    /// <summary>Writes a new checkpoint, keeping the one it replaces as the previous checkpoint.</summary>
    public void SaveCheckpoint(Model model, float[] weights, Adam adam, CheckpointInfo info)
    {
        // Shift the kept ones back by one (the oldest falls off), then write the new newest atomically. Each step is
        // a rename, so a crash anywhere leaves a set of whole files that LoadForResume can walk.
        string[] paths = CheckpointPaths().ToArray();
        try
        {
            for (int i = paths.Length - 1; i > 0; i--)
                if (File.Exists(paths[i - 1])) File.Move(paths[i - 1], paths[i], overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CnnUserException($"{CheckpointPath}: cannot rotate the kept checkpoints: {e.Message.ReplaceLineEndings(" ")}", e);
        }
        Checkpoint.Save(CheckpointPath, model, weights, adam, info);
    }

    /// <summary>How many checkpoints are kept (the newest and the ones before it); at least 2.</summary>
    public int KeepCheckpoints { get; set; } = 3;

    /// <summary>The kept checkpoints' paths, newest first: checkpoint, checkpoint-prev, checkpoint-prev-2, ...</summary>
    public IEnumerable<string> CheckpointPaths()
    {
        yield return CheckpointPath;
        yield return PreviousCheckpointPath;
        for (int i = 2; i < Math.Max(2, KeepCheckpoints); i++) yield return System.IO.Path.Combine(Path, $"checkpoint-prev-{i}.safetensors");
    }

    /// <summary>Writes history.csv with <paramref name="rows"/>.</summary>
    public void WriteHistory(IEnumerable<HistoryRow> rows)
    {
        var csv = new StringBuilder("epoch,loss,accuracy,val_loss,val_accuracy,seconds,images_per_second\n");
        foreach (HistoryRow r in rows)
        {
            csv.Append(CultureInfo.InvariantCulture,
                $"{r.Epoch},{r.Loss:0.######},{r.Accuracy:0.######},{r.ValLoss:0.######},{r.ValAccuracy:0.######},{r.Seconds:0.###},{r.ImagesPerSecond:0.#}\n");
        }
        AtomicFile.WriteAllText(System.IO.Path.Combine(Path, HistoryFile), csv.ToString());
    }

    /// <summary>Writes run.json.</summary>
    public void WriteSummary(RunSummary summary) =>
        AtomicFile.WriteAllText(System.IO.Path.Combine(Path, SummaryFile), JsonSerializer.Serialize(summary, RunJson.Options) + "\n");
}
