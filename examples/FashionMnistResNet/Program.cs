// Trains a network of ResNet.nn (--model: ResNet-14 by default, or ResNet-20) on Fashion-MNIST with a full recipe
// (random crop, flips, optional random erasing, one-cycle schedule, label smoothing, weight decay without BN/biases),
// evaluates all test images with Infer after every epoch, keeps the best checkpoint, plots the curves, and stops within
// a wall-clock budget.
// Quick mode for CI: --epochs 1 --limit 2000 --test-limit 2000.
using System.Diagnostics;
using System.Globalization;
using Dsl.Runtime;
using Dsl.Training;
using Examples.FashionMnistResNet;

var options = Options.Parse(args);
if (options is null) return 2;

if (!File.Exists(MnistFiles.Paths(options.DataDir, train: true).Images))
{
    Console.Error.WriteLine($"Fashion-MNIST not found in {options.DataDir}: run 'bash examples/FashionMnist/get-data.sh' (apt-get install dataset-fashion-mnist) or pass --data DIR.");
    return 2;
}

var normalization = Normalization.FashionMnist;
var train = MnistFiles.Load(options.DataDir, train: true, normalization).Take(options.Limit);
var test = MnistFiles.Load(options.DataDir, train: false, normalization).Take(options.TestLimit);
int maxBatch = Math.Max(options.Batch, 256);
Directory.CreateDirectory(options.OutputDir);
string bestPath = Path.Combine(options.OutputDir, "best.safetensors");
string plotPath = Path.Combine(options.OutputDir, "curves.png");
string csvPath = Path.Combine(options.OutputDir, "epochs.csv");

// The epochs the schedule spans: given, read from the checkpoint resumed, or as many as the time budget holds.
int? resumedEpochs = null;
string resumedCuts = "";
double resumedBest = double.NegativeInfinity;
int resumedBestEpoch = 0;
if (options.Resume is not null)
{
    using var file = SafetensorsFile.Read(options.Resume);
    if (file.Metadata.TryGetValue("plan.model", out var resumedModel) && resumedModel != options.Model)
    {
        Console.Error.WriteLine($"{options.Resume} is a checkpoint of {resumedModel}, not of {options.Model}: pass --model {resumedModel}");
        return 2;
    }

    if (file.Metadata.TryGetValue("plan.epochs", out var planned)) resumedEpochs = int.Parse(planned, CultureInfo.InvariantCulture);
    if (file.Metadata.TryGetValue("plan.cuts", out var cuts)) resumedCuts = cuts;
    if (file.Metadata.TryGetValue("best.test_accuracy", out var best)) resumedBest = double.Parse(best, CultureInfo.InvariantCulture);
    if (file.Metadata.TryGetValue("best.epoch", out var bestEpoch)) resumedBestEpoch = int.Parse(bestEpoch, CultureInfo.InvariantCulture);
}

CompiledModel NewModel() => Models.Create(options.Model, maxBatch, options.Seed, options.Threads);
int epochs = options.Epochs ?? resumedEpochs ?? Recipe.PlanEpochs(options, train, test, normalization, NewModel);

var model = NewModel();
var loader = Recipe.Loader(options, train, normalization);
var optimizer = Recipe.Optimizer(options, model);
// The schedule spans the planned epochs; when the machine turns out slower than measured, the rest of it is squeezed
// into the epochs the budget still holds (below), so the run always ends annealed rather than cut off at a high rate.
long plannedSteps = (long)epochs * loader.BatchesPerEpoch;
var schedule = new ShortenedSchedule(Recipe.Schedule(options, plannedSteps, loader.BatchesPerEpoch), plannedSteps);
foreach (var cut in resumedCuts.Split(';', StringSplitOptions.RemoveEmptyEntries))
{
    var parts = cut.Split(':');
    schedule.Replay(long.Parse(parts[0], CultureInfo.InvariantCulture), long.Parse(parts[1], CultureInfo.InvariantCulture));
}

int plannedEpochs = epochs;
epochs = (int)(schedule.TotalSteps / loader.BatchesPerEpoch);
var trainer = new Trainer(model, optimizer, loader, schedule, options.LabelSmoothing);

if (options.Resume is not null)
{
    trainer.LoadCheckpoint(options.Resume);
    Console.WriteLine($"resumed from {options.Resume}: {trainer.CompletedEpochs} epoch(s), {trainer.Step} steps done");
}

var c = CultureInfo.InvariantCulture;
Console.WriteLine(string.Create(c,
    $"{model.Name}: {model.Parameters.Length:N0} parameters, {model.Threads} thread(s); {train.Count} training / {test.Count} test images; batch {options.Batch}, {loader.BatchesPerEpoch} steps/epoch, {epochs} epoch(s)"));
Console.WriteLine(string.Create(c,
    $"{Recipe.DescribeOptimizer(options)}, weight decay {options.WeightDecay} ({(options.DecayAll ? "all parameters" : "not on biases and BN γ/β")}), label smoothing {options.LabelSmoothing}, schedule {schedule}"));
Console.WriteLine($"augmentation: {Recipe.DescribeAugmentation(options, loader)}");
Console.WriteLine(string.Create(c, $"time budget {options.TimeBudgetMinutes:0.#} min of training and evaluation; best checkpoint {bestPath}; curves {plotPath}"));

var progress = new TrainingProgress(epochs);
double bestAccuracy = resumedBest;
int bestEpochNumber = resumedBestEpoch;
var clock = Stopwatch.StartNew();
int epochsThisRun = 0;
bool stoppedByBudget = false;
while (trainer.CompletedEpochs < epochs)
{
    int epoch = trainer.CompletedEpochs + 1;
    var result = progress.RunEpoch(epoch, reporter =>
    {
        var trained = trainer.TrainEpoch(reporter);
        var eval = trainer.Evaluate(test); // Infer: running statistics, folded batch norm
        return trained with { TestLoss = eval.Loss, TestAccuracy = eval.Accuracy, TestSeconds = eval.Seconds };
    });
    epochsThisRun++;
    double accuracy = result.TestAccuracy ?? double.NaN;
    IEnumerable<KeyValuePair<string, string>> Plan() =>
    [
        new("plan.model", options.Model),
        new("plan.epochs", plannedEpochs.ToString(c)),
        new("plan.cuts", string.Join(";", schedule.Cuts.Select(x => string.Create(c, $"{x.FromStep}:{x.TotalSteps}")))),
        new("best.test_accuracy", Math.Max(bestAccuracy, accuracy).ToString("R", c)),
        new("best.epoch", (accuracy > bestAccuracy ? epoch : bestEpochNumber).ToString(c)),
    ];
    if (accuracy > bestAccuracy)
    {
        trainer.SaveCheckpoint(bestPath, Plan()); // atomic: a crash mid-write keeps the previous best
        bestAccuracy = accuracy;
        bestEpochNumber = epoch;
    }

    if (options.Checkpoint is not null) trainer.SaveCheckpoint(options.Checkpoint, Plan());
    Console.WriteLine(string.Create(c,
        $"epoch {epoch}/{epochs}: test accuracy {accuracy:0.0000} (best {bestAccuracy:0.0000} at epoch {bestEpochNumber}); {clock.Elapsed.TotalMinutes:0.0} min elapsed"));
    Plots.Write(progress.Results, test.Count, plotPath, csvPath, $"Fashion-MNIST, {model.Name} ({model.Parameters.Length:N0} parameters)");

    // At the mean pace so far, how many more epochs the budget holds: fewer than planned, the rest of the schedule is
    // squeezed into them (re-planned); none, the run stops here; more (the plan was measured while the machine was
    // slow), even at a pace 3% slower than so far, the rest is stretched over them, up to --max-epochs.
    double perEpoch = clock.Elapsed.TotalSeconds / epochsThisRun;
    double left = options.TimeBudgetMinutes * 60 - clock.Elapsed.TotalSeconds;
    int fit = (int)Math.Floor(left / perEpoch);
    int fitSafely = Math.Min((int)Math.Floor(left / (perEpoch * 1.03)), options.MaxEpochs - trainer.CompletedEpochs);
    int target = options.Epochs is null && trainer.CompletedEpochs + fitSafely > epochs ? trainer.CompletedEpochs + fitSafely
        : fit >= 1 && trainer.CompletedEpochs + fit < epochs ? trainer.CompletedEpochs + fit : epochs;
    if (trainer.CompletedEpochs < epochs && target != epochs)
    {
        int was = epochs;
        bool longer = target > epochs;
        epochs = target;
        if (longer) schedule.Lengthen(optimizer.StepCount, (long)epochs * loader.BatchesPerEpoch);
        else schedule.Shorten(optimizer.StepCount, (long)epochs * loader.BatchesPerEpoch);
        progress.TotalEpochs = epochs;
        Console.WriteLine(string.Create(c,
            $"re-planned: {clock.Elapsed.TotalMinutes:0.0} of {options.TimeBudgetMinutes:0.#} min spent at {perEpoch:0} s per epoch, {epochs - trainer.CompletedEpochs} more epoch(s) fit: the rest of the schedule {(longer ? "stretched from" : "squeezed from")} {was} {(longer ? "over" : "into")} {epochs} epochs"));
    }
    else if (trainer.CompletedEpochs < epochs && fit < 1)
    {
        stoppedByBudget = true;
        Console.WriteLine(string.Create(c,
            $"time budget: {clock.Elapsed.TotalMinutes:0.0} of {options.TimeBudgetMinutes:0.#} min spent, an epoch takes {perEpoch:0} s: stopping after epoch {epoch} of {epochs} (the schedule did not finish)"));
        break;
    }
}

progress.PrintSummary($"Fashion-MNIST, {model.Name}");
if (progress.Results.Count > 0)
{
    var last = progress.Results[^1];
    double secondsPerEpoch = progress.Results.Where(r => r.Samples == loader.SamplesPerEpoch).Select(r => r.Seconds).DefaultIfEmpty(double.NaN).Average();
    // Test-time augmentation, reported beside the plain number (the final line keeps the plain one): each test image and
    // its mirror through Infer, logits averaged.
    double flipped = FlipEvaluation.Accuracy(model, test, width: 28);
    Console.WriteLine(string.Create(c,
        $"with a test-time flip: test accuracy {flipped:0.0000} (each image and its mirror through Infer, logits averaged; plain {last.TestAccuracy:0.0000})"));
    Console.WriteLine(string.Create(c,
        $"best: test accuracy {bestAccuracy:0.0000} at epoch {bestEpochNumber} ({bestPath}); {clock.Elapsed.TotalMinutes:0.0} min of training and evaluation{(stoppedByBudget ? ", stopped by the time budget" : "")}"));
    Console.WriteLine(string.Create(c,
        $"final: test accuracy {last.TestAccuracy:0.0000} after {trainer.CompletedEpochs} epoch(s); {secondsPerEpoch:0.0} s per training epoch ({train.Count} images, {model.Threads} thread(s))"));
}

if (options.Save is not null)
{
    model.SaveSafetensors(options.Save);
    Console.WriteLine($"model saved to {options.Save}");
}

if (options.MinAccuracy > 0 && !(progress.Results.Count > 0 && progress.Results[^1].TestAccuracy >= options.MinAccuracy))
{
    Console.Error.WriteLine(string.Create(c, $"the final test accuracy is below --min-accuracy {options.MinAccuracy}"));
    return 1;
}

return 0;
