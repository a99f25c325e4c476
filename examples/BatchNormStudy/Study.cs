// One training run of the study: SGD with momentum, the training loss recorded along the way, test accuracy per epoch.
using Dsl.Runtime;
using Dsl.Training;

namespace Examples.BatchNormStudy;

/// <summary>Test accuracy and loss after an epoch (or after some fine-tuning samples).</summary>
internal sealed record Point(double Samples, double TestAccuracy, double TestLoss, double TrainAccuracy);

/// <summary>The outcome of one run.</summary>
internal sealed record RunResult(string Model, int Batch, float LearningRate, int Seed, List<(double Samples, double Loss)> LossCurve, List<Point> Points,
    bool Diverged, double Seconds)
{
    public double FinalAccuracy => Diverged || Points.Count == 0 ? double.NaN : Points[^1].TestAccuracy;

    public double FirstEpochAccuracy => Diverged || Points.Count == 0 ? double.NaN : Points[0].TestAccuracy;

    public double FinalTrainLoss => LossCurve.Count == 0 ? double.NaN : LossCurve[^1].Loss;

    /// <summary>Training accuracy of the last epoch (training mode: batch statistics, dropout on).</summary>
    public double FinalTrainAccuracy => Diverged || Points.Count == 0 ? double.NaN : Points[^1].TrainAccuracy;

    /// <summary>Mean test accuracy over the second half of the evaluations (fine-tuning: less noisy than the last one).</summary>
    public double LateAccuracy => Diverged || Points.Count < 2 ? FinalAccuracy : Points.Skip(Points.Count / 2 + 1).Average(p => p.TestAccuracy);
}

internal static class Study
{
    /// <summary>A loss above this (or NaN) counts as divergence: chance level is ln 10 ≈ 2.3.</summary>
    private const double DivergedLoss = 50;

    public static RunResult Train(string name, Func<int, CompiledModel> create, LabeledDataset train, LabeledDataset test, int batch, float lr, int epochs, int seed,
        int lossPointsPerEpoch = 10, CompiledModel? start = null)
    {
        var model = start ?? create(seed);
        var loader = new BatchLoader(train, batch, seed: (ulong)seed);
        var trainer = new Trainer(model, new Sgd(model, lr, momentum: 0.9f), loader);
        var curve = new List<(double, double)>();
        var points = new List<Point>();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        int chunk = Math.Max(batch, loader.SamplesPerEpoch / lossPointsPerEpoch);
        double seen = 0, chunkLoss = 0;
        int chunkSamples = 0;
        bool diverged = false;
        for (int epoch = 0; epoch < epochs && !diverged; epoch++)
        {
            int correct = 0, samples = 0;
            for (int b = 0; b < loader.BatchesPerEpoch; b++)
            {
                int n = trainer.TrainBatch(out float loss, out int right);
                if (!(loss < DivergedLoss))
                {
                    diverged = true;
                    break;
                }

                seen += n;
                samples += n;
                correct += right;
                chunkLoss += (double)loss * n;
                chunkSamples += n;
                if (chunkSamples >= chunk)
                {
                    curve.Add((seen, chunkLoss / chunkSamples));
                    chunkLoss = 0;
                    chunkSamples = 0;
                }
            }

            if (diverged) break;
            var eval = trainer.Evaluate(test);
            if (double.IsNaN(eval.Loss)) diverged = true;
            points.Add(new Point(seen, eval.Accuracy, eval.Loss, (double)correct / samples));
        }

        return new RunResult(name, batch, lr, seed, curve, points, diverged, clock.Elapsed.TotalSeconds);
    }

    /// <summary>Fine-tunes <paramref name="model"/> (already pre-trained) and evaluates every <paramref name="evalEvery"/> samples.</summary>
    public static RunResult FineTune(string name, CompiledModel model, LabeledDataset train, LabeledDataset test, int batch, float lr, int epochs, int seed, int evalEvery)
    {
        var loader = new BatchLoader(train, batch, seed: (ulong)seed);
        var trainer = new Trainer(model, new Sgd(model, lr, momentum: 0.9f), loader);
        var curve = new List<(double, double)>();
        var first = trainer.Evaluate(test);
        var points = new List<Point> { new(0, first.Accuracy, first.Loss, double.NaN) };
        var clock = System.Diagnostics.Stopwatch.StartNew();
        double seen = 0, chunkLoss = 0;
        int chunkSamples = 0, nextEval = evalEvery;
        bool diverged = false;
        for (int step = 0; step < epochs * loader.BatchesPerEpoch; step++)
        {
            int n = trainer.TrainBatch(out float loss, out _);
            if (!(loss < DivergedLoss))
            {
                diverged = true;
                break;
            }

            seen += n;
            chunkLoss += (double)loss * n;
            chunkSamples += n;
            if (seen >= nextEval)
            {
                nextEval += evalEvery;
                curve.Add((seen, chunkLoss / chunkSamples));
                chunkLoss = 0;
                chunkSamples = 0;
                var eval = trainer.Evaluate(test);
                points.Add(new Point(seen, eval.Accuracy, eval.Loss, double.NaN));
            }
        }

        return new RunResult(name, batch, lr, seed, curve, points, diverged, clock.Elapsed.TotalSeconds);
    }
}
