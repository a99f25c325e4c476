// Trains the Classifier of Models/Classifier.nn on random 8×8 images whose label is the brightest quadrant,
// then evaluates it on images it has not seen and saves its weights as a PyTorch state_dict (safetensors).
using System.Globalization;
using Dsl.Training;
using NnConsole;

const int Classes = Classifier.OutputLength;
var train = RandomQuadrants(count: 2048, seed: 1);
var test = RandomQuadrants(count: 512, seed: 2);

var model = new Classifier(maxBatch: 64, seed: 1, threads: 1);
var loader = new BatchLoader(train, batchSize: 64, shuffle: true, dropLast: true, seed: 1);
var optimizer = new Sgd(model, learningRate: 0.02f, momentum: 0.9f);
var trainer = new Trainer(model, optimizer, loader);
Console.WriteLine($"Classifier: input [{string.Join(", ", Classifier.InputShape.ToArray())}], {Classifier.ParameterCount} parameters, {train.Count} training images");

for (int epoch = 1; epoch <= 5; epoch++)
{
    EpochResult result = trainer.TrainEpoch();
    Evaluation evaluation = trainer.Evaluate(test);
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"epoch {epoch}: loss {result.Loss:0.0000}, train accuracy {result.Accuracy:0.000}, test accuracy {evaluation.Accuracy:0.000}"));
}

model.SaveSafetensors("classifier.safetensors");
Console.WriteLine("saved classifier.safetensors (conv1.weight, bn1.running_mean, head.weight, ...)");

// Images of uniform noise with one quadrant brightened; the label is that quadrant.
static LabeledDataset RandomQuadrants(int count, int seed)
{
    var random = new Random(seed);
    var images = new float[count * Classifier.InputLength];
    var labels = new int[count];
    for (int n = 0; n < count; n++)
    {
        int quadrant = random.Next(Classes);
        labels[n] = quadrant;
        var image = images.AsSpan(n * Classifier.InputLength, Classifier.InputLength);
        for (int y = 0; y < 8; y++)
        {
            for (int x = 0; x < 8; x++)
            {
                bool inQuadrant = (y / 4) * 2 + (x / 4) == quadrant;
                image[y * 8 + x] = (float)random.NextDouble() + (inQuadrant ? 0.2f : 0f);
            }
        }
    }

    return new LabeledDataset(images, labels, Classifier.InputLength, Classes);
}
