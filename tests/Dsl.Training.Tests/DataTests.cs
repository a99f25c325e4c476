// IDX files (gzip or raw) written by the test itself, normalization, and the seeded mini-batch loader.
using System.IO.Compression;

namespace Dsl.Training.Tests;

public sealed class DataTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("dsl-idx-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static byte[] IdxBytes(int magic, int[] dims, byte[] data)
    {
        var s = new MemoryStream();
        s.Write([(byte)(magic >> 24), (byte)(magic >> 16), (byte)(magic >> 8), (byte)magic]);
        foreach (int d in dims) s.Write([(byte)(d >> 24), (byte)(d >> 16), (byte)(d >> 8), (byte)d]);
        s.Write(data);
        return s.ToArray();
    }

    private string WriteFile(string name, byte[] bytes, bool gzip)
    {
        string path = Path.Combine(_dir, name);
        using var file = File.Create(path);
        if (gzip)
        {
            using var z = new GZipStream(file, CompressionLevel.Fastest);
            z.Write(bytes);
        }
        else
        {
            file.Write(bytes);
        }

        return path;
    }

    private static (byte[] Pixels, byte[] Labels) Fake(int n)
    {
        var pixels = new byte[n * 2 * 3];
        for (int i = 0; i < pixels.Length; i++) pixels[i] = (byte)(i * 37 % 256);
        var labels = new byte[n];
        for (int i = 0; i < n; i++) labels[i] = (byte)(i % 10);
        return (pixels, labels);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ReadsImagesAndLabels(bool gzip)
    {
        var (pixels, labels) = Fake(5);
        string images = WriteFile("i.gz", IdxBytes(0x803, [5, 2, 3], pixels), gzip);
        string labelFile = WriteFile("l.gz", IdxBytes(0x801, [5], labels), gzip);
        var x = Idx.ReadImages(images);
        Assert.Equal([5, 2, 3], x.Dimensions);
        Assert.Equal(pixels, x.Data);
        var y = Idx.ReadLabels(labelFile);
        Assert.Equal([5], y.Dimensions);
        Assert.Equal(labels, y.Data);

        var data = LabeledDataset.FromIdx(x, y, Normalization.FashionMnist);
        Assert.Equal(5, data.Count);
        Assert.Equal(6, data.SampleLength);
        Assert.Equal((pixels[7] / 255f - 0.2860f) / 0.3530f, data.Sample(1)[1]);
        Assert.Equal([0, 1, 2, 3, 4], data.Labels.ToArray());
    }

    [Fact]
    public void WriteThenReadRoundTrips()
    {
        var array = new IdxArray([2, 2], [1, 2, 3, 4]);
        var s = new MemoryStream();
        Idx.Write(s, array);
        s.Position = 0;
        var back = Idx.Read(s);
        Assert.Equal(array.Dimensions, back.Dimensions);
        Assert.Equal(array.Data, back.Data);
    }

    [Fact]
    public void RejectsCorruptFilesWithClearMessages()
    {
        var (pixels, labels) = Fake(5);
        var good = IdxBytes(0x803, [5, 2, 3], pixels);

        string wrongMagic = WriteFile("bad-magic", IdxBytes(0x12345803, [5, 2, 3], pixels), gzip: true);
        Assert.Contains("not an IDX file", Assert.Throws<InvalidDataException>(() => Idx.Read(wrongMagic)).Message);

        string floats = WriteFile("floats", IdxBytes(0x0D03, [5, 2, 3], pixels), gzip: false);
        Assert.Contains("not supported", Assert.Throws<InvalidDataException>(() => Idx.Read(floats)).Message);

        string truncated = WriteFile("truncated.gz", good[..^4], gzip: true);
        var e = Assert.Throws<InvalidDataException>(() => Idx.Read(truncated));
        Assert.Contains("truncated", e.Message);
        Assert.Contains("30 bytes", e.Message);
        Assert.Contains(truncated, e.Message);

        string header = WriteFile("header", good[..10], gzip: false);
        Assert.Contains("truncated in the header", Assert.Throws<InvalidDataException>(() => Idx.Read(header)).Message);

        string extra = WriteFile("extra", [.. good, 1, 2], gzip: false);
        Assert.Contains("extra bytes", Assert.Throws<InvalidDataException>(() => Idx.Read(extra)).Message);

        // A gzip stream cut short (the compressed bytes themselves truncated).
        string gz = WriteFile("full.gz", good, gzip: true);
        var compressed = File.ReadAllBytes(gz);
        string cut = Path.Combine(_dir, "cut.gz");
        File.WriteAllBytes(cut, compressed[..(compressed.Length / 2)]);
        Assert.ThrowsAny<InvalidDataException>(() => Idx.Read(cut));

        // Labels where images are expected, and the other way round.
        string labelFile = WriteFile("labels.gz", IdxBytes(0x801, [5], labels), gzip: true);
        Assert.Contains("expected an image file", Assert.Throws<InvalidDataException>(() => Idx.ReadImages(labelFile)).Message);
        Assert.Contains("expected a label file", Assert.Throws<InvalidDataException>(() => Idx.ReadLabels(gz)).Message);

        // Counts that differ.
        var x = Idx.ReadImages(gz);
        var y = new IdxArray([4], [0, 1, 2, 3]);
        Assert.Contains("5 images but 4 labels", Assert.Throws<InvalidDataException>(() => LabeledDataset.FromIdx(x, y, Normalization.None)).Message);
    }

    [Fact]
    public void LoadsMnistFileNamesFromAFolder()
    {
        var (pixels, labels) = Fake(4);
        var (images, labelPath) = MnistFiles.Paths(_dir, train: false);
        Assert.EndsWith("t10k-images-idx3-ubyte.gz", images);
        WriteFile(Path.GetFileName(images), IdxBytes(0x803, [4, 2, 3], pixels), gzip: true);
        WriteFile(Path.GetFileName(labelPath), IdxBytes(0x801, [4], labels), gzip: true);
        var data = MnistFiles.Load(_dir, train: false, Normalization.None);
        Assert.Equal(4, data.Count);
        Assert.Equal(pixels[0] / 255f, data.Samples[0]);
        var missing = Assert.Throws<FileNotFoundException>(() => MnistFiles.Load(_dir, train: true));
        Assert.Contains("apt-get install -y dataset-fashion-mnist", missing.Message);
    }

    private static LabeledDataset Numbered(int n, int sampleLength = 2)
    {
        var x = new float[n * sampleLength];
        for (int i = 0; i < x.Length; i++) x[i] = i / sampleLength; // every float of sample i is i
        return new LabeledDataset(x, Enumerable.Range(0, n).Select(i => i % 3).ToArray(), sampleLength, 3);
    }

    private static List<int[]> Epoch(BatchLoader loader)
    {
        var batches = new List<int[]>();
        var inputs = new float[loader.BatchSize * loader.Data.SampleLength];
        var labels = new int[loader.BatchSize];
        loader.StartEpoch();
        int n;
        while ((n = loader.Next(inputs, labels)) > 0)
        {
            var ids = new int[n];
            for (int k = 0; k < n; k++)
            {
                ids[k] = (int)inputs[k * loader.Data.SampleLength];
                Assert.Equal(ids[k] % 3, labels[k]);
            }

            batches.Add(ids);
        }

        return batches;
    }

    [Fact]
    public void LoaderShufflesEverySampleOncePerEpochAndRepeatsWithTheSeed()
    {
        var data = Numbered(10);
        var a = new BatchLoader(data, 3, seed: 42);
        Assert.Equal(3, a.BatchesPerEpoch);
        Assert.Equal(9, a.SamplesPerEpoch);
        var first = Epoch(a);
        Assert.Equal(3, first.Count);
        Assert.All(first, b => Assert.Equal(3, b.Length));
        Assert.Equal(9, first.SelectMany(b => b).Distinct().Count());
        var second = Epoch(a);
        Assert.NotEqual(first.SelectMany(b => b), second.SelectMany(b => b));

        var b = new BatchLoader(data, 3, seed: 42);
        Assert.Equal(first.SelectMany(x => x), Epoch(b).SelectMany(x => x));
        Assert.Equal(second.SelectMany(x => x), Epoch(b).SelectMany(x => x));
        Assert.NotEqual(first.SelectMany(x => x), Epoch(new BatchLoader(data, 3, seed: 43)).SelectMany(x => x));
    }

    [Fact]
    public void LoaderKeepsOrDropsTheLastBatch()
    {
        var data = Numbered(10);
        var keep = new BatchLoader(data, 3, shuffle: false, dropLast: false);
        Assert.Equal(4, keep.BatchesPerEpoch);
        var batches = Epoch(keep);
        Assert.Equal(new List<int[]> { new[] { 0, 1, 2 }, new[] { 3, 4, 5 }, new[] { 6, 7, 8 }, new[] { 9 } }, batches);
        Assert.Equal(Enumerable.Range(0, 10), Epoch(new BatchLoader(data, 5, shuffle: true, dropLast: false, seed: 1)).SelectMany(x => x).Order());
        Assert.Throws<ArgumentException>(() => new BatchLoader(Numbered(2), 3)); // dropLast: no batch at all
    }

    [Fact]
    public void LoaderStateRestoresMidEpoch()
    {
        var data = Numbered(20);
        var a = new BatchLoader(data, 4, seed: 5);
        Epoch(a);
        a.StartEpoch();
        var inputs = new float[8];
        var labels = new int[4];
        a.Next(inputs, labels);
        a.Next(inputs, labels);
        var state = a.State;
        var rest = new List<float>();
        while (a.Next(inputs, labels) > 0) rest.AddRange(inputs);
        var next = Epoch(a);

        var b = new BatchLoader(data, 4, seed: 5);
        b.Restore(state);
        Assert.Equal(2, b.Epoch);
        Assert.Equal(8, b.Cursor);
        var restB = new List<float>();
        while (b.Next(inputs, labels) > 0) restB.AddRange(inputs);
        Assert.Equal(rest, restB);
        Assert.Equal(next, Epoch(b));

        var fromMetadata = LoaderState.FromMetadata(state.ToMetadata().ToDictionary());
        Assert.Equal(state, fromMetadata);
        Assert.Throws<ArgumentException>(() => new BatchLoader(data, 4, seed: 6).Restore(state));
    }

    [Fact]
    public void HorizontalFlipReversesRowsOfAboutHalfTheSamplesRepeatably()
    {
        // 200 samples of 2 rows × 3 values: sample i holds [i, i+0.1, i+0.2, i+0.3, i+0.4, i+0.5].
        const int n = 200;
        var x = new float[n * 6];
        for (int i = 0; i < n; i++)
        {
            for (int k = 0; k < 6; k++) x[i * 6 + k] = i + k / 10f;
        }

        var data = new LabeledDataset(x, new int[n], 6, 1);
        List<bool> Flips(BatchLoader loader, int batches)
        {
            var flips = new List<bool>();
            var inputs = new float[loader.BatchSize * 6];
            var labels = new int[loader.BatchSize];
            for (int b = 0; b < batches; b++)
            {
                if (!loader.HasNext) loader.StartEpoch();
                int count = loader.Next(inputs, labels);
                for (int s = 0; s < count; s++)
                {
                    var row = inputs.AsSpan(s * 6, 6);
                    float id = MathF.Floor(row[0]);
                    bool flipped = row[0] > id + 0.15f;
                    float[] expected = flipped ? [id + 0.2f, id + 0.1f, id, id + 0.5f, id + 0.4f, id + 0.3f] : [id, id + 0.1f, id + 0.2f, id + 0.3f, id + 0.4f, id + 0.5f];
                    Assert.Equal(expected, row.ToArray());
                    flips.Add(flipped);
                }
            }

            return flips;
        }

        var a = new BatchLoader(data, 10, seed: 9) { HorizontalFlipWidth = 3 };
        var first = Flips(a, 25);                 // one epoch and a half
        Assert.InRange(first.Count(f => f), 90, 160);
        var state = a.State;
        var more = Flips(a, 20);

        var b = new BatchLoader(data, 10, seed: 9) { HorizontalFlipWidth = 3 };
        Assert.Equal(first, Flips(b, 25));        // same seed, same flips
        var c = new BatchLoader(data, 10, seed: 9) { HorizontalFlipWidth = 3 };
        c.Restore(state);
        Assert.Equal(more, Flips(c, 20));         // a restored loader repeats them
        Assert.Throws<ArgumentException>(() => new BatchLoader(data, 10) { HorizontalFlipWidth = 4 });
    }

    [Fact]
    public void LoaderDoesNotAllocatePerBatchOrEpoch()
    {
        var loader = new BatchLoader(Numbered(1000, 16), 32, seed: 3) { HorizontalFlipWidth = 4 };
        var inputs = new float[32 * 16];
        var labels = new int[32];
        loader.StartEpoch();
        loader.Next(inputs, labels);
        Assert.Equal(0, TestUtil.BytesAllocatedBy(() =>
        {
            for (int e = 0; e < 2; e++)
            {
                while (loader.Next(inputs, labels) > 0)
                {
                }

                loader.StartEpoch();
            }
        }));
    }
}
