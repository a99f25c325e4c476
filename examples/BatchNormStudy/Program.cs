// Measures claims commonly made about batch normalization, on Fashion-MNIST, and writes report.md + PNG plots.
// Default: 10,000 training images, 5,000 test images, 3 epochs, fixed seeds (a few minutes on 2 cores);
// --full: all 60,000 / 10,000 images. See README.md.
using System.Globalization;
using System.Text;
using Dsl.Runtime;
using Dsl.Training;
using Examples.BatchNormStudy;

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;

int trainCount = 10_000, testCount = 5_000, epochs = 3, threads = 0;
string dataDir = MnistFiles.FashionMnistDirectory;
string? outDir = null;
bool quick = false, onlySmallBatches = false;
int smallBatchSeedCount = 3;
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--full": trainCount = 60_000; testCount = 10_000; break;
        case "--quick": quick = true; trainCount = 1_000; testCount = 500; epochs = 1; break;
        case "--train": trainCount = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--test": testCount = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--epochs": epochs = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--threads": threads = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--data": dataDir = args[++i]; break;
        case "--out": outDir = args[++i]; break;
        case "--small-batches": onlySmallBatches = true; break;
        case "--seeds": smallBatchSeedCount = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        default:
            Console.Error.WriteLine("usage: dotnet run --project examples/BatchNormStudy -c Release -- [--full | --quick] [--train N] [--test N] [--epochs N] [--threads N] [--data DIR] [--out DIR] [--small-batches] [--seeds N]");
            return 2;
    }
}

if (!File.Exists(MnistFiles.Paths(dataDir, train: true).Images))
{
    Console.Error.WriteLine($"Fashion-MNIST not found in {dataDir}: run 'bash examples/FashionMnist/get-data.sh' or pass --data DIR.");
    return 2;
}

outDir ??= DefaultOutput();
Directory.CreateDirectory(outDir);
var fullTrain = MnistFiles.Load(dataDir, train: true);
var train = fullTrain.Take(trainCount);
var test = MnistFiles.Load(dataDir, train: false).Take(testCount);
int fineTuneCount = quick ? 200 : 1_000;
var fineTune = fullTrain.Slice(Math.Min(trainCount, fullTrain.Count - fineTuneCount), fineTuneCount); // images the pre-training never saw
const int MaxBatch = 256;

CompiledModel Create(string name, int seed) => name switch
{
    "Plain" => new Plain(MaxBatch, seed, threads),
    "Bn" => new Bn(MaxBatch, seed, threads),
    "BnAfterRelu" => new BnAfterRelu(MaxBatch, seed, threads),
    "DropoutBeforeBn" => new DropoutBeforeBn(MaxBatch, seed, threads),
    "DropoutAfterBn" => new DropoutAfterBn(MaxBatch, seed, threads),
    "BnFrozen" => new BnFrozen(MaxBatch, seed, threads),
    "Gn2" => new Gn2(MaxBatch, seed, threads),
    "Gn8" => new Gn8(MaxBatch, seed, threads),
    "Ln" => new Ln(MaxBatch, seed, threads),
    _ => throw new ArgumentException(name),
};

var started = DateTime.UtcNow;
var log = new List<RunResult>();
RunResult Run(string model, int batch, float lr, int seed)
{
    var r = Study.Train(model, s => Create(model, s), train, test, batch, lr, epochs, seed);
    log.Add(r);
    Console.WriteLine($"{model,-16} batch {batch,3} lr {lr,-5} seed {seed}: {(r.Diverged ? "diverged" : $"test acc {r.FinalAccuracy:0.0000}")}  ({r.Seconds:0.0} s)");
    return r;
}

Console.WriteLine($"BatchNormStudy: {train.Count} training images, {test.Count} test images, {epochs} epoch(s), SGD momentum 0.9, output {outDir}");

// 5. Small batches: batch norm against group and layer norm (also alone, with --small-batches: it writes its own part).
int[] smallBatchSeeds = Enumerable.Range(1, quick ? 1 : smallBatchSeedCount).ToArray();
string SmallBatchSection()
{
    string section = SmallBatches.Run(Create, train, test, epochs, smallBatchSeeds, outDir, log.Add);
    File.WriteAllText(Path.Combine(outDir, "small-batches.md"), section);
    return section;
}

if (onlySmallBatches)
{
    SmallBatchSection();
    Console.WriteLine($"wrote {Path.Combine(outDir, "small-batches.md")} in {(DateTime.UtcNow - started).TotalMinutes:0.0} min");
    return 0;
}

// 1. With and without batch norm, across learning rates and batch sizes.
float[] lrs = [0.01f, 0.1f, 0.5f];
int[] batches = [2, 8, 32, 128];
var grid = new Dictionary<(string Model, float Lr, int Batch), RunResult>();
foreach (float lr in lrs)
{
    foreach (int batch in batches)
    {
        foreach (var model in new[] { "Plain", "Bn" }) grid[(model, lr, batch)] = Run(model, batch, lr, seed: 1);
    }
}

// 2. Batch norm before vs after ReLU; 3. dropout before vs after batch norm. Three seeds each, batch 32, lr 0.1.
int[] seeds = [1, 2, 3];
var placement = new Dictionary<string, List<RunResult>>();
foreach (var model in new[] { "Bn", "BnAfterRelu", "DropoutBeforeBn", "DropoutAfterBn" })
{
    placement[model] = seeds.Select(seed => model == "Bn" && seed == 1 ? grid[("Bn", 0.1f, 32)] : Run(model, 32, 0.1f, seed)).ToList();
}

// 4. Fine-tuning with small batches: pre-train Bn, then fine-tune on unseen images with normal vs frozen batch norm.
var pretrained = (Bn)Create("Bn", 3);
var pre = Study.Train("Bn (pre-training)", _ => pretrained, train, test, 64, 0.1f, epochs, 3, start: pretrained);
log.Add(pre);
var state = new MemoryStream();
pretrained.SaveSafetensors(state);
Console.WriteLine($"pre-trained Bn: test acc {pre.FinalAccuracy:0.0000}");
var fine = new Dictionary<(string Mode, int Batch), RunResult>();
foreach (int batch in new[] { 2, 8 })
{
    foreach (var mode in new[] { "Bn", "BnFrozen" })
    {
        var model = Create(mode, 0);
        state.Position = 0;
        model.LoadSafetensors(state);
        var r = Study.FineTune(mode, model, fineTune, test, batch, 0.01f, 2, seed: 4, evalEvery: fineTuneCount / 4);
        fine[(mode, batch)] = r;
        log.Add(r);
        Console.WriteLine($"fine-tune {mode,-8} batch {batch}: test acc {r.Points[0].TestAccuracy:0.0000} → {r.FinalAccuracy:0.0000}");
    }
}

// What a batch of one does to batch-norm training.
string batchOne;
try
{
    var model = Create("Bn", 0);
    model.Forward(new float[model.SampleInputLength], new float[model.SampleOutputLength], 1);
    batchOne = "Training `Bn` on a batch of 1 did not throw (unexpected).";
}
catch (ArgumentException e)
{
    batchOne = $"Training `Bn` on a batch of 1 throws, as in PyTorch: `{e.Message}`";
}

// Plots.
string Lr(float lr) => lr.ToString("0.##", CultureInfo.InvariantCulture);
foreach (float lr in lrs)
{
    var series = new List<Series>();
    for (int b = 0; b < batches.Length; b++)
    {
        foreach (var model in new[] { "Bn", "Plain" })
        {
            var r = grid[(model, lr, batches[b])];
            series.Add(new Series($"{(model == "Bn" ? "BN" : "no BN")}, batch {batches[b]}{(r.Diverged ? " (diverged)" : "")}",
                r.LossCurve.Select(p => p.Samples).ToArray(), r.LossCurve.Select(p => p.Loss).ToArray(), model == "Plain", b));
        }
    }

    Plots.Lines(Path.Combine(outDir, $"grid-loss-lr{Lr(lr)}.png"), $"Training loss, lr {Lr(lr)} (solid: BN, dashed: no BN)", "training samples seen", "training loss (mean over 1/10 epoch)", series, 0, 2.5);
}

var ticks = (batches.Select(b => Math.Log2(b)).ToArray(), batches.Select(b => b.ToString(CultureInfo.InvariantCulture)).ToArray());
Plots.Lines(Path.Combine(outDir, "grid-accuracy.png"), $"Test accuracy after {epochs} epoch(s) (solid: BN, dashed: no BN; missing = diverged)", "batch size", "test accuracy",
    lrs.SelectMany((lr, i) => new[] { "Bn", "Plain" }.Select(model => new Series($"{(model == "Bn" ? "BN" : "no BN")}, lr {Lr(lr)}",
        batches.Select(b => Math.Log2(b)).ToArray(), batches.Select(b => grid[(model, lr, b)].FinalAccuracy).ToArray(), model == "Plain", i))),
    0, 1, ticks);

void PlacementPlots(string file, string title, string[] models)
{
    var loss = new List<Series>();
    var acc = new List<Series>();
    for (int m = 0; m < models.Length; m++)
    {
        foreach (var r in placement[models[m]])
        {
            loss.Add(new Series($"{models[m]} seed {r.Seed}", r.LossCurve.Select(p => p.Samples).ToArray(), r.LossCurve.Select(p => p.Loss).ToArray(), r.Seed != 1, m));
            acc.Add(new Series($"{models[m]} seed {r.Seed}", r.Points.Select(p => p.Samples).ToArray(), r.Points.Select(p => p.TestAccuracy).ToArray(), r.Seed != 1, m));
        }
    }

    Plots.Lines(Path.Combine(outDir, $"{file}-loss.png"), $"{title}: training loss (batch 32, lr 0.1)", "training samples seen", "training loss", loss, 0, 1.5);
    Plots.Lines(Path.Combine(outDir, $"{file}-accuracy.png"), $"{title}: test accuracy per epoch", "training samples seen", "test accuracy", acc);
}

PlacementPlots("bn-placement", "BN before vs after ReLU", ["Bn", "BnAfterRelu"]);
PlacementPlots("dropout-placement", "Dropout before vs after BN", ["DropoutBeforeBn", "DropoutAfterBn", "Bn"]);
Plots.Lines(Path.Combine(outDir, "finetune-accuracy.png"), "Fine-tuning a pre-trained BN network (solid: normal BN, dashed: frozen BN)", "fine-tuning samples seen", "test accuracy",
    fine.Select(kv => new Series($"{(kv.Key.Mode == "Bn" ? "normal BN" : "frozen BN")}, batch {kv.Key.Batch}",
        kv.Value.Points.Select(p => p.Samples).ToArray(), kv.Value.Points.Select(p => p.TestAccuracy).ToArray(), kv.Key.Mode == "BnFrozen", kv.Key.Batch == 2 ? 3 : 0)));

string smallBatches = SmallBatchSection();
File.WriteAllText(Path.Combine(outDir, "report.md"), Report.Write(new ReportInput(train.Count, test.Count, epochs, fineTuneCount, lrs, batches, grid, placement, pre, fine, batchOne,
    DateTime.UtcNow - started, threads)) + Environment.NewLine + smallBatches);
Console.WriteLine($"wrote {Path.Combine(outDir, "report.md")} and {Directory.GetFiles(outDir, "*.png").Length} PNG files in {(DateTime.UtcNow - started).TotalMinutes:0.0} min");
return 0;

static string DefaultOutput()
{
    // examples/BatchNormStudy/results, found from the build output (bin/…) or the working directory.
    for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
    {
        if (File.Exists(Path.Combine(dir.FullName, "BatchNormStudy.csproj"))) return Path.Combine(dir.FullName, "results");
    }

    return Path.GetFullPath("results");
}
