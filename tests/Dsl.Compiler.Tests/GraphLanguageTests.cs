using Dsl.Compiler.Diagnostics;
using Dsl.Compiler.Ops;
using Dsl.Compiler.Semantics;

namespace Dsl.Compiler.Tests;

/// <summary>
/// The graph language (docs/language.md, "Graphs and blocks"): blocks bound per use, statements and merges, groups,
/// repetition, PyTorch's naming rule, and errors of a block's use reported at the use with the failing layer as a
/// secondary location.
/// </summary>
public sealed class GraphLanguageTests
{
    private const string Blocks = """
        block BasicBlock(inplanes, planes, stride = 1) {
            out = conv(inplanes, planes, 3, stride: stride, padding: 1, bias: false) as conv1
                  -> bn2d as bn1 -> relu
                  -> conv(planes, planes, 3, padding: 1, bias: false) as conv2
                  -> bn2d as bn2;
            add(out, input) -> relu
        }

        block DownBlock(inplanes, planes, stride = 2) {
            out = conv(inplanes, planes, 3, stride: stride, padding: 1, bias: false) as conv1
                  -> bn2d as bn1 -> relu
                  -> conv(planes, planes, 3, padding: 1, bias: false) as conv2
                  -> bn2d as bn2;
            skip = input -> (conv(inplanes, planes, 1, stride: stride, bias: false) -> bn2d) as downsample;
            add(out, skip) -> relu
        }

        """;

    private const string ResNet20 = Blocks + """
        model ResNet20(input: [3, 32, 32]) {
            conv(3, 16, 3, padding: 1, bias: false) as conv1 -> bn2d as bn1 -> relu
            -> (BasicBlock(16, 16) * 3) as layer1
            -> (DownBlock(16, 32) -> BasicBlock(32, 32) * 2) as layer2
            -> (DownBlock(32, 64) -> BasicBlock(64, 64) * 2) as layer3
            -> global_avgpool
            -> linear(64, 10) as fc
        }
        """;

    private static BoundModel Model(string nn)
    {
        var result = NnCompiler.Compile(nn);
        Assert.False(result.HasErrors, string.Join("\n", result.Diagnostics));
        return Assert.Single(result.Models);
    }

    [Fact]
    public void The_specs_ResNet20_has_its_272474_parameters_and_PyTorchs_keys()
    {
        var model = Model(ResNet20);
        Assert.Equal(272_474, model.ParameterCount);
        Assert.Equal(new[] { 10 }, model.OutputShape);
        var keys = model.Tensors.Select(t => t.Name).ToHashSet();
        foreach (var key in new[] { "conv1.weight", "bn1.num_batches_tracked", "layer1.2.conv2.weight", "layer2.0.downsample.0.weight",
                     "layer2.0.downsample.1.running_var", "layer2.2.bn2.bias", "layer3.0.conv1.weight", "fc.bias" })
            Assert.Contains(key, keys);
        Assert.DoesNotContain(keys, k => k.StartsWith("layer1.3.", StringComparison.Ordinal) || k.StartsWith("layer2.3.", StringComparison.Ordinal));

        // Every value of a residual block's input has two readers: the first conv and the add.
        var add = model.Graph.Nodes.First(n => n.Op is MergeOp);
        Assert.Equal("layer1.0.add", add.Op.Name);
        Assert.Equal(2, model.Graph.Consumers(add.Inputs[1]).Count);
        Assert.Equal(9, model.Graph.Nodes.Count(n => n.Op is MergeOp { IsConcat: false }));
    }

    [Fact]
    public void The_hierarchy_nests_groups_blocks_and_layers_with_their_totals()
    {
        var root = Model(ResNet20).Modules!;
        Assert.Equal(new[] { "conv1", "bn1", "2", "layer1", "layer2", "layer3", "6", "fc" }, root.Children.Select(c => c.Name));
        var layer2 = root.Children.Single(c => c.Name == "layer2");
        Assert.Equal(ModuleKind.Group, layer2.Kind);
        Assert.Equal(new[] { ("0", "DownBlock", "16, 32, 2"), ("1", "BasicBlock", "32, 32, 1"), ("2", "BasicBlock", "32, 32, 1") },
            layer2.Children.Select(c => (c.Name, c.TypeName, c.Arguments!)));
        var downsample = layer2.Children[0].Children.Single(c => c.Name == "downsample");
        Assert.Equal("layer2.0.downsample", downsample.Path);
        Assert.Equal(new[] { "layer2.0.downsample.0", "layer2.0.downsample.1" }, downsample.Children.Select(c => c.Path));
        Assert.Equal(16 * 32 * 3 * 3 + 32 * 32 * 3 * 3 + 16 * 32 + 3 * 2 * 32 + 2 * (2 * (32 * 32 * 9 + 2 * 32)), layer2.ParameterCount);
        Assert.Equal(Model(ResNet20).ParameterCount, root.ParameterCount);
    }

    [Fact]
    public void A_block_parameter_stands_wherever_a_value_may_and_defaults_apply()
    {
        var model = Model(Blocks + "model M(input: [8, 8, 8]) { DownBlock(8, 16, stride: 1) as a -> DownBlock(16, 4) as b }");
        var conv = (ConvOp)model.Layers.Single(l => l.Name == "a.conv1");
        Assert.Equal(1, conv.Stride.H);
        Assert.Equal(new[] { 4, 4, 4 }, model.OutputShape);
        // The generated code quotes the layer with the use's values.
        Assert.Equal("conv(16, 4, 3, stride: 2, padding: 1, bias: false) as conv1", model.Layers.Single(l => l.Name == "b.conv1").Source);
    }

    [Fact]
    public void Children_are_named_by_as_else_by_position_counting_every_child()
    {
        var model = Model("""
            block Pair(c) { x = conv(c, c, 1) -> relu; y = input -> tanh -> conv(c, c, 1) as last; add(x, y) }
            model M(input: [2, 4, 4]) { relu -> Pair(2) -> (conv(2, 2, 1) -> Pair(2) * 2) as body -> flatten }
            """);
        Assert.Equal(new[] { "1.0.weight", "1.0.bias", "1.last.weight", "1.last.bias", "body.0.weight", "body.0.bias",
                "body.1.0.weight", "body.1.0.bias", "body.1.last.weight", "body.1.last.bias", "body.2.0.weight", "body.2.0.bias", "body.2.last.weight", "body.2.last.bias" },
            model.Tensors.Select(t => t.Name));
    }

    [Fact]
    public void Concat_joins_channels_and_features()
    {
        var dense = Model("""
            block Dense(channels, growth) {
                new = bn2d(channels) as norm -> relu -> conv(channels, growth, 3, padding: 1, bias: false) as conv;
                concat(input, new)
            }
            model DenseNetTiny(input: [3, 12, 12]) {
                conv(3, 6, 3, padding: 1, bias: false) as stem -> Dense(6, 4) as dense1 -> Dense(10, 4) as dense2
                -> bn2d as norm -> relu -> global_avgpool -> linear(14, 5) as fc
            }
            """);
        Assert.Equal(new[] { 5 }, dense.OutputShape);
        Assert.Equal(new[] { 14, 12, 12 }, dense.Layers.Single(l => l.Name == "dense2.concat").OutputShape);
        var features = Model("model M(input: [6]) { a = linear(6, 4) as fc; concat(a, input, add(a, a)) -> linear(14, 2) as head }");
        Assert.Equal(new[] { 14 }, features.Layers.Single(l => l.KindName == "concat").OutputShape);
    }

    [Fact]
    public void Every_v1_chain_binds_to_the_same_ops_as_before()
    {
        var chain = Model("model LeNet(input: [1, 34, 34]) { conv(1, 6, 5) -> bn2d -> maxpool(2) -> flatten -> linear(1350, 10) }");
        Assert.Equal(new[] { "0", "1", "2", "3", "4" }, chain.Layers.Select(l => l.Name));
        Assert.Equal(Enumerable.Range(0, 5), chain.Graph.Nodes.Select(n => n.Id));
        Assert.All(chain.Graph.Nodes, n => Assert.Equal(n.Id, n.Input.Id));
        Assert.Equal(new[] { "0", "1", "2", "3", "4" }, chain.Modules!.Children.Select(c => c.Name));
    }

    [Fact]
    public void A_shape_error_inside_a_block_is_reported_at_the_use_with_the_layer_inside_as_secondary_location()
    {
        string nn = Blocks + "model M(input: [3, 8, 8]) {\n    conv(3, 16, 3, padding: 1) as stem\n    -> BasicBlock(16, 32) as b1\n}";
        var diagnostic = Assert.Single(NnCompiler.Compile(nn).Diagnostics, d => d.IsError);
        Assert.Equal("NN1026", diagnostic.Id);
        int use = nn.IndexOf("BasicBlock(16, 32) as b1", StringComparison.Ordinal);
        Assert.Equal((use, "BasicBlock(16, 32) as b1".Length), (diagnostic.Span.Start, diagnostic.Span.Length));
        Assert.Equal("in 'b1' = BasicBlock(inplanes: 16, planes: 32, stride: 1): add: 'input' is [16, 8, 8] but 'out' is [32, 8, 8]; add needs equal shapes; "
            + "for a shortcut, project it: skip = input -> (conv(16, 32, 1, bias: false) -> bn2d) as downsample", diagnostic.Message);
        var inner = Assert.Single(diagnostic.AdditionalSpans);
        Assert.Equal(nn.IndexOf("input) -> relu", StringComparison.Ordinal), inner.Start);
        Assert.Equal(6, inner.Line);
    }

    [Fact]
    public void A_nested_block_error_names_every_call_outermost_first()
    {
        string nn = """
            block Inner(c) { conv(c, c, 3) as conv }
            block Outer(c) { Inner(c) as inner -> relu }
            model M(input: [4, 2, 2]) { Outer(4) as o }
            """;
        var diagnostic = Assert.Single(NnCompiler.Compile(nn).Diagnostics);
        Assert.Equal("NN1014", diagnostic.Id);
        Assert.Equal(nn.IndexOf("Outer(4) as o", StringComparison.Ordinal), diagnostic.Span.Start);
        Assert.StartsWith("in 'o.inner' = Inner(c: 4): ", diagnostic.Message);
        Assert.Equal(new[] { nn.IndexOf("Inner(c) as inner", StringComparison.Ordinal), nn.IndexOf("3) as conv", StringComparison.Ordinal) },
            diagnostic.AdditionalSpans.Select(s => s.Start));
        Assert.Contains("related location of NN1014", diagnostic.Format("m.nn"));
        Assert.Equal(3, diagnostic.Format("m.nn").Split('\n').Length);
    }

    [Fact]
    public void A_value_out_of_range_through_a_parameter_is_per_use_and_a_written_one_is_reported_once_in_the_block()
    {
        string nn = """
            block B(k) { conv(4, 4, k) as a -> conv(4, 4, 0) as b }
            model M(input: [4, 8, 8]) { B(3) as x -> B(-1) as y }
            """;
        var errors = NnCompiler.Compile(nn).Diagnostics.Where(d => d.IsError).ToList();
        var written = Assert.Single(errors, d => d.Span.Start == nn.IndexOf("0) as b", StringComparison.Ordinal));
        Assert.Empty(written.AdditionalSpans);
        var perUse = Assert.Single(errors, d => d.Span.Start == nn.IndexOf("B(-1) as y", StringComparison.Ordinal));
        Assert.StartsWith("in 'y' = B(k: -1): ", perUse.Message);
        Assert.Equal(nn.IndexOf("k) as a", StringComparison.Ordinal), Assert.Single(perUse.AdditionalSpans).Start);
        Assert.Equal(2, errors.Count);
    }

    [Fact]
    public void Block_arguments_have_the_errors_of_layer_arguments()
    {
        Assert.Contains("block 'BasicBlock' has no parameter 'strid'; did you mean 'stride'?",
            Markup.Expect(Blocks + "model M(input: [4, 4, 4]) { BasicBlock(4, 4, [|strid|]: 2) }", "NN1002").Message);
        Assert.Contains("'BasicBlock' needs 'planes': it takes BasicBlock(inplanes, planes, stride = 1)",
            Markup.Expect(Blocks + "model M(input: [4, 4, 4]) { [|BasicBlock|](4) }", "NN1004").Message);
        Assert.Contains("argument 'planes' of 'BasicBlock' is given more than once",
            Markup.Expect(Blocks + "model M(input: [4, 4, 4]) { BasicBlock(4, 4, [|planes: 4|]) }", "NN1003").Message);
        Assert.Contains("'stride' of 'BasicBlock' must be an integer like its default 1, not the decimal 1.5",
            Markup.Expect(Blocks + "model M(input: [4, 4, 4]) { BasicBlock(4, 4, stride: [|1.5|]) }", "NN1005").Message);
        Assert.Contains("'BasicBlock' takes at most 3 arguments",
            Markup.Expect(Blocks + "model M(input: [4, 4, 4]) { BasicBlock(4, 4, 1, [|2|]) }", "NN1007").Message);
    }

    [Fact]
    public void A_broken_block_is_reported_once_however_often_it_is_used()
    {
        string nn = "block B(c) { relu -> relux }\nmodel M(input: [4]) { B(4) -> B(4) * 3 }";
        var diagnostic = Assert.Single(NnCompiler.Compile(nn).Diagnostics);
        Assert.Equal("NN1001", diagnostic.Id);
        Assert.Equal(nn.IndexOf("relux", StringComparison.Ordinal), diagnostic.Span.Start);
    }

    [Fact]
    public void Blocks_may_follow_the_models_that_use_them_and_unused_blocks_are_checked()
    {
        Assert.Equal(new[] { 4 }, Model("model M(input: [4]) { B(4) }\nblock B(c) { linear(c, c) }").OutputShape);
        var diagnostic = Assert.Single(NnCompiler.Compile("model M(input: [4]) { relu }\nblock Unused(c) { linear(c, c) -> [|relux|] }".Replace("[|", "").Replace("|]", "")).Diagnostics);
        Assert.Equal("NN1001", diagnostic.Id);
    }

    [Fact]
    public void Repetition_beyond_the_layer_limit_stops_at_the_count()
    {
        var diagnostic = Markup.Expect("block B(c) { relu * 1000 }\nmodel M(input: [4]) { B(4) * [|1000000|] }", "NN1022");
        Assert.Contains("more than the 10000 layers a model can hold", diagnostic.Message);
        var nested = NnCompiler.Compile("block A(c) { relu * 1000 }\nblock B(c) { A(c) * 1000 }\nmodel M(input: [4]) { B(4) * 1000 }");
        Assert.Contains(nested.Diagnostics, d => d.Id == "NN1022");
        Assert.Empty(nested.Models);
    }

    [Fact]
    public void Lints_see_through_the_graph()
    {
        // A bias before batch norm inside a block: reported once, at the bias, for all three uses.
        string nn = "block B(c) { x = conv(c, c, 3, padding: 1, bias: true) -> bn2d; add(x, input) }\nmodel M(input: [4, 6, 6]) { B(4) * 3 }";
        var warning = Assert.Single(NnCompiler.Compile(nn).Diagnostics);
        Assert.Equal("NN2001", warning.Id);
        Assert.Equal(nn.IndexOf("true", StringComparison.Ordinal), warning.Span.Start);
    }

    [Fact]
    public void A_model_whose_output_is_its_input_computes_nothing_and_is_an_error()
    {
        Assert.Contains("model 'M' computes nothing: its output is its input", Markup.Expect("model [|M|](input: [4]) { input }", "NN1035").Message);
        Markup.Expect("block Identity() { input }\nmodel [|M|](input: [4]) { Identity() }", "NN1035");
        Assert.Equal(new[] { 4 }, Model("block Identity() { input }\nmodel M(input: [4]) { Identity() -> relu }").OutputShape);
    }

    [Fact]
    public void What_only_an_unused_value_computes_is_left_out_of_the_model()
    {
        var result = NnCompiler.Compile("model M(input: [4]) { a = linear(4, 4) as dead -> relu; input -> tanh -> linear(4, 2) as fc }");
        Assert.Equal("NN2008", Assert.Single(result.Diagnostics).Id);
        var model = Assert.Single(result.Models);
        Assert.Equal(new[] { "tanh", "linear" }, model.Graph.Nodes.Select(n => n.Op.KindName));
        Assert.Equal(new[] { "fc.weight", "fc.bias" }, model.Tensors.Select(t => t.Name));
        Assert.Equal(new[] { "2", "fc" }, model.Modules!.Children.Select(c => c.Name)); // positions count the left-out layers: dead is 0, its relu 1
        // And it trains and infers like the same model without the unused statement.
        var (errors, assembly) = GeneratedCompilation.Build(GeneratedCompilation.Generate("model M(input: [4]) { a = linear(4, 4) as dead -> relu; input -> tanh -> linear(4, 2) as fc }"));
        Assert.Empty(errors);
        GeneratedCompilation.Run(assembly!.GetTypes().Single(t => t.Name == "M"));
    }
}

/// <summary>
/// A merge may read one value twice (<c>add(x, x)</c>, <c>concat(x, x)</c>, as PyTorch allows): the value's gradient is the
/// sum of both shares. Checked against central differences of the loss sum(output · g) in double precision.
/// </summary>
public sealed class RepeatedMergeArgumentTests
{
    [Theory]
    [InlineData("model M(input: [4]) { x = linear(4, 4) as a; add(x, x) -> tanh -> linear(4, 2) as b }")]
    [InlineData("model M(input: [4]) { x = tanh; concat(x, x) -> linear(8, 2) as b }")]
    [InlineData("model M(input: [4]) { add(input, input, input) -> tanh -> linear(4, 2) as b }")]
    [InlineData("model M(input: [4]) { x = linear(4, 4) as a -> tanh; y = add(x, input); concat(y, x, y) -> linear(12, 2) as b }")]
    public void The_input_gradient_equals_central_differences(string nn)
    {
        const int batch = 3;
        var model = Dsl.Cli.InMemoryModel.Create(nn, "m.nn", "M", maxBatch: batch);
        var random = new Random(5);
        var input = Enumerable.Range(0, batch * 4).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        var g = Enumerable.Range(0, batch * 2).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        var output = new float[batch * 2];
        var inputGrad = new float[input.Length];
        model.ZeroGrad();
        model.Forward(input, output, batch);
        model.Backward(g, inputGrad);

        double Loss(float[] x)
        {
            var y = new float[batch * 2];
            model.Infer(x, y, batch); // no batch norm or dropout: inference is the same function
            return y.Select((v, i) => (double)v * g[i]).Sum();
        }

        for (int i = 0; i < input.Length; i++)
        {
            const float h = 1e-2f;
            var plus = (float[])input.Clone();
            var minus = (float[])input.Clone();
            plus[i] += h;
            minus[i] -= h;
            double numeric = (Loss(plus) - Loss(minus)) / (2 * h);
            Assert.True(Math.Abs(numeric - inputGrad[i]) <= 2e-3 * Math.Max(1, Math.Abs(numeric)), $"dL/dx[{i}]: backward {inputGrad[i]}, central difference {numeric}");
        }
    }
}
