using Xunit.Abstractions;

namespace Dsl.Models.Tests;

/// <summary>
/// Backward agrees with finite differences of Forward on small random models of every layer kind.
/// With L = Σ output·R, the analytic directional derivative ∇L·v is compared with
/// (L(θ + εv) − L(θ − εv)) / 2ε along random directions v, for the parameters and for the input.
/// </summary>
public sealed class GradientCheckTests(ITestOutputHelper output)
{
    public static TheoryData<string> Models() => new()
    {
        nameof(GcConv2d), nameof(GcConv1d), nameof(GcBnPlain), nameof(GcFrozen), nameof(GcMlp), nameof(GcPool), nameof(GcSequence), nameof(GcLayerGroup), nameof(GcInstance),
        nameof(Head), // Chain and SmallCnn have too many max-pool and ReLU kinks for ±ε; the PyTorch bundles check their gradients
    };

    private static CompiledModel Create(string name, int batch) =>
        (CompiledModel)Activator.CreateInstance(typeof(GcMlp).Assembly.GetType($"Dsl.Models.Tests.{name}")!, batch, 3, 1)!;

    [Theory]
    [MemberData(nameof(Models))]
    public void Backward_matches_finite_differences(string name)
    {
        const int Batch = 3;
        var model = Create(name, Batch);
        var random = new Random(11);
        float[] Randoms(int n, double scale = 1) => Enumerable.Range(0, n).Select(_ => (float)(random.NextDouble() * 2 - 1) * (float)scale).ToArray();

        // Move batch norm's affine parameters off γ = 1, β = 0 so that every term of the gradient matters.
        var parameters = model.Parameters;
        var noise = Randoms(parameters.Length, 0.3);
        for (int i = 0; i < parameters.Length; i++) parameters[i] += noise[i];

        var input = Randoms(Batch * model.SampleInputLength);
        var weights = Randoms(Batch * model.SampleOutputLength);
        var result = new float[weights.Length];
        double Loss(float[] x)
        {
            model.Forward(x, result, Batch);
            double sum = 0;
            for (int i = 0; i < result.Length; i++) sum += result[i] * (double)weights[i];
            return sum;
        }

        model.ZeroGrad();
        Loss(input);
        var inputGrad = new float[input.Length];
        model.Backward(weights, inputGrad);
        var analytic = model.Gradients.ToArray();

        const float Epsilon = 1e-3f;
        for (int trial = 0; trial < 4; trial++)
        {
            // Parameters.
            var v = Randoms(analytic.Length);
            var saved = model.Parameters.ToArray();
            var p = model.Parameters;
            for (int i = 0; i < p.Length; i++) p[i] = saved[i] + Epsilon * v[i];
            double plus = Loss(input);
            p = model.Parameters;
            for (int i = 0; i < p.Length; i++) p[i] = saved[i] - Epsilon * v[i];
            double minus = Loss(input);
            saved.CopyTo(model.Parameters);
            double numeric = (plus - minus) / (2 * Epsilon);
            double expected = analytic.Select((g, i) => (double)g * v[i]).Sum();
            output.WriteLine($"{name} parameters: analytic {expected:F5}, numeric {numeric:F5}");
            Assert.True(Math.Abs(numeric - expected) <= 1e-2 * Math.Max(1, Math.Abs(expected)), $"parameters: analytic {expected} vs numeric {numeric}");

            // Input.
            var u = Randoms(input.Length);
            double plusX = Loss(input.Select((x, i) => x + Epsilon * u[i]).ToArray());
            double minusX = Loss(input.Select((x, i) => x - Epsilon * u[i]).ToArray());
            double numericX = (plusX - minusX) / (2 * Epsilon);
            double expectedX = inputGrad.Select((g, i) => (double)g * u[i]).Sum();
            output.WriteLine($"{name} input: analytic {expectedX:F5}, numeric {numericX:F5}");
            Assert.True(Math.Abs(numericX - expectedX) <= 1e-2 * Math.Max(1, Math.Abs(expectedX)), $"input: analytic {expectedX} vs numeric {numericX}");
        }
    }
}
