using Xunit.Abstractions;

namespace Dsl.Models.Tests;

/// <summary>
/// Backward agrees with finite differences of Forward on small random models of every layer kind, element by
/// element: every parameter and every input value is moved alone, and its gradient compared with the central
/// difference of L = Σ output·R (R random, accumulated in double).
/// </summary>
/// <remarks>
/// No double-precision form of a model exists (the generated code and the kernels are float), so the differences
/// come from float forwards, and ε and the tolerance are set for that. The gradient is compared with the central
/// difference at ε = 5e-3, within 1e-3 + 1e-2 · |gradient|. Measured on these models: the truncation error
/// (ε²/6 times the third derivative) and the rounding of L over a few hundred float outputs, divided by 2ε, are
/// each near 1e-4 at most (GcPool, whose every output moves with any input through batch norm); the largest error,
/// 7e-3 on GcFrozen's conv bias (gradient −1.007), comes from moving a whole channel, several of whose ReLU inputs
/// then cross 0. A wrong term or a wrong index gives errors of the gradient's own size. ReLU, leaky ReLU and max
/// pooling have kinks: a value within ε of one gives a difference that mixes two slopes. Such an element shows
/// because its differences at ε and 2ε disagree (without a kink in reach they agree within the tolerance); it is
/// checked again at ε = 5e-4 (and 1e-3), within 1e-2 + 1e-2 · |gradient| for the larger rounding, and only an
/// element whose differences still disagree there (a kink closer than 1e-3) is left out: at most 1 in 100 per
/// model, counted in the test's output.
/// </remarks>
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
    public void Backward_matches_finite_differences_for_every_parameter_and_input(string name)
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
        double Loss()
        {
            model.Forward(input, result, Batch);
            double sum = 0;
            for (int i = 0; i < result.Length; i++) sum += result[i] * (double)weights[i];
            return sum;
        }

        model.ZeroGrad();
        Loss();
        var inputGrad = new float[input.Length];
        model.Backward(weights, inputGrad);
        var analytic = model.Gradients.ToArray();

        // The central difference of L along one value (a parameter or an input), read by get and written by set.
        double Difference(Func<float> get, Action<float> set, float epsilon)
        {
            float saved = get();
            set(saved + epsilon);
            double plus = Loss();
            set(saved - epsilon);
            double minus = Loss();
            set(saved);
            return (plus - minus) / (2 * epsilon);
        }

        int checkedCount = 0, kinks = 0;
        double worst = 0;
        string worstAt = "";
        void Check(string what, double expected, Func<float> get, Action<float> set)
        {
            foreach (var (epsilon, absolute) in new[] { (1e-2f, 1e-3), (1e-3f, 1e-2) })
            {
                double coarse = Difference(get, set, epsilon), fine = Difference(get, set, epsilon / 2);
                double tolerance = absolute + 1e-2 * Math.Abs(expected);
                if (Math.Abs(coarse - fine) > tolerance) continue; // a kink within ε: try a smaller one
                checkedCount++;
                double error = Math.Abs(fine - expected);
                if (error / tolerance > worst) (worst, worstAt) = (error / tolerance, $"{what}: analytic {expected:G6}, numeric {fine:G6} (ε = {epsilon / 2})");
                Assert.True(error <= tolerance, $"{name} {what}: analytic {expected}, numeric {fine} at ε = {epsilon / 2} (and {coarse} at {epsilon})");
                return;
            }

            kinks++;
        }

        for (int i = 0; i < analytic.Length; i++)
        {
            int k = i;
            Check($"parameter {k}", analytic[k], () => model.Parameters[k], v => model.Parameters[k] = v);
        }

        for (int i = 0; i < input.Length; i++)
        {
            int k = i;
            Check($"input {k}", inputGrad[k], () => input[k], v => input[k] = v);
        }

        int total = analytic.Length + input.Length;
        output.WriteLine($"{name}: {checkedCount} of {total} values checked ({analytic.Length} parameters, {input.Length} inputs), {kinks} left out at a kink; worst {worst:F3} of the tolerance at {worstAt}");
        Assert.Equal(total, checkedCount + kinks);
        Assert.True(kinks * 100 <= total, $"{name}: {kinks} of {total} values at a kink closer than 1e-3");
    }
}
