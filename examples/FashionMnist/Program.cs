// Trains fmnist.nn on Fashion-MNIST with SGD (lr 0.05, momentum 0.9, weight decay 5e-4, batch 64) and reports
// per-epoch loss/accuracy, test accuracy and seconds per epoch. Quick mode for CI: --epochs 1 --limit 2000.
using System.Globalization;
using Dsl.Training;
using Examples.FashionMnist;

var options = Options.Parse(args);
if (options is null) return 2;

string dataDir = options.DataDir;
if (!File.Exists(MnistFiles.Paths(dataDir, train: true).Images))
{
    Console.Error.WriteLine($"Fashion-MNIST not found in {dataDir}: run 'bash examples/FashionMnist/get-data.sh' (apt-get install dataset-fashion-mnist) or pass --data DIR.");
    return 2;
}

var train = MnistFiles.Load(dataDir, train: true).Take(options.Limit);
var test = MnistFiles.Load(dataDir, train: false).Take(options.TestLimit);
var model = new Fmnist(maxBatch: Math.Max(options.Batch, 256), seed: options.Seed, threads: options.Threads);
var loader = new BatchLoader(train, options.Batch, shuffle: true, dropLast: true, seed: (ulong)options.Seed)
{
    HorizontalFlipWidth = options.Flip ? 28 : 0, // torchvision's RandomHorizontalFlip: each image mirrored with probability 1/2
};
var optimizer = new Sgd(model, options.LearningRate, momentum: 0.9f, weightDecay: options.WeightDecay, decayNormAndBias: options.DecayAll);
long total = (long)options.Epochs * loader.BatchesPerEpoch;
LearningRateSchedule schedule = options.Schedule switch
{
    "constant" => LearningRateSchedule.Constant(options.LearningRate),
    "cosine" => new CosineSchedule(options.LearningRate, total),
    _ => new MultiStepSchedule(options.LearningRate, [total / 2, total * 3 / 4], 0.1f), // ×0.1 at 50 % and 75 % of training
};
var trainer = new Trainer(model, optimizer, loader, schedule, options.LabelSmoothing);

if (options.Resume is not null)
{
    trainer.LoadCheckpoint(options.Resume);
    Console.WriteLine($"resumed from {options.Resume}: {trainer.CompletedEpochs} epoch(s), {trainer.Step} steps done");
}

Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"Fmnist: {Fmnist.ParameterCount:N0} parameters, {model.Threads} thread(s); {train.Count} training / {test.Count} test images; batch {options.Batch}, {loader.BatchesPerEpoch} steps/epoch"));
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"SGD lr {options.LearningRate} momentum 0.9 weight decay {options.WeightDecay} ({(options.DecayAll ? "all parameters" : "not on biases and BN γ/β")}), label smoothing {options.LabelSmoothing}, {(options.Flip ? "random horizontal flips" : "no augmentation")}, schedule {schedule}"));

var progress = new TrainingProgress(options.Epochs);
while (trainer.CompletedEpochs < options.Epochs)
{
    int epoch = trainer.CompletedEpochs + 1;
    progress.RunEpoch(epoch, reporter =>
    {
        var result = trainer.TrainEpoch(reporter);
        var eval = trainer.Evaluate(test);
        return result with { TestLoss = eval.Loss, TestAccuracy = eval.Accuracy, TestSeconds = eval.Seconds };
    });
    if (options.Checkpoint is not null) trainer.SaveCheckpoint(options.Checkpoint);
}

progress.PrintSummary("Fashion-MNIST, fmnist.nn");
if (progress.Results.Count > 0)
{
    var last = progress.Results[^1];
    double secondsPerEpoch = progress.Results.Where(r => r.Samples == loader.SamplesPerEpoch).Select(r => r.Seconds).DefaultIfEmpty(double.NaN).Average();
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"final: test accuracy {last.TestAccuracy:0.0000} after {trainer.CompletedEpochs} epoch(s); {secondsPerEpoch:0.0} s per training epoch ({train.Count} images, {model.Threads} thread(s))"));
}

if (options.Save is not null)
{
    model.SaveSafetensors(options.Save);
    Console.WriteLine($"model saved to {options.Save}");
}

return 0;

namespace Examples.FashionMnist
{
    internal sealed record Options(int Epochs, int Limit, int TestLimit, int Threads, int Batch, float LearningRate, float WeightDecay, float LabelSmoothing,
        string Schedule, bool DecayAll, bool Flip, int Seed, string DataDir, string? Checkpoint, string? Resume, string? Save)
    {
        private const string Usage = """
            usage: dotnet run --project examples/FashionMnist -c Release -- [options]
              --epochs N            epochs to train (default 20)
              --limit N             train on the first N training images (quick mode: --epochs 1 --limit 2000)
              --test-limit N        evaluate on the first N test images (default all 10000)
              --threads N           0 = every core (default), 1 = single-threaded
              --batch N             batch size (default 64)
              --lr X                peak learning rate (default 0.05)
              --weight-decay X      weight decay (default 5e-4)
              --label-smoothing X   cross-entropy label smoothing (default 0.1)
              --schedule S          step (default: ×0.1 at 50% and 75%), cosine or constant
              --decay-all           weight decay on biases and BN γ/β too (default: not)
              --no-flip             no random horizontal flips of training images (default: flip with probability 1/2)
              --seed N              initialization and shuffling seed (default 1)
              --data DIR            folder with the MNIST-format .gz files (default /usr/share/datasets/fashion-mnist)
              --checkpoint PATH     save a checkpoint (model + optimizer + loader) after every epoch
              --resume PATH         continue from a checkpoint
              --save PATH           save the trained model (safetensors state_dict)
            """;

        private static string CheckSchedule(string value) =>
            value is "step" or "cosine" or "constant" ? value : throw new FormatException("--schedule is step, cosine or constant");

        public static Options? Parse(string[] args)
        {
            var o = new Options(20, int.MaxValue, int.MaxValue, 0, 64, 0.05f, 5e-4f, 0.1f, "step", false, true, 1, MnistFiles.FashionMnistDirectory, null, null, null);
            try
            {
                for (int i = 0; i < args.Length; i++)
                {
                    string Value() => i + 1 < args.Length ? args[++i] : throw new FormatException($"{args[i]} needs a value");
                    int Int() => int.Parse(Value(), CultureInfo.InvariantCulture);
                    float Float() => float.Parse(Value(), CultureInfo.InvariantCulture);
                    o = args[i] switch
                    {
                        "--epochs" => o with { Epochs = Int() },
                        "--limit" => o with { Limit = Int() },
                        "--test-limit" => o with { TestLimit = Int() },
                        "--threads" => o with { Threads = Int() },
                        "--batch" => o with { Batch = Int() },
                        "--lr" => o with { LearningRate = Float() },
                        "--weight-decay" => o with { WeightDecay = Float() },
                        "--label-smoothing" => o with { LabelSmoothing = Float() },
                        "--schedule" => o with { Schedule = CheckSchedule(Value()) },
                        "--decay-all" => o with { DecayAll = true },
                        "--no-flip" => o with { Flip = false },
                        "--seed" => o with { Seed = Int() },
                        "--data" => o with { DataDir = Value() },
                        "--checkpoint" => o with { Checkpoint = Value() },
                        "--resume" => o with { Resume = Value() },
                        "--save" => o with { Save = Value() },
                        "-h" or "--help" => throw new FormatException(""),
                        _ => throw new FormatException($"unknown option {args[i]}"),
                    };
                }

                if (o.Epochs < 1 || o.Limit < 1 || o.TestLimit < 1 || o.Batch < 2 || o.Threads < 0) throw new FormatException("epochs, limit, test-limit ≥ 1, batch ≥ 2, threads ≥ 0");
                return o;
            }
            catch (FormatException e)
            {
                if (e.Message.Length > 0) Console.Error.WriteLine(e.Message);
                Console.Error.WriteLine(Usage);
                return null;
            }
        }
    }
}
