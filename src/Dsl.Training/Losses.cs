// Losses with their gradients, and accuracy: no allocation, numerically stable.
namespace Dsl.Training;

/// <summary>Loss functions that return the mean loss and write its gradient; none of them allocates.</summary>
public static class Losses
{
    /// <summary>
    /// Softmax cross-entropy fused with log-softmax, as PyTorch's <c>nn.CrossEntropyLoss(label_smoothing: ε)</c> with
    /// mean reduction: per sample <c>−Σ_c t_c·log softmax(z)_c</c> with targets <c>t = (1 − ε)·onehot(label) + ε/C</c>,
    /// averaged over the batch. Log-softmax is computed as <c>z − max − log Σ exp(z − max)</c>, so large logits
    /// neither overflow nor lose precision. The gradient is <c>(softmax(z) − t)/N</c>.
    /// </summary>
    /// <param name="logits">[N, C] logits, row-major.</param>
    /// <param name="labels">N class indices in 0…C−1.</param>
    /// <param name="logitsGrad">[N, C]: receives dLoss/dlogits (may be empty to skip the gradient).</param>
    /// <param name="labelSmoothing">ε in [0, 1].</param>
    /// <returns>The mean loss over the N samples.</returns>
    public static float CrossEntropy(ReadOnlySpan<float> logits, ReadOnlySpan<int> labels, Span<float> logitsGrad, float labelSmoothing = 0)
    {
        int n = labels.Length;
        if (n == 0) throw new ArgumentException("labels is empty.", nameof(labels));
        if (logits.Length % n != 0 || logits.Length == 0)
            throw new ArgumentException($"logits has {logits.Length} values, not a multiple of the {n} labels.", nameof(logits));
        int classes = logits.Length / n;
        if (!logitsGrad.IsEmpty && logitsGrad.Length != logits.Length)
            throw new ArgumentException($"logitsGrad has {logitsGrad.Length} values, logits {logits.Length}.", nameof(logitsGrad));
        if (!(labelSmoothing >= 0 && labelSmoothing <= 1)) throw new ArgumentOutOfRangeException(nameof(labelSmoothing), labelSmoothing, "label smoothing must be in [0, 1].");

        double off = labelSmoothing / classes, on = 1 - labelSmoothing + off, invN = 1.0 / n;
        double total = 0;
        for (int s = 0; s < n; s++)
        {
            int label = labels[s];
            if ((uint)label >= (uint)classes) throw new ArgumentOutOfRangeException(nameof(labels), label, $"label {label} of sample {s} is outside 0…{classes - 1}.");
            var row = logits.Slice(s * classes, classes);
            float max = row[0];
            for (int c = 1; c < classes; c++) max = Math.Max(max, row[c]);
            double sum = 0;
            for (int c = 0; c < classes; c++) sum += Math.Exp(row[c] - max);
            double logSum = Math.Log(sum) + max; // log Σ exp z

            // −Σ t_c (z_c − logSum) = logSum − Σ t_c z_c, with Σ t_c = 1.
            double dot = 0;
            for (int c = 0; c < classes; c++) dot += (c == label ? on : off) * row[c];
            total += logSum - dot;

            if (logitsGrad.IsEmpty) continue;
            var grad = logitsGrad.Slice(s * classes, classes);
            for (int c = 0; c < classes; c++)
                grad[c] = (float)((Math.Exp(row[c] - logSum) - (c == label ? on : off)) * invN);
        }

        return (float)(total * invN);
    }

    /// <summary>Mean squared error <c>Σ(p − t)²/n</c> over all n values (PyTorch's <c>nn.MSELoss()</c>), gradient <c>2(p − t)/n</c>.</summary>
    /// <param name="predictions">Predicted values.</param>
    /// <param name="targets">Targets, same length.</param>
    /// <param name="predictionsGrad">Receives dLoss/dpredictions (may be empty to skip the gradient).</param>
    /// <returns>The mean loss.</returns>
    public static float MeanSquaredError(ReadOnlySpan<float> predictions, ReadOnlySpan<float> targets, Span<float> predictionsGrad)
    {
        if (predictions.Length == 0) throw new ArgumentException("predictions is empty.", nameof(predictions));
        if (targets.Length != predictions.Length) throw new ArgumentException($"targets has {targets.Length} values, predictions {predictions.Length}.", nameof(targets));
        if (!predictionsGrad.IsEmpty && predictionsGrad.Length != predictions.Length)
            throw new ArgumentException($"predictionsGrad has {predictionsGrad.Length} values, predictions {predictions.Length}.", nameof(predictionsGrad));
        double total = 0, scale = 2.0 / predictions.Length;
        for (int i = 0; i < predictions.Length; i++)
        {
            double d = (double)predictions[i] - targets[i];
            total += d * d;
            if (!predictionsGrad.IsEmpty) predictionsGrad[i] = (float)(scale * d);
        }

        return (float)(total / predictions.Length);
    }

    /// <summary>Mean absolute error <c>Σ|p − t|/n</c> (PyTorch's <c>nn.L1Loss()</c>), gradient <c>sign(p − t)/n</c> (0 where p = t, as PyTorch).</summary>
    /// <param name="predictions">Predicted values.</param>
    /// <param name="targets">Targets, same length.</param>
    /// <param name="predictionsGrad">Receives dLoss/dpredictions (may be empty to skip the gradient).</param>
    /// <returns>The mean loss.</returns>
    public static float L1(ReadOnlySpan<float> predictions, ReadOnlySpan<float> targets, Span<float> predictionsGrad) =>
        Elementwise(predictions, targets, predictionsGrad, 0, static (d, _) => (Math.Abs(d), Math.Sign(d)));

    /// <summary>
    /// Huber loss (PyTorch's <c>nn.HuberLoss(delta: δ)</c>, mean): <c>½d²</c> where <c>|d| ≤ δ</c>, else <c>δ(|d| − ½δ)</c>,
    /// with <c>d = p − t</c>; gradient <c>d</c> or <c>δ·sign(d)</c>, over n.
    /// </summary>
    /// <param name="predictions">Predicted values.</param>
    /// <param name="targets">Targets, same length.</param>
    /// <param name="predictionsGrad">Receives dLoss/dpredictions (may be empty to skip the gradient).</param>
    /// <param name="delta">δ &gt; 0, where the loss turns from quadratic to linear.</param>
    /// <returns>The mean loss.</returns>
    public static float Huber(ReadOnlySpan<float> predictions, ReadOnlySpan<float> targets, Span<float> predictionsGrad, float delta = 1)
    {
        if (!(delta > 0)) throw new ArgumentOutOfRangeException(nameof(delta), delta, "delta must be greater than 0.");
        return Elementwise(predictions, targets, predictionsGrad, delta,
            static (d, k) => Math.Abs(d) <= k ? (0.5 * d * d, d) : (k * (Math.Abs(d) - 0.5 * k), k * Math.Sign(d)));
    }

    /// <summary>
    /// Binary cross-entropy on logits (PyTorch's <c>nn.BCEWithLogitsLoss()</c>, mean): per value
    /// <c>max(z, 0) − z·t + log(1 + exp(−|z|))</c>, stable for any z; gradient <c>(σ(z) − t)/n</c>. Targets in [0, 1].
    /// </summary>
    /// <param name="logits">One logit per target.</param>
    /// <param name="targets">Probabilities in [0, 1] (0 or 1 for labels), same length.</param>
    /// <param name="logitsGrad">Receives dLoss/dlogits (may be empty to skip the gradient).</param>
    /// <returns>The mean loss.</returns>
    public static float BinaryCrossEntropyWithLogits(ReadOnlySpan<float> logits, ReadOnlySpan<float> targets, Span<float> logitsGrad)
    {
        Check(logits, targets, logitsGrad);
        double total = 0, invN = 1.0 / logits.Length;
        for (int i = 0; i < logits.Length; i++)
        {
            double z = logits[i], t = targets[i];
            total += Math.Max(z, 0) - z * t + Math.Log(1 + Math.Exp(-Math.Abs(z)));
            if (!logitsGrad.IsEmpty) logitsGrad[i] = (float)((1 / (1 + Math.Exp(-z)) - t) * invN);
        }

        return (float)(total * invN);
    }

    private static float Elementwise(ReadOnlySpan<float> predictions, ReadOnlySpan<float> targets, Span<float> grad, double parameter,
        Func<double, double, (double Loss, double Slope)> term)
    {
        Check(predictions, targets, grad);
        double total = 0, invN = 1.0 / predictions.Length;
        for (int i = 0; i < predictions.Length; i++)
        {
            var (loss, slope) = term((double)predictions[i] - targets[i], parameter);
            total += loss;
            if (!grad.IsEmpty) grad[i] = (float)(slope * invN);
        }

        return (float)(total * invN);
    }

    private static void Check(ReadOnlySpan<float> predictions, ReadOnlySpan<float> targets, Span<float> grad)
    {
        if (predictions.Length == 0) throw new ArgumentException("predictions is empty.", nameof(predictions));
        if (targets.Length != predictions.Length) throw new ArgumentException($"targets has {targets.Length} values, predictions {predictions.Length}.", nameof(targets));
        if (!grad.IsEmpty && grad.Length != predictions.Length)
            throw new ArgumentException($"the gradient has {grad.Length} values, predictions {predictions.Length}.", nameof(grad));
    }
}

/// <summary>Classification metrics.</summary>
public static class Metrics
{
    /// <summary>The index of the largest value of <paramref name="row"/> (the first one on ties, NaN never wins over a number).</summary>
    /// <param name="row">Scores of one sample.</param>
    /// <returns>The arg max.</returns>
    public static int ArgMax(ReadOnlySpan<float> row)
    {
        if (row.IsEmpty) throw new ArgumentException("row is empty.", nameof(row));
        int best = 0;
        for (int c = 1; c < row.Length; c++)
        {
            if (row[c] > row[best] || (float.IsNaN(row[best]) && !float.IsNaN(row[c]))) best = c;
        }

        return best;
    }

    /// <summary>How many samples of a [N, C] batch have their arg max equal to the label.</summary>
    /// <param name="logits">[N, C] scores.</param>
    /// <param name="labels">N labels.</param>
    /// <returns>The number of correct predictions.</returns>
    public static int CountCorrect(ReadOnlySpan<float> logits, ReadOnlySpan<int> labels)
    {
        int n = labels.Length;
        if (n == 0 || logits.Length % n != 0 || logits.Length == 0)
            throw new ArgumentException($"logits has {logits.Length} values, not a positive multiple of the {n} labels.", nameof(logits));
        int classes = logits.Length / n, correct = 0;
        for (int s = 0; s < n; s++)
        {
            if (ArgMax(logits.Slice(s * classes, classes)) == labels[s]) correct++;
        }

        return correct;
    }

    /// <summary>The fraction of samples whose arg max equals the label.</summary>
    /// <param name="logits">[N, C] scores.</param>
    /// <param name="labels">N labels.</param>
    /// <returns>Accuracy in [0, 1].</returns>
    public static float Accuracy(ReadOnlySpan<float> logits, ReadOnlySpan<int> labels) => (float)CountCorrect(logits, labels) / labels.Length;

    /// <summary>Mean squared error over all values (a regression metric; no gradient).</summary>
    /// <param name="predictions">Predicted values.</param>
    /// <param name="targets">Targets, same length.</param>
    /// <returns>The mean of (p − t)².</returns>
    public static double MeanSquaredError(ReadOnlySpan<float> predictions, ReadOnlySpan<float> targets) => Losses.MeanSquaredError(predictions, targets, default);

    /// <summary>Mean absolute error over all values (a regression metric; no gradient).</summary>
    /// <param name="predictions">Predicted values.</param>
    /// <param name="targets">Targets, same length.</param>
    /// <returns>The mean of |p − t|.</returns>
    public static double MeanAbsoluteError(ReadOnlySpan<float> predictions, ReadOnlySpan<float> targets) => Losses.L1(predictions, targets, default);

    /// <summary>Binary accuracy of logits: a logit above 0 predicts 1, and is right where the target is at least 0.5.</summary>
    /// <param name="logits">One logit per target.</param>
    /// <param name="targets">Targets in [0, 1], same length.</param>
    /// <returns>The fraction right.</returns>
    public static double BinaryAccuracy(ReadOnlySpan<float> logits, ReadOnlySpan<float> targets)
    {
        if (targets.Length != logits.Length || logits.Length == 0) throw new ArgumentException($"targets has {targets.Length} values, logits {logits.Length}.", nameof(targets));
        int right = 0;
        for (int i = 0; i < logits.Length; i++) right += (logits[i] > 0) == (targets[i] >= 0.5f) ? 1 : 0;
        return (double)right / logits.Length;
    }
}
