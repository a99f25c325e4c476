// A classification data set held in memory as normalized floats, and the MNIST-format loaders.
namespace Dsl.Training;

/// <summary>Pixel normalization <c>x = (byte/255 − Mean)/Std</c>, as torchvision's <c>ToTensor</c> then <c>Normalize</c>.</summary>
/// <param name="Mean">Mean of the pixel values scaled to [0, 1].</param>
/// <param name="Std">Their standard deviation (&gt; 0).</param>
public readonly record struct Normalization(float Mean, float Std)
{
    /// <summary>Fashion-MNIST's training-set statistics: mean 0.2860, std 0.3530.</summary>
    public static Normalization FashionMnist => new(0.2860f, 0.3530f);

    /// <summary>MNIST's training-set statistics: mean 0.1307, std 0.3081.</summary>
    public static Normalization Mnist => new(0.1307f, 0.3081f);

    /// <summary>Only scaling to [0, 1].</summary>
    public static Normalization None => new(0f, 1f);

    /// <summary>The normalized value of a byte.</summary>
    /// <param name="value">A pixel, 0…255.</param>
    /// <returns><c>(value/255 − Mean)/Std</c>.</returns>
    public float Apply(byte value) => (value / 255f - Mean) / Std;
}

/// <summary>
/// Samples (flat floats, all of one shape) with their targets, in memory: integer class labels (classification), or
/// <see cref="TargetLength"/> floats per sample (regression, multi-label: <see cref="HasLabels"/> is false).
/// </summary>
public sealed class LabeledDataset
{
    private readonly float[] _samples;
    private readonly int[] _labels;
    private readonly float[] _targets = [];

    /// <summary>Wraps <paramref name="samples"/> and <paramref name="labels"/> (not copied).</summary>
    /// <param name="samples">Count × <paramref name="sampleLength"/> floats.</param>
    /// <param name="labels">Count labels in 0…<paramref name="classes"/>−1.</param>
    /// <param name="sampleLength">Floats per sample.</param>
    /// <param name="classes">Number of classes.</param>
    public LabeledDataset(float[] samples, int[] labels, int sampleLength, int classes)
    {
        ArgumentNullException.ThrowIfNull(samples);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentOutOfRangeException.ThrowIfLessThan(sampleLength, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(classes, 1);
        if ((long)labels.Length * sampleLength != samples.Length)
            throw new ArgumentException($"{labels.Length} labels need {(long)labels.Length * sampleLength} floats of {sampleLength} each, got {samples.Length}.", nameof(samples));
        for (int i = 0; i < labels.Length; i++)
        {
            if ((uint)labels[i] >= (uint)classes) throw new ArgumentException($"label {labels[i]} of sample {i} is outside 0…{classes - 1}.", nameof(labels));
        }

        _samples = samples;
        _labels = labels;
        SampleLength = sampleLength;
        Classes = classes;
        Count = labels.Length;
    }

    /// <summary>Wraps <paramref name="samples"/> and float <paramref name="targets"/> (not copied): a regression or multi-label set.</summary>
    /// <param name="samples">Count × <paramref name="sampleLength"/> floats.</param>
    /// <param name="targets">Count × <paramref name="targetLength"/> floats: what the model's output should be for each sample.</param>
    /// <param name="sampleLength">Floats per sample.</param>
    /// <param name="targetLength">Floats per target (the model's output length).</param>
    public LabeledDataset(float[] samples, float[] targets, int sampleLength, int targetLength)
    {
        ArgumentNullException.ThrowIfNull(samples);
        ArgumentNullException.ThrowIfNull(targets);
        ArgumentOutOfRangeException.ThrowIfLessThan(sampleLength, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(targetLength, 1);
        if (targets.Length % targetLength != 0)
            throw new ArgumentException($"targets has {targets.Length} floats, not a multiple of {targetLength} per sample.", nameof(targets));
        int count = targets.Length / targetLength;
        if ((long)count * sampleLength != samples.Length)
            throw new ArgumentException($"{count} targets need {(long)count * sampleLength} floats of {sampleLength} each, got {samples.Length}.", nameof(samples));
        _samples = samples;
        _labels = [];
        _targets = targets;
        SampleLength = sampleLength;
        TargetLength = targetLength;
        Count = count;
    }

    /// <summary>Number of samples.</summary>
    public int Count { get; }

    /// <summary>Whether the targets are class labels (<see cref="Labels"/>); false for float targets (<see cref="Targets"/>).</summary>
    public bool HasLabels => TargetLength == 0;

    /// <summary>Floats per target for a set of float targets; 0 for a labeled set.</summary>
    public int TargetLength { get; }

    /// <summary>All float targets, flat (empty for a labeled set).</summary>
    public ReadOnlySpan<float> Targets => _targets;

    /// <summary>Floats per sample.</summary>
    public int SampleLength { get; }

    /// <summary>Number of classes (0 for a set of float targets).</summary>
    public int Classes { get; }

    /// <summary>All samples, flat.</summary>
    public ReadOnlySpan<float> Samples => _samples;

    /// <summary>All labels (empty for a set of float targets).</summary>
    public ReadOnlySpan<int> Labels => _labels;

    /// <summary>Sample <paramref name="index"/>.</summary>
    /// <param name="index">0…Count−1.</param>
    /// <returns>Its floats.</returns>
    public ReadOnlySpan<float> Sample(int index) => _samples.AsSpan(checked(index * SampleLength), SampleLength);

    /// <summary>Samples <paramref name="start"/>…<paramref name="start"/>+<paramref name="count"/>−1 as a new data set (copied).</summary>
    /// <param name="start">First sample.</param>
    /// <param name="count">Number of samples.</param>
    /// <returns>The subset.</returns>
    public LabeledDataset Slice(int start, int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(start);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (start + count > Count) throw new ArgumentOutOfRangeException(nameof(count), count, $"the data set has {Count} samples.");
        var samples = _samples.AsSpan(start * SampleLength, count * SampleLength).ToArray();
        return HasLabels
            ? new LabeledDataset(samples, _labels.AsSpan(start, count).ToArray(), SampleLength, Classes)
            : new LabeledDataset(samples, _targets.AsSpan(start * TargetLength, count * TargetLength).ToArray(), SampleLength, TargetLength);
    }

    /// <summary>The first <paramref name="count"/> samples (all of them when <paramref name="count"/> ≥ <see cref="Count"/>).</summary>
    /// <param name="count">Number of samples wanted.</param>
    /// <returns>This data set, or a copy of its head.</returns>
    public LabeledDataset Take(int count) => count >= Count ? this : Slice(0, count);

    /// <summary>Builds a data set from IDX images [n, rows, cols] and labels [n], normalizing every pixel.</summary>
    /// <param name="images">The images (<see cref="Idx.ReadImages"/>).</param>
    /// <param name="labels">The labels (<see cref="Idx.ReadLabels"/>).</param>
    /// <param name="normalization">How bytes become floats.</param>
    /// <param name="classes">Number of classes (10 for MNIST).</param>
    /// <returns>Samples of rows × cols floats (one channel).</returns>
    /// <exception cref="InvalidDataException">The counts differ or a label is out of range.</exception>
    public static LabeledDataset FromIdx(IdxArray images, IdxArray labels, Normalization normalization, int classes = 10)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(labels);
        if (images.Dimensions.Length != 3) throw new InvalidDataException($"images must be [n, rows, cols], got [{string.Join(", ", images.Dimensions)}].");
        if (labels.Dimensions.Length != 1) throw new InvalidDataException($"labels must be [n], got [{string.Join(", ", labels.Dimensions)}].");
        if (images.Dimensions[0] != labels.Dimensions[0])
            throw new InvalidDataException($"{images.Dimensions[0]} images but {labels.Dimensions[0]} labels.");
        if (!(normalization.Std > 0)) throw new ArgumentOutOfRangeException(nameof(normalization), normalization.Std, "std must be > 0.");

        // One lookup table: 256 possible values.
        Span<float> table = stackalloc float[256];
        for (int v = 0; v < 256; v++) table[v] = normalization.Apply((byte)v);
        var samples = new float[images.Data.Length];
        for (int i = 0; i < samples.Length; i++) samples[i] = table[images.Data[i]];
        var y = new int[labels.Data.Length];
        for (int i = 0; i < y.Length; i++)
        {
            y[i] = labels.Data[i];
            if (y[i] >= classes) throw new InvalidDataException($"label {y[i]} of sample {i} is outside 0…{classes - 1}.");
        }

        return new LabeledDataset(samples, y, images.Dimensions[1] * images.Dimensions[2], classes);
    }
}

/// <summary>Loads MNIST-format data sets (Fashion-MNIST as Debian's <c>dataset-fashion-mnist</c> package installs it).</summary>
public static class MnistFiles
{
    /// <summary>Where <c>apt-get install dataset-fashion-mnist</c> puts the files.</summary>
    public const string FashionMnistDirectory = "/usr/share/datasets/fashion-mnist";

    /// <summary>Fashion-MNIST's class names, by label.</summary>
    public static IReadOnlyList<string> FashionMnistClasses { get; } =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    /// <summary>The image and label file names of a split: <c>train-images-idx3-ubyte.gz</c> / <c>t10k-…</c>.</summary>
    /// <param name="directory">The folder holding the files.</param>
    /// <param name="train">True for the training split, false for the test split.</param>
    /// <returns>Both paths.</returns>
    public static (string Images, string Labels) Paths(string directory, bool train)
    {
        string prefix = train ? "train" : "t10k";
        return (Path.Combine(directory, $"{prefix}-images-idx3-ubyte.gz"), Path.Combine(directory, $"{prefix}-labels-idx1-ubyte.gz"));
    }

    /// <summary>Loads one split from <paramref name="directory"/>, normalized.</summary>
    /// <param name="directory">The folder with the four <c>.gz</c> files.</param>
    /// <param name="train">True for the 60,000 training images, false for the 10,000 test images.</param>
    /// <param name="normalization">Pixel normalization (Fashion-MNIST's statistics by default).</param>
    /// <returns>The data set: 784 floats per sample, 10 classes.</returns>
    /// <exception cref="FileNotFoundException">A file is missing; the message says how to install the data.</exception>
    public static LabeledDataset Load(string directory, bool train, Normalization? normalization = null)
    {
        var (images, labels) = Paths(directory, train);
        foreach (var path in new[] { images, labels })
        {
            if (!File.Exists(path))
                throw new FileNotFoundException($"{path} not found. Install Fashion-MNIST with 'apt-get install -y dataset-fashion-mnist' (files in {FashionMnistDirectory}) or point to a folder with the MNIST-format .gz files.", path);
        }

        return LabeledDataset.FromIdx(Idx.ReadImages(images), Idx.ReadLabels(labels), normalization ?? Normalization.FashionMnist);
    }
}
