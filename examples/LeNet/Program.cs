// A few training steps of the tutorial LeNet on random data, then inference: the generated class at work.
using System.Globalization;
using Examples.LeNet;

const int Batch = 8;
const int Classes = LeNet.OutputLength;
var model = new LeNet(maxBatch: Batch, seed: 1);
Console.WriteLine($"LeNet: input [{string.Join(", ", LeNet.InputShape.ToArray())}], {LeNet.ParameterCount} parameters");

// Random images and labels (a fixed seed, so every run prints the same numbers).
var random = new Random(7);
var images = new float[Batch * LeNet.InputLength];
for (int i = 0; i < images.Length; i++) images[i] = (float)(random.NextDouble() * 2 - 1);
var labels = new int[Batch];
for (int i = 0; i < Batch; i++) labels[i] = random.Next(Classes);

var logits = new float[Batch * Classes];
var logitsGrad = new float[Batch * Classes];
const float LearningRate = 0.005f; // small: 1350 features and 8 samples are memorized in one step at 0.05
for (int step = 1; step <= 10; step++)
{
    model.ZeroGrad();
    model.Forward(images, logits, Batch); // training mode: batch statistics, running statistics updated
    float loss = CrossEntropy(logits, labels, logitsGrad);
    model.Backward(logitsGrad);
    var parameters = model.Parameters;
    var gradients = model.Gradients;
    for (int i = 0; i < parameters.Length; i++) parameters[i] -= LearningRate * gradients[i];
    Console.WriteLine($"step {step,2}: loss {loss.ToString("0.0000", CultureInfo.InvariantCulture)}");
}

// Inference: running statistics instead of batch statistics. bn1 follows maxpool, not conv1, so it cannot be
// folded into conv1's weights; the generated code applies it as a per-channel scale and shift instead.
var predictions = new float[Batch * Classes];
model.Infer(images, predictions, Batch);
int correct = 0;
for (int n = 0; n < Batch; n++)
{
    var row = predictions.AsSpan(n * Classes, Classes);
    int best = row.IndexOf(System.Numerics.Tensors.TensorPrimitives.Max(row));
    if (best == labels[n]) correct++;
    Console.WriteLine($"sample {n}: label {labels[n]}, predicted {best}, logits [{string.Join(", ", row.ToArray().Select(v => v.ToString("0.00", CultureInfo.InvariantCulture)))}]");
}

Console.WriteLine($"memorized {correct}/{Batch} training samples; running mean of bn1: [{string.Join(", ", model.Tensor("bn1.running_mean").ToArray().Select(v => v.ToString("0.000", CultureInfo.InvariantCulture)))}]");
return correct >= Batch / 2 ? 0 : 1;

// Mean softmax cross-entropy and its gradient with respect to the logits.
static float CrossEntropy(ReadOnlySpan<float> logits, ReadOnlySpan<int> labels, Span<float> grad)
{
    int batch = labels.Length, classes = logits.Length / batch;
    double total = 0;
    for (int n = 0; n < batch; n++)
    {
        var row = logits.Slice(n * classes, classes);
        float max = float.NegativeInfinity;
        foreach (var v in row) max = Math.Max(max, v);
        double sum = 0;
        foreach (var v in row) sum += Math.Exp(v - max);
        total += Math.Log(sum) + max - row[labels[n]];
        for (int c = 0; c < classes; c++)
            grad[n * classes + c] = (float)((Math.Exp(row[c] - max) / sum - (c == labels[n] ? 1 : 0)) / batch);
    }

    return (float)(total / batch);
}
