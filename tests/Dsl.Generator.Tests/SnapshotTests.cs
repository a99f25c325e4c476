using Microsoft.CodeAnalysis;

namespace Dsl.Generator.Tests;

/// <summary>
/// The generated code of every example and golden model is pinned: a change to the emitter shows up
/// as a reviewed diff of Snapshots/*.verified.cs. Each output also compiles with no warning at all.
/// </summary>
public sealed class SnapshotTests
{
    public static TheoryData<string> Files() => new(Sources());

    private static IEnumerable<string> Sources() =>
        Directory.GetFiles(Path.Combine(Repository.Root, "tests", "Dsl.Models.Tests", "Golden"), "*.nn")
            .Concat(Directory.GetFiles(Path.Combine(Repository.Root, "examples"), "*.nn", SearchOption.AllDirectories))
            .Select(p => Path.GetRelativePath(Repository.Root, p).Replace('\\', '/'))
            .OrderBy(p => p, StringComparer.Ordinal);

    [Theory]
    [MemberData(nameof(Files))]
    public void Generated_code_matches_the_verified_snapshot(string relativePath)
    {
        string path = Path.Combine(Repository.Root, relativePath);
        var (run, output) = GeneratorHarness.Run("Snapshots", new AdditionalText[] { new NnText(path, File.ReadAllText(path)) });
        Assert.DoesNotContain(run.Diagnostics, d => d.Severity == DiagnosticSeverity.Error);
        var generated = Assert.Single(run.Results.Single().GeneratedSources);
        Snapshot.Verify(Path.GetFileNameWithoutExtension(path), generated.SourceText.ToString());

        // Warning-free at the highest warning level: users build with TreatWarningsAsErrors.
        var problems = output.GetDiagnostics().Where(d => d.Severity >= DiagnosticSeverity.Warning).ToList();
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    [Fact]
    public void Every_verified_snapshot_has_a_source()
    {
        var expected = Sources().Select(Path.GetFileNameWithoutExtension).ToHashSet();
        var orphans = Directory.GetFiles(Snapshot.Directory, "*.verified.cs")
            .Select(f => Path.GetFileName(f).Replace(".verified.cs", "", StringComparison.Ordinal))
            .Where(n => !expected.Contains(n));
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
