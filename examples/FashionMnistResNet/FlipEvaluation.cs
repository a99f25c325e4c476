// Test-time augmentation by horizontal flip: each test image and its mirror image through Infer, logits averaged.
using Dsl.Runtime;
using Dsl.Training;

namespace Examples.FashionMnistResNet;

internal static class FlipEvaluation
{
    /// <summary>
    /// Accuracy of <paramref name="model"/> on <paramref name="data"/> (images of width <paramref name="width"/>) when the
    /// prediction is the class of the mean of the logits of the image and of its horizontal mirror, both by
    /// <c>Infer</c> (running statistics): the flip the training saw half the time, used at test time too.
    /// </summary>
    public static double Accuracy(CompiledModel model, LabeledDataset data, int width)
    {
        int batch = model.MaxBatch, length = data.SampleLength, classes = model.SampleOutputLength, correct = 0;
        var inputs = new float[batch * length];
        var mirrored = new float[batch * length];
        var logits = new float[batch * classes];
        var mirroredLogits = new float[batch * classes];
        for (int start = 0; start < data.Count; start += batch)
        {
            int n = Math.Min(batch, data.Count - start);
            data.Samples.Slice(start * length, n * length).CopyTo(inputs);
            for (int row = 0; row < n * length / width; row++)
            {
                var source = inputs.AsSpan(row * width, width);
                var target = mirrored.AsSpan(row * width, width);
                for (int x = 0; x < width; x++) target[x] = source[width - 1 - x];
            }

            model.Infer(inputs.AsSpan(0, n * length), logits.AsSpan(0, n * classes), n);
            model.Infer(mirrored.AsSpan(0, n * length), mirroredLogits.AsSpan(0, n * classes), n);
            for (int i = 0; i < n; i++)
            {
                int best = 0;
                for (int k = 1; k < classes; k++)
                {
                    if (logits[i * classes + k] + mirroredLogits[i * classes + k] > logits[i * classes + best] + mirroredLogits[i * classes + best]) best = k;
                }

                if (best == data.Labels[start + i]) correct++;
            }
        }

        return data.Count > 0 ? (double)correct / data.Count : double.NaN;
    }
}
