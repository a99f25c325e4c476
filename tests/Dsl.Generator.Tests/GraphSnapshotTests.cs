using Dsl.Compiler.Emit;
using Dsl.Compiler.Lowering;
using Dsl.Tests;
using Microsoft.CodeAnalysis;

namespace Dsl.Generator.Tests;

/// <summary>
/// The generated code of the graph blocks built on the IR (a residual block, a down-sampling block, a dense block and
/// two concatenated branches) is pinned under Snapshots/Graphs, as the .nn files' code is: a reviewer sees each
/// branch, the merge and the fused epilogue with the line they came from. Each compiles with no warning at all.
/// </summary>
public sealed class GraphSnapshotTests
{
    public static TheoryData<string> Blocks() => new(GraphBlocks.Names);

    [Theory]
    [MemberData(nameof(Blocks))]
    public void Generated_code_of_a_graph_block_matches_the_verified_snapshot(string name)
    {
        var model = GraphBlocks.Get(name);
        string code = CSharpEmitter.Emit(Lowerer.Lower(model), name.ToLowerInvariant() + ".nn");
        Snapshot.Verify(Path.Combine("Graphs", name), code);

        var problems = GeneratorHarness.Compilation(code).GetDiagnostics().Where(d => d.Severity >= DiagnosticSeverity.Warning).ToList();
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    [Fact]
    public void Every_graph_snapshot_has_a_block()
    {
        var orphans = Directory.GetFiles(Path.Combine(Snapshot.Directory, "Graphs"), "*.verified.cs")
            .Select(f => Path.GetFileName(f)[..^".verified.cs".Length])
            .Where(n => !GraphBlocks.Names.Contains(n));
        Assert.Empty(orphans);
    }
}
