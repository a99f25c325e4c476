// Crash-safe file replacement: write to a temporary file next to the target, flush to disk, then rename over it.
namespace Dsl.Runtime;

/// <summary>Writes files so that readers see either the complete old content or the complete new content, never a partial file.</summary>
public static class AtomicFile
{
    /// <summary>
    /// Calls <paramref name="write"/> with a stream to a temporary file in the target's directory (so the final rename stays on one file system),
    /// flushes it to disk, and moves it over <paramref name="path"/>. If <paramref name="write"/> throws, the temporary file is deleted,
    /// the existing file is left untouched, and the exception propagates.
    /// </summary>
    /// <param name="path">Destination file path.</param>
    /// <param name="write">Writes the complete content to the given stream.</param>
    public static void Write(string path, Action<Stream> write)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(write);

        string fullPath = Path.GetFullPath(path);
        string directory = Path.GetDirectoryName(fullPath) ?? throw new ArgumentException($"'{path}' has no directory.", nameof(path));
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
