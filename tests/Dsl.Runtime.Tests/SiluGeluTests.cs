using Dsl.Runtime.Kernels;

namespace Dsl.Runtime.Tests;

/// <summary>
/// SiLU and the exact GELU against double-precision references of PyTorch's formulas (nn.SiLU; nn.GELU() with
/// approximate='none'), on lengths that exercise the eight-lane loop and the scalar tail, in place and not.
/// </summary>
public sealed class SiluGeluTests
{
    /// <summary>Float error allowed: a few ulps of the result, plus erf's 1.5e-7 approximation scaled by |x|/2.</summary>
    private const double Tolerance = 2e-6;

    private static float[] Inputs(int length)
    {
        var x = new float[length];
        for (int i = 0; i < length; i++) x[i] = -9f + 18f * i / Math.Max(1, length - 1) + 0.013f * MathF.Sin(7 * i);
        if (length > 4)
        {
            x[0] = 0f;
            x[1] = -30f;
            x[2] = 30f;
            x[3] = 1e-3f;
        }

        return x;
    }

    /// <summary>erf by its Taylor series below 2.5 (about 1e-14 there), else 1 − erfc by Laplace's continued fraction.</summary>
    private static double Erf(double x)
    {
        double a = Math.Abs(x);
        if (a >= 2.5)
        {
            double t = a;
            for (int k = 80; k >= 1; k--) t = a + k / 2.0 / t;
            return Math.Sign(x) * (1 - Math.Exp(-a * a) / (Math.Sqrt(Math.PI) * t));
        }

        double sum = 0, term = x;
        for (int n = 0; n < 200; n++)
        {
            sum += term / (2 * n + 1);
            term *= -x * x / (n + 1);
        }

        return 2 / Math.Sqrt(Math.PI) * sum;
    }

    private static double Sigmoid(double x) => 1 / (1 + Math.Exp(-x));

    private static double Silu(double x) => x * Sigmoid(x);

    private static double SiluGradient(double x) => Sigmoid(x) * (1 + x * (1 - Sigmoid(x)));

    private static double Gelu(double x) => 0.5 * x * (1 + Erf(x / Math.Sqrt(2)));

    private static double GeluGradient(double x) => 0.5 * (1 + Erf(x / Math.Sqrt(2))) + x * Math.Exp(-0.5 * x * x) / Math.Sqrt(2 * Math.PI);

    private static void AssertClose(double expected, float actual, string what)
    {
        Assert.False(float.IsNaN(actual), what + " is NaN");
        Assert.True(Math.Abs(actual - expected) <= Tolerance * Math.Max(1, Math.Abs(expected)), $"{what}: {actual} against {expected}");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(8)]
    [InlineData(83)]
    public void Silu_forward_and_backward_follow_pytorch(int length)
    {
        var x = Inputs(length);
        var y = new float[length];
        Activations.SiluForward(x, y);
        var dy = x.Select((_, i) => 0.5f + MathF.Cos(i)).ToArray();
        var dx = new float[length];
        Activations.SiluBackward(x, dy, dx);
        for (int i = 0; i < length; i++)
        {
            AssertClose(Silu(x[i]), y[i], $"silu({x[i]})");
            AssertClose(dy[i] * SiluGradient(x[i]), dx[i], $"silu'({x[i]})");
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(8)]
    [InlineData(83)]
    public void Gelu_forward_and_backward_follow_pytorch(int length)
    {
        var x = Inputs(length);
        var y = new float[length];
        Activations.GeluForward(x, y);
        var dy = x.Select((_, i) => 0.5f + MathF.Cos(i)).ToArray();
        var dx = new float[length];
        Activations.GeluBackward(x, dy, dx);
        for (int i = 0; i < length; i++)
        {
            AssertClose(Gelu(x[i]), y[i], $"gelu({x[i]})");
            AssertClose(dy[i] * GeluGradient(x[i]), dx[i], $"gelu'({x[i]})");
        }
    }

    [Fact]
    public void The_analytic_gradients_match_finite_differences_of_the_references()
    {
        // Guards the reference formulas themselves: a wrong derivative above would agree with a wrong kernel.
        foreach (double x in new[] { -4.0, -1.3, -0.2, 0.0, 0.7, 2.5, 6.0 })
        {
            const double h = 1e-5;
            Assert.Equal((Silu(x + h) - Silu(x - h)) / (2 * h), SiluGradient(x), 8);
            Assert.Equal((Gelu(x + h) - Gelu(x - h)) / (2 * h), GeluGradient(x), 8);
        }
    }

    [Fact]
    public void In_place_equals_out_of_place_and_Apply_equals_forward()
    {
        var x = Inputs(37);
        foreach (var (activation, forward) in new (FusedActivation, Action<float[], float[]>)[]
        {
            (FusedActivation.Relu, (a, b) => Activations.ReluForward(a, b)),
            (FusedActivation.Silu, (a, b) => Activations.SiluForward(a, b)),
            (FusedActivation.Gelu, (a, b) => Activations.GeluForward(a, b)),
        })
        {
            var expected = new float[x.Length];
            forward(x, expected);
            var inPlace = (float[])x.Clone();
            forward(inPlace, inPlace);
            Assert.Equal(expected, inPlace);
            var applied = (float[])x.Clone();
            Activations.Apply(activation, applied);
            Assert.Equal(expected, applied);
        }

        var untouched = (float[])x.Clone();
        Activations.Apply(FusedActivation.None, untouched);
        Assert.Equal(x, untouched);
    }

    [Theory]
    [InlineData(FusedActivation.Silu, 3)]
    [InlineData(FusedActivation.Gelu, 3)]
    [InlineData(FusedActivation.Silu, 1)]
    [InlineData(FusedActivation.Gelu, 1)]
    public void Batch_norm_applies_the_activation_as_it_writes_bit_for_bit(FusedActivation activation, int spatial)
    {
        const int n = 5, c = 6;
        var x = Inputs(n * c * spatial);
        var gamma = Enumerable.Range(0, c).Select(i => 0.5f + 0.1f * i).ToArray();
        var beta = Enumerable.Range(0, c).Select(i => -0.2f + 0.05f * i).ToArray();
        var plain = new float[x.Length];
        var fused = new float[x.Length];
        var mean = new float[c];
        var invStd = new float[c];
        BatchNorm.ForwardTraining(x, gamma, beta, plain, mean, invStd, default, default, 0f, 1e-5f, n, c, spatial);
        Activations.Apply(activation, plain);
        BatchNorm.ForwardTraining(x, gamma, beta, fused, mean, invStd, default, default, 0f, 1e-5f, n, c, spatial, activation);
        Assert.Equal(plain, fused);
    }
}

/// <summary>The conv and linear kernels apply SiLU and GELU in the same call, with the bits of a separate pass.</summary>
public sealed class FusedSiluGeluTests
{
    [Theory]
    [InlineData(FusedActivation.Silu)]
    [InlineData(FusedActivation.Gelu)]
    [InlineData(FusedActivation.Relu)]
    public void Conv_and_linear_kernels_apply_the_activation_with_the_bits_of_a_separate_pass(FusedActivation activation)
    {
        using var pool = new WorkerPool(2);
        const int n = 3;
        foreach (var g in new[]
        {
            new ConvGeometry(1, 6, 20, 20, 3, 3, 1, 1, 1, 1, 1, 1, 1),   // direct
            new ConvGeometry(16, 16, 8, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1),   // Winograd
            new ConvGeometry(3, 5, 9, 9, 3, 3, 2, 2, 1, 1, 1, 1, 1),     // the GEMM
        })
        {
            var x = TestUtil.Random(n * g.InputLength, 1);
            var w = TestUtil.Random(g.WeightLength, 2);
            var b = TestUtil.Random(g.OutChannels, 3);
            var scratch = new float[2 * Math.Max(Math.Max(ConvDirect.ParallelScratchLength(g), ConvWinograd.ParallelScratchLength(g)), ConvGemm.ParallelScratchLength(g))];
            foreach (var (name, plain, fused) in new (string, Action<float[]>, Action<float[]>)[]
            {
                ("direct", y => ConvDirect.Forward(x, w, b, y, n, g, scratch, pool, relu: false), y => ConvDirect.Forward(x, w, b, y, n, g, scratch, pool, activation)),
                ("winograd", y => ConvWinograd.Forward(x, w, b, y, n, g, scratch, pool, relu: false), y => ConvWinograd.Forward(x, w, b, y, n, g, scratch, pool, activation)),
                ("gemm", y => ConvGemm.Forward(x, w, b, y, n, g, scratch, pool, relu: false), y => ConvGemm.Forward(x, w, b, y, n, g, scratch, pool, activation)),
            })
            {
                var expected = new float[n * g.OutputLength];
                plain(expected);
                Activations.Apply(activation, expected);
                var actual = new float[expected.Length];
                fused(actual);
                Assert.True(expected.AsSpan().SequenceEqual(actual), $"{name} on {g.InChannels}→{g.OutChannels} differs");
            }
        }

        const int inF = 40, outF = 48, rows = 20;
        var lx = TestUtil.Random(rows * inF, 4);
        var lw = TestUtil.Random(outF * inF, 5);
        var lb = TestUtil.Random(outF, 6);
        var packed = new float[Linear.PackedWeightLength(inF, outF)];
        Linear.PackWeight(lw, packed, inF, outF);
        var lscratch = new float[2 * Gemm.ScratchLength];
        var lexpected = new float[rows * outF];
        Linear.ForwardPacked(lx, lw, packed, lb, lexpected, rows, inF, outF, lscratch, pool);
        Activations.Apply(activation, lexpected);
        var lactual = new float[lexpected.Length];
        Linear.ForwardPacked(lx, lw, packed, lb, lactual, rows, inF, outF, lscratch, pool, activation);
        Assert.Equal(lexpected, lactual);
    }

    [Fact]
    public void A_non_monotonic_activation_is_refused_with_a_fused_max_pooling()
    {
        var g = new ConvGeometry(16, 16, 8, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1);
        var error = Assert.Throws<ArgumentException>(() => ConvWinograd.Forward(new float[g.InputLength], new float[g.WeightLength], default, new float[g.OutputLength], 1, g,
            new float[ConvWinograd.ParallelScratchLength(g)], null, FusedActivation.Silu, maxPool: true));
        Assert.Contains("not monotonic", error.Message);
    }
}
