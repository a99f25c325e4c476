// Batch norm: normalization statistics, running-statistic update, the batch-1 error, gradients, and folding.
namespace Dsl.Runtime.Tests;

public class BatchNormTests
{
    private const float Eps = 1e-5f;

    [Theory]
    [InlineData(8, 3, 1)]
    [InlineData(4, 2, 25)]
    [InlineData(1, 3, 9)]
    public void TrainingOutputHasZeroMeanUnitVariancePerChannel(int n, int channels, int spatial)
    {
        var x = TestUtil.Random(n * channels * spatial, 1, -3f, 5f);
        var y = new float[x.Length];
        var mean = new float[channels];
        var invStd = new float[channels];
        BatchNorm.ForwardTraining(x, [], [], y, mean, invStd, [], [], 0.1f, Eps, n, channels, spatial);

        for (int c = 0; c < channels; c++)
        {
            var values = ChannelValues(y, c, n, channels, spatial);
            Assert.Equal(0.0, values.Average(), 1e-5);
            Assert.Equal(1.0, values.Select(v => v * v).Average(), 1e-3); // biased variance; eps shrinks it by ~eps/var

            var input = ChannelValues(x, c, n, channels, spatial);
            double m = input.Average();
            double variance = input.Select(v => (v - m) * (v - m)).Average();
            Assert.Equal(m, mean[c], 1e-5);
            Assert.Equal(1 / Math.Sqrt(variance + Eps), invStd[c], 1e-5);
        }
    }

    [Fact]
    public void AffineParametersScaleAndShift()
    {
        const int n = 6, channels = 2, spatial = 4;
        var x = TestUtil.Random(n * channels * spatial, 2);
        float[] gamma = [2f, 0.5f];
        float[] beta = [-1f, 3f];
        var y = new float[x.Length];
        BatchNorm.ForwardTraining(x, gamma, beta, y, new float[2], new float[2], [], [], 0.1f, Eps, n, channels, spatial);
        for (int c = 0; c < channels; c++)
        {
            var values = ChannelValues(y, c, n, channels, spatial);
            double m = values.Average();
            Assert.Equal(beta[c], m, 1e-5);
            Assert.Equal(gamma[c], Math.Sqrt(values.Select(v => (v - m) * (v - m)).Average()), 1e-3);
        }
    }

    [Fact]
    public void RunningStatisticsUseMomentumAndUnbiasedVariance()
    {
        const int n = 3, channels = 2, spatial = 5;
        const float momentum = 0.3f;
        var x = TestUtil.Random(n * channels * spatial, 3, -2f, 2f);
        float[] runningMean = [0.25f, -0.5f];
        float[] runningVar = [1.5f, 0.75f];
        float[] initialMean = (float[])runningMean.Clone(), initialVar = (float[])runningVar.Clone();
        BatchNorm.ForwardTraining(x, [], [], new float[x.Length], new float[2], new float[2], runningMean, runningVar, momentum, Eps, n, channels, spatial);

        for (int c = 0; c < channels; c++)
        {
            var values = ChannelValues(x, c, n, channels, spatial);
            int count = values.Length; // M = n*spatial = 15
            double mean = values.Average();
            double unbiased = values.Select(v => (v - mean) * (v - mean)).Sum() / (count - 1);
            Assert.Equal((1 - momentum) * initialMean[c] + momentum * mean, runningMean[c], 1e-6);
            Assert.Equal((1 - momentum) * initialVar[c] + momentum * unbiased, runningVar[c], 1e-6);
        }
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(1, 64)]
    public void SingleValuePerChannelThrowsBeforeWritingAnything(int n, int channels)
    {
        var x = TestUtil.Random(n * channels, 4);
        var y = Enumerable.Repeat(42f, x.Length).ToArray();
        var mean = Enumerable.Repeat(42f, channels).ToArray();
        var invStd = Enumerable.Repeat(42f, channels).ToArray();
        var runningMean = Enumerable.Repeat(42f, channels).ToArray();
        var runningVar = Enumerable.Repeat(42f, channels).ToArray();

        var e = Assert.Throws<ArgumentException>(() =>
            BatchNorm.ForwardTraining(x, [], [], y, mean, invStd, runningMean, runningVar, 0.1f, Eps, n, channels, 1));
        Assert.Contains("Expected more than 1 value per channel when training", e.Message);
        Assert.Contains($"[1, {channels}]", e.Message);
        Assert.All(y.Concat(mean).Concat(invStd).Concat(runningMean).Concat(runningVar), v => Assert.Equal(42f, v));
    }

    [Fact]
    public void WithStatisticsMatchesFormulaAndSavesStatistics()
    {
        const int n = 2, channels = 3, spatial = 4;
        var x = TestUtil.Random(n * channels * spatial, 5);
        float[] gamma = [1.5f, -0.5f, 1f], beta = [0.1f, 0.2f, -0.3f], mean = [0.2f, -0.1f, 0f], variance = [0.5f, 2f, 1f];
        var y = new float[x.Length];
        var saveMean = new float[channels];
        var saveInvStd = new float[channels];
        BatchNorm.ForwardWithStatistics(x, gamma, beta, mean, variance, y, saveMean, saveInvStd, Eps, n, channels, spatial);

        var expected = new double[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            int c = i / spatial % channels;
            expected[i] = (x[i] - mean[c]) / Math.Sqrt(variance[c] + Eps) * gamma[c] + beta[c];
        }
        TestUtil.AssertClose(expected, y, 1e-6, 1e-6, "y");
        Assert.Equal(mean, saveMean);
        for (int c = 0; c < channels; c++) Assert.Equal(1 / Math.Sqrt(variance[c] + Eps), saveInvStd[c], 1e-6);

        // Scale/shift form gives the same result; empty save buffers are allowed.
        var scale = new float[channels];
        var shift = new float[channels];
        BatchNorm.ScaleShift(gamma, beta, mean, variance, Eps, scale, shift);
        var z = (float[])x.Clone();
        BatchNorm.ApplyScaleShift(z, scale, shift, n, channels, spatial);
        TestUtil.AssertClose(expected, z, 1e-6, 1e-6, "scale/shift");

        BatchNorm.ForwardWithStatistics(x, [], [], mean, variance, y, [], [], Eps, n, channels, spatial);
        for (int i = 0; i < x.Length; i++)
        {
            int c = i / spatial % channels;
            Assert.Equal((x[i] - mean[c]) / Math.Sqrt(variance[c] + Eps), y[i], 1e-6);
        }
    }

    // Central differences through the batch statistics, ε = 1e-2, tolerance 1e-2 relative
    // (the loss is nonlinear in x; truncation error is O(ε²) ≈ 1e-4 times third derivatives of order 1–10).
    [Theory]
    [InlineData(4, 3, 1, true)]
    [InlineData(3, 2, 6, true)]
    [InlineData(2, 2, 5, false)]
    [InlineData(1, 2, 9, true)]
    public void TrainingGradientsMatchFiniteDifferences(int n, int channels, int spatial, bool affine)
    {
        var x = TestUtil.Random(n * channels * spatial, 6, -2f, 2f);
        var gamma = affine ? TestUtil.Random(channels, 7, 0.5f, 1.5f) : [];
        var beta = affine ? TestUtil.Random(channels, 8, -0.5f, 0.5f) : [];
        var r = TestUtil.Random(x.Length, 9);
        var y = new float[x.Length];
        var mean = new float[channels];
        var invStd = new float[channels];
        double Loss()
        {
            BatchNorm.ForwardTraining(x, gamma, beta, y, mean, invStd, [], [], 0.1f, Eps, n, channels, spatial);
            return TestUtil.WeightedSum(y, r);
        }

        Loss();
        var dx = new float[x.Length];
        dx.AsSpan().Fill(float.NaN);
        var dgamma = new float[gamma.Length];
        var dbeta = new float[beta.Length];
        BatchNorm.Backward(r, x, gamma, mean, invStd, dx, dgamma, dbeta, n, channels, spatial);

        GradCheck.Check(x, dx, Loss, 1e-2, "dx");
        if (affine)
        {
            GradCheck.Check(gamma, dgamma, Loss, 1e-3, "dgamma");
            GradCheck.Check(beta, dbeta, Loss, 1e-3, "dbeta");
        }
    }

    // Statistics are constants here, so the loss is linear in x and beta: tolerance 1e-3.
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ConstantStatisticsGradientsMatchFiniteDifferences(bool affine)
    {
        const int n = 3, channels = 2, spatial = 4;
        var x = TestUtil.Random(n * channels * spatial, 10);
        var gamma = affine ? TestUtil.Random(channels, 11, 0.5f, 1.5f) : [];
        var beta = affine ? TestUtil.Random(channels, 12) : [];
        float[] mean = [0.3f, -0.2f], variance = [0.8f, 1.7f];
        var r = TestUtil.Random(x.Length, 13);
        var y = new float[x.Length];
        var saveMean = new float[channels];
        var saveInvStd = new float[channels];
        double Loss()
        {
            BatchNorm.ForwardWithStatistics(x, gamma, beta, mean, variance, y, saveMean, saveInvStd, Eps, n, channels, spatial);
            return TestUtil.WeightedSum(y, r);
        }

        Loss();
        var dx = new float[x.Length];
        var dgamma = new float[gamma.Length];
        var dbeta = new float[beta.Length];
        BatchNorm.BackwardConstantStatistics(r, x, gamma, saveMean, saveInvStd, dx, dgamma, dbeta, n, channels, spatial);

        GradCheck.Check(x, dx, Loss, 1e-3, "dx");
        if (affine)
        {
            GradCheck.Check(gamma, dgamma, Loss, 1e-3, "dgamma");
            GradCheck.Check(beta, dbeta, Loss, 1e-3, "dbeta");
        }
    }

    [Fact]
    public void BackwardAccumulatesParameterGradients()
    {
        const int n = 4, channels = 2, spatial = 3;
        var x = TestUtil.Random(n * channels * spatial, 14);
        var dy = TestUtil.Random(x.Length, 15);
        float[] gamma = [1.2f, 0.8f];
        var mean = new float[channels];
        var invStd = new float[channels];
        BatchNorm.ForwardTraining(x, gamma, [0f, 0f], new float[x.Length], mean, invStd, [], [], 0.1f, Eps, n, channels, spatial);

        var dx = new float[x.Length];
        float[] dgamma = [0f, 0f], dbeta = [0f, 0f];
        BatchNorm.Backward(dy, x, gamma, mean, invStd, dx, dgamma, dbeta, n, channels, spatial);
        float[] dgamma2 = [1f, 1f], dbeta2 = [1f, 1f];
        BatchNorm.Backward(dy, x, gamma, mean, invStd, dx, dgamma2, dbeta2, n, channels, spatial);
        TestUtil.AssertClose(dgamma.Select(v => v + 1).ToArray(), dgamma2, 1e-6, 0, "dgamma");
        TestUtil.AssertClose(dbeta.Select(v => v + 1).ToArray(), dbeta2, 1e-6, 0, "dbeta");
    }

    [Fact]
    public void FoldedConvolutionEqualsConvolutionThenBatchNorm()
    {
        var g = new ConvGeometry(3, 4, 6, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1);
        const int n = 2;
        var x = TestUtil.Random(n * g.InputLength, 16);
        var w = TestUtil.Random(g.WeightLength, 17);
        var b = TestUtil.Random(4, 18);
        float[] gamma = [1.1f, 0.9f, 1.4f, 0.6f], beta = [0.1f, -0.2f, 0.3f, 0f], mean = [0.2f, -0.3f, 0.1f, 0.05f], variance = [0.7f, 1.3f, 2f, 0.4f];

        var convOut = new float[n * g.OutputLength];
        ConvGemm.Forward(x, w, b, convOut, n, g);
        int spatial = g.OutH * g.OutW;
        var expected = new float[convOut.Length];
        BatchNorm.ForwardWithStatistics(convOut, gamma, beta, mean, variance, expected, [], [], Eps, n, 4, spatial);

        var scale = new float[4];
        var shift = new float[4];
        BatchNorm.ScaleShift(gamma, beta, mean, variance, Eps, scale, shift);
        var foldedW = new float[w.Length];
        var foldedB = new float[4];
        BatchNorm.Fold(w, b, scale, shift, foldedW, foldedB, 4, g.WeightLength / 4);
        var folded = new float[convOut.Length];
        ConvGemm.Forward(x, foldedW, foldedB, folded, n, g);
        TestUtil.AssertClose(expected, folded, 1e-5, 1e-5, "folded conv");

        // A layer without bias folds to bias = shift.
        ConvGemm.Forward(x, w, [], convOut, n, g);
        BatchNorm.ForwardWithStatistics(convOut, gamma, beta, mean, variance, expected, [], [], Eps, n, 4, spatial);
        BatchNorm.Fold(w, [], scale, shift, foldedW, foldedB, 4, g.WeightLength / 4);
        Assert.Equal(shift, foldedB);
        ConvGemm.Forward(x, foldedW, foldedB, folded, n, g);
        TestUtil.AssertClose(expected, folded, 1e-5, 1e-5, "folded conv without bias");
    }

    [Fact]
    public void FoldedLinearEqualsLinearThenBatchNorm()
    {
        const int n = 5, inF = 7, outF = 3;
        var x = TestUtil.Random(n * inF, 19);
        var w = TestUtil.Random(outF * inF, 20);
        var b = TestUtil.Random(outF, 21);
        float[] mean = [0.1f, 0.2f, -0.4f], variance = [1.1f, 0.3f, 0.9f];
        var y = new float[n * outF];
        Linear.Forward(x, w, b, y, n, inF, outF);
        var expected = new float[y.Length];
        BatchNorm.ForwardWithStatistics(y, [], [], mean, variance, expected, [], [], Eps, n, outF, 1);

        var scale = new float[outF];
        var shift = new float[outF];
        BatchNorm.ScaleShift([], [], mean, variance, Eps, scale, shift);
        var foldedW = new float[w.Length];
        var foldedB = new float[outF];
        BatchNorm.Fold(w, b, scale, shift, foldedW, foldedB, outF, inF);
        Linear.Forward(x, foldedW, foldedB, y, n, inF, outF);
        TestUtil.AssertClose(expected, y, 1e-5, 1e-5, "folded linear");
    }

    private static double[] ChannelValues(float[] data, int c, int n, int channels, int spatial)
    {
        var values = new List<double>();
        for (int s = 0; s < n; s++)
            for (int i = 0; i < spatial; i++) values.Add(data[(s * channels + c) * spatial + i]);
        return values.ToArray();
    }
}
