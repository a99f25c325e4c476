using Dsl.Compiler.Ops;

namespace Dsl.Compiler.Tests;

/// <summary>layer_norm, group_norm and instance_norm: PyTorch's state_dict names and shapes, kinds by rank, resolved arguments.</summary>
public sealed class NormalizationFamilyTests
{
    private static Semantics.BoundModel Model(string nn)
    {
        var result = NnCompiler.Compile(nn);
        Assert.Empty(result.Diagnostics);
        return result.Models.Single();
    }

    private static string StateDict(string nn) =>
        string.Join("; ", Model(nn).Tensors.Select(t => $"{t.Name} [{string.Join(", ", t.Shape)}]"));

    [Theory]
    [InlineData("model X(input: [4, 6, 6]) { layer_norm as ln }", "ln.weight [4, 6, 6]; ln.bias [4, 6, 6]")]
    [InlineData("model X(input: [4, 6, 6]) { layer_norm(6) as ln }", "ln.weight [6]; ln.bias [6]")]
    [InlineData("model X(input: [16]) { layer_norm(16, bias: false) }", "0.weight [16]")]
    [InlineData("model X(input: [16]) { layer_norm(elementwise_affine: false) }", "")]
    [InlineData("model X(input: [8, 4, 4]) { group_norm(2) as gn }", "gn.weight [8]; gn.bias [8]")]
    [InlineData("model X(input: [8, 4, 4]) { group_norm(2, 8, affine: false) }", "")]
    [InlineData("model X(input: [5, 7, 7]) { instance_norm2d }", "")]
    [InlineData("model X(input: [5, 7]) { instance_norm(affine: true, track_running_stats: true) as inorm }",
        "inorm.weight [5]; inorm.bias [5]; inorm.running_mean [5]; inorm.running_var [5]; inorm.num_batches_tracked []")]
    public void State_dict_is_pytorchs(string nn, string expected) => Assert.Equal(expected, StateDict(nn));

    [Theory]
    [InlineData("model X(input: [5, 7, 7]) { instance_norm }", "instance_norm2d(5, eps: 1E-05, momentum: 0.1, affine: false, track_running_stats: false)")]
    [InlineData("model X(input: [5, 7]) { instance_norm1d(5, eps: 1e-3) }", "instance_norm1d(5, eps: 0.001, momentum: 0.1, affine: false, track_running_stats: false)")]
    [InlineData("model X(input: [8, 4, 4]) { group_norm(4) }", "group_norm(4, 8, eps: 1E-05, affine: true)")]
    [InlineData("model X(input: [4, 6, 6]) { layer_norm }", "layer_norm([4, 6, 6], eps: 1E-05, elementwise_affine: true, bias: true)")]
    [InlineData("model X(input: [4, 6, 6]) { layer_norm(6, affine: false) }", "layer_norm([6], eps: 1E-05, elementwise_affine: false, bias: false)")]
    public void Describe_resolves_every_argument(string nn, string expected) => Assert.Equal(expected, Model(nn).Layers.Single().Describe());

    [Fact]
    public void Shapes_pass_through_and_statistics_are_kept_per_sample()
    {
        var model = Model("model X(input: [8, 4, 4]) { group_norm(4) -> relu -> layer_norm(4) -> instance_norm(affine: true) }");
        Assert.Equal(new[] { 8, 4, 4 }, model.OutputShape);
        var ops = model.Layers;
        Assert.Equal(2 * 4 + 2 * 8, ops[0].SavedLength); // group means and 1/std, per-channel partial sums for dγ
        Assert.Equal(2 * 32, ((LayerNormOp)ops[2]).SavedLength); // one row per (channel, height)
        Assert.Equal(4 * 8, ops[3].SavedLength);
    }

    [Fact]
    public void Instance_norm_1d_and_2d_names_fix_the_rank()
    {
        var result = NnCompiler.Compile("model X(input: [5, 7, 7]) { instance_norm1d }");
        Assert.Equal("NN1013", Assert.Single(result.Diagnostics).Id);
    }

    [Fact]
    public void Layer_norm_on_a_batch_of_one_needs_no_warning()
    {
        // Per-sample statistics: unlike bn1d, nothing depends on the rest of the batch.
        Assert.Empty(NnCompiler.Compile("model X(input: [8]) { linear(8, 4) -> layer_norm -> relu }").Diagnostics);
    }
}
