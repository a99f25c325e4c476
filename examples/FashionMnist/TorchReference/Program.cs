// One (or more) Fashion-MNIST training epochs of the same network in PyTorch (TorchSharp) and in the generated class,
// back to back in one process, same threads: seconds per epoch and test accuracy for each.
using System.Diagnostics;
using System.Globalization;
using Dsl.Training;
using Examples.FashionMnist;
using TorchSharp;
using static TorchSharp.torch;

int epochs = 1, threads = Environment.ProcessorCount, limit = int.MaxValue;
string sides = "torch,ours";
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--epochs": epochs = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--threads": threads = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--limit": limit = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--sides": sides = args[++i]; break;
        default: Console.Error.WriteLine("usage: TorchReference [--epochs N] [--threads N] [--limit N] [--sides torch,ours]"); return 2;
    }
}

const int Batch = 64;
const float Lr = 0.05f, Momentum = 0.9f, WeightDecay = 5e-4f;
var train = MnistFiles.Load(MnistFiles.FashionMnistDirectory, train: true).Take(limit);
var test = MnistFiles.Load(MnistFiles.FashionMnistDirectory, train: false);
Console.WriteLine($"{train.Count} training images, batch {Batch}, SGD lr {Lr} momentum {Momentum} weight decay {WeightDecay} (all parameters), {threads} thread(s), {epochs} epoch(s) per side");

foreach (var side in sides.Split(','))
{
    var (seconds, accuracy) = side == "torch" ? Torch(train, test, epochs, threads) : Ours(train, test, epochs, threads);
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"RESULT side={side} threads={threads} seconds_per_epoch={seconds.Average():0.00} epochs=[{string.Join(", ", seconds.Select(s => s.ToString("0.00", CultureInfo.InvariantCulture)))}] test_accuracy={accuracy:0.0000}"));
}

return 0;

static (List<double> Seconds, double Accuracy) Ours(LabeledDataset train, LabeledDataset test, int epochs, int threads)
{
    var model = new Fmnist(maxBatch: 256, seed: 1, threads: threads);
    var loader = new BatchLoader(train, Batch, seed: 1);
    var trainer = new Trainer(model, new Sgd(model, Lr, Momentum, weightDecay: WeightDecay), loader);
    var seconds = new List<double>();
    for (int e = 0; e < epochs; e++)
    {
        var r = trainer.TrainEpoch();
        seconds.Add(r.Seconds);
        Console.WriteLine(r.ToLine(epochs) + "  [ours]");
    }

    return (seconds, trainer.Evaluate(test).Accuracy);
}

static (List<double> Seconds, double Accuracy) Torch(LabeledDataset train, LabeledDataset test, int epochs, int threads)
{
    torch.set_num_threads(threads);
    Console.WriteLine($"libtorch: {torch.get_num_threads()} thread(s), TorchSharp {typeof(torch).Assembly.GetName().Version}");
    var model = nn.Sequential(
        ("0", nn.Conv2d(1, 32, 3, padding: 1)), ("1", nn.BatchNorm2d(32)), ("2", nn.ReLU()), ("3", nn.MaxPool2d(2)),
        ("4", nn.Conv2d(32, 64, 3, padding: 1)), ("5", nn.BatchNorm2d(64)), ("6", nn.ReLU()), ("7", nn.MaxPool2d(2)),
        ("8", nn.Flatten()), ("9", nn.Linear(3136, 128)), ("10", nn.BatchNorm1d(128)), ("11", nn.ReLU()), ("12", nn.Linear(128, 10)));
    var optimizer = optim.SGD(model.parameters(), Lr, Momentum, weight_decay: WeightDecay);
    var loss = nn.CrossEntropyLoss();
    var loader = new BatchLoader(train, Batch, seed: 1);
    var x = new float[Batch * 784];
    var y = new int[Batch];
    var y64 = new long[Batch];
    var seconds = new List<double>();
    for (int e = 0; e < epochs; e++)
    {
        model.train();
        loader.StartEpoch();
        var clock = Stopwatch.StartNew();
        double lossSum = 0;
        int samples = 0;
        while (loader.HasNext)
        {
            int n = loader.Next(x, y);
            for (int k = 0; k < n; k++) y64[k] = y[k];
            using var scope = NewDisposeScope();
            var input = tensor(x, [n, 1, 28, 28]);
            var target = tensor(y64, [n]);
            optimizer.zero_grad();
            var output = loss.forward(model.forward(input), target);
            output.backward();
            optimizer.step();
            lossSum += output.item<float>() * n;
            samples += n;
        }

        seconds.Add(clock.Elapsed.TotalSeconds);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"epoch {e + 1}/{epochs}: loss {lossSum / samples:0.0000}  {samples / clock.Elapsed.TotalSeconds:0} samples/s  {clock.Elapsed.TotalSeconds:0.0} s  [torch]"));
    }

    model.eval();
    int correct = 0;
    using (no_grad())
    {
        for (int start = 0; start < test.Count; start += 500)
        {
            int n = Math.Min(500, test.Count - start);
            using var scope = NewDisposeScope();
            var logits = model.forward(tensor(test.Samples.Slice(start * 784, n * 784).ToArray(), [n, 1, 28, 28]));
            var predicted = logits.argmax(1).data<long>().ToArray();
            for (int k = 0; k < n; k++) if (predicted[k] == test.Labels[start + k]) correct++;
        }
    }

    return (seconds, (double)correct / test.Count);
}
