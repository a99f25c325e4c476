// Seeded, shuffling mini-batch loader over an in-memory data set; copies batches into the caller's buffers.
using System.Globalization;
using Dsl.Runtime.Kernels;

namespace Dsl.Training;

/// <summary>Where a <see cref="BatchLoader"/> stands: enough to make its next batches identical after a restart.</summary>
/// <param name="Seed">The loader's seed.</param>
/// <param name="RngState">The generator's state before the current epoch's shuffle.</param>
/// <param name="Epoch">Epochs started.</param>
/// <param name="Cursor">Samples already served in the current epoch.</param>
/// <param name="InEpoch">Whether an epoch is in progress (batches remain).</param>
public readonly record struct LoaderState(ulong Seed, ulong RngState, int Epoch, int Cursor, bool InEpoch)
{
    /// <summary>The state as checkpoint metadata entries (<c>loader.*</c>).</summary>
    /// <returns>Key-value pairs.</returns>
    public IEnumerable<KeyValuePair<string, string>> ToMetadata() =>
    [
        new("loader.seed", Seed.ToString(CultureInfo.InvariantCulture)),
        new("loader.rng_state", RngState.ToString(CultureInfo.InvariantCulture)),
        new("loader.epoch", Epoch.ToString(CultureInfo.InvariantCulture)),
        new("loader.cursor", Cursor.ToString(CultureInfo.InvariantCulture)),
        new("loader.in_epoch", InEpoch ? "true" : "false"),
    ];

    /// <summary>Reads the state written by <see cref="ToMetadata"/>, or null when <paramref name="metadata"/> has none.</summary>
    /// <param name="metadata">Checkpoint metadata.</param>
    /// <returns>The state, or null.</returns>
    /// <exception cref="InvalidDataException">An entry is present but malformed.</exception>
    public static LoaderState? FromMetadata(IReadOnlyDictionary<string, string> metadata)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        if (!metadata.ContainsKey("loader.rng_state")) return null;
        try
        {
            return new LoaderState(
                ulong.Parse(metadata["loader.seed"], CultureInfo.InvariantCulture),
                ulong.Parse(metadata["loader.rng_state"], CultureInfo.InvariantCulture),
                int.Parse(metadata["loader.epoch"], CultureInfo.InvariantCulture),
                int.Parse(metadata["loader.cursor"], CultureInfo.InvariantCulture),
                metadata["loader.in_epoch"] == "true");
        }
        catch (Exception e) when (e is FormatException or OverflowException or KeyNotFoundException)
        {
            throw new InvalidDataException($"the checkpoint's loader metadata is incomplete or malformed: {e.Message}", e);
        }
    }
}

/// <summary>
/// Serves mini-batches of a <see cref="LabeledDataset"/>: each epoch a fresh Fisher–Yates permutation of the samples
/// drawn from a seeded SplitMix64 generator (so runs repeat exactly), batches copied into spans the caller owns.
/// Nothing is allocated per batch or per epoch. With <c>dropLast</c> (the default) an incomplete last batch is skipped:
/// training batch norm on a last batch of one sample throws, and a small one gives noisy statistics.
/// </summary>
public sealed class BatchLoader
{
    private const ulong Golden = 0x9E3779B97F4A7C15UL; // SplitMix64's increment: its state after n draws is seed + n·Golden
    private const ulong FlipStream = 0xD1B54A32D192ED03UL; // separates the flip draws from the shuffling draws
    private const ulong AugmentationStream = 0x8CB92BA72F3D8DD7UL; // and the augmentations' seeds from both

    private readonly LabeledDataset _data;
    private readonly int[] _order;
    private ulong _rngState;
    private ulong _epochRngState;
    private ulong _flipSeed;
    private int _flipWidth;
    private SampleAugmentation[] _augmentations = [];

    /// <summary>A loader over <paramref name="data"/>.</summary>
    /// <param name="data">The samples.</param>
    /// <param name="batchSize">Samples per batch.</param>
    /// <param name="shuffle">Reshuffle every epoch (training); false serves the samples in order (evaluation).</param>
    /// <param name="dropLast">Skip an incomplete last batch (default true, for training).</param>
    /// <param name="seed">Seed of the shuffling generator.</param>
    public BatchLoader(LabeledDataset data, int batchSize, bool shuffle = true, bool dropLast = true, ulong seed = 0)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        if (dropLast && data.Count < batchSize)
            throw new ArgumentException($"with dropLast, {data.Count} samples make no batch of {batchSize}.", nameof(batchSize));
        _data = data;
        BatchSize = batchSize;
        Shuffle = shuffle;
        DropLast = dropLast;
        Seed = seed;
        _rngState = seed;
        _order = new int[data.Count];
        for (int i = 0; i < _order.Length; i++) _order[i] = i;
    }

    /// <summary>The data set.</summary>
    public LabeledDataset Data => _data;

    /// <summary>
    /// Random horizontal flip (torchvision's <c>RandomHorizontalFlip()</c>): when set to the image width W, each served
    /// sample has every row of W values reversed with probability 1/2 (0, the default, disables it). The flips are a
    /// function of the epoch's generator state and the sample's position, so a restored loader repeats them.
    /// </summary>
    public int HorizontalFlipWidth
    {
        get => _flipWidth;
        init
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            if (value > 0 && _data.SampleLength % value != 0)
                throw new ArgumentException($"samples of {_data.SampleLength} floats are not rows of width {value}.", nameof(value));
            _flipWidth = value;
        }
    }

    /// <summary>
    /// Augmentations applied to every served sample, in order, after the horizontal flip (flip and crop commute in
    /// distribution, so this is torchvision's <c>RandomCrop</c>, <c>RandomHorizontalFlip</c>, …, <c>RandomErasing</c>).
    /// Each gets a seed that is a function of the epoch's generator state, the sample's position and the
    /// augmentation's index, so a restored loader repeats them; none allocates per batch.
    /// </summary>
    /// <exception cref="ArgumentException">An augmentation is for samples of another length.</exception>
    public IReadOnlyList<SampleAugmentation> Augmentations
    {
        get => _augmentations;
        init
        {
            ArgumentNullException.ThrowIfNull(value);
            var augmentations = value.ToArray();
            foreach (var augmentation in augmentations)
            {
                ArgumentNullException.ThrowIfNull(augmentation, nameof(value));
                if (augmentation.SampleLength != _data.SampleLength)
                {
                    throw new ArgumentException(
                        string.Create(CultureInfo.InvariantCulture, $"{augmentation.GetType().Name} is for samples of {augmentation.SampleLength} floats ([{augmentation.Channels}, {augmentation.Height}, {augmentation.Width}]); the data set's have {_data.SampleLength}."),
                        nameof(value));
                }
            }

            _augmentations = augmentations;
        }
    }

    /// <summary>Samples per full batch.</summary>
    public int BatchSize { get; }

    /// <summary>Whether every epoch is reshuffled.</summary>
    public bool Shuffle { get; }

    /// <summary>Whether an incomplete last batch is skipped.</summary>
    public bool DropLast { get; }

    /// <summary>The generator's seed.</summary>
    public ulong Seed { get; }

    /// <summary>Batches in one epoch.</summary>
    public int BatchesPerEpoch => DropLast ? _data.Count / BatchSize : (_data.Count + BatchSize - 1) / BatchSize;

    /// <summary>Samples served in one epoch.</summary>
    public int SamplesPerEpoch => DropLast ? BatchesPerEpoch * BatchSize : _data.Count;

    /// <summary>Epochs started so far.</summary>
    public int Epoch { get; private set; }

    /// <summary>Samples served so far in the current epoch.</summary>
    public int Cursor { get; private set; }

    /// <summary>Whether the current epoch has batches left (false before the first <see cref="StartEpoch"/>).</summary>
    public bool HasNext { get; private set; }

    /// <summary>Starts the next epoch: draws a new permutation when shuffling, and rewinds.</summary>
    public void StartEpoch()
    {
        _epochRngState = _rngState;
        Epoch++;
        Arrange();
        Cursor = 0;
        HasNext = BatchesPerEpoch > 0;
    }

    private void Arrange()
    {
        for (int i = 0; i < _order.Length; i++) _order[i] = i;
        if (!Shuffle)
        {
            _flipSeed = _rngState ^ FlipStream ^ (ulong)Epoch * Golden; // no shuffling draws: vary the flips by epoch
            return;
        }

        var rng = new SplitMix64(_rngState);
        for (int i = _order.Length - 1; i > 0; i--)
        {
            // Multiply-high maps 64 random bits onto 0…i (bias below 2^-32 for any data set that fits in memory).
            int j = (int)Math.BigMul(rng.NextUInt64(), (ulong)(i + 1), out _);
            (_order[i], _order[j]) = (_order[j], _order[i]);
        }

        _rngState += (ulong)(_order.Length - 1) * Golden;
        _flipSeed = _rngState ^ FlipStream;
    }

    /// <summary>
    /// Copies the next batch into <paramref name="inputs"/> and <paramref name="labels"/> and returns its size
    /// (<see cref="BatchSize"/>, or fewer for the last batch without <see cref="DropLast"/>); 0 when the epoch is over.
    /// </summary>
    /// <param name="inputs">At least <see cref="BatchSize"/> × sample length floats; the first size × sample length are written.</param>
    /// <param name="labels">At least <see cref="BatchSize"/> ints.</param>
    /// <returns>The number of samples written.</returns>
    /// <exception cref="InvalidOperationException">The data set has float targets: use the other overload.</exception>
    public int Next(Span<float> inputs, Span<int> labels)
    {
        if (!_data.HasLabels) throw new InvalidOperationException($"the data set has float targets ({_data.TargetLength} per sample), not labels: call Next(inputs, Span<float> targets).");
        if (labels.Length < BatchSize) throw new ArgumentException($"labels holds {labels.Length} ints; a batch needs {BatchSize}.", nameof(labels));
        return NextBatch(inputs, labels, default);
    }

    /// <summary>
    /// Copies the next batch of a data set with float targets into <paramref name="inputs"/> and <paramref name="targets"/>;
    /// otherwise as <see cref="Next(Span{float}, Span{int})"/>.
    /// </summary>
    /// <param name="inputs">At least <see cref="BatchSize"/> × sample length floats.</param>
    /// <param name="targets">At least <see cref="BatchSize"/> × target length floats.</param>
    /// <returns>The number of samples written.</returns>
    /// <exception cref="InvalidOperationException">The data set has labels: use the other overload.</exception>
    public int Next(Span<float> inputs, Span<float> targets)
    {
        if (_data.HasLabels) throw new InvalidOperationException("the data set has class labels: call Next(inputs, Span<int> labels).");
        if (targets.Length < BatchSize * _data.TargetLength)
            throw new ArgumentException($"targets holds {targets.Length} floats; a batch needs {BatchSize * _data.TargetLength}.", nameof(targets));
        return NextBatch(inputs, default, targets);
    }

    private int NextBatch(Span<float> inputs, Span<int> labels, Span<float> targets)
    {
        int sampleLength = _data.SampleLength, targetLength = _data.TargetLength;
        if (inputs.Length < BatchSize * sampleLength)
            throw new ArgumentException($"inputs holds {inputs.Length} floats; a batch needs {BatchSize * sampleLength}.", nameof(inputs));
        if (!HasNext) return 0;

        int count = Math.Min(BatchSize, _data.Count - Cursor);
        var samples = _data.Samples;
        var allLabels = _data.Labels;
        var allTargets = _data.Targets;
        for (int k = 0; k < count; k++)
        {
            int index = _order[Cursor + k];
            var destination = inputs.Slice(k * sampleLength, sampleLength);
            samples.Slice(index * sampleLength, sampleLength).CopyTo(destination);
            if (targetLength == 0) labels[k] = allLabels[index];
            else allTargets.Slice(index * targetLength, targetLength).CopyTo(targets.Slice(k * targetLength, targetLength));
            if (_flipWidth > 0 && Flip(Cursor + k))
            {
                for (int row = 0; row < sampleLength; row += _flipWidth) destination.Slice(row, _flipWidth).Reverse();
            }

            if (_augmentations.Length > 0) Augment(destination, Cursor + k);
        }

        Cursor += count;
        int remaining = _data.Count - Cursor;
        HasNext = remaining > 0 && (!DropLast || remaining >= BatchSize);
        return count;
    }

    // The position-th draw of a SplitMix64 stream seeded with _flipSeed: its top bit.
    private bool Flip(int position) => (new SplitMix64(_flipSeed + (ulong)position * Golden).NextUInt64() >> 63) != 0;

    // Sample seeds: a SplitMix64 stream seeded with the position's hash, one draw per augmentation, so that no two
    // samples share draws (seeding with seed + position·Golden would make sample p's second draw sample p+1's first).
    private void Augment(Span<float> sample, int position)
    {
        var random = new SplitMix64(new SplitMix64((_flipSeed ^ AugmentationStream) + (ulong)position * Golden).NextUInt64());
        foreach (var augmentation in _augmentations) augmentation.Apply(sample, random.NextUInt64());
    }

    /// <summary>The loader's position, for a checkpoint.</summary>
    public LoaderState State => new(Seed, HasNext ? _epochRngState : _rngState, Epoch, Cursor, HasNext);

    /// <summary>Returns to a position saved from a loader with the same data, batch size, shuffling and seed.</summary>
    /// <param name="state">The saved state.</param>
    public void Restore(LoaderState state)
    {
        if (state.Seed != Seed) throw new ArgumentException($"the state is for seed {state.Seed}, this loader has seed {Seed}.", nameof(state));
        if (state.Cursor < 0 || state.Cursor > _data.Count || state.Epoch < 0)
            throw new ArgumentException($"the state's position (epoch {state.Epoch}, sample {state.Cursor}) does not fit {_data.Count} samples.", nameof(state));
        _rngState = state.RngState;
        Epoch = state.Epoch;
        if (state.InEpoch)
        {
            // Redraw the epoch's permutation from the generator state it was drawn from, then skip what was served.
            _epochRngState = _rngState;
            Arrange();
            Cursor = state.Cursor;
            int remaining = _data.Count - Cursor;
            HasNext = remaining > 0 && (!DropLast || remaining >= BatchSize);
        }
        else
        {
            Cursor = state.Cursor;
            HasNext = false;
        }
    }
}
