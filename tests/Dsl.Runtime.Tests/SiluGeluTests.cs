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
