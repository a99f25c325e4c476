// Test-time augmentation by horizontal flip: each test image and its mirror image through Infer, logits averaged.
using System.Numerics.Tensors;
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
        var mirrored = new float[batch * length];
        var logits = new float[batch * classes];
        var mirroredLogits = new float[batch * classes];
        for (int start = 0; start < data.Count; start += batch)
        {
            int n = Math.Min(batch, data.Count - start);
            var images = data.Samples.Slice(start * length, n * length);
            images.CopyTo(mirrored);
            for (int row = 0; row < n * length; row += width) mirrored.AsSpan(row, width).Reverse();

            model.Infer(images, logits.AsSpan(0, n * classes), n);
            model.Infer(mirrored.AsSpan(0, n * length), mirroredLogits.AsSpan(0, n * classes), n);
            TensorPrimitives.Add(logits.AsSpan(0, n * classes), mirroredLogits.AsSpan(0, n * classes), logits.AsSpan(0, n * classes)); // the mean's arg max
            correct += Metrics.CountCorrect(logits.AsSpan(0, n * classes), data.Labels.Slice(start, n));
        }

        return data.Count > 0 ? (double)correct / data.Count : double.NaN;
    }
}
