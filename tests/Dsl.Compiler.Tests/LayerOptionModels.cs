using Dsl.Cli;
using Dsl.Compiler.Semantics;
using Dsl.Runtime;

namespace Dsl.Compiler.Tests;

/// <summary>
/// Models that use the layer options the golden bundles do not (pair kernels and strides, dilation, ceil mode, average
/// pooling without the padding, 1-d pooling, dropout, softmax, frozen and affine-free batch norm, instance norm with
/// running statistics, layer and group norm on features), for the exporters' tests against ONNX Runtime and PyTorch.
/// </summary>
internal static class LayerOptionModels
{
    public const string Source = """
        model Options(input: [3, 11, 11]) { conv(3, 4, (3, 2), stride: (2, 1), padding: (1, 0), dilation: (1, 2)) -> bn2d(momentum: none) -> maxpool(3, stride: 2, padding: 1, ceil_mode: true) -> avgpool(2, stride: 1, padding: 1, ceil_mode: true, count_include_pad: false) -> gelu -> dropout(0.3) -> flatten -> linear(120, 5) -> softmax }
        model Sequence(input: [2, 20]) { conv1d(2, 3, 3, stride: 2, padding: 2, dilation: 2, bias: false) -> bn1d(eps: 1e-3, affine: false) -> leaky_relu(0.2) -> maxpool1d(2, dilation: 2) -> avgpool(3, stride: 2, ceil_mode: true) -> instance_norm1d(affine: true, track_running_stats: true) -> silu -> global_avgpool -> linear(3, 2, bias: false) -> log_softmax }
        model Frozen(input: [6]) { linear(6, 4) -> bn1d(frozen: true) -> sigmoid -> layer_norm(elementwise_affine: false) -> linear(4, 3) -> group_norm(3, eps: 1e-4) -> tanh }
        """;

    public static TheoryData<string> Names() => new("Options", "Sequence", "Frozen");

    public static BoundModel Bound(string name) => NnCompiler.Compile(Source).Models.Single(m => m.Name == name);

    /// <summary>The generated class with PyTorch's default initialization (seed 0) and random running statistics and affine parameters.</summary>
    public static CompiledModel Create(string name, int maxBatch)
    {
        var model = InMemoryModel.Create(Source, "options.nn", name, maxBatch);
        var rng = new Random(11);
        foreach (var tensor in Bound(name).Tensors)
        {
            if (tensor.Role == TensorRole.NumBatchesTracked || (tensor.Role is TensorRole.Weight or TensorRole.Bias && tensor.Shape.Count != 1)) continue;
            var values = model.Tensor(tensor.Name);
            for (int i = 0; i < values.Length; i++)
            {
                values[i] = tensor.Role switch
                {
                    TensorRole.RunningVar => 0.5f + 1.5f * (float)rng.NextDouble(),
                    TensorRole.Weight => 0.5f + (float)rng.NextDouble(),
                    _ => (float)rng.NextDouble() - 0.5f,
                };
            }
        }

        return model;
    }

    public static float[] Input(CompiledModel model, int batch) =>
        Enumerable.Range(0, batch * model.SampleInputLength).Select(i => MathF.Sin(0.61f * i + 0.3f) * 2f).ToArray();
}
