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
}
