using System.Reflection;
using Dsl.Compiler.Semantics;
using Dsl.Runtime;

namespace Dsl.Compiler.Tests;

/// <summary>
/// Issue #16, items 3 and 4: files <c>nnc check</c> accepted whose generated C# did not compile, or whose model failed
/// at run time. Each is now either built and run here (Roslyn in memory) or rejected with an NN diagnostic at its span.
/// </summary>
public sealed class GeneratedCodeBuildsTests
{
    private static Type BuildOne(string nn, string? rootNamespace = null)
    {
        var sources = GeneratedCompilation.Generate(nn, rootNamespace: rootNamespace);
        var (errors, assembly) = GeneratedCompilation.Build(sources);
        Assert.True(errors.Count == 0, string.Join("\n", errors) + "\n" + nn);
        return assembly!.GetTypes().Single(t => t.IsSubclassOf(typeof(CompiledModel)));
    }

    private static void BuildsAndRuns(string nn, string? rootNamespace = null) => GeneratedCompilation.Run(BuildOne(nn, rootNamespace));

    [Theory]
    // CS0102: FcPackedWeight defined twice (fc's packed weight, fc_packed's weight), in both orders.
    [InlineData("model Net(input: [20]) { linear(20, 8) as fc -> relu -> linear(8, 4) as fc_packed }")]
    [InlineData("model Net(input: [20]) { linear(20, 8) as fc_packed -> relu -> linear(8, 4) as fc }")]
    // CS0542: a member named like the class.
    [InlineData("model FcPackedWeight(input: [20]) { linear(20, 8) as fc -> relu -> linear(8, 4) as fc_packed }")]
    [InlineData("model FcWeight(input: [20]) { linear(20, 8) as fc }")]
    [InlineData("model Layer0Out(input: [20]) { linear(20, 8) -> relu }")]
    // Pascal case merges names; At<id> could itself be taken; a layer 'input' gives the fixed InputGrad.
    [InlineData("model Net(input: [8]) { linear(8, 8) as a_b -> relu as a__b -> linear(8, 8) as ab -> tanh as a_b_ }")]
    [InlineData("model Net(input: [8]) { linear(8, 8) as x_at2 -> relu as x -> linear(8, 8) as x_ -> relu as x_at2_1 }")]
    [InlineData("model Net(input: [8]) { bn1d as input -> linear(8, 8) as input_copy -> relu as arena_per_sample }")]
    [InlineData("model Net(input: [2, 8, 8]) { conv(2, 4, 3) as c -> maxpool(2) as c_ -> bn2d as c_geometry -> dropout(0.5) as c__ -> flatten -> linear(36, 2) as c_scale }")]
    public void Layer_names_that_gave_clashing_members_build(string nn) => BuildsAndRuns(nn);

    [Fact]
    public void A_layer_name_of_2000_characters_builds()
    {
        // CS7013 (a name longer than 1,023 bytes): member prefixes are cut to 200 characters; the state_dict name stays whole.
        string name = new string('a', 1000) + "é" + new string('b', 999);
        var type = BuildOne($"model Net(input: [8]) {{ linear(8, 4) as {name} -> relu as {name}_ }}");
        GeneratedCompilation.Run(type);
        var model = (CompiledModel)Activator.CreateInstance(type, 1, 0, 1)!;
        Assert.Equal(4 * 8, model.Tensor(name + ".weight").Length);
    }

    [Fact]
    public void A_model_name_beyond_255_characters_is_NN1018_at_the_name()
    {
        string name = "N" + new string('é', 300);
        var diagnostic = Markup.Expect($"model [|{name}|](input: [8]) {{ relu }}", "NN1018");
        Assert.Contains("301 characters, more than the 255", diagnostic.Message);
        BuildsAndRuns($"model {name.Substring(0, CSharpNames.MaxQualifiedNameLength)}(input: [8]) {{ relu }}");
        // The namespace counts: the class's metadata name includes it.
        string ns = string.Join(".", Enumerable.Repeat(new string('n', 60), 5));
        Markup.Expect($"namespace {ns}; model [|Net|](input: [8]) {{ relu }}", "NN1018");
    }

    [Theory]
    [InlineData("namespace System; model [|Array|](input: [8]) { relu }", "namespace 'System' belongs to .NET")]
    [InlineData("namespace System.Collections; model [|Net|](input: [8]) { relu }", "namespace 'System.Collections' belongs to .NET")]
    [InlineData("namespace Dsl.Runtime; model [|ConvGeometry|](input: [8]) { relu }", "belongs to the Dsl runtime")]
    [InlineData("namespace Dsl.Runtime.Kernels; model [|Pooling|](input: [8]) { relu }", "belongs to the Dsl runtime")]
    [InlineData("model [|System|](input: [8]) { relu }", "would hide the namespace 'System'")]
    [InlineData("model [|Dsl|](input: [8]) { relu }", "would hide the namespace 'Dsl.Runtime'")]
    [InlineData("namespace Dsl; model [|Runtime|](input: [8]) { relu }", "would hide the namespace 'Dsl.Runtime'")]
    public void A_model_that_would_hide_a_type_the_generated_code_uses_is_NN1018(string markup, string message)
    {
        Assert.Contains(message, Markup.Expect(markup, "NN1018").Message);
        // The placeholder of a rejected model is not emitted either (it would hide the type just the same).
        var (text, _, _, _, _) = Markup.Parse(markup);
        Assert.Empty(Dsl.Compiler.CodeGeneration.Generate(text, "x.nn", null).Sources);
    }

    [Theory]
    [InlineData("namespace Dsl; model Net(input: [8]) { relu }", null)]
    [InlineData("namespace Foo.System; model Array(input: [8]) { relu }", null)]
    [InlineData("namespace Foo.Dsl.Runtime; model TensorInfo(input: [8]) { relu }", null)]
    [InlineData("model Math(input: [8]) { relu }", "Samples")]
    [InlineData("model Span(input: [8]) { relu -> dropout(0.5) }", "Dsl.Models")]
    [InlineData("model AlignedFloats(input: [1, 6, 6]) { conv(1, 2, 3) -> maxpool(2) -> bn2d -> flatten -> linear(8, 2) }", null)]
    public void Names_of_types_elsewhere_build(string nn, string? rootNamespace) => BuildsAndRuns(nn, rootNamespace);

    /// <summary>A model with every kind of generated member: GEMM scratch, batch norm caches, folding, argmax, a dropout mask.</summary>
    private const string EveryMemberKind = "(input: [1, 6, 6]) { conv(1, 2, 3) as c -> bn2d -> relu -> maxpool(2) -> dropout(0.5) -> flatten -> linear(8, 4) as fc -> bn1d -> avgpool1d(1) -> global_avgpool }";

    [Fact]
    public void Every_member_name_of_a_generated_class_is_rejected_as_a_model_name_or_builds()
    {
        // The members a generated class has: its own (a model using every feature) and CompiledModel's, inherited ones included.
        var reference = BuildOne("model Everything" + EveryMemberKind.Replace("avgpool1d(1) -> global_avgpool", "relu"));
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.FlattenHierarchy;
        var names = reference.GetMembers(all).Concat(typeof(CompiledModel).GetMembers(all))
            .Select(m => m.Name.StartsWith("get_", StringComparison.Ordinal) || m.Name.StartsWith("set_", StringComparison.Ordinal) ? m.Name.Substring(4) : m.Name)
            .Where(n => System.Text.RegularExpressions.Regex.IsMatch(n, "^[A-Za-z_][A-Za-z0-9_]*$"))
            .Distinct()
            .OrderBy(n => n, StringComparer.Ordinal)
            .ToList();
        Assert.Contains("GetDropoutRandomState", names);
        Assert.Contains("Pool", names);

        var sources = new List<Dsl.Compiler.GeneratedSource>();
        foreach (string name in names)
        {
            string nn = $"namespace Members; model {name}" + EveryMemberKind.Replace("avgpool1d(1) -> global_avgpool", "relu");
            var result = NnCompiler.Compile(nn);
            if (result.HasErrors)
            {
                Assert.Contains(result.Diagnostics, d => d.Id == "NN1018");
                continue;
            }

            sources.AddRange(GeneratedCompilation.Generate(nn));
        }

        var (errors, _) = GeneratedCompilation.Build(sources, load: false);
        Assert.True(errors.Count == 0, "accepted model names that do not build:\n" + string.Join("\n", errors.Take(20)));
    }

    [Fact]
    public void A_max_pool_window_entirely_in_the_padding_is_NN1020_at_the_padding()
    {
        // Issue #16 item 4: taps at rows -1 and 2 of a 2×2 input. PyTorch accepts it (pad 1 ≤ kernel 2 / 2 and ≤ half the
        // effective kernel 4) and returns -inf with an argmax outside the input; our Backward threw IndexOutOfRange.
        var diagnostic = Markup.Expect("model X(input: [1, 2, 2]) { maxpool(2, stride: 1, padding: [|1|], dilation: 3) }", "NN1020");
        Assert.Contains("window 0 of the height reads positions -1, 2 of an input height of 2", diagnostic.Message);
        Markup.Expect("model X(input: [1, 2]) { maxpool1d(2, stride: 1, padding: [|1|], dilation: 3) }", "NN1020");
        Markup.Expect("model X(input: [1, 9, 2]) { maxpool((2, 2), stride: 1, padding: [|(0, 1)|], dilation: (1, 3)) }", "NN1020");
        Markup.Expect("model X(input: [1, 2, 2]) { maxpool(3, stride: 4, padding: [|1|], dilation: 3, ceil_mode: true) }", "NN1020");
    }

    [Theory]
    // Every window reads the input: the same geometries with a larger input, less dilation, or less padding.
    [InlineData("model X(input: [1, 4, 4]) { maxpool(2, stride: 1, padding: 1, dilation: 3) }")]
    [InlineData("model X(input: [1, 2, 2]) { maxpool(2, stride: 1, padding: 1, dilation: 2) }")]
    [InlineData("model X(input: [1, 2, 2]) { maxpool(2, stride: 1, padding: 0, dilation: 1) }")]
    [InlineData("model X(input: [1, 3, 3]) { maxpool(3, stride: 2, padding: 1, dilation: 2, ceil_mode: true) }")]
    // Average pooling has no dilation; its rule stays p ≤ k / 2, and its windows always reach the input.
    [InlineData("model X(input: [1, 2, 2]) { avgpool(2, stride: 1, padding: 1, count_include_pad: false) }")]
    [InlineData("model X(input: [1, 1, 1]) { avgpool(3, stride: 2, padding: 1, ceil_mode: true, count_include_pad: false) }")]
    public void Pooling_whose_windows_all_read_the_input_builds_and_runs(string nn) => BuildsAndRuns(nn);

    [Fact]
    public void Average_pooling_keeps_its_own_padding_rule() =>
        Assert.Contains("at most 1 for kernel 2", Markup.Expect("model X(input: [1, 8, 8]) { avgpool(2, padding: [|2|]) }", "NN1020").Message);
}

public sealed class ModelSizeLimitTests
{
    private static string Chain(int layers, string layer = "relu") =>
        "model Deep(input: [4]) { " + string.Join(" -> ", Enumerable.Repeat(layer, layers)) + " }";

    [Fact]
    public void A_chain_beyond_the_layer_limit_is_NN1022_at_the_model_name()
    {
        // Issue #16 item 3: 33,000 layers passed nnc check and failed to build (CS0204, more than 65,534 locals).
        var diagnostic = Markup.Expect(Chain(33000).Replace("model Deep", "model [|Deep|]"), "NN1022");
        Assert.Contains("33000 layers, more than the 10000", diagnostic.Message);
        Markup.Expect(Chain(Semantics.ModelLimits.MaxLayers + 1).Replace("model Deep", "model [|Deep|]"), "NN1022");
        Assert.False(NnCompiler.Compile(Chain(Semantics.ModelLimits.MaxLayers)).HasErrors);
    }

    [LargeFact]
    public void A_chain_at_the_layer_limit_builds_and_runs()
    {
        // Each relu keeps its output for backward: Backward has two locals per layer, 20,000 in all.
        var sources = GeneratedCompilation.Generate(Chain(Semantics.ModelLimits.MaxLayers));
        var (errors, assembly) = GeneratedCompilation.Build(sources);
        Assert.True(errors.Count == 0, string.Join("\n", errors.Take(5)));
        GeneratedCompilation.Run(assembly!.GetTypes().Single(t => t.Name == "Deep"));
    }
}

/// <summary>A test of a minute or more: it runs only with <c>DSL_LARGE_TESTS=1</c>.</summary>
public sealed class LargeFactAttribute : FactAttribute
{
    public LargeFactAttribute()
    {
        if (Environment.GetEnvironmentVariable("DSL_LARGE_TESTS") != "1") Skip = "takes a minute or more: set DSL_LARGE_TESTS=1";
    }
}
