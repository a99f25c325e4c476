// Optimizers against values worked out from PyTorch's update formulas (torch.optim.SGD, Adam, AdamW).

namespace Dsl.Training.Tests;

public class OptimizerTests
{
    private static float[] Run(Optimizer optimizer, float[] parameters, params float[][] gradients)
    {
        foreach (var g in gradients) optimizer.Step(parameters, g);
        return parameters;
    }

    private static void Close(double expected, float actual, double tolerance = 1e-6) =>
        Assert.True(Math.Abs(expected - actual) <= tolerance * Math.Max(1, Math.Abs(expected)), $"expected {expected:R}, got {actual:R}");

    [Fact]
    public void SgdMomentumStartsTheBufferAtTheGradient()
    {
        // lr 0.1, momentum 0.9, g = 1 each step: b = 1, 1.9, 2.71; p = 1 − 0.1·b cumulatively = 0.9, 0.71, 0.439.
        var p = Run(new Sgd(1, ParameterSegments.Whole(1), 0.1f, momentum: 0.9f), [1f], [1f], [1f], [1f]);
        Close(0.439, p[0]);
    }

    [Fact]
    public void SgdDampeningSkipsTheFirstStep()
    {
        // dampening 0.5: b₁ = g = 1 (PyTorch clones the first gradient undamped); b₂ = 0.9·1 + 0.5·1 = 1.4; b₃ = 0.9·1.4 + 0.5 = 1.76.
        // p = 1 − 0.1·(1 + 1.4 + 1.76) = 0.584.
        var sgd = new Sgd(1, ParameterSegments.Whole(1), 0.1f, momentum: 0.9f, dampening: 0.5f);
        var p = Run(sgd, [1f], [1f], [1f], [1f]);
        Close(0.584, p[0]);
        Close(1.76, sgd.MomentumBuffer[0]);
    }

    [Fact]
    public void SgdNesterovLooksAhead()
    {
        // b₁ = 1, step g + 0.9·b₁ = 1.9 → p = 0.81; b₂ = 1.9, step 1 + 0.9·1.9 = 2.71 → p = 0.539.
        var p = Run(new Sgd(1, ParameterSegments.Whole(1), 0.1f, momentum: 0.9f, nesterov: true), [1f], [1f], [1f]);
        Close(0.539, p[0]);
        Assert.Throws<ArgumentException>(() => new Sgd(1, ParameterSegments.Whole(1), 0.1f, momentum: 0, nesterov: true));
        Assert.Throws<ArgumentException>(() => new Sgd(1, ParameterSegments.Whole(1), 0.1f, momentum: 0.9f, dampening: 0.1f, nesterov: true));
    }

    [Fact]
    public void SgdWeightDecayIsAddedToTheGradientBeforeMomentum()
    {
        // No momentum, g = 0, wd 0.1, lr 0.1: p ← p − 0.1·(0.1·p) = 0.99·p per step.
        var p = Run(new Sgd(1, ParameterSegments.Whole(1), 0.1f, weightDecay: 0.1f), [2f], [0f], [0f], [0f]);
        Close(2 * Math.Pow(0.99, 3), p[0]);

        // With momentum 0.9, p₀ = 1, g = 0.5: g₁ = 0.5 + 0.1·1 = 0.6, b₁ = 0.6, p₁ = 1 − 0.06 = 0.94;
        // g₂ = 0.5 + 0.094 = 0.594, b₂ = 0.54 + 0.594 = 1.134, p₂ = 0.94 − 0.1134 = 0.8266.
        var q = Run(new Sgd(1, ParameterSegments.Whole(1), 0.1f, momentum: 0.9f, weightDecay: 0.1f), [1f], [0.5f], [0.5f]);
        Close(0.8266, q[0]);
    }

    [Theory]
    [InlineData(7, 0.8f, 0.25f, 0.01f, false)]   // the scalar tail only
    [InlineData(37, 0.8f, 0.25f, 0.01f, false)]  // four vectors and a tail
    [InlineData(37, 0.9f, 0f, 0.01f, true)]      // Nesterov
    [InlineData(37, 0f, 0f, 0.01f, false)]       // no momentum
    [InlineData(37, 0.9f, 0f, 0f, false)]        // no weight decay
    public void SgdMatchesTheFormulasOnRandomData(int n, float momentum, float dampening, float wd, bool nesterov)
    {
        var p = TestUtil.Random(n, 1);
        var grads = Enumerable.Range(0, 4).Select(s => TestUtil.Random(n, 10 + s)).ToArray();
        const float lr = 0.03f;
        var expected = p.Select(v => (double)v).ToArray();
        var buf = new double[n];
        for (int t = 0; t < grads.Length; t++)
        {
            for (int i = 0; i < n; i++)
            {
                double g = grads[t][i] + wd * expected[i];
                if (momentum != 0)
                {
                    buf[i] = t == 0 ? g : momentum * buf[i] + (1 - dampening) * g;
                    g = nesterov ? g + momentum * buf[i] : buf[i];
                }

                expected[i] -= lr * g;
            }
        }

        var actual = Run(new Sgd(n, ParameterSegments.Whole(n), lr, momentum, dampening, wd, nesterov), p, grads);
        for (int i = 0; i < n; i++) Close(expected[i], actual[i], 1e-5);
    }

    [Theory]
    [InlineData(7)]   // the scalar tail only
    [InlineData(16)]  // one block of 16 lanes
    [InlineData(61)]  // three blocks of 16, one of 8, a tail of 5
    public void SgdMomentumMatchesTheScalarFloatFormulaBitForBit(int n)
    {
        // The vector loops (16 lanes without weight decay after the first step, 8 otherwise) must round exactly as
        // the scalar float formula does: b = momentum·b + g (the first step b = g), p = p − lr·b.
        var p = TestUtil.Random(n, 3);
        var grads = Enumerable.Range(0, 4).Select(s => TestUtil.Random(n, 30 + s)).ToArray();
        const float lr = 0.03f, momentum = 0.9f;
        var expected = (float[])p.Clone();
        var buf = new float[n];
        for (int t = 0; t < grads.Length; t++)
        {
            for (int i = 0; i < n; i++)
            {
                float g = grads[t][i];
                buf[i] = t == 0 ? g : momentum * buf[i] + 1f * g;
                expected[i] -= lr * buf[i];
            }
        }

        var sgd = new Sgd(n, ParameterSegments.Whole(n), lr, momentum);
        var actual = Run(sgd, p, grads);
        Assert.Equal(expected, actual);
        Assert.Equal(buf, sgd.MomentumBuffer.ToArray());
    }

    [Theory]
    [InlineData(5)]
    [InlineData(37)]
    public void AdamWithoutWeightDecayMatchesTheScalarFloatFormulaBitForBit(int n)
    {
        // Without weight decay Adam updates eight lanes at a time; each lane must round as the scalar float loop does.
        var p = TestUtil.Random(n, 4);
        var grads = Enumerable.Range(0, 5).Select(s => TestUtil.Random(n, 40 + s)).ToArray();
        const float lr = 0.01f, b1 = 0.8f, b2 = 0.99f, eps = 1e-6f;
        var expected = (float[])p.Clone();
        var m = new float[n];
        var v = new float[n];
        for (int t = 1; t <= grads.Length; t++)
        {
            float stepSize = (float)(lr / (1 - Math.Pow(b1, t)));
            float bc2 = (float)Math.Sqrt(1 - Math.Pow(b2, t));
            for (int i = 0; i < n; i++)
            {
                float g = grads[t - 1][i];
                m[i] = m[i] + (1 - b1) * (g - m[i]);
                v[i] = b2 * v[i] + (1 - b2) * g * g;
                expected[i] = expected[i] - stepSize * (m[i] / (MathF.Sqrt(v[i]) / bc2 + eps));
            }
        }

        var adam = new Adam(n, ParameterSegments.Whole(n), lr, b1, b2, eps);
        var actual = Run(adam, p, grads);
        Assert.Equal(expected, actual);
        Assert.Equal(m, adam.ExpAvg.ToArray());
        Assert.Equal(v, adam.ExpAvgSq.ToArray());
    }

    [Fact]
    public void AdamBiasCorrectionMakesTheFirstStepsLr()
    {
        // Constant g = 1: m̂ = v̂ = 1 at every step, so each step moves p by lr/(1 + ε).
        var p = Run(new Adam(1, ParameterSegments.Whole(1), learningRate: 0.1f), [1f], [1f], [1f], [1f]);
        Close(1 - 3 * 0.1 / (1 + 1e-8), p[0]);
    }

    [Fact]
    public void AdamSecondStepByHand()
    {
        // lr 0.1, β 0.9/0.999, ε 1e-8. Step 1, g = 1: m = 0.1, v = 0.001, m̂ = v̂ = 1 → p = 1 − 0.1 = 0.9.
        // Step 2, g = −2: m = 0.09 − 0.2 = −0.11; v = 0.000999 + 0.004 = 0.004999;
        // m̂ = −0.11/0.19; v̂ = 0.004999/0.001999; p = 0.9 − 0.1·m̂/(√v̂ + ε).
        var adam = new Adam(1, ParameterSegments.Whole(1), learningRate: 0.1f);
        var p = Run(adam, [1f], [1f], [-2f]);
        double mHat = -0.11 / 0.19, vHat = 0.004999 / 0.001999;
        Close(0.9 - 0.1 * mHat / (Math.Sqrt(vHat) + 1e-8), p[0]);
        Close(-0.11, adam.ExpAvg[0]);
        Close(0.004999, adam.ExpAvgSq[0]);
        Assert.Equal(2, adam.StepCount);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AdamAndAdamWMatchTheFormulasOnRandomData(bool decoupled)
    {
        const int n = 9;
        var p = TestUtil.Random(n, 2);
        var grads = Enumerable.Range(0, 5).Select(s => TestUtil.Random(n, 20 + s)).ToArray();
        double lr = 0.01, b1 = 0.8, b2 = 0.99, eps = 1e-6, wd = 0.05;
        var expected = p.Select(v => (double)v).ToArray();
        var m = new double[n];
        var v = new double[n];
        for (int t = 1; t <= grads.Length; t++)
        {
            for (int i = 0; i < n; i++)
            {
                double g = grads[t - 1][i];
                if (decoupled) expected[i] *= 1 - lr * wd;
                else g += wd * expected[i];
                m[i] = b1 * m[i] + (1 - b1) * g;
                v[i] = b2 * v[i] + (1 - b2) * g * g;
                double mHat = m[i] / (1 - Math.Pow(b1, t)), vHat = v[i] / (1 - Math.Pow(b2, t));
                expected[i] -= lr * mHat / (Math.Sqrt(vHat) + eps);
            }
        }

        Optimizer adam = decoupled
            ? new AdamW(n, ParameterSegments.Whole(n), (float)lr, (float)b1, (float)b2, (float)eps, (float)wd)
            : new Adam(n, ParameterSegments.Whole(n), (float)lr, (float)b1, (float)b2, (float)eps, (float)wd);
        Assert.Equal(decoupled ? "adamw" : "adam", adam.Kind);
        var actual = Run(adam, p, grads);
        for (int i = 0; i < n; i++) Close(expected[i], actual[i], 2e-6);
    }

    [Fact]
    public void AdamWDecaysBeforeTheAdamStep()
    {
        // lr 0.1, wd 0.1, g = 1: p ← 0.99·p − 0.1/(1 + ε): 0.89, 0.7811, 0.673289.
        var p = Run(new AdamW(1, ParameterSegments.Whole(1), learningRate: 0.1f, weightDecay: 0.1f), [1f], [1f], [1f], [1f]);
        Close(0.673289, p[0], 1e-6);
    }

    [Fact]
    public void SegmentsWithoutDecayAreNotDecayed()
    {
        ParameterSegment[] segments = [new("w", 0, 2, true), new("b", 2, 1, false)];
        var p = Run(new Sgd(3, segments, 0.1f, weightDecay: 0.5f), [1f, 1f, 1f], [0f, 0f, 0f]);
        Close(0.95, p[0]);
        Close(0.95, p[1]);
        Close(1.0, p[2]);
        Assert.Throws<ArgumentException>(() => new Sgd(3, [new("a", 0, 2, true), new("b", 1, 2, true)], 0.1f)); // overlap
        Assert.Throws<ArgumentException>(() => new Sgd(2, [new("a", 0, 3, true)], 0.1f));                       // beyond the buffer
    }

    [Fact]
    public void ModelSegmentsExcludeBiasesAndBatchNormAffine()
    {
        var model = new TinyCnn(maxBatch: 4, seed: 1, threads: 1);
        var all = ParameterSegments.FromModel(model);
        Assert.All(all, s => Assert.True(s.Decay));
        Assert.Equal(model.Parameters.Length, all.Sum(s => s.Length));
        var some = ParameterSegments.FromModel(model, decayNormAndBias: false);
        var decayed = some.Where(s => s.Decay).Select(s => s.Name).ToArray();
        Assert.Equal(["conv1.weight", "fc1.weight", "fc2.weight"], decayed);
        Assert.Equal(["bn1.weight", "bn1.bias", "bn2.weight", "bn2.bias", "fc2.bias"], some.Where(s => !s.Decay).Select(s => s.Name).ToArray());
    }

    [Fact]
    public void StepOnAModelMarksItsParametersChangedAndChecksLengths()
    {
        var model = new TinyCnn(maxBatch: 4, seed: 1, threads: 1);
        var sgd = new Sgd(model, 0.1f, momentum: 0.9f);
        model.Gradients.Fill(1f);
        float before = model.Parameters[0];
        sgd.Step(model);
        Assert.Equal(before - 0.1f, model.Parameters[0], 6);
        Assert.Throws<ArgumentException>(() => sgd.Step(new float[3], new float[3]));
    }

    [Fact]
    public void StepsDoNotAllocate()
    {
        const int n = 1000;
        var p = TestUtil.Random(n, 3);
        var g = TestUtil.Random(n, 4);
        ParameterSegment[] segments = [new("w", 0, 600, true), new("b", 600, 400, false)];
        foreach (var optimizer in new Optimizer[]
                 {
                     new Sgd(n, segments, 0.01f, 0.9f, 0, 1e-4f, nesterov: true),
                     new Adam(n, segments, weightDecay: 1e-4f),
                     new AdamW(n, segments),
                 })
        {
            optimizer.Step(p, g);
            Assert.Equal(0, TestUtil.BytesAllocatedBy(() =>
            {
                for (int i = 0; i < 3; i++) optimizer.Step(p, g);
            }));
        }

        var model = new TinyCnn(maxBatch: 4, seed: 1, threads: 1);
        var sgd = new Sgd(model, 0.1f, momentum: 0.9f);
        sgd.Step(model);
        Assert.Equal(0, TestUtil.BytesAllocatedBy(() => sgd.Step(model)));
    }

    // With a pool, zero_grad and the optimizers split the flat buffer across threads: the update is element by
    // element, so the parameters and the optimizer state come out bit for bit as on one thread, and nothing is allocated.
    [Fact]
    public void ParallelStepsEqualSerialStepsAndDoNotAllocate()
    {
        foreach (Func<CompiledModel, Optimizer> make in new Func<CompiledModel, Optimizer>[]
                 {
                     m => new Sgd(m, 0.05f, momentum: 0.9f, weightDecay: 1e-3f, decayNormAndBias: false),
                     m => new Adam(m, 1e-2f, weightDecay: 1e-3f),
                     m => new AdamW(m, 1e-2f),
                 })
        {
            var serial = new WideMlp(maxBatch: 4, seed: 7, threads: 1);
            var parallel = new WideMlp(maxBatch: 4, seed: 7, threads: 2);
            Assert.True(parallel.Parameters.Length >= 1 << 16, "the model must be large enough to split");
            var one = make(serial);
            var two = make(parallel);
            for (int step = 0; step < 3; step++)
            {
                var g = TestUtil.Random(serial.Gradients.Length, 10 + step);
                g.CopyTo(serial.Gradients);
                g.CopyTo(parallel.Gradients);
                one.Step(serial);
                two.Step(parallel);
                Assert.Equal(serial.Parameters.ToArray(), parallel.Parameters.ToArray());
            }

            Assert.Equal(3, two.StepCount);
            parallel.ZeroGrad();
            Assert.All(parallel.Gradients.ToArray(), v => Assert.Equal(0f, v));
            Assert.Equal(0, TestUtil.BytesAllocatedBy(() =>
            {
                parallel.ZeroGrad();
                two.Step(parallel);
            }));
        }
    }
}
