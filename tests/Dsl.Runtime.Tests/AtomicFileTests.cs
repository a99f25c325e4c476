// AtomicFile: content replacement, and an intact old file plus no leftover temporary file when the writer throws.
namespace Dsl.Runtime.Tests;

public sealed class AtomicFileTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("dsl-atomic-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void WritesNewFileAndReplacesExistingOne()
    {
        string path = Path.Combine(_directory, "model.safetensors");
        AtomicFile.Write(path, s => s.Write([1, 2, 3]));
        Assert.Equal([1, 2, 3], File.ReadAllBytes(path));
        AtomicFile.Write(path, s => s.Write([4, 5]));
        Assert.Equal([4, 5], File.ReadAllBytes(path));
        Assert.Single(Directory.GetFiles(_directory));
    }

    [Fact]
    public void FailingWriterLeavesOldFileIntactAndRemovesTemporaryFile()
    {
        string path = Path.Combine(_directory, "weights.bin");
        File.WriteAllBytes(path, [9, 9, 9]);

        var e = Assert.Throws<InvalidOperationException>(() => AtomicFile.Write(path, s =>
        {
            s.Write([1, 2, 3, 4]); // partial content reaches the temporary file only
            throw new InvalidOperationException("boom");
        }));

        Assert.Equal("boom", e.Message);
        Assert.Equal([9, 9, 9], File.ReadAllBytes(path));
        Assert.Equal([path], Directory.GetFiles(_directory));
    }

    [Fact]
    public void FailingWriterCreatesNoFileWhenNoneExisted()
    {
        string path = Path.Combine(_directory, "new.bin");
        Assert.Throws<IOException>(() => AtomicFile.Write(path, _ => throw new IOException("disk full")));
        Assert.Empty(Directory.GetFiles(_directory));
    }

    [Fact]
    public void WorksWithSafetensorsWriter()
    {
        string path = Path.Combine(_directory, "m.safetensors");
        var writer = new SafetensorsWriter();
        writer.Add("w", [1f, 2f], [2]);
        AtomicFile.Write(path, writer.WriteTo);
        Assert.Equal([1f, 2f], SafetensorsFile.Read(path)["w"].ToFloatArray());
    }
}
