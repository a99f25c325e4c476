using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace Dsl.Generator.Tests;

/// <summary>The pipeline caches: unrelated C# edits redo nothing, comment-only .nn edits change no output.</summary>
public sealed class IncrementalityTests
{
    private const string Source = """
        // tutorial network
        model LeNet(input: [1, 34, 34]) {
            conv(1, 6, 5) as conv1 -> maxpool(2) -> bn2d as bn1 -> flatten -> linear(1350, 10) as fc1
        }
        """;

    private static IncrementalStepRunReason[] Reasons(GeneratorDriver driver, string step) =>
        driver.GetRunResult().Results.Single().TrackedSteps[step].SelectMany(s => s.Outputs).Select(o => o.Reason).ToArray();

    [Fact]
    public void An_unrelated_cs_edit_leaves_every_step_cached()
    {
        var compilation = GeneratorHarness.Compilation("class A { }");
        var driver = GeneratorHarness.Driver("App", new NnText("/p/lenet.nn", Source)).RunGenerators(compilation);
        var edited = compilation.ReplaceSyntaxTree(compilation.SyntaxTrees.Single(),
            CSharpSyntaxTree.ParseText("class A { int x; }", GeneratorHarness.ParseOptions, path: "User0.cs"));
        driver = driver.RunGenerators(edited);

        Assert.All(Reasons(driver, NnGenerator.FilesStep), r => Assert.Equal(IncrementalStepRunReason.Cached, r));
        Assert.All(Reasons(driver, NnGenerator.CompiledStep), r => Assert.Equal(IncrementalStepRunReason.Cached, r));
    }

    [Fact]
    public void A_comment_only_edit_changes_no_output()
    {
        var original = new NnText("/p/lenet.nn", Source);
        var driver = GeneratorHarness.Driver("App", original).RunGenerators(GeneratorHarness.Compilation());
        string before = driver.GetRunResult().GeneratedTrees.Single().ToString();

        var commented = new NnText("/p/lenet.nn", Source.Replace("// tutorial network", "// the tutorial's network, reworded"));
        driver = driver.ReplaceAdditionalText(original, commented).RunGenerators(GeneratorHarness.Compilation());

        Assert.Equal(new[] { IncrementalStepRunReason.Modified }, Reasons(driver, NnGenerator.FilesStep));
        Assert.Equal(new[] { IncrementalStepRunReason.Unchanged }, Reasons(driver, NnGenerator.CompiledStep));
        Assert.Equal(before, driver.GetRunResult().GeneratedTrees.Single().ToString());
    }

    [Fact]
    public void A_real_edit_regenerates()
    {
        var original = new NnText("/p/lenet.nn", Source);
        var driver = GeneratorHarness.Driver("App", original).RunGenerators(GeneratorHarness.Compilation());
        var edited = new NnText("/p/lenet.nn", Source.Replace("linear(1350, 10)", "linear(1350, 5)"));
        driver = driver.ReplaceAdditionalText(original, edited).RunGenerators(GeneratorHarness.Compilation());
        Assert.Equal(new[] { IncrementalStepRunReason.Modified }, Reasons(driver, NnGenerator.CompiledStep));
        Assert.Contains("public const int OutputLength = 5;", driver.GetRunResult().GeneratedTrees.Single().ToString());
    }
}
