// Cross-entropy (with label smoothing), MSE and accuracy: values by hand, gradients by finite differences.

namespace Dsl.Training.Tests;

public class LossTests
{
    [Fact]
    public void CrossEntropyValuesByHand()
    {
        // Two equal logits: log 2.
        Assert.Equal(Math.Log(2), Losses.CrossEntropy([0f, 0f], [0], default), 6);
        // [1, 2, 3], label 2: log(e + e² + e³) − 3.
        double lse = Math.Log(Math.Exp(1) + Math.Exp(2) + Math.Exp(3));
        Assert.Equal(lse - 3, Losses.CrossEntropy([1f, 2f, 3f], [2], default), 6);
        // Label smoothing 0.1 over 3 classes: targets [1/30, 1/30, 0.9 + 1/30]; loss = lse − Σ t·z = lse − (0.1 + 2.8).
        Assert.Equal(lse - 2.9, Losses.CrossEntropy([1f, 2f, 3f], [2], default, labelSmoothing: 0.1f), 6);
        // Mean over the batch.
        Assert.Equal((Math.Log(3) + lse - 1) / 2, Losses.CrossEntropy([0f, 0f, 0f, 1f, 2f, 3f], [0, 0], default), 6); // rows [0, 0, 0] and [1, 2, 3]
    }

    [Fact]
    public void CrossEntropyIsStableForHugeLogits()
    {
        var grad = new float[4];
        float loss = Losses.CrossEntropy([1000f, 0f, -1000f, 50f], [1, 0], grad);
        // Sample 0: log(e^1000 + 1) − 0 = 1000 (+e^-1000); sample 1: log(e^-1000 + e^50) + 1000 = 1050.
        Assert.Equal((1000.0 + 1050.0) / 2, loss, 3);
        Assert.All(grad, g => Assert.True(float.IsFinite(g)));
        Assert.Equal(0.5f, grad[0], 6);   // (1 − 0)/2
        Assert.Equal(-0.5f, grad[1], 6);  // (0 − 1)/2
    }

    [Theory]
    [InlineData(0f)]
    [InlineData(0.1f)]
    public void CrossEntropyGradientMatchesFiniteDifferences(float smoothing)
    {
        const int n = 3, c = 5;
        var logits = TestUtil.Random(n * c, 7, -3, 3);
        int[] labels = [4, 0, 2];
        var grad = new float[n * c];
        Losses.CrossEntropy(logits, labels, grad, smoothing);
        for (int i = 0; i < logits.Length; i++)
        {
            const float h = 1e-2f;
            float keep = logits[i];
            logits[i] = keep + h;
            double up = Losses.CrossEntropy(logits, labels, default, smoothing);
            logits[i] = keep - h;
            double down = Losses.CrossEntropy(logits, labels, default, smoothing);
            logits[i] = keep;
            Assert.Equal((up - down) / (2 * h), grad[i], 3);
        }

        // Each row of (softmax − target)/N sums to zero.
        for (int s = 0; s < n; s++) Assert.Equal(0, grad.AsSpan(s * c, c).ToArray().Sum(), 6);
    }

    [Fact]
    public void CrossEntropyRejectsBadArguments()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Losses.CrossEntropy([0f, 0f], [2], default));
        Assert.Throws<ArgumentException>(() => Losses.CrossEntropy([0f, 0f, 0f], [0, 1], default));
        Assert.Throws<ArgumentException>(() => Losses.CrossEntropy([0f, 0f], [0], new float[3]));
    }

    [Fact]
    public void MeanSquaredErrorByHandAndItsGradient()
    {
        var grad = new float[3];
        // ((1−0)² + (2−4)² + (−1−(−1))²)/3 = 5/3; gradient 2(p − t)/3.
        Assert.Equal(5.0 / 3, Losses.MeanSquaredError([1f, 2f, -1f], [0f, 4f, -1f], grad), 6);
        Assert.Equal([2f / 3, -4f / 3, 0f], grad);

        var p = TestUtil.Random(6, 3);
        var t = TestUtil.Random(6, 4);
        var g = new float[6];
        Losses.MeanSquaredError(p, t, g);
        for (int i = 0; i < p.Length; i++)
        {
            const float h = 1e-2f;
            float keep = p[i];
            p[i] = keep + h;
            double up = Losses.MeanSquaredError(p, t, default);
            p[i] = keep - h;
            double down = Losses.MeanSquaredError(p, t, default);
            p[i] = keep;
            Assert.Equal((up - down) / (2 * h), g[i], 3);
        }
    }

    [Fact]
    public void AccuracyCountsArgMaxMatches()
    {
        float[] logits = [0.1f, 0.9f, 0.0f, /**/ 2f, 1f, 0f, /**/ 0.5f, 0.5f, 0.2f, /**/ float.NaN, 1f, 0f];
        Assert.Equal(1, Metrics.ArgMax(logits.AsSpan(0, 3)));
        Assert.Equal(0, Metrics.ArgMax(logits.AsSpan(6, 3))); // ties: the first
        Assert.Equal(1, Metrics.ArgMax(logits.AsSpan(9, 3))); // NaN never wins
        Assert.Equal(3, Metrics.CountCorrect(logits, [1, 0, 0, 2]));
        Assert.Equal(0.75f, Metrics.Accuracy(logits, [1, 0, 0, 2]));
    }

    [Fact]
    public void LossesDoNotAllocate()
    {
        var logits = TestUtil.Random(64 * 10, 1);
        var labels = Enumerable.Range(0, 64).Select(i => i % 10).ToArray();
        var grad = new float[logits.Length];
        var target = TestUtil.Random(logits.Length, 2);
        Losses.CrossEntropy(logits, labels, grad, 0.1f);
        Losses.MeanSquaredError(logits, target, grad);
        Metrics.CountCorrect(logits, labels);
        Assert.Equal(0, TestUtil.BytesAllocatedBy(() =>
        {
            for (int i = 0; i < 3; i++)
            {
                Losses.CrossEntropy(logits, labels, grad, 0.1f);
                Losses.MeanSquaredError(logits, target, grad);
                Metrics.CountCorrect(logits, labels);
            }
        }));
    }
}
