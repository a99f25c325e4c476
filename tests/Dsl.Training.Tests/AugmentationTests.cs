// torchvision's RandomCrop(size, padding) and RandomErasing, alone and served by the BatchLoader: exact windows, their
// distribution, determinism under a seed and after a restore, no allocation per batch, and the messages for bad arguments.
namespace Dsl.Training.Tests;

public class AugmentationTests
{
    // Sample values 1…C·H·W, all distinct, so that a crop's window can be recognized.
    private static float[] Distinct(int length, float offset = 0)
    {
        var x = new float[length];
        for (int i = 0; i < length; i++) x[i] = offset + i + 1;
        return x;
    }

    // What torchvision does: pad every channel with `fill` by k on each side, then take the H×W window at (i, j).
    private static float[] PadThenCrop(float[] image, int c, int h, int w, int k, int i, int j, float fill)
    {
        int ph = h + 2 * k, pw = w + 2 * k;
        var padded = new float[c * ph * pw];
        Array.Fill(padded, fill);
        for (int ch = 0; ch < c; ch++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) padded[(ch * ph + y + k) * pw + x + k] = image[(ch * h + y) * w + x];
        var crop = new float[c * h * w];
        for (int ch = 0; ch < c; ch++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) crop[(ch * h + y) * w + x] = padded[(ch * ph + y + i) * pw + x + j];
        return crop;
    }

    [Theory]
    [InlineData(2, 5, 7, 2, 0f)]
    [InlineData(1, 28, 28, 4, -0.8102f)]
    [InlineData(3, 4, 4, 6, 0f)] // padding wider than the image: some windows are all fill
    public void CropIsPaddingThenTheWindowAtItsCorner(int c, int h, int w, int k, float fill)
    {
        var crop = new RandomCrop(c, h, w, k, fill);
        var image = Distinct(c * h * w);
        for (int i = 0; i <= 2 * k; i++)
        {
            for (int j = 0; j <= 2 * k; j++)
            {
                var sample = (float[])image.Clone();
                crop.Crop(sample, i, j);
                Assert.Equal(PadThenCrop(image, c, h, w, k, i, j, fill), sample);
            }
        }
    }

    [Fact]
    public void RandomCropDrawsEveryWindowUniformlyAndRepeatsForASeed()
    {
        const int c = 2, h = 6, w = 5, k = 2, draws = 25_000;
        var crop = new RandomCrop(c, h, w, k);
        var image = Distinct(c * h * w);
        var windows = new float[(2 * k + 1) * (2 * k + 1)][];
        for (int i = 0; i <= 2 * k; i++)
            for (int j = 0; j <= 2 * k; j++) windows[i * (2 * k + 1) + j] = PadThenCrop(image, c, h, w, k, i, j, 0);

        var counts = new int[windows.Length];
        var sample = new float[image.Length];
        for (ulong seed = 0; seed < draws; seed++)
        {
            image.CopyTo(sample, 0);
            crop.Apply(sample, seed);
            int match = Array.FindIndex(windows, window => window.AsSpan().SequenceEqual(sample));
            Assert.True(match >= 0, $"seed {seed}: the result is no window of the padded image");
            counts[match]++;
            var again = (float[])image.Clone();
            crop.Apply(again, seed);
            Assert.Equal(sample, again);
        }

        // Each of the 25 corners has probability 1/25: 1000 expected, binomial sd ≈ 31; ±5 sd.
        foreach (int count in counts) Assert.InRange(count, 845, 1155);
    }

    [Fact]
    public void RandomCropRejectsBadArgumentsSayingWhatItExpects()
    {
        Assert.Equal("padding must be ≥ 0, got -1. (Parameter 'padding')",
            Assert.Throws<ArgumentException>(() => new RandomCrop(1, 28, 28, -1)).Message);
        Assert.Equal("the image shape must be [C, H, W] with every dimension ≥ 1, got [1, 0, 28]. (Parameter 'channels')",
            Assert.Throws<ArgumentException>(() => new RandomCrop(1, 0, 28, 4)).Message);
        Assert.Equal("fill must be a finite value, got NaN. (Parameter 'fill')",
            Assert.Throws<ArgumentException>(() => new RandomCrop(1, 28, 28, 4, float.NaN)).Message);
        var crop = new RandomCrop(1, 28, 28, 4);
        Assert.Equal("RandomCrop works on samples of 784 floats ([1, 28, 28]), got 783. (Parameter 'sample')",
            Assert.Throws<ArgumentException>(() => crop.Apply(new float[783], 1)).Message);
        Assert.Equal("the window's corner must be in 0…8 (2·padding) each way, got (9, 0). (Parameter 'top')",
            Assert.Throws<ArgumentException>(() => crop.Crop(new float[784], 9, 0)).Message);
        Assert.Equal("random crop 28×28, padding 4", crop.ToString());
    }

    [Fact]
    public void RandomErasingSetsOneRectangleOfTorchvisionsSizesInHalfTheImages()
    {
        const int c = 2, h = 28, w = 28, draws = 20_000;
        var erasing = new RandomErasing(c, h, w, value: -7);
        var image = Distinct(c * h * w);
        var sample = new float[image.Length];
        int erased = 0;
        double fractionSum = 0;
        for (ulong seed = 0; seed < draws; seed++)
        {
            image.CopyTo(sample, 0);
            erasing.Apply(sample, seed);
            var (top, left, rh, rw) = erasing.Rectangle(seed);
            for (int ch = 0; ch < c; ch++)
            {
                for (int y = 0; y < h; y++)
                {
                    for (int x = 0; x < w; x++)
                    {
                        int at = (ch * h + y) * w + x;
                        bool inside = y >= top && y < top + rh && x >= left && x < left + rw;
                        Assert.Equal(inside ? -7f : image[at], sample[at]);
                    }
                }
            }

            if (rh == 0) continue;
            erased++;
            fractionSum += (double)rh * rw / (h * w);
            Assert.True(rh < h && rw < w && top + rh <= h && left + rw <= w);
            // h = round(√(a·r)), w = round(√(a/r)) with a/(H·W) in [0.02, 0.33] and r in [0.3, 3.3], up to the rounding.
            Assert.True((rh + 0.5) * (rw + 0.5) >= h * w * 0.02 - 1e-9);
            Assert.True((rh - 0.5) * (rw - 0.5) <= h * w * 0.33 + 1e-9);
            Assert.True((rh - 0.5) / (rw + 0.5) <= 3.3 && (rh + 0.5) / (rw - 0.5) >= 0.3);
        }

        // p = 0.5: sd of the count ≈ 71; ±5 sd.
        Assert.InRange(erased, 9_645, 10_355);
        // Mean erased fraction of torchvision's procedure on 28×28 (10 tries, rejecting h ≥ 28 or w ≥ 28): 0.1737 by a
        // 200,000-draw simulation of its code; the sample mean's sd here ≈ 0.001.
        Assert.InRange(fractionSum / erased, 0.168, 0.180);
    }

    [Fact]
    public void RandomErasingWithProbabilityZeroOrOne()
    {
        var never = new RandomErasing(1, 28, 28, probability: 0);
        var always = new RandomErasing(1, 28, 28, probability: 1);
        int erased = 0;
        for (ulong seed = 0; seed < 1000; seed++)
        {
            Assert.Equal(0, never.Rectangle(seed).Height);
            if (always.Rectangle(seed).Height > 0) erased++;
        }

        Assert.True(erased >= 999, $"{erased} of 1000 erased with p = 1"); // only ten failed tries in a row keep an image
    }

    [Fact]
    public void RandomErasingRejectsBadArgumentsSayingWhatItExpects()
    {
        Assert.Equal("probability must be in [0, 1], got 1.5. (Parameter 'probability')",
            Assert.Throws<ArgumentException>(() => new RandomErasing(1, 28, 28, probability: 1.5f)).Message);
        Assert.Equal("the scale range must satisfy 0 ≤ minScale ≤ maxScale ≤ 1, got (0.5, 0.2). (Parameter 'minScale')",
            Assert.Throws<ArgumentException>(() => new RandomErasing(1, 28, 28, minScale: 0.5f, maxScale: 0.2f)).Message);
        Assert.Equal("the ratio range must satisfy 0 < minRatio ≤ maxRatio, got (0, 1). (Parameter 'minRatio')",
            Assert.Throws<ArgumentException>(() => new RandomErasing(1, 28, 28, minRatio: 0, maxRatio: 1)).Message);
        Assert.Equal("RandomErasing works on samples of 784 floats ([1, 28, 28]), got 785. (Parameter 'sample')",
            Assert.Throws<ArgumentException>(() => new RandomErasing(1, 28, 28).Apply(new float[785], 1)).Message);
    }

    // 300 samples of [1, 6, 6], sample s holding s·1000 + 1…36, so each served sample names its source.
    private static LabeledDataset Images(int n = 300)
    {
        var x = new float[n * 36];
        for (int s = 0; s < n; s++) Distinct(36, s * 1000).CopyTo(x, s * 36);
        return new LabeledDataset(x, new int[n], 36, 1);
    }

    private static List<float[]> Serve(BatchLoader loader, int batches)
    {
        var served = new List<float[]>();
        var inputs = new float[loader.BatchSize * 36];
        var labels = new int[loader.BatchSize];
        for (int b = 0; b < batches; b++)
        {
            if (!loader.HasNext) loader.StartEpoch();
            int count = loader.Next(inputs, labels);
            for (int s = 0; s < count; s++) served.Add(inputs.AsSpan(s * 36, 36).ToArray());
        }

        return served;
    }

    [Fact]
    public void LoaderCropsEverySampleToAWindowOfItselfRepeatablyAndAfterARestore()
    {
        var data = Images();
        BatchLoader Loader() => new(data, 20, seed: 4) { Augmentations = [new RandomCrop(1, 6, 6, 1)] };
        var a = Loader();
        var first = Serve(a, 20);                  // one epoch and a third
        var state = a.State;
        var more = Serve(a, 10);

        int shifted = 0;
        foreach (var sample in first.Concat(more))
        {
            float id = sample.Max() >= 1000 ? MathF.Floor(sample.Max() / 1000) : 0;
            var original = data.Sample((int)id).ToArray();
            bool any = false;
            for (int i = 0; i <= 2 && !any; i++)
                for (int j = 0; j <= 2 && !any; j++) any = PadThenCrop(original, 1, 6, 6, 1, i, j, 0).AsSpan().SequenceEqual(sample);
            Assert.True(any, "a served sample is no window of its padded source");
            if (!original.AsSpan().SequenceEqual(sample)) shifted++;
        }

        Assert.InRange(shifted, 495, 572);         // 8 of 9 windows move the image: 533 of 600 expected, sd ≈ 7.7

        Assert.Equal(first, Serve(Loader(), 20));  // same seed, same crops
        var restored = Loader();
        restored.Restore(state);
        Assert.Equal(more, Serve(restored, 10));   // a restored loader repeats them
        Assert.NotEqual(first.Take(20), Serve(new BatchLoader(data, 20, seed: 5) { Augmentations = [new RandomCrop(1, 6, 6, 1)] }, 1));
    }

    [Fact]
    public void LoaderAugmentsWithoutAllocatingPerBatchOrEpoch()
    {
        var data = Images(1000);
        var loader = new BatchLoader(data, 32, seed: 3)
        {
            HorizontalFlipWidth = 6,
            Augmentations = [new RandomCrop(1, 6, 6, 2), new RandomErasing(1, 6, 6)],
        };
        var inputs = new float[32 * 36];
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

    [Fact]
    public void LoaderRejectsAnAugmentationForAnotherShape()
    {
        var e = Assert.Throws<ArgumentException>(() => new BatchLoader(Images(), 20) { Augmentations = [new RandomCrop(1, 28, 28, 4)] });
        Assert.Equal("RandomCrop is for samples of 784 floats ([1, 28, 28]); the data set's have 36. (Parameter 'value')", e.Message);
    }
}
