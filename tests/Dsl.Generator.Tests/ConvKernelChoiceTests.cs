using Dsl.Runtime;
using Microsoft.CodeAnalysis;

namespace Dsl.Generator.Tests;

/// <summary>
/// The compiler picks the direct convolution from the layer's constant shape; the runtime's
/// <see cref="ConvDirect.Suits"/> states the same rule. Both must agree on every kind of layer, or the
/// generated code would hand the direct kernel a geometry it sends back to the GEMM (correct, but not
/// what the generated comment says).
/// </summary>
public sealed class ConvKernelChoiceTests
{
    public static TheoryData<string, string, bool> Layers() => new()
    {
        // input, layer, expected choice
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

    [Theory]
    [MemberData(nameof(Layers))]
    public void The_compiler_and_the_runtime_choose_alike(string input, string layer, bool direct)
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
        var g = new ConvGeometry(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12]);

        Assert.Equal(direct, ConvDirect.Suits(g));
        Assert.Equal(direct, code.Contains("global::Dsl.Runtime.ConvDirect.Forward(", StringComparison.Ordinal));
        Assert.Equal(direct, code.Contains("global::Dsl.Runtime.ConvDirect.BackwardWeight(", StringComparison.Ordinal));
        Assert.Equal(!direct, code.Contains("global::Dsl.Runtime.Conv2d.Forward(", StringComparison.Ordinal));
        Assert.Contains("global::Dsl.Runtime.Conv2d.BackwardInput(", code, StringComparison.Ordinal); // the input gradient stays on the GEMM
    }
}
