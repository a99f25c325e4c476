// Activations: exact values on small inputs, in-place use, and finite-difference gradients.
namespace Dsl.Runtime.Tests;

public class ActivationsTests
{
    [Fact]
    public void ElementwiseValues()
    {
        float[] x = [-2f, -0.5f, 0f, 0.5f, 2f];
        var y = new float[5];

        Activations.ReluForward(x, y);
        Assert.Equal([0f, 0f, 0f, 0.5f, 2f], y);

        Activations.LeakyReluForward(x, y, 0.1f);
        Assert.Equal([-0.2f, -0.05f, 0f, 0.5f, 2f], y);

        Activations.SigmoidForward(x, y);
        TestUtil.AssertClose(x.Select(v => 1 / (1 + Math.Exp(-v))).ToArray(), y, 1e-7, 0, "sigmoid");

        Activations.TanhForward(x, y);
        TestUtil.AssertClose(x.Select(v => Math.Tanh(v)).ToArray(), y, 1e-7, 0, "tanh");
    }

    [Fact]
    public void ReluPropagatesNaN()
    {
        var y = new float[1];
        Activations.ReluForward([float.NaN], y);
        Assert.True(float.IsNaN(y[0]));
    }

    [Fact]
    public void SoftmaxValues()
    {
        // Rows [1, 2, 3] and [1000, 1000, 1000] (the latter overflows exp without the max shift).
        float[] x = [1, 2, 3, 1000, 1000, 1000];
        var y = new float[6];
        Activations.SoftmaxForward(x, y, 2, 3);
        double z = Math.Exp(1) + Math.Exp(2) + Math.Exp(3);
        TestUtil.AssertClose([Math.Exp(1) / z, Math.Exp(2) / z, Math.Exp(3) / z, 1 / 3.0, 1 / 3.0, 1 / 3.0], y, 1e-6, 0, "softmax");

        Activations.LogSoftmaxForward(x, y, 2, 3);
        TestUtil.AssertClose([1 - Math.Log(z), 2 - Math.Log(z), 3 - Math.Log(z), -Math.Log(3), -Math.Log(3), -Math.Log(3)], y, 1e-6, 0, "log_softmax");
    }

    [Fact]
    public void ForwardAndBackwardWorkInPlace()
    {
        var x = TestUtil.Random(12, 1, -3f, 3f);
        var dy = TestUtil.Random(12, 2);

        void Compare(Action<float[], float[]> forward, Action<float[], float[], float[]> backward, string name)
        {
            var y = new float[12];
            forward(x, y);
            var dx = new float[12];
            backward(y, dy, dx);

            var inPlace = (float[])x.Clone();
            forward(inPlace, inPlace);
            Assert.Equal(y, inPlace);
            var dInPlace = (float[])dy.Clone();
            backward(y, dInPlace, dInPlace);
            Assert.True(dx.SequenceEqual(dInPlace), name);
        }

        Compare((a, b) => Activations.ReluForward(a, b), (y, d, o) => Activations.ReluBackward(y, d, o), "relu");
        Compare((a, b) => Activations.SigmoidForward(a, b), (y, d, o) => Activations.SigmoidBackward(y, d, o), "sigmoid");
        Compare((a, b) => Activations.TanhForward(a, b), (y, d, o) => Activations.TanhBackward(y, d, o), "tanh");
        Compare((a, b) => Activations.SoftmaxForward(a, b, 3, 4), (y, d, o) => Activations.SoftmaxBackward(y, d, o, 3, 4), "softmax");
        Compare((a, b) => Activations.LogSoftmaxForward(a, b, 3, 4), (y, d, o) => Activations.LogSoftmaxBackward(y, d, o, 3, 4), "log_softmax");
        // Leaky ReLU's backward reads the forward input, so in-place backward aliases dy only.
        Compare((a, b) => Activations.LeakyReluForward(a, b, 0.2f), (_, d, o) => Activations.LeakyReluBackward(x, d, o, 0.2f), "leaky_relu");
    }

    // Central differences, ε = 1e-2; inputs at least 0.1 from ReLU's kink so the step never crosses it. Tolerance 1e-3 relative
    // (smooth functions with O(1) third derivatives: truncation ≈ ε²/6 ≈ 2e-5).
    [Theory]
    [InlineData("relu")]
    [InlineData("leaky_relu")]
    [InlineData("sigmoid")]
    [InlineData("tanh")]
    [InlineData("softmax")]
    [InlineData("log_softmax")]
    public void GradientsMatchFiniteDifferences(string kind)
    {
        const int n = 3, features = 5;
        var x = TestUtil.RandomAwayFromZero(n * features, 3, 0.1f, 2f);
        var r = TestUtil.Random(n * features, 4);
        var y = new float[x.Length];
        void Forward()
        {
            switch (kind)
            {
                case "relu": Activations.ReluForward(x, y); break;
                case "leaky_relu": Activations.LeakyReluForward(x, y, 0.01f); break;
                case "sigmoid": Activations.SigmoidForward(x, y); break;
                case "tanh": Activations.TanhForward(x, y); break;
                case "softmax": Activations.SoftmaxForward(x, y, n, features); break;
                case "log_softmax": Activations.LogSoftmaxForward(x, y, n, features); break;
            }
        }
        double Loss()
        {
            Forward();
            return TestUtil.WeightedSum(y, r);
        }

        Forward();
        var dx = new float[x.Length];
        switch (kind)
        {
            case "relu": Activations.ReluBackward(y, r, dx); break;
            case "leaky_relu": Activations.LeakyReluBackward(x, r, dx, 0.01f); break;
            case "sigmoid": Activations.SigmoidBackward(y, r, dx); break;
            case "tanh": Activations.TanhBackward(y, r, dx); break;
            case "softmax": Activations.SoftmaxBackward(y, r, dx, n, features); break;
            case "log_softmax": Activations.LogSoftmaxBackward(y, r, dx, n, features); break;
        }
        GradCheck.Check(x, dx, Loss, 1e-3, kind);
    }
}
