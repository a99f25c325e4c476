// The loss a Trainer minimizes and the metric it reports: cross-entropy and accuracy for labels, MSE/L1/Huber/BCE for floats.
namespace Dsl.Training;

/// <summary>What a <see cref="Trainer"/> reports besides the loss.</summary>
public enum TrainingMetric
{
    /// <summary>Fraction of samples whose arg-max output is the label (classification).</summary>
    Accuracy,

    /// <summary>Fraction of values whose logit's sign matches the target (above 0 ↔ target ≥ 0.5): binary or multi-label.</summary>
    BinaryAccuracy,

    /// <summary>Mean squared error over every output value (regression).</summary>
    MeanSquaredError,

    /// <summary>Mean absolute error over every output value (regression).</summary>
    MeanAbsoluteError,
}

/// <summary>A loss over integer labels: returns the batch's mean loss and writes dLoss/doutputs (skipped when empty).</summary>
/// <param name="outputs">The model's outputs for the batch, [N, C].</param>
/// <param name="labels">N class indices.</param>
/// <param name="outputsGrad">[N, C], or empty.</param>
/// <returns>The mean loss.</returns>
public delegate float LabelLossFunction(ReadOnlySpan<float> outputs, ReadOnlySpan<int> labels, Span<float> outputsGrad);

/// <summary>A loss over float targets: returns the batch's mean loss and writes dLoss/doutputs (skipped when empty).</summary>
/// <param name="outputs">The model's outputs for the batch.</param>
/// <param name="targets">One target per output value.</param>
/// <param name="outputsGrad">Same length as outputs, or empty.</param>
/// <returns>The mean loss.</returns>
public delegate float TargetLossFunction(ReadOnlySpan<float> outputs, ReadOnlySpan<float> targets, Span<float> outputsGrad);

/// <summary>
/// The loss a <see cref="Trainer"/> minimizes, whether it reads labels (<see cref="LabeledDataset.HasLabels"/>) or float
/// targets, and the metric that matches it. Built-in: <see cref="CrossEntropy"/> (accuracy), <see cref="MeanSquaredError"/>
/// (MSE), <see cref="L1"/> and <see cref="Huber"/> (MAE), <see cref="BinaryCrossEntropyWithLogits"/> (binary accuracy);
/// any other through <see cref="FromLabels"/> or <see cref="FromTargets"/>.
/// </summary>
public sealed class TrainingLoss
{
    private readonly LabelLossFunction? _labels;
    private readonly TargetLossFunction? _targets;

    private TrainingLoss(string name, LabelLossFunction? labels, TargetLossFunction? targets, TrainingMetric metric, float labelSmoothing = 0)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        Name = name;
        _labels = labels;
        _targets = targets;
        Metric = metric;
        LabelSmoothing = labelSmoothing;
    }

    /// <summary>The loss's name, for logs and checkpoints (<c>cross_entropy</c>, <c>mse</c>, …).</summary>
    public string Name { get; }

    /// <summary>True when the loss reads class labels; false when it reads float targets.</summary>
    public bool UsesLabels => _labels is not null;

    /// <summary>The metric reported beside the loss.</summary>
    public TrainingMetric Metric { get; }

    /// <summary>The metric's short name in progress lines: <c>acc</c>, <c>bin acc</c>, <c>mse</c> or <c>mae</c>.</summary>
    public string MetricName => MetricNameOf(Metric);

    /// <summary>Cross-entropy's label smoothing ε (0 for every other loss).</summary>
    public float LabelSmoothing { get; }

    /// <summary>Softmax cross-entropy over labels (<see cref="Losses.CrossEntropy"/>), reported with accuracy.</summary>
    /// <param name="labelSmoothing">ε in [0, 1]; evaluation always uses 0.</param>
    /// <returns>The loss.</returns>
    public static TrainingLoss CrossEntropy(float labelSmoothing = 0)
    {
        if (!(labelSmoothing >= 0 && labelSmoothing <= 1)) throw new ArgumentOutOfRangeException(nameof(labelSmoothing), labelSmoothing, "label smoothing must be in [0, 1].");
        return labelSmoothing == 0
            ? new("cross_entropy", static (o, l, g) => Losses.CrossEntropy(o, l, g), null, TrainingMetric.Accuracy)
            : new("cross_entropy", (o, l, g) => Losses.CrossEntropy(o, l, g, labelSmoothing), null, TrainingMetric.Accuracy, labelSmoothing);
    }

    /// <summary>Mean squared error over float targets (<see cref="Losses.MeanSquaredError"/>), reported with MSE.</summary>
    public static TrainingLoss MeanSquaredError { get; } = new("mse", null, Losses.MeanSquaredError, TrainingMetric.MeanSquaredError);

    /// <summary>Mean absolute error over float targets (<see cref="Losses.L1"/>), reported with MAE.</summary>
    public static TrainingLoss L1 { get; } = new("l1", null, Losses.L1, TrainingMetric.MeanAbsoluteError);

    /// <summary>Huber loss over float targets (<see cref="Losses.Huber"/>), reported with MAE.</summary>
    /// <param name="delta">δ &gt; 0.</param>
    /// <returns>The loss.</returns>
    public static TrainingLoss Huber(float delta = 1)
    {
        if (!(delta > 0)) throw new ArgumentOutOfRangeException(nameof(delta), delta, "delta must be greater than 0.");
        return new("huber", null, (o, t, g) => Losses.Huber(o, t, g, delta), TrainingMetric.MeanAbsoluteError);
    }

    /// <summary>Binary cross-entropy on logits over float targets in [0, 1] (<see cref="Losses.BinaryCrossEntropyWithLogits"/>), reported with binary accuracy.</summary>
    public static TrainingLoss BinaryCrossEntropyWithLogits { get; } = new("bce_with_logits", null, Losses.BinaryCrossEntropyWithLogits, TrainingMetric.BinaryAccuracy);

    /// <summary>A loss of your own over class labels.</summary>
    /// <param name="name">Its name, for logs and checkpoints.</param>
    /// <param name="loss">The loss: mean over the batch, gradient written when the span is not empty.</param>
    /// <param name="metric">The metric to report beside it.</param>
    /// <returns>The loss.</returns>
    public static TrainingLoss FromLabels(string name, LabelLossFunction loss, TrainingMetric metric = TrainingMetric.Accuracy)
    {
        ArgumentNullException.ThrowIfNull(loss);
        return new(name, loss, null, metric);
    }

    /// <summary>A loss of your own over float targets.</summary>
    /// <param name="name">Its name, for logs and checkpoints.</param>
    /// <param name="loss">The loss: mean over the batch, gradient written when the span is not empty.</param>
    /// <param name="metric">The metric to report beside it.</param>
    /// <returns>The loss.</returns>
    public static TrainingLoss FromTargets(string name, TargetLossFunction loss, TrainingMetric metric = TrainingMetric.MeanSquaredError)
    {
        ArgumentNullException.ThrowIfNull(loss);
        return new(name, null, loss, metric);
    }

    /// <summary>The loss used to evaluate: the same, without label smoothing.</summary>
    internal TrainingLoss ForEvaluation => LabelSmoothing == 0 ? this : CrossEntropy();

    /// <summary>The batch's mean loss; writes dLoss/doutputs when <paramref name="outputsGrad"/> is not empty.</summary>
    /// <param name="outputs">The batch's outputs.</param>
    /// <param name="labels">Its labels (for a loss that reads labels).</param>
    /// <param name="targets">Its float targets (for a loss that reads them).</param>
    /// <param name="outputsGrad">The gradient, or empty.</param>
    /// <returns>The mean loss.</returns>
    public float Compute(ReadOnlySpan<float> outputs, ReadOnlySpan<int> labels, ReadOnlySpan<float> targets, Span<float> outputsGrad) =>
        _labels is not null ? _labels(outputs, labels, outputsGrad) : _targets!(outputs, targets, outputsGrad);

    /// <summary>The batch's <see cref="Metric"/> (a fraction for accuracies, a mean error otherwise).</summary>
    /// <param name="outputs">The batch's outputs.</param>
    /// <param name="labels">Its labels (accuracy).</param>
    /// <param name="targets">Its float targets (every other metric).</param>
    /// <returns>The metric.</returns>
    public double MetricOf(ReadOnlySpan<float> outputs, ReadOnlySpan<int> labels, ReadOnlySpan<float> targets) => Metric switch
    {
        TrainingMetric.Accuracy => Metrics.Accuracy(outputs, labels),
        TrainingMetric.BinaryAccuracy => Metrics.BinaryAccuracy(outputs, targets),
        TrainingMetric.MeanSquaredError => Metrics.MeanSquaredError(outputs, targets),
        _ => Metrics.MeanAbsoluteError(outputs, targets),
    };

    internal static string MetricNameOf(TrainingMetric metric) => metric switch
    {
        TrainingMetric.Accuracy => "acc",
        TrainingMetric.BinaryAccuracy => "bin acc",
        TrainingMetric.MeanSquaredError => "mse",
        _ => "mae",
    };

    /// <inheritdoc/>
    public override string ToString() => LabelSmoothing == 0 ? Name : $"{Name}(label_smoothing: {LabelSmoothing.ToString("R", System.Globalization.CultureInfo.InvariantCulture)})";
}
