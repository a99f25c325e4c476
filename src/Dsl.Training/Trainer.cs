// The training loop: loader → forward → the chosen loss → backward → scheduled optimizer step, with buffers allocated once.
using System.Diagnostics;
using System.Globalization;

namespace Dsl.Training;

/// <summary>What one training epoch (or part of one) did.</summary>
/// <param name="Epoch">1-based epoch number.</param>
/// <param name="Samples">Samples trained on.</param>
/// <param name="Loss">Mean training loss (with label smoothing, as optimized).</param>
/// <param name="Accuracy">
/// The training metric (in training mode, on the batches as they were trained): accuracy for classification, else the
/// loss's <see cref="TrainingLoss.Metric"/> (named by <see cref="EpochResult.MetricName"/>).
/// </param>
/// <param name="Seconds">Wall-clock seconds of the training passes.</param>
/// <param name="LearningRate">The learning rate of the epoch's last step.</param>
public sealed record EpochResult(int Epoch, int Samples, double Loss, double Accuracy, double Seconds, float LearningRate)
{
    /// <summary>The metric's short name in <see cref="ToLine"/>: <c>acc</c> (the default), <c>bin acc</c>, <c>mse</c> or <c>mae</c>.</summary>
    public string MetricName { get; init; } = "acc";

    /// <summary>Throughput.</summary>
    public double SamplesPerSecond => Seconds > 0 ? Samples / Seconds : 0;

    /// <summary>Loss on held-out data, when evaluated.</summary>
    public double? TestLoss { get; init; }

    /// <summary>The metric (accuracy for classification) on held-out data, when evaluated.</summary>
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
        string test = TestAccuracy is { } acc ? string.Create(c, $"  test loss {TestLoss:0.0000} {MetricName} {acc:0.0000}") : "";
        return string.Create(c, $"epoch {epoch}: loss {Loss:0.0000} {MetricName} {Accuracy:0.0000}{test}  lr {LearningRate:G4}  {SamplesPerSecond:0} samples/s  {Seconds:0.0} s");
    }
}

/// <summary>Loss and metric of a model on a data set, in inference mode.</summary>
/// <param name="Loss">Mean loss (cross-entropy without label smoothing for classification).</param>
/// <param name="Accuracy">The metric: the fraction of correct arg-max predictions for classification, else the loss's <see cref="TrainingLoss.Metric"/>.</param>
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
/// Trains a model for any task: batches from a <see cref="BatchLoader"/>, a training-mode <see cref="CompiledModel.Forward"/>,
/// the loss (<see cref="TrainingLoss"/>: cross-entropy over labels by default; MSE, L1, Huber, BCE with logits over float
/// targets, or your own), then backward with the optimizer step fused into it (<see cref="Optimizer.BackwardAndStep"/>: each
/// layer's parameters updated as soon as their gradients are final, the bits of <see cref="CompiledModel.Backward(ReadOnlySpan{float}, Span{float})"/>
/// then <see cref="Optimizer.Step(CompiledModel)"/>) at the learning rate the schedule gives for the step count. It reports the metric that matches the loss (accuracy, MSE, MAE). All buffers are allocated
/// in the constructor; a step allocates nothing.
/// </summary>
public sealed class Trainer
{
    private readonly float[] _inputs;
    private readonly int[] _labels;
    private readonly float[] _targets;
    private readonly float[] _logits;
    private readonly float[] _logitsGrad;
    private readonly int _classes;
    private readonly int _targetLength;

    /// <summary>Sets up a classifier's training loop: cross-entropy over the data set's labels, reported with accuracy.</summary>
    /// <param name="model">The model; its <see cref="CompiledModel.MaxBatch"/> must hold a batch.</param>
    /// <param name="optimizer">The optimizer, built for this model.</param>
    /// <param name="loader">The training batches.</param>
    /// <param name="schedule">The learning rate per step, or null to keep the optimizer's.</param>
    /// <param name="labelSmoothing">Cross-entropy label smoothing ε.</param>
    public Trainer(CompiledModel model, Optimizer optimizer, BatchLoader loader, LearningRateSchedule? schedule = null, float labelSmoothing = 0)
        : this(model, optimizer, loader, TrainingLoss.CrossEntropy(labelSmoothing), schedule)
    {
    }

    /// <summary>Sets up a training loop with the loss of your choice.</summary>
    /// <param name="model">The model; its <see cref="CompiledModel.MaxBatch"/> must hold a batch.</param>
    /// <param name="optimizer">The optimizer, built for this model.</param>
    /// <param name="loader">The training batches: labels for a loss that reads labels, float targets (one per output value) otherwise.</param>
    /// <param name="loss">The loss, e.g. <see cref="TrainingLoss.MeanSquaredError"/>.</param>
    /// <param name="schedule">The learning rate per step, or null to keep the optimizer's.</param>
    /// <exception cref="ArgumentException">The data does not fit the model or the loss (labels for a float loss, targets of another length, …).</exception>
    public Trainer(CompiledModel model, Optimizer optimizer, BatchLoader loader, TrainingLoss loss, LearningRateSchedule? schedule = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentNullException.ThrowIfNull(loader);
        ArgumentNullException.ThrowIfNull(loss);
        if (loader.BatchSize > model.MaxBatch) throw new ArgumentException($"batches of {loader.BatchSize} exceed the model's maxBatch {model.MaxBatch}.", nameof(loader));
        if (loader.Data.SampleLength != model.SampleInputLength)
            throw new ArgumentException($"samples have {loader.Data.SampleLength} floats, {model.Name} takes {model.SampleInputLength}.", nameof(loader));
        if (optimizer.ParameterCount != model.Parameters.Length)
            throw new ArgumentException($"the optimizer was built for {optimizer.ParameterCount} parameters, {model.Name} has {model.Parameters.Length}.", nameof(optimizer));
        _classes = model.SampleOutputLength;
        CheckData(model, loader.Data, loss, nameof(loader));
        Model = model;
        Optimizer = optimizer;
        Loader = loader;
        Schedule = schedule;
        Loss = loss;
        _targetLength = loader.Data.TargetLength;
        int batch = Math.Max(loader.BatchSize, model.MaxBatch);
        _inputs = new float[batch * model.SampleInputLength];
        _labels = new int[loss.UsesLabels ? batch : 0];
        _targets = new float[loss.UsesLabels ? 0 : batch * _targetLength];
        _logits = new float[batch * _classes];
        _logitsGrad = new float[batch * _classes];
    }

    private static void CheckData(CompiledModel model, LabeledDataset data, TrainingLoss loss, string parameter)
    {
        if (loss.UsesLabels && !data.HasLabels)
            throw new ArgumentException($"the loss '{loss.Name}' reads class labels but the data set has float targets; choose a loss over targets, such as TrainingLoss.MeanSquaredError.", parameter);
        if (!loss.UsesLabels && data.HasLabels)
            throw new ArgumentException($"the loss '{loss.Name}' reads float targets but the data set has class labels; build it with float targets (one per output value) or use TrainingLoss.CrossEntropy().", parameter);
        if (data.HasLabels && data.Classes > model.SampleOutputLength)
            throw new ArgumentException($"{data.Classes} classes but {model.Name} outputs {model.SampleOutputLength} values.", parameter);
        if (!data.HasLabels && data.TargetLength != model.SampleOutputLength)
            throw new ArgumentException($"targets have {data.TargetLength} floats per sample, {model.Name} outputs {model.SampleOutputLength}.", parameter);
    }

    /// <summary>The loss minimized, and the metric reported beside it.</summary>
    public TrainingLoss Loss { get; }

    /// <summary>The model being trained.</summary>
    public CompiledModel Model { get; }

    /// <summary>The optimizer.</summary>
    public Optimizer Optimizer { get; }

    /// <summary>The training batches.</summary>
    public BatchLoader Loader { get; }

    /// <summary>The learning-rate schedule, or null.</summary>
    public LearningRateSchedule? Schedule { get; }

    /// <summary>Label smoothing of the training loss (cross-entropy's ε; 0 for other losses).</summary>
    public float LabelSmoothing => Loss.LabelSmoothing;

    /// <summary>Optimizer steps taken (the schedule's position).</summary>
    public long Step => Optimizer.StepCount;

    /// <summary>Epochs fully trained.</summary>
    public int CompletedEpochs => Loader.HasNext ? Loader.Epoch - 1 : Loader.Epoch;

    /// <summary>Trains on one batch, starting a new epoch first when the current one is over.</summary>
    /// <param name="loss">The batch's mean loss.</param>
    /// <param name="correct">Correct predictions in the batch (training mode); 0 for a loss over float targets.</param>
    /// <returns>The batch size.</returns>
    public int TrainBatch(out float loss, out int correct)
    {
        int n = TrainBatchWithMetric(out loss, out double metric);
        correct = Loss.Metric == TrainingMetric.Accuracy ? (int)Math.Round(metric * n) : 0;
        return n;
    }

    /// <summary>Trains on one batch, starting a new epoch first when the current one is over.</summary>
    /// <param name="loss">The batch's mean loss.</param>
    /// <param name="metric">The batch's <see cref="TrainingLoss.Metric"/> (training mode).</param>
    /// <returns>The batch size.</returns>
    public int TrainBatchWithMetric(out float loss, out double metric)
    {
        if (!Loader.HasNext) Loader.StartEpoch();
        int n = Loss.UsesLabels ? Loader.Next(_inputs, _labels) : Loader.Next(_inputs, _targets.AsSpan());
        var inputs = _inputs.AsSpan(0, n * Model.SampleInputLength);
        ReadOnlySpan<int> labels = Loss.UsesLabels ? _labels.AsSpan(0, n) : default;
        ReadOnlySpan<float> targets = Loss.UsesLabels ? default : _targets.AsSpan(0, n * _targetLength);
        var logits = _logits.AsSpan(0, n * _classes);
        var grad = _logitsGrad.AsSpan(0, n * _classes);
        Model.ZeroGrad();
        Model.Forward(inputs, logits, n);
        loss = Loss.Compute(logits, labels, targets, grad);
        metric = Loss.MetricOf(logits, labels, targets);
        if (Schedule is not null) Optimizer.LearningRate = Schedule.At(Optimizer.StepCount);
        Optimizer.BackwardAndStep(Model, grad); // each layer's update while its gradients are in cache: the bits of Backward, then Step
        return n;
    }

    /// <summary>Trains until the current epoch ends (a new one when none is in progress; the rest of one after a resume).</summary>
    /// <param name="progress">Receives running totals after each batch, or null.</param>
    /// <returns>The epoch's statistics.</returns>
    public EpochResult TrainEpoch(IEpochProgress? progress = null)
    {
        if (!Loader.HasNext) Loader.StartEpoch();
        int epoch = Loader.Epoch, total = Loader.SamplesPerEpoch - Loader.Cursor, samples = 0;
        double lossSum = 0, metricSum = 0;
        var clock = Stopwatch.StartNew();
        while (Loader.HasNext)
        {
            int n = TrainBatchWithMetric(out float loss, out double metric);
            samples += n;
            metricSum += Loss.Metric == TrainingMetric.Accuracy ? Math.Round(metric * n) : metric * n; // accuracy: whole counts, exactly
            lossSum += (double)loss * n;
            progress?.Report(samples, total, lossSum / samples, metricSum / samples, clock.Elapsed.TotalSeconds);
        }

        return new EpochResult(epoch, samples, samples > 0 ? lossSum / samples : double.NaN, samples > 0 ? metricSum / samples : double.NaN,
            clock.Elapsed.TotalSeconds, Optimizer.LearningRate) { MetricName = Loss.MetricName };
    }

    /// <summary>Loss and metric of the model on <paramref name="data"/> with <see cref="CompiledModel.Infer"/>, in batches of up to maxBatch (the trainer's loss, without label smoothing).</summary>
    /// <param name="data">Held-out samples, with labels or targets as the training data has them.</param>
    /// <returns>The evaluation.</returns>
    public Evaluation Evaluate(LabeledDataset data)
    {
        ArgumentNullException.ThrowIfNull(data);
        CheckData(Model, data, Loss, nameof(data));
        return Evaluate(Model, data, Loss.ForEvaluation, _inputs, _labels, _targets, _logits);
    }

    /// <summary>
    /// Loss and metric of <paramref name="model"/> on <paramref name="data"/> in inference mode (allocates its buffers): with
    /// cross-entropy and accuracy for labels, else mean squared error.
    /// </summary>
    /// <param name="model">The model.</param>
    /// <param name="data">The samples.</param>
    /// <returns>The evaluation.</returns>
    public static Evaluation Evaluate(CompiledModel model, LabeledDataset data)
    {
        ArgumentNullException.ThrowIfNull(data);
        return Evaluate(model, data, data.HasLabels ? TrainingLoss.CrossEntropy() : TrainingLoss.MeanSquaredError);
    }

    /// <summary>Loss and metric of <paramref name="model"/> on <paramref name="data"/> with <paramref name="loss"/>, in inference mode (allocates its buffers).</summary>
    /// <param name="model">The model.</param>
    /// <param name="data">The samples.</param>
    /// <param name="loss">The loss and metric.</param>
    /// <returns>The evaluation.</returns>
    public static Evaluation Evaluate(CompiledModel model, LabeledDataset data, TrainingLoss loss)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(loss);
        CheckData(model, data, loss, nameof(data));
        return Evaluate(model, data, loss, new float[model.MaxBatch * model.SampleInputLength], new int[model.MaxBatch],
            new float[model.MaxBatch * data.TargetLength], new float[model.MaxBatch * model.SampleOutputLength]);
    }

    private static Evaluation Evaluate(CompiledModel model, LabeledDataset data, TrainingLoss loss, float[] inputs, int[] labels, float[] targets, float[] logits)
    {
        if (data.SampleLength != model.SampleInputLength)
            throw new ArgumentException($"samples have {data.SampleLength} floats, {model.Name} takes {model.SampleInputLength}.", nameof(data));
        var clock = Stopwatch.StartNew();
        int batch = model.MaxBatch, classes = model.SampleOutputLength, targetLength = data.TargetLength;
        double lossSum = 0, metricSum = 0;
        for (int start = 0; start < data.Count; start += batch)
        {
            int n = Math.Min(batch, data.Count - start);
            data.Samples.Slice(start * data.SampleLength, n * data.SampleLength).CopyTo(inputs);
            ReadOnlySpan<int> y = default;
            ReadOnlySpan<float> t = default;
            if (data.HasLabels)
            {
                data.Labels.Slice(start, n).CopyTo(labels);
                y = labels.AsSpan(0, n);
            }
            else
            {
                data.Targets.Slice(start * targetLength, n * targetLength).CopyTo(targets);
                t = targets.AsSpan(0, n * targetLength);
            }

            var outputs = logits.AsSpan(0, n * classes);
            model.Infer(inputs.AsSpan(0, n * data.SampleLength), outputs, n);
            lossSum += (double)loss.Compute(outputs, y, t, default) * n;
            double metric = loss.MetricOf(outputs, y, t) * n;
            metricSum += loss.Metric == TrainingMetric.Accuracy ? Math.Round(metric) : metric;
        }

        return new Evaluation(data.Count > 0 ? lossSum / data.Count : double.NaN, data.Count > 0 ? metricSum / data.Count : double.NaN, data.Count, clock.Elapsed.TotalSeconds);
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
            new("loss", Loss.Name),
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
