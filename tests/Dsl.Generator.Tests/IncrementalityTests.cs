using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace Dsl.Generator.Tests;

/// <summary>
/// The pipeline caches: unrelated C# edits redo nothing, comment-only .nn edits change no output, and an edit that
/// moves every position of one .nn file re-runs that file's outputs only.
/// </summary>
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

    private const string Mlp = """
        model Mlp(input: [16]) {
            linear(16, 8) -> bn1d -> relu -> linear(8, 2)
        }
        """;

    /// <summary>The run reason of each output of a step, in input order (one entry per .nn file for per-file steps).</summary>
    private static IncrementalStepRunReason[][] StepReasons(GeneratorDriver driver, string step) =>
        driver.GetRunResult().Results.Single().TrackedSteps[step].Select(s => s.Outputs.Select(o => o.Reason).ToArray()).ToArray();

    private static bool Reused(IncrementalStepRunReason reason) => reason is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged;

    [Fact]
    public void Moving_every_position_of_one_file_reruns_only_that_files_outputs()
    {
        // b.nn has a warning (NN2001), so its diagnostics step has something to re-report if it re-ran.
        var a = new NnText("/p/a.nn", Source);
        var b = new NnText("/p/b.nn", Mlp);
        var driver = GeneratorHarness.Driver("App", "/p/", new AdditionalText[] { a, b }).RunGenerators(GeneratorHarness.Compilation());
        var before = driver.GetRunResult();
        Assert.Equal("NN2001", Assert.Single(before.Diagnostics).Id);

        // Two blank lines and an indent on top: every span of a.nn moves, and so do the lines its code quotes.
        var moved = new NnText("/p/a.nn", "\n\n  " + Source);
        driver = driver.ReplaceAdditionalText(a, moved).RunGenerators(GeneratorHarness.Compilation());
        var after = driver.GetRunResult();

        // a.nn: read, analyzed and compiled again, and its code changed (it quotes its own lines).
        Assert.Equal(IncrementalStepRunReason.Modified, StepReasons(driver, NnGenerator.FilesStep)[0].Single());
        Assert.Equal(IncrementalStepRunReason.Modified, StepReasons(driver, NnGenerator.AnalyzedStep)[0].Single());
        Assert.Equal(IncrementalStepRunReason.Modified, StepReasons(driver, NnGenerator.CompiledStep)[0].Single());
        Assert.Equal(IncrementalStepRunReason.Modified, StepReasons(driver, NnGenerator.OwnedStep)[0].Single());
        Assert.Equal(IncrementalStepRunReason.Unchanged, StepReasons(driver, NnGenerator.DiagnosticsStep)[0].Single()); // none before, none after

        // b.nn: every per-file step is taken from the cache.
        foreach (var step in new[] { NnGenerator.FilesStep, NnGenerator.AnalyzedStep, NnGenerator.CompiledStep, NnGenerator.DiagnosticsStep, NnGenerator.OwnedStep })
            Assert.Equal(IncrementalStepRunReason.Cached, StepReasons(driver, step)[1].Single());

        // The project-wide steps recompute from a.nn's new values and find nothing changed: no positions in the class list,
        // and no conflict whose message would quote one.
        Assert.All(StepReasons(driver, NnGenerator.ClassesStep).SelectMany(r => r), r => Assert.True(Reused(r), r.ToString()));
        Assert.All(StepReasons(driver, NnGenerator.ConflictsStep).SelectMany(r => r), r => Assert.True(Reused(r), r.ToString()));

        // Of every output (sources and diagnostics of each file, and the conflicts), only a.nn's sources ran again.
        var outputs = after.Results.Single().TrackedOutputSteps.SelectMany(o => o.Value).SelectMany(s => s.Outputs).Select(o => o.Reason).ToList();
        Assert.Equal(5, outputs.Count);
        Assert.Equal(new[] { IncrementalStepRunReason.Modified }, outputs.Where(r => !Reused(r)));

        string Text(GeneratorDriverRunResult run, string hint) => run.Results.Single().GeneratedSources.Single(s => s.HintName.Contains(hint, StringComparison.Ordinal)).SourceText.ToString();
        Assert.Equal(Text(before, "Mlp"), Text(after, "Mlp"));
        Assert.NotEqual(Text(before, "LeNet"), Text(after, "LeNet"));
        Assert.Equal(before.Diagnostics.Single().ToString(), after.Diagnostics.Single().ToString());
    }

    [Fact]
    public void Moving_a_declaration_that_another_file_repeats_updates_only_the_conflict()
    {
        var a = new NnText("/p/a.nn", "model Dup(input: [2]) { relu }");
        var b = new NnText("/p/b.nn", "model Dup(input: [2]) { tanh }");
        var driver = GeneratorHarness.Driver("App", "/p/", new AdditionalText[] { a, b }).RunGenerators(GeneratorHarness.Compilation());
        Assert.Contains("also declared in a.nn(1,7)", driver.GetRunResult().Diagnostics.Single().GetMessage(System.Globalization.CultureInfo.InvariantCulture));

        driver = driver.ReplaceAdditionalText(a, new NnText("/p/a.nn", "\nmodel Dup(input: [2]) { relu }")).RunGenerators(GeneratorHarness.Compilation());
        // The message quotes a.nn's position, so it is recomputed; which file keeps the class is not.
        Assert.Equal(IncrementalStepRunReason.Modified, StepReasons(driver, NnGenerator.ConflictsStep).Single().Single());
        Assert.All(StepReasons(driver, NnGenerator.ClassesStep).SelectMany(r => r), r => Assert.True(Reused(r), r.ToString()));
        Assert.Equal(IncrementalStepRunReason.Cached, StepReasons(driver, NnGenerator.OwnedStep)[1].Single());
        Assert.Contains("also declared in a.nn(2,7)", driver.GetRunResult().Diagnostics.Single().GetMessage(System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public void What_feeds_code_generation_holds_no_position()
    {
        // OwnedStep combines CompiledStep (NnGenerated) with ClassesStep (ClassFile): no type in them may carry a place.
        var positional = new[] { typeof(LocationInfo), typeof(DiagnosticInfo), typeof(DeclaredClass), typeof(Dsl.Compiler.Text.SourceSpan), typeof(Location) };
        var seen = new HashSet<Type>();
        void Check(Type type)
        {
            if (!seen.Add(type)) return;
            Assert.DoesNotContain(type, positional);
            foreach (var argument in type.GetGenericArguments()) Check(argument);
            if (type.Namespace?.StartsWith("Dsl.", StringComparison.Ordinal) == true)
                foreach (var property in type.GetProperties()) Check(property.PropertyType);
        }

        Check(typeof(NnGenerated));
        Check(typeof(ClassFile));
        Assert.Contains(typeof(SourceInfo), seen);
    }
}
