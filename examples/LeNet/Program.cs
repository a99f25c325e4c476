// A few training steps of the tutorial LeNet on random data, then inference: the generated class at work.
using System.Globalization;
using Dsl.Training;
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
// Dsl.Training's SGD (PyTorch's torch.optim.SGD); small steps: 1350 features and 8 samples are memorized in one step at 0.05.
var sgd = new Sgd(model, learningRate: 0.005f);
for (int step = 1; step <= 10; step++)
{
    model.ZeroGrad();
    model.Forward(images, logits, Batch);                        // training mode: batch statistics, running statistics updated
    float loss = Losses.CrossEntropy(logits, labels, logitsGrad); // mean softmax cross-entropy, and its gradient
    model.Backward(logitsGrad);                                  // gradients into model.Gradients
    sgd.Step(model);                                             // parameters -= learning rate × gradients
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
    int best = Metrics.ArgMax(row);
    if (best == labels[n]) correct++;
    Console.WriteLine($"sample {n}: label {labels[n]}, predicted {best}, logits [{string.Join(", ", row.ToArray().Select(v => v.ToString("0.00", CultureInfo.InvariantCulture)))}]");
}

Console.WriteLine($"memorized {correct}/{Batch} training samples; running mean of bn1: [{string.Join(", ", model.Tensor("bn1.running_mean").ToArray().Select(v => v.ToString("0.000", CultureInfo.InvariantCulture)))}]");
return correct >= Batch / 2 ? 0 : 1;

