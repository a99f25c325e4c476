// Command-line options of the example, with the recipe's defaults.
using System.Globalization;
using Dsl.Training;

namespace Examples.FashionMnistResNet;

internal sealed record Options(int? Epochs, double TimeBudgetMinutes, int MaxEpochs, int Limit, int TestLimit, int Threads, int Batch,
    string Optimizer, float LearningRate, float WeightDecay, float LabelSmoothing, string Schedule, double PctStart, int WarmupEpochs,
    int CropPadding, bool Flip, float Erasing, bool DecayAll, int Seed, string DataDir, string OutputDir, string? Checkpoint, string? Resume, string? Save,
    double MinAccuracy, string Model)
{
    private const string Usage = """
        usage: dotnet run --project examples/FashionMnistResNet -c Release -- [options]
          --model M             the network of ResNet.nn: resnet14 (default) or resnet20
          --epochs N            epochs the schedule spans (default: as many as --time-budget holds, measured at start)
          --time-budget MIN     wall-clock minutes of training and evaluation (default 30); when epochs run slower than
                                planned, the rest of the schedule is squeezed into the epochs that still fit (without
                                --epochs, stretched over more when they run faster)
          --max-epochs N        the most epochs the budget may plan (default 60)
          --limit N             train on the first N training images (quick mode: --epochs 1 --limit 2000 --test-limit 2000)
          --test-limit N        evaluate on the first N test images (default all 10000)
          --threads N           0 = every core (default), 1 = single-threaded
          --batch N             batch size (default 128)
          --optimizer O         sgd (Nesterov momentum 0.9, default) or adamw
          --lr X                peak learning rate (default 0.1 for sgd, 0.003 for adamw)
          --weight-decay X      weight decay (default 5e-4 for sgd, 0.05 for adamw)
          --label-smoothing X   cross-entropy label smoothing (default 0.1)
          --schedule S          onecycle (default), cosine (linear warm-up then cosine), step or constant
          --pct-start X         one-cycle: fraction of the steps rising (default 0.25)
          --warmup-epochs N     cosine: warm-up epochs (default 1)
          --crop K              random crop 28×28 after padding K black pixels each side (default 2; 0: none)
          --no-flip             no random horizontal flips (default: flip with probability 1/2)
          --erasing P           random erasing with probability P (torchvision's scale and ratio; default 0: none)
          --decay-all           weight decay on biases and BN γ/β too (default: not)
          --seed N              initialization, shuffling and augmentation seed (default 1)
          --data DIR            folder with the MNIST-format .gz files (default /usr/share/datasets/fashion-mnist)
          --out DIR             best checkpoint, curves.png, epochs.csv (default artifacts/FashionMnistResNet)
          --checkpoint PATH     also save a checkpoint (model + optimizer + loader) after every epoch
          --resume PATH         continue from a checkpoint (its planned epochs unless --epochs is given)
          --save PATH           save the final model (safetensors state_dict)
          --min-accuracy X      exit with status 1 when the final test accuracy is below X (for CI; default 0: never)
        """;

    private static string Check(string value, string name, params string[] allowed) =>
        allowed.Contains(value) ? value : throw new FormatException($"{name} is {string.Join(", ", allowed[..^1])} or {allowed[^1]}");

    public static Options? Parse(string[] args)
    {
        var o = new Options(null, 30, 60, int.MaxValue, int.MaxValue, 0, 128, "sgd", float.NaN, float.NaN, 0.1f, "onecycle", 0.25, 1,
            2, true, 0, false, 1, MnistFiles.FashionMnistDirectory, Path.Combine("artifacts", "FashionMnistResNet"), null, null, null, 0, Models.Default);
        try
        {
            for (int i = 0; i < args.Length; i++)
            {
                string Value() => i + 1 < args.Length ? args[++i] : throw new FormatException($"{args[i]} needs a value");
                int Int() => int.Parse(Value(), CultureInfo.InvariantCulture);
                float Float() => float.Parse(Value(), CultureInfo.InvariantCulture);
                double Double() => double.Parse(Value(), CultureInfo.InvariantCulture);
                o = args[i] switch
                {
                    "--epochs" => o with { Epochs = Int() },
                    "--time-budget" => o with { TimeBudgetMinutes = Double() },
                    "--max-epochs" => o with { MaxEpochs = Int() },
                    "--limit" => o with { Limit = Int() },
                    "--test-limit" => o with { TestLimit = Int() },
                    "--threads" => o with { Threads = Int() },
                    "--batch" => o with { Batch = Int() },
                    "--optimizer" => o with { Optimizer = Check(Value(), "--optimizer", "sgd", "adamw") },
                    "--lr" => o with { LearningRate = Float() },
                    "--weight-decay" => o with { WeightDecay = Float() },
                    "--label-smoothing" => o with { LabelSmoothing = Float() },
                    "--schedule" => o with { Schedule = Check(Value(), "--schedule", "onecycle", "cosine", "step", "constant") },
                    "--pct-start" => o with { PctStart = Double() },
                    "--warmup-epochs" => o with { WarmupEpochs = Int() },
                    "--crop" => o with { CropPadding = Int() },
                    "--no-flip" => o with { Flip = false },
                    "--erasing" => o with { Erasing = Float() },
                    "--decay-all" => o with { DecayAll = true },
                    "--seed" => o with { Seed = Int() },
                    "--data" => o with { DataDir = Value() },
                    "--out" => o with { OutputDir = Value() },
                    "--checkpoint" => o with { Checkpoint = Value() },
                    "--resume" => o with { Resume = Value() },
                    "--save" => o with { Save = Value() },
                    "--model" => o with { Model = Check(Value(), "--model", [.. Models.All.Select(m => m.Name)]) },
                    "--min-accuracy" => o with { MinAccuracy = Double() },
                    "-h" or "--help" => throw new FormatException(""),
                    _ => throw new FormatException($"unknown option {args[i]}"),
                };
            }

            bool adamw = o.Optimizer == "adamw";
            o = o with
            {
                LearningRate = float.IsNaN(o.LearningRate) ? (adamw ? 0.003f : 0.1f) : o.LearningRate,
                WeightDecay = float.IsNaN(o.WeightDecay) ? (adamw ? 0.05f : 5e-4f) : o.WeightDecay,
            };
            if (o.Epochs < 1 || o.Limit < 1 || o.TestLimit < 1 || o.Batch < 2 || o.Threads < 0 || o.MaxEpochs < 1 || !(o.TimeBudgetMinutes > 0))
                throw new FormatException("epochs, max-epochs, limit, test-limit ≥ 1, batch ≥ 2, threads ≥ 0, time-budget > 0");
            if (o.CropPadding < 0 || !(o.Erasing >= 0 && o.Erasing <= 1) || !(o.PctStart > 0 && o.PctStart < 1) || o.WarmupEpochs < 0)
                throw new FormatException("crop ≥ 0, erasing in [0, 1], pct-start in (0, 1), warmup-epochs ≥ 0");
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
