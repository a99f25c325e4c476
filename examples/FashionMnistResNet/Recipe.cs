// The recipe's parts, built from the options: the augmented loader, the optimizer, the schedule, and the number of
// epochs a wall-clock budget holds.
using System.Diagnostics;
using System.Globalization;
using Dsl.Runtime;
using Dsl.Training;

namespace Examples.FashionMnistResNet;

internal static class Recipe
{
    /// <summary>Shuffled batches with torchvision's RandomCrop(28, padding=k) (black padding), RandomHorizontalFlip and optionally RandomErasing.</summary>
    public static BatchLoader Loader(Options o, LabeledDataset train, Normalization normalization)
    {
        var augmentations = new List<SampleAugmentation>();
        // torchvision pads the PIL image with black before ToTensor/Normalize: black is normalization.Apply(0) here.
        if (o.CropPadding > 0) augmentations.Add(new RandomCrop(1, 28, 28, o.CropPadding, fill: normalization.Apply(0)));
        // RandomErasing comes after Normalize in torchvision: value 0 is the normalized mean.
        if (o.Erasing > 0) augmentations.Add(new RandomErasing(1, 28, 28, probability: o.Erasing));
        return new BatchLoader(train, o.Batch, shuffle: true, dropLast: true, seed: (ulong)o.Seed)
        {
            HorizontalFlipWidth = o.Flip ? 28 : 0,
            Augmentations = augmentations,
        };
    }

    public static Optimizer Optimizer(Options o, CompiledModel model) => o.Optimizer == "adamw"
        ? new AdamW(model, o.LearningRate, weightDecay: o.WeightDecay, decayNormAndBias: o.DecayAll)
        : new Sgd(model, o.LearningRate, momentum: 0.9f, weightDecay: o.WeightDecay, nesterov: true, decayNormAndBias: o.DecayAll);

    public static LearningRateSchedule Schedule(Options o, long totalSteps, int stepsPerEpoch) => o.Schedule switch
    {
        // PyTorch's OneCycleLR(max_lr, total_steps, pct_start, div 25, final div 1e4); its rising phase needs pct_start·total > 1 steps.
        "onecycle" when o.PctStart * totalSteps > 1 => new OneCycleSchedule(o.LearningRate, totalSteps, pctStart: o.PctStart),
        "onecycle" => LearningRateSchedule.Constant(o.LearningRate),
        // LinearLR(start_factor 0.1) over the warm-up epochs, then CosineAnnealingLR to 0.
        "cosine" => new CosineSchedule(o.LearningRate, totalSteps, warmupSteps: Math.Min((long)o.WarmupEpochs * stepsPerEpoch, totalSteps - 1), warmupStartFactor: 0.1f),
        "step" => new MultiStepSchedule(o.LearningRate, [totalSteps / 2, totalSteps * 3 / 4], 0.1f),
        _ => LearningRateSchedule.Constant(o.LearningRate),
    };

    public static string DescribeOptimizer(Options o) => o.Optimizer == "adamw"
        ? string.Create(CultureInfo.InvariantCulture, $"AdamW peak lr {o.LearningRate}")
        : string.Create(CultureInfo.InvariantCulture, $"SGD peak lr {o.LearningRate}, Nesterov momentum 0.9");

    public static string DescribeAugmentation(Options o, BatchLoader loader)
    {
        var parts = new List<string>();
        if (o.Flip) parts.Add("random horizontal flip");
        parts.AddRange(loader.Augmentations.Select(a => a.ToString()));
        return parts.Count > 0 ? string.Join(", ", parts) : "none";
    }

    /// <summary>
    /// How many epochs fit the time budget: trains a throwaway copy of the model for a few batches to measure a step,
    /// times inference on part of the test set, and divides. A noisy estimate on a shared machine; the training loop
    /// also stops by the clock.
    /// </summary>
    public static int PlanEpochs(Options o, LabeledDataset train, LabeledDataset test, Normalization normalization, Func<CompiledModel> newModel)
    {
        // The generated TrainCore runs once per step, so .NET's tiered JIT promotes it to optimized code only after
        // 30 calls (and its loops through on-stack replacement): timing the first steps overestimated a step by a
        // fifth (255 ms planned, 211 ms measured over the epochs) and planned 13 epochs where 16 fit.
        // On a shared machine a window of steps is sometimes slowed by other tenants (one probe measured 128 ms per step
        // where the epochs then ran at 96): the plan takes the fastest of four windows, the machine's own pace, and the
        // training loop re-plans from the epochs' real pace either way (the schedule squeezed or stretched). Evaluation
        // likewise: the faster of two passes (the first also compiles the inference path).
        const int Warmup = 40, Windows = 4, Timed = 10;
        var probe = newModel();
        var loader = Loader(o, train, normalization);
        var trainer = new Trainer(probe, Optimizer(o, probe), loader, schedule: null, o.LabelSmoothing);
        for (int i = 0; i < Warmup; i++) trainer.TrainBatch(out _, out _);
        double perStep = double.MaxValue;
        for (int w = 0; w < Windows; w++)
        {
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < Timed; i++) trainer.TrainBatch(out _, out _);
            perStep = Math.Min(perStep, clock.Elapsed.TotalSeconds / Timed);
        }

        var sample = test.Take(Math.Min(test.Count, 2000));
        double evalSeconds = Math.Min(Trainer.Evaluate(probe, sample).Seconds, Trainer.Evaluate(probe, sample).Seconds) * test.Count / sample.Count;
        double perEpoch = perStep * loader.BatchesPerEpoch + evalSeconds;
        int epochs = Math.Clamp((int)(o.TimeBudgetMinutes * 60 * 0.97 / perEpoch), 1, o.MaxEpochs);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"planning: {perStep * 1000:0} ms per step × {loader.BatchesPerEpoch} steps + {evalSeconds:0.0} s of evaluation ≈ {perEpoch:0} s per epoch: {epochs} epoch(s) in {o.TimeBudgetMinutes:0.#} min (at most {o.MaxEpochs})"));
        return epochs;
    }
}
