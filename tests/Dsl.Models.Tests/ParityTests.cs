using Xunit.Abstractions;

namespace Dsl.Models.Tests;

/// <summary>
/// Each of the 21 PyTorch bundles (13 of v1; 8 of v2: activations, the normalization family, a ResNet and a dense concatenation): the generated model, loaded with the bundle's initial state, must
/// reproduce PyTorch's training output, input gradient, every parameter gradient, the updated running
/// statistics and the eval output, each within 1e-4 · max(1, max |reference|) (max abs error).
/// </summary>
public sealed class ParityTests(ITestOutputHelper output)
{
    public static TheoryData<string> Cases() => new(Golden.CaseNames());

    /// <summary>Every bundle, single-threaded and on two threads (the batch split across the worker pool).</summary>
    public static TheoryData<string, int> CasesAndThreads()
    {
        var data = new TheoryData<string, int>();
        foreach (var name in Golden.CaseNames())
        {
            data.Add(name, 1);
            data.Add(name, 2);
        }

        return data;
    }

    [Fact]
    public void All_twenty_one_bundles_are_tested() => Assert.Equal(21, Cases().Count);

    [Theory]
    [MemberData(nameof(CasesAndThreads))]
    public void Matches_pytorch(string name, int threads)
    {
        var bundle = Golden.Load(name);
        int batch = int.Parse(bundle.Metadata["batch"]);
        int steps = int.Parse(bundle.Metadata["train_steps"]);
        var model = Golden.CreateModel(bundle, threads: threads);
        Assert.Equal(threads, model.Threads);
        model.LoadState(bundle, allowExtra: true);

        var input = bundle["input"].ToFloatArray();
        var outputGrad = bundle["output_grad"].ToFloatArray();
        var result = new float[batch * model.SampleOutputLength];
        var inputGrad = new float[input.Length];
        for (int step = 0; step < steps; step++)
        {
            model.ZeroGrad();
            model.Forward(input, result, batch);
            model.Backward(outputGrad, inputGrad);
        }

        var failures = new List<string>();
        void Check(string what, ReadOnlySpan<float> actual, ReadOnlySpan<float> expected)
        {
            var (error, tolerance) = Golden.Compare(actual, expected);
            output.WriteLine($"{name} {what}: max abs error {error:E2} (tolerance {tolerance:E2})");
            if (error > tolerance) failures.Add($"{what}: {error:E3} > {tolerance:E3}");
        }

        Check("train.output", result, bundle["train.output"].ToFloatArray());
        Check("train.input_grad", inputGrad, bundle["train.input_grad"].ToFloatArray());
        int checkedTensors = 0;
        foreach (var tensor in model.Tensors)
        {
            switch (tensor.Storage)
            {
                case TensorStorage.Parameter:
                    Check($"train.grad.{tensor.Name}", model.Gradient(tensor.Name), bundle[$"train.grad.{tensor.Name}"].ToFloatArray());
                    break;
                case TensorStorage.Buffer:
                    Check($"train.state.{tensor.Name}", model.Tensor(tensor.Name), bundle[$"train.state.{tensor.Name}"].ToFloatArray());
                    break;
                default:
                    Assert.Equal(bundle[$"train.state.{tensor.Name}"].ToInt64Array()[0], model.Counter(tensor.Name));
                    break;
            }

            checkedTensors++;
        }

        Assert.Equal(model.Tensors.Count, checkedTensors);
        var evaluated = new float[result.Length];
        model.Infer(input, evaluated, batch);
        Check("eval.output", evaluated, bundle["eval.output"].ToFloatArray());
        Assert.Empty(failures);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Every_gradient_and_buffer_in_the_bundle_is_checked(string name)
    {
        // The bundle is the contract: nothing it records may go unchecked by the test above.
        var bundle = Golden.Load(name);
        var model = Golden.CreateModel(bundle);
        var names = model.Tensors.Select(t => t.Storage == TensorStorage.Parameter ? $"train.grad.{t.Name}" : $"train.state.{t.Name}").ToHashSet();
        var recorded = bundle.Tensors.Select(t => t.Name).Where(n => n.StartsWith("train.grad.", StringComparison.Ordinal) || n.StartsWith("train.state.", StringComparison.Ordinal));
        Assert.All(recorded, n => Assert.Contains(n, names));
    }
}
