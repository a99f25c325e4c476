using Dsl.Compiler;
using Dsl.Compiler.Diagnostics;

namespace Dsl.Compiler.Tests;

/// <summary>
/// Test sources mark the expected span with <c>[|</c> and <c>|]</c>, as Roslyn's own tests do:
/// <c>linear([|1350|], 10)</c>. The helper strips the markers and computes line and column.
/// </summary>
internal static class Markup
{
    public static (string Text, int Start, int Length, int Line, int Column) Parse(string markup)
    {
        int start = markup.IndexOf("[|", StringComparison.Ordinal);
        int end = markup.IndexOf("|]", StringComparison.Ordinal);
        Assert.True(start >= 0 && end > start, "markup needs [| and |]");
        string text = markup.Remove(end, 2).Remove(start, 2);
        int length = end - start - 2;
        int line = 1 + text.Take(start).Count(c => c == '\n');
        int column = start - (text.LastIndexOf('\n', Math.Max(0, start - 1)) + 1) + 1;
        if (start == 0) column = 1;
        return (text, start, length, line, column);
    }

    /// <summary>Compiles the marked source and returns the single diagnostic with the given id, after checking its span.</summary>
    public static NnDiagnostic Expect(string markup, string id)
    {
        var (text, start, length, line, column) = Parse(markup);
        var result = NnCompiler.Compile(text);
        var matches = result.Diagnostics.Where(d => d.Id == id).ToList();
        Assert.True(matches.Count == 1,
            $"expected one {id}, got: {string.Join(" | ", result.Diagnostics.Select(d => d.ToString()))}");
        var diagnostic = matches[0];
        Assert.Equal((start, length, line, column), (diagnostic.Span.Start, diagnostic.Span.Length, diagnostic.Span.Line, diagnostic.Span.Column));
        Assert.Equal(text.Substring(start, length), text.Substring(diagnostic.Span.Start, diagnostic.Span.Length));
        return diagnostic;
    }
}
