// The Trainer for any task: the losses over float targets (values by hand, gradients by finite differences), float
// targets through the loader, regression metrics, and a loss passed as a delegate.

namespace Dsl.Training.Tests;

public sealed class TaskTests
{
    [Fact]
    public void Losses_over_floats_match_pytorch_by_hand()
    {
        float[] p = [1f, -2f, 0.5f], t = [0f, 0f, 0.5f];
        Assert.Equal((1 + 2 + 0) / 3.0, Losses.L1(p, t, default), 6);
        // Huber δ = 1: |1| → ½, |−2| → 2 − ½ = 1.5, 0 → 0.
        Assert.Equal((0.5 + 1.5) / 3, Losses.Huber(p, t, default), 6);
        // BCE with logits: log(1 + e^−z) for t = 1, log(1 + e^z) for t = 0.
        Assert.Equal((Math.Log(1 + Math.Exp(-2.0)) + Math.Log(1 + Math.Exp(-1.0))) / 2, Losses.BinaryCrossEntropyWithLogits([2f, -1f], [1f, 0f], default), 6);
        Assert.True(float.IsFinite(Losses.BinaryCrossEntropyWithLogits([1000f, -1000f], [0f, 1f], default)));
        Assert.Equal(1.0, Metrics.BinaryAccuracy([2f, -1f], [1f, 0f]));
        Assert.Equal(1.0, Metrics.MeanAbsoluteError(p, t));
        Assert.Equal(5 / 3.0, Metrics.MeanSquaredError(p, t), 6);
    }

    [Theory]
    [InlineData("l1")]
    [InlineData("huber")]
    [InlineData("bce")]
    public void Gradients_match_finite_differences(string loss)
    {
        float[] p = [0.3f, -1.7f, 2.2f, 0.05f], t = [0.2f, 0.9f, 0.1f, 1f];
        Func<float[], float[], float[], float> f = loss switch
        {
            "l1" => (a, b, g) => Losses.L1(a, b, g),
            "huber" => (a, b, g) => Losses.Huber(a, b, g, delta: 0.5f),
            _ => (a, b, g) => Losses.BinaryCrossEntropyWithLogits(a, b, g),
        };
        var grad = new float[p.Length];
        f(p, t, grad);
        for (int i = 0; i < p.Length; i++)
        {
            var plus = (float[])p.Clone();
            var minus = (float[])p.Clone();
            plus[i] += 1e-3f;
            minus[i] -= 1e-3f;
            double numeric = (f(plus, t, []) - (double)f(minus, t, [])) / 2e-3;
            Assert.Equal(numeric, grad[i], 3);
        }
    }

    private static LabeledDataset Regression(int count, int seed)
    {
        // y = (x0 + x1 − x2, 2·x3): learnable by a small MLP.
        var random = new Random(seed);
        var x = new float[count * 4];
        var y = new float[count * 2];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(random.NextDouble() * 2 - 1);
        for (int n = 0; n < count; n++)
        {
            y[2 * n] = x[4 * n] + x[4 * n + 1] - x[4 * n + 2];
            y[2 * n + 1] = 2 * x[4 * n + 3];
        }

        return new LabeledDataset(x, y, sampleLength: 4, targetLength: 2);
    }

    [Fact]
    public void A_regressor_trains_with_mse_and_reports_mse()
    {
        var model = new TinyRegressor(maxBatch: 16, seed: 1);
        var trainer = new Trainer(model, new Adam(model, 0.01f), new BatchLoader(Regression(256, 1), 16, seed: 2), TrainingLoss.MeanSquaredError);
        var test = Regression(64, 3);
        double before = trainer.Evaluate(test).Loss;
        EpochResult last = trainer.TrainEpoch();
        for (int epoch = 0; epoch < 15; epoch++) last = trainer.TrainEpoch();
        var after = trainer.Evaluate(test);
        Assert.True(after.Loss < before / 10, $"test MSE {before} → {after.Loss}");
        Assert.Equal(after.Loss, after.Accuracy, 6); // the metric of MSE is MSE
        Assert.Equal("mse", last.MetricName);
        Assert.Contains(" mse ", last.ToLine());
        Assert.Equal(after.Loss, Trainer.Evaluate(model, test).Loss, 6);
    }

    [Fact]
    public void Every_float_loss_and_a_delegate_train_a_regressor()
    {
        var custom = TrainingLoss.FromTargets("half_mse", (o, t, g) =>
        {
            float loss = Losses.MeanSquaredError(o, t, g);
            for (int i = 0; i < g.Length; i++) g[i] *= 0.5f;
            return loss / 2;
        }, TrainingMetric.MeanAbsoluteError);
        foreach (var loss in new[] { TrainingLoss.L1, TrainingLoss.Huber(0.5f), custom })
        {
            var model = new TinyRegressor(maxBatch: 16, seed: 1);
            var trainer = new Trainer(model, new Adam(model, 0.01f), new BatchLoader(Regression(256, 1), 16, seed: 2), loss);
            double before = Trainer.Evaluate(model, Regression(64, 3), TrainingLoss.L1).Loss;
            for (int epoch = 0; epoch < 10; epoch++) trainer.TrainEpoch();
            var after = trainer.Evaluate(Regression(64, 3));
            Assert.True(after.Accuracy < before / 2, $"{loss}: test MAE {before} → {after.Accuracy}");
        }
    }

    [Fact]
    public void Binary_targets_train_with_bce_and_report_binary_accuracy()
    {
        // Two independent yes/no questions per sample: x0 > 0 and x1 + x2 > 0.
        var random = new Random(5);
        var x = new float[256 * 4];
        var y = new float[256 * 2];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(random.NextDouble() * 2 - 1);
        for (int n = 0; n < 256; n++)
        {
            y[2 * n] = x[4 * n] > 0 ? 1 : 0;
            y[2 * n + 1] = x[4 * n + 1] + x[4 * n + 2] > 0 ? 1 : 0;
        }

        var data = new LabeledDataset(x, y, 4, 2);
        var model = new TinyRegressor(maxBatch: 32, seed: 4);
        var trainer = new Trainer(model, new Adam(model, 0.02f), new BatchLoader(data, 32, seed: 6), TrainingLoss.BinaryCrossEntropyWithLogits);
        EpochResult last = trainer.TrainEpoch();
        for (int epoch = 0; epoch < 20; epoch++) last = trainer.TrainEpoch();
        Assert.Equal("bin acc", last.MetricName);
        Assert.True(trainer.Evaluate(data).Accuracy > 0.9, $"binary accuracy {trainer.Evaluate(data).Accuracy}");
    }

    [Fact]
    public void A_loss_that_does_not_fit_the_data_is_refused_with_the_fix()
    {
        var model = new TinyRegressor(maxBatch: 4);
        var labels = new LabeledDataset(new float[8], [0, 1], 4, 2);
        var e = Assert.Throws<ArgumentException>(() => new Trainer(model, new Sgd(model, 0.1f), new BatchLoader(labels, 2), TrainingLoss.MeanSquaredError));
        Assert.Contains("reads float targets but the data set has class labels", e.Message);
        e = Assert.Throws<ArgumentException>(() => new Trainer(model, new Sgd(model, 0.1f), new BatchLoader(Regression(4, 1), 2)));
        Assert.Contains("TrainingLoss.MeanSquaredError", e.Message);
        var wide = new LabeledDataset(new float[8], new float[6], 4, 3);
        e = Assert.Throws<ArgumentException>(() => new Trainer(model, new Sgd(model, 0.1f), new BatchLoader(wide, 2), TrainingLoss.L1));
        Assert.Contains("targets have 3 floats per sample, TinyRegressor outputs 2", e.Message);
        Assert.Throws<InvalidOperationException>(() => new BatchLoader(Regression(4, 1), 2).Next(new float[8], new int[2]));
    }

    [Fact]
    public void Float_targets_follow_their_samples_through_the_shuffle()
    {
        var data = Regression(10, 9);
        var loader = new BatchLoader(data, 4, seed: 3);
        loader.StartEpoch();
        var inputs = new float[16];
        var targets = new float[8];
        int n = loader.Next(inputs, targets);
        for (int k = 0; k < n; k++)
        {
            int index = -1;
            for (int i = 0; i < data.Count; i++)
            {
                if (data.Sample(i).SequenceEqual(inputs.AsSpan(4 * k, 4))) index = i;
            }

            Assert.True(index >= 0);
            Assert.Equal(data.Targets.Slice(2 * index, 2).ToArray(), targets.AsSpan(2 * k, 2).ToArray());
        }

        Assert.Equal(3, data.Slice(2, 3).Count);
        Assert.Equal(data.Targets.Slice(4, 6).ToArray(), data.Slice(2, 3).Targets.ToArray());
    }
}
