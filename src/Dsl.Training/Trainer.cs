// The training loop: loader → forward → cross-entropy → backward → scheduled optimizer step, with buffers allocated once.
using System.Diagnostics;
using System.Globalization;

namespace Dsl.Training;

/// <summary>What one training epoch (or part of one) did.</summary>
/// <param name="Epoch">1-based epoch number.</param>
/// <param name="Samples">Samples trained on.</param>
/// <param name="Loss">Mean training loss (with label smoothing, as optimized).</param>
/// <param name="Accuracy">Training accuracy (in training mode, on the batches as they were trained).</param>
/// <param name="Seconds">Wall-clock seconds of the training passes.</param>
/// <param name="LearningRate">The learning rate of the epoch's last step.</param>
public sealed record EpochResult(int Epoch, int Samples, double Loss, double Accuracy, double Seconds, float LearningRate)
{
    /// <summary>Throughput.</summary>
    public double SamplesPerSecond => Seconds > 0 ? Samples / Seconds : 0;

    /// <summary>Loss on held-out data, when evaluated.</summary>
    public double? TestLoss { get; init; }

    /// <summary>Accuracy on held-out data, when evaluated.</summary>
    public double? TestAccuracy { get; init; }

    /// <summary>Seconds spent evaluating, when evaluated.</summary>
    public double? TestSeconds { get; init; }

    /// <summary>One line: epoch, loss, accuracy, test accuracy, learning rate, samples/s, seconds.</summary>
    /// <param name="totalEpochs">Epochs planned, for "3/20"; 0 to omit.</param>
    /// <returns>The line.</returns>
    public string ToLine(int totalEpochs = 0)
    {
        var c = CultureInfo.InvariantCulture;
        string epoch = totalEpochs > 0 ? $"{Epoch}/{totalEpochs}" : Epoch.ToString(c);
        string test = TestAccuracy is { } acc ? string.Create(c, $"  test loss {TestLoss:0.0000} acc {acc:0.0000}") : "";
        return string.Create(c, $"epoch {epoch}: loss {Loss:0.0000} acc {Accuracy:0.0000}{test}  lr {LearningRate:G4}  {SamplesPerSecond:0} samples/s  {Seconds:0.0} s");
    }
}

/// <summary>Loss and accuracy of a model on a data set, in inference mode.</summary>
/// <param name="Loss">Mean cross-entropy (no label smoothing).</param>
/// <param name="Accuracy">Fraction of correct arg-max predictions.</param>
/// <param name="Samples">Samples evaluated.</param>
/// <param name="Seconds">Wall-clock seconds.</param>
public readonly record struct Evaluation(double Loss, double Accuracy, int Samples, double Seconds);

/// <summary>Receives progress during an epoch (see <see cref="TrainingProgress"/>).</summary>
public interface IEpochProgress
{
    /// <summary>Called after each batch with the epoch's running totals.</summary>
    /// <param name="samples">Samples trained on so far in this epoch.</param>
    /// <param name="totalSamples">Samples in the whole epoch.</param>
    /// <param name="meanLoss">Mean loss so far.</param>
    /// <param name="accuracy">Accuracy so far.</param>
    /// <param name="seconds">Seconds since the epoch started.</param>
    void Report(int samples, int totalSamples, double meanLoss, double accuracy, double seconds);
}

/// <summary>
/// Trains a classifier: batches from a <see cref="BatchLoader"/>, a training-mode <see cref="CompiledModel.Forward"/>,
/// <see cref="Losses.CrossEntropy"/>, <see cref="CompiledModel.Backward"/>, then an optimizer step at the learning rate
/// the schedule gives for the step count. All buffers are allocated in the constructor; a step allocates nothing.
/// </summary>
public sealed class Trainer
{
    private readonly float[] _inputs;
    private readonly int[] _labels;
    private readonly float[] _logits;
    private readonly float[] _logitsGrad;
    private readonly int _classes;

    /// <summary>Sets up a training loop.</summary>
    /// <param name="model">The model; its <see cref="CompiledModel.MaxBatch"/> must hold a batch.</param>
    /// <param name="optimizer">The optimizer, built for this model.</param>
    /// <param name="loader">The training batches.</param>
    /// <param name="schedule">The learning rate per step, or null to keep the optimizer's.</param>
    /// <param name="labelSmoothing">Cross-entropy label smoothing ε.</param>
    public Trainer(CompiledModel model, Optimizer optimizer, BatchLoader loader, LearningRateSchedule? schedule = null, float labelSmoothing = 0)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentNullException.ThrowIfNull(loader);
        if (loader.BatchSize > model.MaxBatch) throw new ArgumentException($"batches of {loader.BatchSize} exceed the model's maxBatch {model.MaxBatch}.", nameof(loader));
        if (loader.Data.SampleLength != model.SampleInputLength)
            throw new ArgumentException($"samples have {loader.Data.SampleLength} floats, {model.Name} takes {model.SampleInputLength}.", nameof(loader));
        if (optimizer.ParameterCount != model.Parameters.Length)
            throw new ArgumentException($"the optimizer was built for {optimizer.ParameterCount} parameters, {model.Name} has {model.Parameters.Length}.", nameof(optimizer));
        _classes = model.SampleOutputLength;
        if (loader.Data.Classes > _classes) throw new ArgumentException($"{loader.Data.Classes} classes but {model.Name} outputs {_classes} values.", nameof(loader));
        Model = model;
        Optimizer = optimizer;
        Loader = loader;
        Schedule = schedule;
        LabelSmoothing = labelSmoothing;
        int batch = Math.Max(loader.BatchSize, model.MaxBatch);
        _inputs = new float[batch * model.SampleInputLength];
        _labels = new int[batch];
        _logits = new float[batch * _classes];
        _logitsGrad = new float[batch * _classes];
    }

    /// <summary>The model being trained.</summary>
    public CompiledModel Model { get; }

    /// <summary>The optimizer.</summary>
    public Optimizer Optimizer { get; }

    /// <summary>The training batches.</summary>
    public BatchLoader Loader { get; }

    /// <summary>The learning-rate schedule, or null.</summary>
    public LearningRateSchedule? Schedule { get; }

    /// <summary>Label smoothing of the training loss.</summary>
    public float LabelSmoothing { get; }

    /// <summary>Optimizer steps taken (the schedule's position).</summary>
    public long Step => Optimizer.StepCount;

    /// <summary>Epochs fully trained.</summary>
    public int CompletedEpochs => Loader.HasNext ? Loader.Epoch - 1 : Loader.Epoch;

    /// <summary>Trains on one batch, starting a new epoch first when the current one is over.</summary>
    /// <param name="loss">The batch's mean loss.</param>
    /// <param name="correct">Correct predictions in the batch (training mode).</param>
    /// <returns>The batch size.</returns>
    public int TrainBatch(out float loss, out int correct)
    {
        if (!Loader.HasNext) Loader.StartEpoch();
        int n = Loader.Next(_inputs, _labels);
        var inputs = _inputs.AsSpan(0, n * Model.SampleInputLength);
        var labels = _labels.AsSpan(0, n);
        var logits = _logits.AsSpan(0, n * _classes);
        var grad = _logitsGrad.AsSpan(0, n * _classes);
        Model.ZeroGrad();
        Model.Forward(inputs, logits, n);
        loss = Losses.CrossEntropy(logits, labels, grad, LabelSmoothing);
        correct = Metrics.CountCorrect(logits, labels);
        Model.Backward(grad);
        if (Schedule is not null) Optimizer.LearningRate = Schedule.At(Optimizer.StepCount);
        Optimizer.Step(Model);
        return n;
    }

    /// <summary>Trains until the current epoch ends (a new one when none is in progress; the rest of one after a resume).</summary>
    /// <param name="progress">Receives running totals after each batch, or null.</param>
    /// <returns>The epoch's statistics.</returns>
    public EpochResult TrainEpoch(IEpochProgress? progress = null)
    {
        if (!Loader.HasNext) Loader.StartEpoch();
        int epoch = Loader.Epoch, total = Loader.SamplesPerEpoch - Loader.Cursor, samples = 0, correct = 0;
        double lossSum = 0;
        var clock = Stopwatch.StartNew();
        while (Loader.HasNext)
        {
            int n = TrainBatch(out float loss, out int right);
            samples += n;
            correct += right;
            lossSum += (double)loss * n;
            progress?.Report(samples, total, lossSum / samples, (double)correct / samples, clock.Elapsed.TotalSeconds);
        }

        return new EpochResult(epoch, samples, samples > 0 ? lossSum / samples : double.NaN, samples > 0 ? (double)correct / samples : double.NaN,
            clock.Elapsed.TotalSeconds, Optimizer.LearningRate);
    }

    /// <summary>Loss and accuracy of the model on <paramref name="data"/> with <see cref="CompiledModel.Infer"/>, in batches of up to maxBatch.</summary>
    /// <param name="data">Held-out samples.</param>
    /// <returns>The evaluation.</returns>
    public Evaluation Evaluate(LabeledDataset data) => Evaluate(Model, data, _inputs, _labels, _logits);

    /// <summary>Loss and accuracy of <paramref name="model"/> on <paramref name="data"/> in inference mode (allocates its buffers).</summary>
    /// <param name="model">The model.</param>
    /// <param name="data">The samples.</param>
    /// <returns>The evaluation.</returns>
    public static Evaluation Evaluate(CompiledModel model, LabeledDataset data)
    {
        ArgumentNullException.ThrowIfNull(model);
        return Evaluate(model, data, new float[model.MaxBatch * model.SampleInputLength], new int[model.MaxBatch], new float[model.MaxBatch * model.SampleOutputLength]);
    }

    private static Evaluation Evaluate(CompiledModel model, LabeledDataset data, float[] inputs, int[] labels, float[] logits)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.SampleLength != model.SampleInputLength)
            throw new ArgumentException($"samples have {data.SampleLength} floats, {model.Name} takes {model.SampleInputLength}.", nameof(data));
        var clock = Stopwatch.StartNew();
        int batch = Math.Min(model.MaxBatch, labels.Length), classes = model.SampleOutputLength, correct = 0;
        double lossSum = 0;
        for (int start = 0; start < data.Count; start += batch)
        {
            int n = Math.Min(batch, data.Count - start);
            data.Samples.Slice(start * data.SampleLength, n * data.SampleLength).CopyTo(inputs);
            data.Labels.Slice(start, n).CopyTo(labels);
            var y = logits.AsSpan(0, n * classes);
            model.Infer(inputs.AsSpan(0, n * data.SampleLength), y, n);
            lossSum += (double)Losses.CrossEntropy(y, labels.AsSpan(0, n), default) * n;
            correct += Metrics.CountCorrect(y, labels.AsSpan(0, n));
        }

        return new Evaluation(data.Count > 0 ? lossSum / data.Count : double.NaN, data.Count > 0 ? (double)correct / data.Count : double.NaN, data.Count, clock.Elapsed.TotalSeconds);
    }

    /// <summary>Writes model, optimizer state, loader position and the step/epoch to <paramref name="path"/> atomically.</summary>
    /// <param name="path">The checkpoint file.</param>
    /// <param name="metadata">Extra metadata, or null.</param>
    public void SaveCheckpoint(string path, IEnumerable<KeyValuePair<string, string>>? metadata = null)
    {
        var entries = new List<KeyValuePair<string, string>>
        {
            new("step", Step.ToString(CultureInfo.InvariantCulture)),
            new("epoch", CompletedEpochs.ToString(CultureInfo.InvariantCulture)),
            new("label_smoothing", LabelSmoothing.ToString("R", CultureInfo.InvariantCulture)),
        };
        if (Schedule is not null) entries.Add(new("schedule", Schedule.ToString()));
        if (metadata is not null) entries.AddRange(metadata);
        Checkpoint.Save(path, Model, Optimizer, Loader.State, entries);
    }

    /// <summary>Restores model, optimizer and loader from a checkpoint written by <see cref="SaveCheckpoint"/>; training then continues exactly.</summary>
    /// <param name="path">The checkpoint file.</param>
    /// <returns>The checkpoint's metadata.</returns>
    /// <exception cref="InvalidDataException">The checkpoint does not fit this model, optimizer or loader; nothing is loaded.</exception>
    public IReadOnlyDictionary<string, string> LoadCheckpoint(string path)
    {
        using var file = SafetensorsFile.Read(path);
        var state = LoaderState.FromMetadata(file.Metadata) ?? throw new InvalidDataException($"{path}: the checkpoint has no loader position (loader.* metadata).");
        if (state.Seed != Loader.Seed) throw new InvalidDataException($"{path}: the checkpoint's loader seed is {state.Seed}, this loader's {Loader.Seed}.");
        var metadata = Checkpoint.Load(file, Model, Optimizer);
        Loader.Restore(state);
        return metadata;
    }
}
