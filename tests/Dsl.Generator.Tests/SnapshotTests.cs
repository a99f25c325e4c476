using Microsoft.CodeAnalysis;

namespace Dsl.Generator.Tests;

/// <summary>
/// The generated code of every .nn file in the repository (examples, golden copies, the test and benchmark
/// models) is pinned: a change to the emitter shows up as a reviewed diff of Snapshots/*.verified.cs, and a new
/// .nn file fails here until its snapshot is accepted. Each output also compiles with no warning at all.
/// </summary>
public sealed class SnapshotTests
{
    public static TheoryData<string> Files() => new(Sources());

    // Every .nn file under the repository root, found by walking it (not from a list, which a new file could miss);
    // build outputs, hidden folders (.git, .vs), npm's node_modules and editors/ (the VS Code extension's grammar
    // fixtures, which hold syntax the compiler does not take yet) are skipped.
    private static IEnumerable<string> Sources() =>
        NnFiles(new DirectoryInfo(Repository.Root))
            .Select(p => Path.GetRelativePath(Repository.Root, p).Replace('\\', '/'))
            .OrderBy(p => p, StringComparer.Ordinal);

    private static IEnumerable<string> NnFiles(DirectoryInfo directory)
    {
        foreach (var file in directory.EnumerateFiles("*.nn")) yield return file.FullName;
        foreach (var child in directory.EnumerateDirectories())
        {
            if (child.Name.StartsWith('.') || child.Name is "bin" or "obj" or "node_modules") continue;
            if (Path.GetRelativePath(Repository.Root, child.FullName).Replace('\\', '/') == "editors") continue;
            foreach (var file in NnFiles(child)) yield return file;
        }
    }

    // The files this test must see, whatever else the walk finds: the test models, the training-loop models,
    // the benchmark models, the golden copies and the examples. Snapshots are named by file name, so two .nn
    // files with one name (in any case) would share one snapshot.
    [Fact]
    public void Every_nn_file_of_the_repository_has_its_own_snapshot_name()
    {
        var sources = Sources().ToList();
        foreach (var expected in new[]
        {
            "tests/Dsl.Models.Tests/Models/gradcheck.nn", "tests/Dsl.Models.Tests/Models/behaviour.nn", "tests/Dsl.Training.Tests/training.nn",
            "tests/Dsl.Benchmarks/Models/MlpBn.nn", "tests/Dsl.Models.Tests/Golden/seed_lenet.nn", "examples/LeNet/lenet.nn",
        })
            Assert.Contains(expected, sources);
        var clashes = sources.GroupBy(p => Path.GetFileNameWithoutExtension(p), StringComparer.OrdinalIgnoreCase).Where(g => g.Count() > 1).Select(g => string.Join(", ", g));
        Assert.Empty(clashes);
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void Generated_code_matches_the_verified_snapshot(string relativePath)
    {
        string path = Path.Combine(Repository.Root, relativePath);
        var (run, output) = GeneratorHarness.Run("Snapshots", new AdditionalText[] { new NnText(path, File.ReadAllText(path)) });
        Assert.DoesNotContain(run.Diagnostics, d => d.Severity == DiagnosticSeverity.Error);
        // One snapshot per model: FILE for a file of one model, FILE.MODEL for each model of a file of several.
        string file = Path.GetFileNameWithoutExtension(path);
        var generated = run.Results.Single().GeneratedSources;
        Assert.NotEmpty(generated);
        var names = new List<string>();
        foreach (var source in generated)
        {
            string model = source.HintName[..^".g.cs".Length].Split('.')[^1];
            names.Add(generated.Length == 1 ? file : file + "." + model);
            Snapshot.Verify(names[^1], source.SourceText.ToString());
        }

        // No snapshot left behind by a model that was renamed or removed from this file.
        var owned = Directory.GetFiles(Snapshot.Directory, "*.verified.cs")
            .Select(f => Path.GetFileName(f)[..^".verified.cs".Length])
            .Where(n => n == file || n.StartsWith(file + ".", StringComparison.Ordinal));
        Assert.Equal(names.Order(StringComparer.Ordinal), owned.Order(StringComparer.Ordinal));

        // Warning-free at the highest warning level: users build with TreatWarningsAsErrors.
        var problems = output.GetDiagnostics().Where(d => d.Severity >= DiagnosticSeverity.Warning).ToList();
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    [Fact]
    public void Every_verified_snapshot_has_a_source()
    {
        var expected = Sources().Select(Path.GetFileNameWithoutExtension).ToHashSet();
        var orphans = Directory.GetFiles(Snapshot.Directory, "*.verified.cs")
            .Select(f => Path.GetFileName(f)[..^".verified.cs".Length])
            .Where(n => !expected.Contains(n.Split('.')[0])); // FILE or FILE.MODEL
        Assert.Empty(orphans);
    }

    [Fact]
    public void Output_is_deterministic()
    {
        string path = Path.Combine(Repository.Root, "examples", "LeNet", "lenet.nn");
        var file = new NnText(path, File.ReadAllText(path));
        string First() => GeneratorHarness.Run(null, new AdditionalText[] { file }).Run.Results.Single().GeneratedSources.Single().SourceText.ToString();
        Assert.Equal(First(), First());
    }
}
