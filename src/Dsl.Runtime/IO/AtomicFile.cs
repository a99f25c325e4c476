// Crash-safe file replacement: write to a temporary file next to the target, flush to disk, then rename over it.
namespace Dsl.Runtime;

/// <summary>Writes files so that readers see either the complete old content or the complete new content, never a partial file.</summary>
public static class AtomicFile
{
    /// <summary>
    /// Calls <paramref name="write"/> with a stream to a temporary file in the target's directory (so the final rename stays on one file system),
    /// flushes it to disk, and moves it over <paramref name="path"/>. If <paramref name="write"/> throws, the temporary file is deleted,
    /// the existing file is left untouched, and the exception propagates. A process killed while saving cannot delete its
    /// temporary file; the next save to the same target does (see <see cref="RemoveStaleTemporaries"/>).
    /// </summary>
    /// <param name="path">Destination file path.</param>
    /// <param name="write">Writes the complete content to the given stream.</param>
    public static void Write(string path, Action<Stream> write)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(write);

        string fullPath = Path.GetFullPath(path);
        string directory = Path.GetDirectoryName(fullPath) ?? throw new ArgumentException($"'{path}' has no directory.", nameof(path));
        RemoveStaleTemporaries(fullPath);
        string temp = Path.Combine(directory, $".{Path.GetFileName(fullPath)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                write(stream);
                // Flush(true) reaches the disk before the rename, so a crash cannot leave a renamed but empty file.
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, fullPath, overwrite: true);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>
    /// Deletes the temporary files that earlier saves to <paramref name="path"/> left behind (a process killed mid-save):
    /// the files named <c>.NAME.GUID.tmp</c> beside it that no process holds open. A save in progress holds its temporary
    /// file open without sharing (on Unix, .NET takes an exclusive advisory lock for that), so it is skipped; the lock of
    /// a killed process is gone with it. Temporaries of other targets are not touched.
    /// </summary>
    /// <param name="path">The target file.</param>
    /// <returns>How many temporary files were deleted.</returns>
    public static int RemoveStaleTemporaries(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string fullPath = Path.GetFullPath(path);
        string? directory = Path.GetDirectoryName(fullPath);
        if (directory is null || !Directory.Exists(directory)) return 0;
        string prefix = $".{Path.GetFileName(fullPath)}.";
        int removed = 0;
        foreach (string candidate in Directory.EnumerateFiles(directory, prefix + "*.tmp"))
        {
            string middle = Path.GetFileName(candidate)[prefix.Length..^".tmp".Length];
            if (middle.Length != 32 || !Guid.TryParseExact(middle, "N", out _)) continue; // not one of ours
            try
            {
                // Succeeds only when no other handle has it open; the file is deleted as this handle closes.
                using (new FileStream(candidate, FileMode.Open, FileAccess.ReadWrite, FileShare.None, bufferSize: 1, FileOptions.DeleteOnClose))
                {
                }

                removed++;
            }
            catch (IOException)
            {
                // In use by a save in progress, or gone already.
            }
            catch (UnauthorizedAccessException)
            {
            }
        }

        return removed;
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
            // Best effort: the original exception is the one worth reporting.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
