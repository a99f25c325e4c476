// Inference ReLU fused into the conv or linear before it: the same bits as the layer, then a ReLU pass.
namespace Dsl.Runtime.Tests;

public sealed class FusedReluTests
{
    public static TheoryData<string, int> Convolutions() => new()
    {
        { "padded grid (stride 1)", 1 },
        { "packed (stride 2)", 2 },
        { "direct (few input channels)", 3 },
    };

    private static ConvGeometry Geometry(int kind) => kind switch
    {
        1 => new ConvGeometry(16, 20, 48, 48, 3, 3, 1, 1, 1, 1, 1, 1, 1), // 6.6M multiply-adds, above the one-sample threshold: batch 1 splits by channels
        2 => new ConvGeometry(16, 20, 40, 40, 3, 3, 2, 2, 1, 1, 1, 1, 1),
        _ => new ConvGeometry(1, 6, 20, 20, 5, 5, 1, 1, 0, 0, 1, 1, 1),
    };

    [Theory]
    [MemberData(nameof(Convolutions))]
    public void A_convolution_with_relu_equals_the_convolution_then_relu(string path, int kind)
    {
        var g = Geometry(kind);
        Assert.Equal(kind == 3, ConvDirect.Suits(g));
        foreach (int threads in new[] { 1, 2 })
        {
            foreach (int n in new[] { 1, 5 })
            {
                var x = TestUtil.Random(n * g.InputLength, 1);
                x[3] = float.NaN; // NaN propagates through both
                var w = TestUtil.Random(g.WeightLength, 2);
                var b = TestUtil.Random(g.OutChannels, 3);
                var pool = threads == 1 ? null : WorkerPool.Shared(threads);
                var scratch = new float[threads * ConvDirect.ParallelScratchLength(g)];
                var expected = new float[n * g.OutputLength];
                ConvDirect.Forward(x, w, b, expected, n, g, scratch, pool);
                Activations.ReluForward(expected, expected);
                var actual = new float[expected.Length];
                ConvDirect.Forward(x, w, b, actual, n, g, scratch, pool, relu: true);
                Assert.True(expected.AsSpan().SequenceEqual(actual), $"{path}, {threads} thread(s), batch {n}");
                Assert.Contains(actual, v => v == 0f);
                Assert.Contains(actual, float.IsNaN);
            }
        }
    }

    [Theory]
    [InlineData(3)]    // dot products
    [InlineData(130)]  // GEMM
    public void A_linear_layer_with_relu_equals_the_layer_then_relu(int n)
    {
        const int inF = 37, outF = 19;
        var x = TestUtil.Random(n * inF, 1);
        var w = TestUtil.Random(outF * inF, 2);
        var b = TestUtil.Random(outF, 3);
        var scratch = new float[2 * Gemm.ScratchLength];
        var expected = new float[n * outF];
        Linear.Forward(x, w, b, expected, n, inF, outF, scratch, WorkerPool.Shared(2));
        Activations.ReluForward(expected, expected);
        var actual = new float[expected.Length];
        Linear.Forward(x, w, b, actual, n, inF, outF, scratch, WorkerPool.Shared(2), relu: true);
        Assert.Equal(expected, actual);
        Assert.Contains(actual, v => v == 0f);
    }
}

public sealed class FusedBatchNormReluTests
{
    [Theory]
    [InlineData(4, 5, 9)]  // planes
    [InlineData(6, 7, 1)]  // features ([N, C])
    public void Training_batch_norm_with_relu_equals_batch_norm_then_relu(int n, int c, int s)
    {
        var x = TestUtil.Random(n * c * s, 1);
        var gamma = TestUtil.Random(c, 2);
        var beta = TestUtil.Random(c, 3);
        float[] Run(bool relu, out float[] runningMean, out float[] runningVar, out float[] mean, out float[] invStd)
        {
            var y = new float[x.Length];
            mean = new float[c];
            invStd = new float[c];
            runningMean = new float[c];
            runningVar = Enumerable.Repeat(1f, c).ToArray();
            BatchNorm.ForwardTraining(x, gamma, beta, y, mean, invStd, runningMean, runningVar, 0.1f, 1e-5f, n, c, s, relu ? FusedActivation.Relu : FusedActivation.None);
            return y;
        }

        var expected = Run(false, out var rm1, out var rv1, out var m1, out var i1);
        Activations.ReluForward(expected, expected);
        var actual = Run(true, out var rm2, out var rv2, out var m2, out var i2);
        Assert.Equal(expected, actual);
        Assert.Equal(rm1, rm2);
        Assert.Equal(rv1, rv2);
        Assert.Equal(m1, m2);
        Assert.Equal(i1, i2);
        Assert.Contains(actual, v => v == 0f);
    }
}
