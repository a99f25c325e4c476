using Dsl.Runtime.Kernels;
using Microsoft.CodeAnalysis;

namespace Dsl.Generator.Tests;

/// <summary>
/// The compiler picks the direct convolution and Winograd's from the layer's constant shape; the runtime's
/// <see cref="ConvDirect.Suits"/> and <see cref="ConvWinograd.Suits"/> state the same rules. Both must agree
/// on every kind of layer, or the generated code would hand a kernel a geometry it sends back to the GEMM
/// (correct, but not what the generated comment says).
/// </summary>
public sealed class ConvKernelChoiceTests
{
    /// <summary>
    /// The rules live once, in src/Dsl.Contract, compiled into both assemblies (issue #13): each has its own internal
    /// copy of the same types, and neither states a rule of its own any more.
    /// </summary>
    [Theory]
    [InlineData("Dsl.Contract.OutputSizes")]
    [InlineData("Dsl.Contract.ConvolutionRules")]
    [InlineData("Dsl.Contract.Alignment")]
    [InlineData("Dsl.Contract.PackedLengths")]
    public void The_contract_is_compiled_into_the_compiler_and_the_runtime(string type)
    {
        foreach (var assembly in new[] { typeof(Dsl.Compiler.NnCompiler).Assembly, typeof(Dsl.Runtime.CompiledModel).Assembly })
        {
            var contract = assembly.GetType(type);
            Assert.True(contract is { IsPublic: false }, $"{assembly.GetName().Name} lacks the internal {type}");
        }

        string root = Repository.Root;
        foreach (var file in new[] { "src/Dsl.Runtime/Convolution/ConvDirect.cs", "src/Dsl.Runtime/Convolution/ConvWinograd.cs", "src/Dsl.Compiler/Ops/Convolution.cs" })
            Assert.Contains("ConvolutionRules.", File.ReadAllText(Path.Combine(root, file)), StringComparison.Ordinal);
    }

    public static TheoryData<string, string, bool> Layers() => new()
    {
        // input, layer, expected choice (direct or not; the Winograd cases are below)
        { "[1, 34, 34]", "conv(1, 6, 5)", true },                       // the tutorial network
        { "[1, 28, 28]", "conv(1, 32, 3, padding: 1)", true },          // Fashion-MNIST
        { "[3, 17, 19]", "conv(3, 5, 3, padding: 1)", true },           // 27 taps
        { "[2, 40]", "conv1d(2, 7, 5, padding: 2)", true },             // 1-d
        { "[4, 9, 17]", "conv(4, 4, (2, 4), padding: (0, 1))", true },  // 32 taps, rows of 16
        { "[1, 34, 34]", "conv(1, 6, 5, stride: 2)", false },
        { "[2, 20, 20]", "conv(2, 4, 3, dilation: 2)", false },
        { "[4, 20, 20]", "conv(4, 4, 3, padding: 1, groups: 2)", false },
        { "[4, 20, 20]", "conv(4, 8, 3, padding: 1)", false },          // 36 taps
        { "[1, 20, 20]", "conv(1, 4, (1, 7), padding: (0, 3))", false }, // kernel rows of 7
        { "[1, 10, 10]", "conv(1, 4, 3, padding: 1)", false },          // rows of 10
        { "[64, 32, 32]", "conv(64, 64, 3, padding: 1, bias: false)", false },
    };

    public static TheoryData<string, string, bool> WinogradLayers() => new()
    {
        // input, layer, expected choice
        { "[64, 32, 32]", "conv(64, 64, 3, padding: 1, bias: false)", true }, // resblock64
        { "[32, 14, 14]", "conv(32, 64, 3, padding: 1)", true },              // Fashion-MNIST's second conv
        { "[16, 9, 13]", "conv(16, 16, 3)", true },                           // the smallest channel counts, no padding
        { "[20, 7, 5]", "conv(20, 24, 3, padding: 2)", true },
        { "[16, 4, 4]", "conv(16, 16, 3)", true },                            // 2×2 output: one tile
        { "[16, 3, 3]", "conv(16, 16, 3)", false },                           // 1×1 output
        { "[15, 16, 16]", "conv(15, 32, 3, padding: 1)", false },             // too few input channels
        { "[32, 16, 16]", "conv(32, 8, 3, padding: 1)", false },              // too few output channels
        { "[32, 16, 16]", "conv(32, 32, 3, stride: 2, padding: 1)", false },
        { "[32, 16, 16]", "conv(32, 32, 3, dilation: 2, padding: 2)", false },
        { "[32, 16, 16]", "conv(32, 32, 3, padding: 1, groups: 2)", false },
        { "[32, 16, 16]", "conv(32, 32, (3, 5), padding: 1)", false },
        { "[32, 16, 16]", "conv(32, 32, 5, padding: 2)", false },
        { "[32, 40]", "conv1d(32, 32, 3, padding: 1)", false },
    };

    [Theory]
    [MemberData(nameof(Layers))]
    public void The_compiler_and_the_runtime_choose_alike(string input, string layer, bool direct)
    {
        var (code, g) = Generate(input, layer);
        Assert.Equal(direct, ConvDirect.Suits(g));
        Assert.Equal(direct, code.Contains("global::Dsl.Runtime.Kernels.ConvDirect.Forward(", StringComparison.Ordinal));
        Assert.Equal(direct, code.Contains("global::Dsl.Runtime.Kernels.ConvDirect.BackwardWeight(", StringComparison.Ordinal));
        Assert.Equal(!direct && !ConvWinograd.Suits(g), code.Contains("global::Dsl.Runtime.Kernels.ConvGemm.Forward(", StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(WinogradLayers))]
    public void The_compiler_and_the_runtime_choose_Winograd_alike(string input, string layer, bool winograd)
    {
        var (code, g) = Generate(input, layer);
        Assert.Equal(winograd, ConvWinograd.Suits(g));
        Assert.False(ConvDirect.Suits(g) && winograd, "the two special kernels never claim the same layer");
        Assert.Equal(winograd, code.Contains("global::Dsl.Runtime.Kernels.ConvWinograd.Forward(", StringComparison.Ordinal));
        Assert.Equal(winograd, code.Contains("global::Dsl.Runtime.Kernels.ConvWinograd.BackwardInput(", StringComparison.Ordinal));
        Assert.Equal(winograd, code.Contains("Winograd F(2×2, 3×3)", StringComparison.Ordinal));
        // At inference the weights are transformed once, in RefreshFolded, into the length the runtime's kernel reads.
        Assert.Equal(winograd, code.Contains("global::Dsl.Runtime.Kernels.ConvWinograd.ForwardTransformed(h, ", StringComparison.Ordinal));
        if (winograd)
        {
            Assert.Contains($"global::Dsl.Runtime.Kernels.ConvWinograd.TransformWeights(parameters.AsSpan(CWeight, {g.WeightLength}), folded.Slice(CTransformedWeight, {ConvWinograd.TransformedWeightLength(g)}), in CGeometry);",
                code, StringComparison.Ordinal);
        }
        Assert.Equal(!winograd, code.Contains("global::Dsl.Runtime.Kernels.ConvGemm.BackwardInput(", StringComparison.Ordinal));
    }

    private static (string Code, ConvGeometry Geometry) Generate(string input, string layer)
    {
        string source = $"model Net(input: {input}) {{\n    {layer} as c\n}}\n";
        var (run, _) = GeneratorHarness.Run("Choice", new AdditionalText[] { new NnText("net.nn", source) });
        Assert.DoesNotContain(run.Diagnostics, d => d.Severity == DiagnosticSeverity.Error);
        string code = Assert.Single(run.Results.Single().GeneratedSources).SourceText.ToString();

        // The geometry the generated class constructs, handed to the runtime's rule.
        var geometry = System.Text.RegularExpressions.Regex.Match(code,
            @"ConvGeometry \w+Geometry = new\(\s*inChannels: (\d+), outChannels: (\d+), inH: (\d+), inW: (\d+), kernelH: (\d+), kernelW: (\d+),\s*strideH: (\d+), strideW: (\d+), padH: (\d+), padW: (\d+), dilationH: (\d+), dilationW: (\d+), groups: (\d+)\);");
        Assert.True(geometry.Success, code);
        int[] v = geometry.Groups.Cast<System.Text.RegularExpressions.Group>().Skip(1).Select(gr => int.Parse(gr.Value, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        return (code, new ConvGeometry(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12]));
    }

    [Theory]
    [InlineData(784, 512)]
    [InlineData(512, 10)]
    [InlineData(3136, 128)]
    [InlineData(5, 1)]
    public void The_compiler_reserves_what_the_runtime_packs_for_a_linear_layer(int inFeatures, int outFeatures)
    {
        string source = $"model Net(input: [{inFeatures}]) {{\n    linear({inFeatures}, {outFeatures}) as fc\n}}\n";
        var (run, _) = GeneratorHarness.Run("Packed", new AdditionalText[] { new NnText("net.nn", source) });
        string code = Assert.Single(run.Results.Single().GeneratedSources).SourceText.ToString();
        int expected = Linear.PackedWeightLength(inFeatures, outFeatures);
        Assert.Contains($"global::Dsl.Runtime.Kernels.Linear.PackWeight(parameters.AsSpan(FcWeight, {inFeatures * outFeatures}), folded.Slice(FcPackedWeight, {expected}), {inFeatures}, {outFeatures});", code, StringComparison.Ordinal);
        Assert.Contains($"global::Dsl.Runtime.Kernels.Linear.ForwardPacked(h, parameters.AsSpan(FcWeight, {inFeatures * outFeatures}), folded.Slice(FcPackedWeight, {expected}),", code, StringComparison.Ordinal);
    }

    // At inference a maxpool(2) is applied by the Winograd convolution before it (through its folded batch norm and
    // fused ReLU) and emits nothing of its own; any other pooling or producer keeps its own pass.
    [Theory]
    [InlineData("conv(32, 64, 3, padding: 1) as c -> bn2d -> relu -> maxpool(2) as p", true)]
    [InlineData("conv(32, 64, 3, padding: 1) as c -> maxpool(2) as p", true)]
    [InlineData("conv(32, 64, 3, padding: 1) as c -> bn2d -> maxpool(2) as p", true)]
    [InlineData("conv(32, 64, 3, padding: 1) as c -> relu -> maxpool(2) as p", true)]
    [InlineData("conv(32, 64, 3, padding: 1) as c -> relu -> maxpool(2, ceil_mode: true) as p", false)]
    [InlineData("conv(32, 64, 3, padding: 1) as c -> relu -> maxpool(3) as p", false)]
    [InlineData("conv(32, 64, 3, padding: 1) as c -> relu -> maxpool(2, stride: 1) as p", false)]
    [InlineData("conv(32, 64, 3, padding: 1) as c -> relu -> avgpool(2) as p", false)]
    [InlineData("conv(32, 64, 3, padding: 1) as c -> sigmoid -> maxpool(2) as p", false)]
    [InlineData("conv(32, 64, 3, padding: 1) as c -> relu -> maxpool(2) as p -> bn2d", false)]
    [InlineData("conv(32, 8, 3, padding: 1) as c -> relu -> maxpool(2) as p", false)]
    public void A_max_pooling_after_a_Winograd_convolution_is_applied_by_it(string chain, bool fused)
    {
        string source = $"model Net(input: [32, 14, 14]) {{\n    {chain}\n}}\n";
        var (run, _) = GeneratorHarness.Run("PoolFusion", new AdditionalText[] { new NnText("net.nn", source) });
        Assert.DoesNotContain(run.Diagnostics, d => d.Severity == DiagnosticSeverity.Error);
        string code = Assert.Single(run.Results.Single().GeneratedSources).SourceText.ToString();
        string infer = code.Substring(code.IndexOf("protected override void InferCore(", StringComparison.Ordinal));
        Assert.Equal(fused, infer.Contains("maxPool: true);", StringComparison.Ordinal));
        Assert.Equal(fused, infer.Contains("(maxpool 2×2) applied as it writes", StringComparison.Ordinal));
        Assert.Equal(!fused, infer.Contains("Pooling.MaxForward(", StringComparison.Ordinal) || infer.Contains("Pooling.AvgForward(", StringComparison.Ordinal));
    }
}
