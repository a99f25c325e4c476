// Training epochs of the example's network and recipe in PyTorch (TorchSharp) and in the generated class, back to back
// in one process, with the same threads and the very same batches (the example's loader, augmentation and schedule):
// seconds per epoch, test accuracy, and the ratio torch / ours.
using System.Diagnostics;
using System.Globalization;
using Dsl.Runtime;
using Dsl.Training;
using Examples.FashionMnistResNet;
using TorchSharp;
using static TorchSharp.torch;
var c = CultureInfo.InvariantCulture;
string model = Models.Default, sides = "torch,ours";
int epochs = 1, threads = 2;
var rest = new List<string>();
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--model": model = args[++i]; break;
        case "--sides": sides = args[++i]; break;
        case "--epochs": epochs = int.Parse(args[++i], c); break;
        case "--threads": threads = int.Parse(args[++i], c); break;
        default: rest.Add(args[i]); break;
    }
}

if (model != "plain20" && !Models.All.Any(m => m.Name == model))
{
    Console.Error.WriteLine($"usage: run.sh [--model {string.Join("|", Models.All.Select(m => m.Name))}|plain20] [--sides torch,ours] [--epochs N] [--threads N] [the example's options: --limit, --batch, --lr, --optimizer, --crop, --erasing, …]");
    return 2;
}

// The example's options (recipe defaults included); the schedule spans exactly the timed epochs.
var options = Options.Parse([.. rest, "--model", model == "plain20" ? Models.Default : model, "--epochs", epochs.ToString(c), "--threads", threads.ToString(c)]);
if (options is null) return 2;
var normalization = Normalization.FashionMnist;
var train = MnistFiles.Load(options.DataDir, train: true, normalization).Take(options.Limit);
var test = MnistFiles.Load(options.DataDir, train: false, normalization).Take(options.TestLimit);
Console.WriteLine(string.Create(c,
    $"{model}: {train.Count} training / {test.Count} test images, batch {options.Batch}, {Recipe.DescribeOptimizer(options)}, weight decay {options.WeightDecay} (not on biases and BN γ/β), label smoothing {options.LabelSmoothing}, schedule {options.Schedule}, {threads} thread(s), {epochs} epoch(s) per side"));

var results = new Dictionary<string, (double Steady, double All, double EvalSeconds, double Accuracy)>();
foreach (var side in sides.Split(','))
{
    if (side == "ours" && model == "plain20")
    {
        Console.WriteLine("ours: skipped, plain20 runs on the torch side only (ResNet.nn has the residual networks)");
        continue;
    }

    var (seconds, evalSeconds, accuracy) = side == "torch" ? Torch(model, options, train, test, epochs, threads) : Ours(options, train, test, epochs);
    // The first epoch carries each library's warm-up (JIT, libtorch's kernel selection and allocator): with two or more
    // epochs, the steady pace is the mean of the later ones.
    double steady = seconds.Count > 1 ? seconds.Skip(1).Average() : seconds[0];
    results[side] = (steady, seconds.Average(), evalSeconds, accuracy);
    Console.WriteLine(string.Create(c,
        $"RESULT side={side} model={model} threads={threads} seconds_per_epoch={steady:0.00} (after the first; all: {seconds.Average():0.00}) epochs=[{string.Join(", ", seconds.Select(s => s.ToString("0.00", c)))}] eval_seconds={evalSeconds:0.00} test_accuracy={accuracy:0.0000}"));
}

if (results.TryGetValue("torch", out var t) && results.TryGetValue("ours", out var o))
{
    Console.WriteLine(string.Create(c,
        $"ratio (torch / ours, above 1: ours faster): training {t.Steady / o.Steady:0.00}x per epoch{(epochs > 1 ? " after the first" : "")} ({t.Steady:0.0} s / {o.Steady:0.0} s; all epochs {t.All / o.All:0.00}x), evaluation {t.EvalSeconds / o.EvalSeconds:0.00}x ({t.EvalSeconds:0.00} s / {o.EvalSeconds:0.00} s)"));
}

return 0;

static (List<double> Seconds, double EvalSeconds, double Accuracy) Ours(Options options, LabeledDataset train, LabeledDataset test, int epochs)
{
    var net = Models.Create(options.Model, Math.Max(options.Batch, 256), options.Seed, options.Threads);
    var loader = Recipe.Loader(options, train, Normalization.FashionMnist);
    var trainer = new Trainer(net, Recipe.Optimizer(options, net), loader,
        Recipe.Schedule(options, (long)epochs * loader.BatchesPerEpoch, loader.BatchesPerEpoch), options.LabelSmoothing);
    var seconds = new List<double>();
    Evaluation eval = default;
    for (int e = 0; e < epochs; e++)
    {
        var r = trainer.TrainEpoch();
        seconds.Add(r.Seconds);
        eval = trainer.Evaluate(test);
        Console.WriteLine(r.ToLine(epochs) + string.Create(CultureInfo.InvariantCulture, $"  test acc {eval.Accuracy:0.0000} in {eval.Seconds:0.0} s  [ours]"));
    }

    return (seconds, eval.Seconds, eval.Accuracy);
}

static (List<double> Seconds, double EvalSeconds, double Accuracy) Torch(string model, Options options, LabeledDataset train, LabeledDataset test, int epochs, int threads)
{
    torch.set_num_threads(threads);
    torch.manual_seed(options.Seed);
    Console.WriteLine($"libtorch: {torch.get_num_threads()} thread(s), TorchSharp {typeof(torch).Assembly.GetName().Version}");
    nn.Module<Tensor, Tensor> net = model == "plain20" ? TorchModels.Plain20() : new TorchModels.ResNet(Models.Blocks(model));
    Console.WriteLine($"{model}: {net.parameters().Sum(p => p.numel()):N0} parameters (torch)");
    // Weight decay on conv/linear weights only (dimension > 1), as the example's decayNormAndBias: false; the decay is
    // added to the gradient before the step (SGD's weight_decay) or applied decoupled (AdamW's), exactly as PyTorch does.
    var decayed = net.parameters().Where(p => p.dim() > 1).ToArray();
    bool adamw = options.Optimizer == "adamw";
    optim.Optimizer optimizer = adamw
        ? optim.AdamW(net.parameters(), options.LearningRate, weight_decay: 0)
        : optim.SGD(net.parameters(), options.LearningRate, momentum: 0.9, nesterov: true);
    float smoothing = options.LabelSmoothing;
    var loader = Recipe.Loader(options, train, Normalization.FashionMnist);
    var schedule = Recipe.Schedule(options, (long)epochs * loader.BatchesPerEpoch, loader.BatchesPerEpoch);
    var x = new float[options.Batch * 784];
    var y = new int[options.Batch];
    var y64 = new long[options.Batch];
    var seconds = new List<double>();
    long step = 0;
    double evalSeconds = 0, accuracy = 0;
    for (int e = 0; e < epochs; e++)
    {
        net.train();
        loader.StartEpoch();
        var clock = Stopwatch.StartNew();
        double lossSum = 0;
        int samples = 0;
        while (loader.HasNext)
        {
            int n = loader.Next(x, y);
            for (int k = 0; k < n; k++) y64[k] = y[k];
            float lr = schedule.At(step++);
            foreach (var group in optimizer.ParamGroups) group.LearningRate = lr;
            using var scope = NewDisposeScope();
            var input = tensor(x, [n, 1, 28, 28]);
            var target = tensor(y64, [n]);
            optimizer.zero_grad();
            // PyTorch's cross-entropy with label smoothing ε: (1 − ε)·NLL + ε·(mean over classes of −log p), batch mean.
            var logp = net.forward(input).log_softmax(1);
            var output = -(1 - smoothing) * logp.gather(1, target.unsqueeze(1)).mean() - smoothing * logp.mean([1]).mean();
            output.backward();
            using (no_grad())
            {
                foreach (var p in decayed)
                {
                    if (adamw) p.mul_(1 - lr * options.WeightDecay);
                    else p.grad!.add_(p, alpha: options.WeightDecay);
                }
            }

            optimizer.step();
            lossSum += output.item<float>() * n;
            samples += n;
        }

        double trained = clock.Elapsed.TotalSeconds;
        seconds.Add(trained);
        (accuracy, evalSeconds) = Evaluate(net, test);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"epoch {e + 1}/{epochs}: loss {lossSum / samples:0.0000}  {samples / trained:0} samples/s  {trained:0.0} s  test acc {accuracy:0.0000} in {evalSeconds:0.0} s  [torch]"));
    }

    return (seconds, evalSeconds, accuracy);
}

static (double Accuracy, double Seconds) Evaluate(nn.Module<Tensor, Tensor> net, LabeledDataset test)
{
    net.eval();
    var clock = Stopwatch.StartNew();
    int correct = 0;
    using (no_grad())
    {
        for (int start = 0; start < test.Count; start += 256)
        {
            int n = Math.Min(256, test.Count - start);
            using var scope = NewDisposeScope();
            var logits = net.forward(tensor(test.Samples.Slice(start * 784, n * 784).ToArray(), [n, 1, 28, 28]));
            var predicted = logits.argmax(1).data<long>().ToArray();
            for (int k = 0; k < n; k++) if (predicted[k] == test.Labels[start + k]) correct++;
        }
    }

    return ((double)correct / test.Count, clock.Elapsed.TotalSeconds);
}
