using Microsoft.CodeAnalysis;

namespace Dsl.Generator.Tests;

/// <summary>The front end's findings reach the build located in the .nn file, and a broken model causes no C# error cascade.</summary>
public sealed class GeneratorDiagnosticTests
{
    private const string Tutorial30 = """
        namespace Samples.Vision;

        model LeNet(input: [1, 30, 30]) {
            conv(1, 6, 5)       as conv1
            -> maxpool(2)
            -> bn2d             as bn1
            -> flatten
            -> linear(1350, 10) as fc1
        }
        """;

    private const string UserCode = """
        using System;
        using Samples.Vision;
        public static class Use
        {
            public static float[] Run()
            {
                var model = new LeNet(maxBatch: 4);
                var output = new float[4 * LeNet.OutputLength + LeNet.InputShape.Length + LeNet.OutputShape.Length + LeNet.ParameterCount];
                model.Infer(new float[4 * LeNet.InputLength], output.AsSpan(0, 4 * LeNet.OutputLength), 4);
                return output;
            }
        }
        """;

    [Fact]
    public void An_error_of_a_blocks_use_is_at_the_use_with_the_layer_inside_as_an_additional_location()
    {
        const string nn = "block B(c) {\n    conv(c, c, 3) as conv\n}\nmodel M(input: [4, 2, 2]) {\n    B(4) as b\n}\n";
        var (run, _) = GeneratorHarness.Run("App", new AdditionalText[] { new NnText("/src/m.nn", nn) });
        var diagnostic = Assert.Single(run.Diagnostics);
        Assert.Equal("NN1014", diagnostic.Id);
        Assert.Equal("/src/m.nn", diagnostic.Location.GetLineSpan().Path);
        Assert.Equal(4, diagnostic.Location.GetLineSpan().StartLinePosition.Line);
        Assert.StartsWith("in 'b' = B(c: 4): ", diagnostic.GetMessage(System.Globalization.CultureInfo.InvariantCulture));
        var inner = Assert.Single(diagnostic.AdditionalLocations);
        Assert.Equal("/src/m.nn", inner.GetLineSpan().Path);
        Assert.Equal((1, 15), (inner.GetLineSpan().StartLinePosition.Line, inner.GetLineSpan().StartLinePosition.Character));
    }

    [Fact]
    public void Errors_are_located_in_the_nn_file()
    {
        var (run, _) = GeneratorHarness.Run(null, new AdditionalText[] { new NnText("/src/lenet.nn", Tutorial30) });
        var diagnostic = Assert.Single(run.Diagnostics);
        Assert.Equal("NN1011", diagnostic.Id);
        Assert.Equal(DiagnosticSeverity.Error, diagnostic.Severity);
        var span = diagnostic.Location.GetLineSpan();
        Assert.Equal("/src/lenet.nn", span.Path);
        Assert.Equal((7, 14), (span.StartLinePosition.Line, span.StartLinePosition.Character)); // lenet.nn(8,15), 1-based
        Assert.Equal((7, 18), (span.EndLinePosition.Line, span.EndLinePosition.Character));
        Assert.Equal("1350", Tutorial30.Substring(diagnostic.Location.SourceSpan.Start, diagnostic.Location.SourceSpan.Length));
        Assert.Equal("'flatten' yields 1014 features (6×13×13) but 'linear' expects 1350; write linear(1014, 10)", diagnostic.GetMessage(System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public void A_model_with_errors_yields_no_cascade_of_csharp_errors()
    {
        var (run, output) = GeneratorHarness.Run(null, new AdditionalText[] { new NnText("/src/lenet.nn", Tutorial30) }, UserCode);
        Assert.Single(run.Diagnostics);
        Assert.Empty(output.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error));
        var placeholder = run.Results.Single().GeneratedSources.Single().SourceText.ToString();
        Assert.Contains("could not be compiled", placeholder);
        Assert.DoesNotContain("ConvGemm.Forward", placeholder); // nothing is generated for the model itself
    }

    [Fact]
    public void The_placeholder_has_every_public_member_of_a_generated_model()
    {
        static string[] PublicMembers(string source) => Microsoft.CodeAnalysis.CSharp.CSharpSyntaxTree.ParseText(source).GetRoot()
            .DescendantNodes().OfType<Microsoft.CodeAnalysis.CSharp.Syntax.MemberDeclarationSyntax>()
            .Where(m => m.Modifiers.Any(t => t.Text == "public") && m is not Microsoft.CodeAnalysis.CSharp.Syntax.TypeDeclarationSyntax)
            .Select(m => m switch
            {
                Microsoft.CodeAnalysis.CSharp.Syntax.FieldDeclarationSyntax f => f.Declaration.Variables.Single().Identifier.Text,
                Microsoft.CodeAnalysis.CSharp.Syntax.PropertyDeclarationSyntax p => p.Identifier.Text,
                Microsoft.CodeAnalysis.CSharp.Syntax.MethodDeclarationSyntax x => x.Identifier.Text,
                Microsoft.CodeAnalysis.CSharp.Syntax.ConstructorDeclarationSyntax c => ".ctor" + c.ParameterList,
                _ => m.Kind().ToString(),
            })
            .OrderBy(n => n, StringComparer.Ordinal).ToArray();

        string Generated(string nn) => GeneratorHarness.Run(null, new AdditionalText[] { new NnText("/src/lenet.nn", nn) }).Run.Results.Single().GeneratedSources.Single().SourceText.ToString();
        var real = PublicMembers(Generated(Tutorial30.Replace("30, 30", "34, 34")));
        var placeholder = PublicMembers(Generated(Tutorial30));
        Assert.Equal(real, placeholder);
    }

    [Fact]
    public void A_syntax_error_still_yields_placeholders_for_the_declared_models()
    {
        var broken = Tutorial30.Replace("conv(1, 6, 5)", "conv(1, 6, 5");
        var (run, output) = GeneratorHarness.Run(null, new AdditionalText[] { new NnText("/src/lenet.nn", broken) }, UserCode);
        Assert.Equal("NN0001", Assert.Single(run.Diagnostics).Id);
        Assert.Empty(output.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error));
    }

    [Fact]
    public void Every_syntax_error_of_a_file_reaches_the_build_at_its_place()
    {
        var broken = Tutorial30.Replace("conv(1, 6, 5)", "conv(1, 6, 5").Replace("-> flatten", "-> flatten flatten");
        var (run, output) = GeneratorHarness.Run(null, new AdditionalText[] { new NnText("/src/lenet.nn", broken) }, UserCode);
        Assert.Equal(new[] { "NN0001", "NN0001" }, run.Diagnostics.Select(d => d.Id));
        Assert.Equal(new[] { (3, 23), (6, 15) }, run.Diagnostics.Select(d => (d.Location.GetLineSpan().StartLinePosition.Line, d.Location.GetLineSpan().StartLinePosition.Character)));
        Assert.Equal(new[] { "unexpected 'as'; expected ',' or ')'", "unexpected 'flatten'; expected '->', ';' or '}'" },
            run.Diagnostics.Select(d => d.GetMessage(System.Globalization.CultureInfo.InvariantCulture)));
        Assert.All(run.Diagnostics, d => Assert.EndsWith("docs/language.md#nn0001", d.Descriptor.HelpLinkUri, StringComparison.Ordinal));
        Assert.Empty(output.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error)); // the placeholder still stands in
    }

    [Fact]
    public void Warnings_are_reported_and_code_is_still_generated()
    {
        var (run, output) = GeneratorHarness.Run("App", new AdditionalText[] { new NnText("/src/mlp.nn", "model Mlp(input: [4]) { linear(4, 3) -> bn1d }") });
        Assert.Equal("NN2001", Assert.Single(run.Diagnostics).Id);
        Assert.Equal(DiagnosticSeverity.Warning, run.Diagnostics[0].Severity);
        Assert.Contains("public sealed partial class Mlp", run.Results.Single().GeneratedSources.Single().SourceText.ToString());
        Assert.Empty(output.GetDiagnostics().Where(d => d.Severity >= DiagnosticSeverity.Warning));
    }

    [Fact]
    public void Namespace_comes_from_the_file_else_the_root_namespace_else_global()
    {
        string Generated(string? root, string text) =>
            GeneratorHarness.Run(root, new AdditionalText[] { new NnText("/m.nn", text) }).Run.Results.Single().GeneratedSources.Single().SourceText.ToString();
        Assert.Contains("namespace A.B", Generated("Root", "namespace A.B; model M(input: [2]) { relu }"));
        Assert.Contains("namespace Root", Generated("Root", "model M(input: [2]) { relu }"));
        Assert.DoesNotContain("namespace", Generated(null, "model M(input: [2]) { relu }").Replace("// <auto-generated/>", ""));
    }

    [Fact]
    public void Two_files_with_the_same_model_name_do_not_crash_the_generator()
    {
        var (run, _) = GeneratorHarness.Run("App", new AdditionalText[]
        {
            new NnText("/a/one.nn", "namespace A; model M(input: [2]) { relu }"),
            new NnText("/b/two.nn", "namespace B; model M(input: [2]) { tanh }"),
        });
        Assert.Empty(run.Diagnostics);
        Assert.Equal(2, run.Results.Single().GeneratedSources.Length);
    }

    [Fact]
    public void A_model_named_like_a_layer_constant_still_compiles()
    {
        var (run, output) = GeneratorHarness.Run("App", new AdditionalText[] { new NnText("/m.nn", "model Fc1Weight(input: [4]) { linear(4, 2) as fc1 -> bn1d as bn }") });
        Assert.DoesNotContain(run.Diagnostics, d => d.Severity == DiagnosticSeverity.Error);
        Assert.Empty(output.GetDiagnostics().Where(d => d.Severity >= DiagnosticSeverity.Warning));
    }

    [Fact]
    public void Layer_names_whose_constants_would_collide_still_compile()
    {
        var (run, output) = GeneratorHarness.Run("App", new AdditionalText[] { new NnText("/m.nn", "model M(input: [1, 8, 8]) { conv(1, 2, 3) as a_folded -> conv(2, 2, 3) as a -> bn2d }") });
        Assert.DoesNotContain(run.Diagnostics, d => d.Severity == DiagnosticSeverity.Error);
        Assert.Empty(output.GetDiagnostics().Where(d => d.Severity >= DiagnosticSeverity.Warning));
    }

    [Fact]
    public void An_invalid_model_name_gets_its_error_and_no_placeholder_that_would_not_compile()
    {
        var (run, output) = GeneratorHarness.Run("App", new AdditionalText[] { new NnText("/m.nn", "model Name(input: [8]) { relu }") });
        Assert.Equal("NN1018", Assert.Single(run.Diagnostics).Id);
        Assert.Empty(run.Results.Single().GeneratedSources);
        Assert.Empty(output.GetDiagnostics());
    }

    [Theory]
    [InlineData("/src/my net#1.nn")]
    [InlineData("/src/net&3 (copy).nn")]
    public void Any_file_name_works(string path)
    {
        var (run, output) = GeneratorHarness.Run("App", new AdditionalText[] { new NnText(path, "model M(input: [2]) { relu }") });
        Assert.Null(run.Results.Single().Exception);
        Assert.Single(run.Results.Single().GeneratedSources);
        Assert.Empty(output.GetDiagnostics());
    }

    [Fact]
    public void Files_of_the_same_name_in_two_folders_both_generate()
    {
        var (run, output) = GeneratorHarness.Run("App", new AdditionalText[]
        {
            new NnText("/src/b.nn", "model A(input: [2]) { relu }"),
            new NnText("/src/sub/b.nn", "model B(input: [2]) { tanh }"),
        });
        Assert.Null(run.Results.Single().Exception);
        Assert.Equal(2, run.Results.Single().GeneratedSources.Length);
        Assert.Empty(output.GetDiagnostics());
    }

    [Fact]
    public void The_same_model_in_two_files_is_an_error_at_the_second_without_a_csharp_cascade()
    {
        var (run, output) = GeneratorHarness.Run("App", new AdditionalText[]
        {
            new NnText("/src/b.nn", "model Dup(input: [2]) { tanh }"),
            new NnText("/src/a.nn", "model Dup(input: [2]) { relu }"),
        }, "public static class Use { public static int N = App.Dup.InputLength; }");
        var diagnostic = Assert.Single(run.Diagnostics);
        Assert.Equal("NN1016", diagnostic.Id);
        Assert.Equal("/src/b.nn", diagnostic.Location.GetLineSpan().Path); // a.nn sorts first and keeps the class
        Assert.Contains("also declared in a.nn(1,7)", diagnostic.GetMessage(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Single(run.Results.Single().GeneratedSources);
        Assert.Empty(output.GetDiagnostics());
    }

    [Fact]
    public void Junk_files_yield_diagnostics_not_a_crash()
    {
        var random = new Random(3);
        var files = Enumerable.Range(0, 20).Select(i =>
        {
            var bytes = new byte[200];
            random.NextBytes(bytes);
            return (AdditionalText)new NnText($"/junk{i}.nn", System.Text.Encoding.UTF8.GetString(bytes));
        }).ToArray();
        var (run, _) = GeneratorHarness.Run("App", files);
        Assert.Null(run.Results.Single().Exception);
        Assert.True(run.Diagnostics.Count(d => d.Severity == DiagnosticSeverity.Error) >= 20);
    }

    [Fact]
    public void Other_additional_files_are_ignored()
    {
        var (run, _) = GeneratorHarness.Run("App", new AdditionalText[] { new NnText("/notes.txt", "model X(input: [1]) { nonsense }") });
        Assert.Empty(run.Diagnostics);
        Assert.Empty(run.Results.Single().GeneratedSources);
    }
}
