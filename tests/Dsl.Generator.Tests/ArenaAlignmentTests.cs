using System.Text.RegularExpressions;
using Microsoft.CodeAnalysis;

namespace Dsl.Generator.Tests;

/// <summary>
/// The generated arena is a <c>Dsl.Runtime.AlignedFloats</c> (element 0 on a 64-byte line), and every region the
/// compiler lays out in it (training values, masks, argmax indices, gradients and inference values, saved statistics, folded and
/// packed weights) starts a whole number of lines in, so the kernels' vector loads do not straddle cache lines.
/// </summary>
public sealed partial class ArenaAlignmentTests
{
    [Theory]
    [MemberData(nameof(SnapshotTests.Files), MemberType = typeof(SnapshotTests))]
    public void Every_region_of_the_arena_starts_on_a_cache_line(string relativePath)
    {
        string path = Path.Combine(Repository.Root, relativePath);
        var (run, _) = GeneratorHarness.Run("Snapshots", new AdditionalText[] { new NnText(path, File.ReadAllText(path)) });
        var sources = run.Results.Single().GeneratedSources;
        Assert.NotEmpty(sources);
        foreach (var source in sources) AssertAligned(source.SourceText.ToString()); // one per model of the file
    }

    private static void AssertAligned(string code)
    {
        Assert.Contains("private readonly global::Dsl.Runtime.AlignedFloats _arena;", code, StringComparison.Ordinal);
        Assert.Contains("_arena = new global::Dsl.Runtime.AlignedFloats(", code, StringComparison.Ordinal);
        if (code.Contains("s_scratchLength =", StringComparison.Ordinal))
            Assert.Contains("s_scratchLength = global::Dsl.Runtime.AlignedFloats.RoundUp(", code, StringComparison.Ordinal);

        // From the arena's layout to the end of the constants: every offset and per-sample length.
        int start = code.IndexOf("// The batch-scaled arena, per sample", StringComparison.Ordinal);
        int end = code.IndexOf("private static readonly", start, StringComparison.Ordinal);
        Assert.True(start > 0 && end > start, "the arena's constants were not found");
        var constants = Constant().Matches(code[start..end]).Select(m => (Name: m.Groups[1].Value, Value: int.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture))).ToList();
        Assert.Contains(constants, c => c.Name == "ArenaPerSample");
        var misaligned = constants.Where(c => c.Value % 16 != 0).Select(c => $"{c.Name} = {c.Value}").ToList();
        Assert.True(misaligned.Count == 0, "not a multiple of 16 floats: " + string.Join(", ", misaligned));
    }

    [GeneratedRegex(@"private const int (\w+) = (\d+);")]
    private static partial Regex Constant();
}
