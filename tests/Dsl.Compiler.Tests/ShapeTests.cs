namespace Dsl.Compiler.Tests;

/// <summary>Output sizes follow PyTorch's rules: padding, dilation, stride, groups and ceil_mode.</summary>
public sealed class ShapeTests
{
    private static int[] Output(string nn) => NnCompiler.Compile(nn).Models.Single().OutputShape.ToArray();

    [Theory]
    // Conv: floor((in + 2p - d(k-1) - 1)/s) + 1
    [InlineData("model X(input: [1, 34, 34]) { conv(1, 6, 5) }", new[] { 6, 30, 30 })]
    [InlineData("model X(input: [3, 16, 16]) { conv2d(3, 8, 3, stride: 2, padding: 1) }", new[] { 8, 8, 8 })]
    [InlineData("model X(input: [4, 10, 10]) { conv2d(4, 8, 3, dilation: 2, groups: 2) }", new[] { 8, 6, 6 })]
    [InlineData("model X(input: [2, 9, 7]) { conv(2, 4, (3, 1), stride: (2, 1), padding: (1, 0)) }", new[] { 4, 5, 7 })]
    [InlineData("model X(input: [1, 32]) { conv1d(1, 10, 5) }", new[] { 10, 28 })]
    // Pooling, stride defaulting to the kernel
    [InlineData("model X(input: [6, 30, 30]) { maxpool(2) }", new[] { 6, 15, 15 })]
    [InlineData("model X(input: [6, 31, 31]) { maxpool(2) }", new[] { 6, 15, 15 })]
    [InlineData("model X(input: [6, 31, 31]) { maxpool(2, ceil_mode: true) }", new[] { 6, 16, 16 })]
    [InlineData("model X(input: [4, 9, 9]) { maxpool(3, stride: 2) }", new[] { 4, 4, 4 })]
    [InlineData("model X(input: [1, 10, 10]) { maxpool(3, stride: 2, ceil_mode: true) }", new[] { 1, 5, 5 })]
    // ceil_mode drops a last window that would start in the right padding: PyTorch gives 3, not 4, here.
    [InlineData("model X(input: [1, 5, 5]) { avgpool(2, stride: 2, padding: 1, ceil_mode: true) }", new[] { 1, 3, 3 })]
    [InlineData("model X(input: [1, 6, 6]) { maxpool(3, stride: 2, padding: 1, dilation: 2) }", new[] { 1, 2, 2 })]
    // ceil_mode with a kernel larger than the input: div_rtn(2 − 2 − 1 + (2 − 1), 2) + 1 = 1, not an error.
    [InlineData("model X(input: [1, 2, 2]) { maxpool(3, stride: 2, ceil_mode: true) }", new[] { 1, 1, 1 })]
    [InlineData("model X(input: [3, 8]) { avgpool(3, stride: 2, padding: 1) }", new[] { 3, 4 })]
    // Reshaping layers
    [InlineData("model X(input: [6, 13, 13]) { flatten }", new[] { 1014 })]
    [InlineData("model X(input: [32, 8, 8]) { global_avgpool }", new[] { 32 })]
    [InlineData("model X(input: [10, 28]) { global_avgpool }", new[] { 10 })]
    [InlineData("model X(input: [10, 28]) { bn -> relu -> dropout(0.1) }", new[] { 10, 28 })]
    public void Matches_pytorch(string nn, int[] expected) => Assert.Equal(expected, Output(nn));

    [Theory]
    [InlineData("model X(input: [4]) { bn }", "bn1d")]
    [InlineData("model X(input: [4, 8]) { bn }", "bn1d")]
    [InlineData("model X(input: [4, 8, 8]) { bn }", "bn2d")]
    [InlineData("model X(input: [4, 8]) { conv(4, 4, 3) }", "conv1d")]
    [InlineData("model X(input: [4, 8, 8]) { avgpool(2) }", "avgpool2d")]
    [InlineData("model X(input: [4, 8]) { maxpool(2) }", "maxpool1d")]
    public void Rank_generic_layers_resolve_by_input_rank(string nn, string kind) =>
        Assert.Equal(kind, NnCompiler.Compile(nn).Models.Single().Layers.Single().KindName);

    [Fact]
    public void Parameter_counts_and_flops_follow_the_documented_convention()
    {
        var model = NnCompiler.Compile("model LeNet(input: [1, 34, 34]) { conv(1, 6, 5) as conv1 -> maxpool(2) -> bn2d as bn1 -> flatten -> linear(1350, 10) as fc1 }").Models.Single();
        Assert.Equal(new long[] { 156, 0, 12, 0, 13510 }, model.Layers.Select(l => l.ParameterCount));
        Assert.Equal(13678, model.ParameterCount);
        // conv: 2·(6·30·30)·(1·5·5) multiply-adds + one add of the bias per output.
        Assert.Equal(2L * 6 * 30 * 30 * 25 + 6 * 30 * 30, model.Layers[0].Flops);
        Assert.Equal(2L * 1350 * 10 + 10, model.Layers[4].Flops);
        Assert.Equal(new[] { "conv1.weight", "conv1.bias", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked", "fc1.weight", "fc1.bias" },
            model.Tensors.Select(t => t.Name));
    }

    [Fact]
    public void Named_arguments_take_pytorch_names_and_short_forms()
    {
        var a = NnCompiler.Compile("model X(input: [3, 8, 8]) { conv(in_channels: 3, out_channels: 4, kernel_size: 3, bias: false) -> bn2d(num_features: 4) -> flatten -> linear(in_features: 144, out_features: 2) }");
        var b = NnCompiler.Compile("model X(input: [3, 8, 8]) { conv(in: 3, out: 4, kernel: 3, bias: false) -> bn2d(features: 4) -> flatten -> linear(in: 144, out: 2) }");
        Assert.Empty(a.Diagnostics);
        Assert.Empty(b.Diagnostics);
        Assert.Equal(a.Models.Single().Tensors.Select(t => t.Name + string.Join(",", t.Shape)), b.Models.Single().Tensors.Select(t => t.Name + string.Join(",", t.Shape)));
    }

    [Fact]
    public void Momentum_none_and_namespace_are_bound()
    {
        var result = NnCompiler.Compile("namespace A.B; model X(input: [4]) { bn(momentum: none) }", "Root");
        var model = result.Models.Single();
        Assert.Equal("A.B", model.Namespace);
        Assert.Null(((Dsl.Compiler.Ops.BatchNormOp)model.Layers[0]).Momentum);
        Assert.Equal("Root", NnCompiler.Compile("model X(input: [4]) { relu }", "Root").Models.Single().Namespace);
    }
}
