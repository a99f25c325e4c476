using Microsoft.CodeAnalysis;

namespace Dsl.Generator.Tests;

/// <summary>Hint names come from the path relative to the project, so every clone of a repository gets the same ones.</summary>
public sealed class HintNameTests
{
    private const string LeNet = "model LeNet(input: [1, 34, 34]) { conv(1, 6, 5) -> maxpool(2) -> bn2d -> flatten -> linear(1350, 10) }";

    private static (string Hint, string Text)[] Generated(string? projectDir, params (string Path, string Text)[] files)
    {
        var driver = GeneratorHarness.Driver("App", projectDir, files.Select(f => (AdditionalText)new NnText(f.Path, f.Text)).ToArray())
            .RunGenerators(GeneratorHarness.Compilation());
        var result = driver.GetRunResult().Results.Single();
        Assert.Null(result.Exception);
        return result.GeneratedSources.Select(s => (s.HintName, s.SourceText.ToString())).OrderBy(s => s.HintName, StringComparer.Ordinal).ToArray();
    }

    [Fact]
    public void Two_clones_in_different_folders_generate_the_same_files()
    {
        var first = Generated("/home/ann/src/dsl/examples/App/", ("/home/ann/src/dsl/examples/App/Models/lenet.nn", LeNet), ("/home/ann/src/dsl/examples/App/mlp.nn", "model Mlp(input: [4]) { relu }"));
        var second = Generated("/tmp/ci/build-7/examples/App", ("/tmp/ci/build-7/examples/App/Models/lenet.nn", LeNet), ("/tmp/ci/build-7/examples/App/mlp.nn", "model Mlp(input: [4]) { relu }"));
        var windows = Generated(@"C:\work\App\", (@"C:\work\App\Models\lenet.nn", LeNet), (@"C:\work\App\mlp.nn", "model Mlp(input: [4]) { relu }"));
        Assert.Equal(new[] { "Models_lenet.nn.App.LeNet.g.cs", "mlp.nn.App.Mlp.g.cs" }, first.Select(f => f.Hint));
        Assert.Equal(first, second);
        Assert.Equal(first, windows);
    }

    [Fact]
    public void Without_a_project_folder_or_outside_it_the_file_name_is_used()
    {
        Assert.Equal("lenet.nn.App.LeNet.g.cs", Generated(null, ("/anywhere/Models/lenet.nn", LeNet)).Single().Hint);
        Assert.Equal("lenet.nn.App.LeNet.g.cs", Generated("/p/App/", ("/shared/models/lenet.nn", LeNet)).Single().Hint); // a linked file
    }

    [Fact]
    public void Names_are_sanitized()
    {
        Assert.Equal("My_Models_r_seau__1.nn.App.R_seau.g.cs", Generated("/p/", ("/p/My Models/réseau #1.nn", "model Réseau(input: [4]) { relu }")).Single().Hint);
    }

    [Fact]
    public void Classes_whose_names_differ_only_in_case_get_distinct_hint_names()
    {
        // Roslyn compares hint names ignoring case; C# does not compare class names so.
        var files = Generated("/p/", ("/p/nets.nn", "model Net(input: [4]) { relu }\nmodel NET(input: [4]) { tanh }"));
        Assert.Equal(new[] { "nets.nn.App.NET.2.g.cs", "nets.nn.App.Net.g.cs" }, files.Select(f => f.Hint));
    }
}
