// Per-sample image augmentations a BatchLoader applies as it copies a batch: torchvision's RandomCrop with padding and RandomErasing.
using System.Globalization;
using Dsl.Runtime.Kernels;

namespace Dsl.Training;

/// <summary>
/// A random transformation of one image sample laid out [C, H, W] (channel-major, as a model's input), done in place
/// and allocation-free. Its randomness comes only from the seed it is given, so a <see cref="BatchLoader"/> that passes
/// seeds derived from its own state repeats every augmentation after a restart. An instance keeps scratch space: use it
/// from one thread at a time.
/// </summary>
public abstract class SampleAugmentation
{
    /// <summary>Checks and records the image shape.</summary>
    /// <param name="channels">C (≥ 1).</param>
    /// <param name="height">H (≥ 1).</param>
    /// <param name="width">W (≥ 1).</param>
    /// <exception cref="ArgumentException">A dimension is below 1.</exception>
    protected SampleAugmentation(int channels, int height, int width)
    {
        if (channels < 1 || height < 1 || width < 1)
            throw new ArgumentException(Inv($"the image shape must be [C, H, W] with every dimension ≥ 1, got [{channels}, {height}, {width}]."), nameof(channels));
        Channels = channels;
        Height = height;
        Width = width;
    }

    /// <summary>C.</summary>
    public int Channels { get; }

    /// <summary>H.</summary>
    public int Height { get; }

    /// <summary>W.</summary>
    public int Width { get; }

    /// <summary>Floats per sample: C·H·W.</summary>
    public int SampleLength => Channels * Height * Width;

    /// <summary>Transforms <paramref name="sample"/> in place with the random choices <paramref name="seed"/> determines.</summary>
    /// <param name="sample">Exactly <see cref="SampleLength"/> floats, [C, H, W].</param>
    /// <param name="seed">Any 64-bit value: the same seed, the same transformation.</param>
    public abstract void Apply(Span<float> sample, ulong seed);

    /// <summary>A short description for logs, e.g. <c>random crop 28×28, padding 4</c>.</summary>
    /// <returns>The description.</returns>
    public abstract override string ToString();

    /// <summary>Throws unless <paramref name="sample"/> holds one [C, H, W] image.</summary>
    /// <param name="sample">The sample.</param>
    protected void CheckLength(ReadOnlySpan<float> sample)
    {
        if (sample.Length != SampleLength)
            throw new ArgumentException(Inv($"{GetType().Name} works on samples of {SampleLength} floats ([{Channels}, {Height}, {Width}]), got {sample.Length}."), nameof(sample));
    }

    /// <summary>A uniform integer in 0…<paramref name="count"/>−1 (multiply-high of 64 random bits; bias below 2^-32).</summary>
    /// <param name="random">The generator.</param>
    /// <param name="count">How many values (≥ 1).</param>
    /// <returns>The draw.</returns>
    private protected static int Uniform(ref SplitMix64 random, int count) => (int)Math.BigMul(random.NextUInt64(), (ulong)count, out _);

    /// <summary>Formats with the invariant culture.</summary>
    /// <param name="text">An interpolated string.</param>
    /// <returns>The text.</returns>
    private protected static string Inv(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}

/// <summary>
/// torchvision's <c>RandomCrop(size=(H, W), padding=k)</c> on an image of that same size: the image is padded with
/// <c>fill</c> by k on every side, and a uniformly random H×W window of the (H + 2k)×(W + 2k) result is
/// kept (its top-left corner (i, j) uniform in 0…2k each). The same window for every channel. Allocation-free: the one
/// scratch image is allocated in the constructor.
/// </summary>
/// <remarks>
/// torchvision pads the image before <c>ToTensor</c> and <c>Normalize</c>, so its zeros are black pixels. On data
/// normalized when loaded (<see cref="MnistFiles.Load"/>), pass <c>fill: normalization.Apply(0)</c> for the same
/// images; the default 0 pads with the normalized mean instead.
/// </remarks>
public sealed class RandomCrop : SampleAugmentation
{
    private readonly float[] _scratch;

    /// <summary>A random crop of [<paramref name="channels"/>, <paramref name="height"/>, <paramref name="width"/>] images after padding by <paramref name="padding"/>.</summary>
    /// <param name="channels">C.</param>
    /// <param name="height">H: the crop's height, the image's.</param>
    /// <param name="width">W: the crop's width, the image's.</param>
    /// <param name="padding">k (≥ 0): values of <paramref name="fill"/> added on each side.</param>
    /// <param name="fill">The padding value (torchvision's <c>fill</c>, default 0).</param>
    /// <exception cref="ArgumentException">A dimension below 1, a negative padding or a non-finite fill.</exception>
    public RandomCrop(int channels, int height, int width, int padding, float fill = 0)
        : base(channels, height, width)
    {
        if (padding < 0) throw new ArgumentException(Inv($"padding must be ≥ 0, got {padding}."), nameof(padding));
        if (!float.IsFinite(fill)) throw new ArgumentException(Inv($"fill must be a finite value, got {fill}."), nameof(fill));
        Padding = padding;
        Fill = fill;
        _scratch = new float[SampleLength];
    }

    /// <summary>k: the padding on each side.</summary>
    public int Padding { get; }

    /// <summary>The padding value.</summary>
    public float Fill { get; }

    /// <inheritdoc/>
    public override void Apply(Span<float> sample, ulong seed)
    {
        CheckLength(sample);
        var random = new SplitMix64(seed);
        int top = Uniform(ref random, 2 * Padding + 1); // torchvision draws i, then j
        int left = Uniform(ref random, 2 * Padding + 1);
        Crop(sample, top, left);
    }

    /// <summary>The window whose top-left corner is (<paramref name="top"/>, <paramref name="left"/>) in the padded image, in place.</summary>
    /// <param name="sample">The image, [C, H, W].</param>
    /// <param name="top">i, 0…2k.</param>
    /// <param name="left">j, 0…2k.</param>
    /// <exception cref="ArgumentException">The corner is outside 0…2k or the sample is not one image.</exception>
    public void Crop(Span<float> sample, int top, int left)
    {
        CheckLength(sample);
        if ((uint)top > (uint)(2 * Padding) || (uint)left > (uint)(2 * Padding))
            throw new ArgumentException(Inv($"the window's corner must be in 0…{2 * Padding} (2·padding) each way, got ({top}, {left})."), nameof(top));
        int dy = top - Padding, dx = left - Padding; // output (y, x) reads input (y + dy, x + dx)
        if (dy == 0 && dx == 0) return;
        int h = Height, w = Width;
        sample.CopyTo(_scratch);
        ReadOnlySpan<float> source = _scratch;
        // Columns of the output that read inside the image: x + dx in 0…W−1.
        int x0 = Math.Clamp(-dx, 0, w), x1 = Math.Clamp(w - dx, 0, w);
        for (int c = 0; c < Channels; c++)
        {
            for (int y = 0; y < h; y++)
            {
                var row = sample.Slice((c * h + y) * w, w);
                int sy = y + dy;
                if ((uint)sy >= (uint)h || x0 >= x1)
                {
                    row.Fill(Fill);
                    continue;
                }

                row[..x0].Fill(Fill);
                source.Slice((c * h + sy) * w + x0 + dx, x1 - x0).CopyTo(row[x0..x1]);
                row[x1..].Fill(Fill);
            }
        }
    }

    /// <inheritdoc/>
    public override string ToString() => Inv($"random crop {Height}×{Width}, padding {Padding}{(Fill != 0 ? Inv($" filled with {Fill:G4}") : "")}");
}

/// <summary>
/// torchvision's <c>RandomErasing(p, scale, ratio, value)</c> (Zhong et al., 2017), on a normalized image: with
/// probability p, a rectangle of area fraction uniform in <c>scale</c> and aspect ratio h/w log-uniform in <c>ratio</c>
/// is set to <c>value</c> in every channel; h and w are rounded half to even as Python's <c>round</c>; up to 10 draws are
/// tried for a rectangle that fits (h &lt; H and w &lt; W) before the image is left as it is. Defaults are torchvision's:
/// p 0.5, scale (0.02, 0.33), ratio (0.3, 3.3), value 0.
/// </summary>
public sealed class RandomErasing : SampleAugmentation
{
    /// <summary>Random erasing of [<paramref name="channels"/>, <paramref name="height"/>, <paramref name="width"/>] images.</summary>
    /// <param name="channels">C.</param>
    /// <param name="height">H.</param>
    /// <param name="width">W.</param>
    /// <param name="probability">p in [0, 1]: the chance an image is erased.</param>
    /// <param name="minScale">Smallest erased fraction of the area, in [0, 1].</param>
    /// <param name="maxScale">Largest erased fraction, in [minScale, 1].</param>
    /// <param name="minRatio">Smallest aspect ratio h/w (&gt; 0).</param>
    /// <param name="maxRatio">Largest aspect ratio (≥ minRatio).</param>
    /// <param name="value">What erased values become (torchvision's <c>value</c>, default 0).</param>
    /// <exception cref="ArgumentException">An argument is out of its range; the message says which range.</exception>
    public RandomErasing(int channels, int height, int width, float probability = 0.5f, float minScale = 0.02f, float maxScale = 0.33f,
        float minRatio = 0.3f, float maxRatio = 3.3f, float value = 0)
        : base(channels, height, width)
    {
        if (!(probability >= 0 && probability <= 1)) throw new ArgumentException(Inv($"probability must be in [0, 1], got {probability}."), nameof(probability));
        if (!(minScale >= 0 && minScale <= maxScale && maxScale <= 1))
            throw new ArgumentException(Inv($"the scale range must satisfy 0 ≤ minScale ≤ maxScale ≤ 1, got ({minScale}, {maxScale})."), nameof(minScale));
        if (!(minRatio > 0 && minRatio <= maxRatio && float.IsFinite(maxRatio)))
            throw new ArgumentException(Inv($"the ratio range must satisfy 0 < minRatio ≤ maxRatio, got ({minRatio}, {maxRatio})."), nameof(minRatio));
        if (!float.IsFinite(value)) throw new ArgumentException(Inv($"value must be finite, got {value}."), nameof(value));
        Probability = probability;
        MinScale = minScale;
        MaxScale = maxScale;
        MinRatio = minRatio;
        MaxRatio = maxRatio;
        Value = value;
    }

    /// <summary>p.</summary>
    public float Probability { get; }

    /// <summary>The erased area's smallest fraction.</summary>
    public float MinScale { get; }

    /// <summary>The erased area's largest fraction.</summary>
    public float MaxScale { get; }

    /// <summary>The smallest aspect ratio h/w.</summary>
    public float MinRatio { get; }

    /// <summary>The largest aspect ratio h/w.</summary>
    public float MaxRatio { get; }

    /// <summary>What erased values become.</summary>
    public float Value { get; }

    /// <summary>The rectangle <see cref="Apply"/> erases for <paramref name="seed"/>: Height 0 when the image is kept.</summary>
    /// <param name="seed">The seed.</param>
    /// <returns>Top row, left column, height and width.</returns>
    public (int Top, int Left, int Height, int Width) Rectangle(ulong seed)
    {
        var random = new SplitMix64(seed);
        if (!(random.NextSingle() < Probability)) return default;
        double area = (double)Height * Width, logMin = Math.Log(MinRatio), logMax = Math.Log(MaxRatio);
        for (int attempt = 0; attempt < 10; attempt++)
        {
            double erase = area * random.NextUniform(MinScale, MaxScale);
            double ratio = Math.Exp(logMin + (logMax - logMin) * random.NextSingle());
            int h = (int)Math.Round(Math.Sqrt(erase * ratio)), w = (int)Math.Round(Math.Sqrt(erase / ratio)); // half to even, as Python
            if (!(h < Height && w < Width)) continue;
            int top = Uniform(ref random, Height - h + 1), left = Uniform(ref random, Width - w + 1);
            return (top, left, h, w);
        }

        return default;
    }

    /// <inheritdoc/>
    public override void Apply(Span<float> sample, ulong seed)
    {
        CheckLength(sample);
        var (top, left, h, w) = Rectangle(seed);
        if (h == 0 || w == 0) return;
        for (int c = 0; c < Channels; c++)
        {
            for (int y = top; y < top + h; y++) sample.Slice((c * Height + y) * Width + left, w).Fill(Value);
        }
    }

    /// <inheritdoc/>
    public override string ToString() =>
        Inv($"random erasing p {Probability:G3}, scale ({MinScale:G3}, {MaxScale:G3}), ratio ({MinRatio:G3}, {MaxRatio:G3}), value {Value:G4}");
}
