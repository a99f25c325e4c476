using CsCheck;
using Dsl.Compiler.Diagnostics;
using Dsl.Compiler.Syntax;
using Sprache;

namespace Dsl.Compiler.Tests;

/// <summary>
/// The parser reports every independent syntax error in one pass, resuming at <c>-&gt;</c>, <c>;</c>, <c>}</c> and the
/// next <c>model</c>/<c>block</c>; its first error is the one the one-error grammar stops at; it always ends.
/// </summary>
public sealed class SyntaxRecoveryTests
{
    [Theory]
    // Two models, one mistake each.
    [InlineData("model A(input: [8]) { relu [|tanh|] -> sigmoid }\nmodel B(input: [4]) { linear(4, 2 [|as|] fc }",
        "unexpected 'tanh'; expected '->', ';' or '}'", "unexpected 'as'; expected ',' or ')'")]
    // Three in one chain: resumed at each '->'.
    // (An arrow is reported as its '-', as the one-error parser always did.)
    [InlineData("model A(input: [8]) {\n    linear(8, 4 [|-|]> relu\n    -> [|)|] bn1d\n    -> tanh [|sigmoid|]\n}",
        "unexpected '-'; expected ',' or ')'", "unexpected ')'; expected layer", "unexpected 'sigmoid'; expected '->', ';' or '}'")]
    // A broken header: its chain is still read from the '{'.
    [InlineData("model A(input: [8[|)|] { relu [|tanh|] }", "unexpected ')'; expected ',' or ']'", "unexpected 'tanh'; expected '->', ';' or '}'")]
    // A broken namespace line, then a model.
    [InlineData("namespace A.B\n[|model|] X(input: [8]) { relu [|tanh|] }", "unexpected 'model'; expected '.' or ';'", "unexpected 'tanh'")]
    // A block between two broken models is read, and so is the model after it.
    [InlineData("model A(input: [8]) { relu [|tanh|] }\nblock B(x) { relu }\nmodel C(input: [4]) { relu [|:|] tanh }",
        "unexpected 'tanh'", "unexpected ':'; expected '->', ';' or '}'")]
    // A broken block: its body is still read, and the model after it.
    [InlineData("block B(x[|:|] { relu [|tanh|] }\nmodel C(input: [4]) { relu [|:|] tanh }",
        "unexpected ':'; expected ',' or ')'", "unexpected 'tanh'", "unexpected ':'")]
    // A model left open: the next declaration ends it.
    [InlineData("model A(input: [8]) { relu\n[|model|] B(input: [4]) { relu [|)|] }", "unexpected 'model'; expected '->', ';' or '}'", "unexpected ')'")]
    // Junk between models.
    [InlineData("model A(input: [8]) { relu }\n[|junk|] more junk\nmodel B(input: [4]) { relu -> [|}|]", "unexpected 'junk'; expected 'model'", "unexpected '}'; expected layer")]
    public void Every_independent_error_is_reported_at_its_span(string markup, params string[] messages)
    {
        var (text, spans) = Marked(markup);
        var diagnostics = NnParser.Parse(text).Diagnostics;
        Assert.True(diagnostics.Count == spans.Count, string.Join(" | ", diagnostics));
        for (int i = 0; i < spans.Count; i++)
        {
            var d = diagnostics[i];
            Assert.Equal("NN0001", d.Id);
            Assert.Equal(Severity.Error, d.Severity);
            Assert.Equal(spans[i], (d.Span.Start, d.Span.Length, d.Span.Line, d.Span.Column));
            Assert.Contains(messages[i], d.Message);
        }
    }

    [Theory]
    [InlineData("model A(input: [8]) { relu -> [|-|]> tanh }")] // the arrow's own layer is not a second error
    [InlineData("model A(input: [8]) { relu [|tanh|] -> }")]
    [InlineData("model X(input: [1, 8]) { conv1d(1, 2, 3 [|}|] }")] // one '}' for a ')': the second brace is the model's
    [InlineData("model X(input: [1, 8]) { conv1d(1, 2, 3 [|}|]")]
    [InlineData("model A(input: [8]) { relu [|:|] }")]
    [InlineData("model A(input: [8]) { x = relu; add(x, [|)|] }")]
    [InlineData("model A(input: [8]) { relu [|{|] tanh }")]
    [InlineData("model [|(|]input: [8]) { relu }")]
    [InlineData("model A(input: [8]) [|relu|] -> tanh }")]
    [InlineData("model A(input: [8]) { linear(8, 4 [|relu|] -> relu }")]
    public void One_mistake_is_one_error(string markup)
    {
        var (text, spans) = Marked(markup);
        var d = Assert.Single(NnParser.Parse(text).Diagnostics);
        Assert.Equal(spans.Single(), (d.Span.Start, d.Span.Length, d.Span.Line, d.Span.Column));
    }

    [Fact]
    public void Models_after_an_error_are_still_checked_for_syntax_but_not_bound()
    {
        var result = NnCompiler.Compile("model A(input: [8]) { relu tanh }\nmodel B(input: [4]) { linear(4, 4000000000) }");
        Assert.Equal("NN0001", Assert.Single(result.Diagnostics).Id); // NN0003 comes from binding, which a syntax error skips
        Assert.Null(result.Syntax);
    }

    public static TheoryData<string> Pathological() => new()
    {
        "}}}}}}}}", "{{{{{{{{", "->->->->->", ";;;;;;;;", "model model model model", "block block block", "block B block C",
        "model", "model X", "model X(", "model X(input", "model X(input: [", "model X(input: [8]) {", "model X(input: [8]) { relu ->",
        "namespace", "namespace ;;;", "namespace A;namespace B;", "model X(input: [8]) { relu } }", "model X(input: [8]) { } } } {",
        "model X(input: [8]) { relu; ; ; -> ; }", "model X(input: [8]) { relu -> as model -> model }",
        "model X(input: [8]) { a(b(c(d(e(f(g", "model X(input: [8]) { a((((((((( }", "-", ">", "- >", "/**/ -> /**/ } // x",
        string.Concat(Enumerable.Repeat("model X(input: [8]) { relu tanh } ", 2000)),
        "model X(input: [8]) { " + string.Concat(Enumerable.Repeat("relu tanh -> ", 5000)) + "}",
        string.Concat(Enumerable.Repeat("}", 20000)),
        string.Concat(Enumerable.Repeat("model ", 20000)),
    };

    [Theory]
    [MemberData(nameof(Pathological))]
    public void Pathological_input_ends_without_throwing(string text)
    {
        ParseResult? result = null;
        var thread = new Thread(() => result = NnParser.Parse(text), 256 * 1024);
        thread.Start();
        Assert.True(thread.Join(TimeSpan.FromSeconds(20)), "the parser did not finish");
        Assert.NotNull(result);
        AssertWellFormed(text, result!);
        Assert.Contains(result!.Diagnostics, d => d.IsError);
    }

    [Fact]
    public void A_valid_file_parses_as_before()
    {
        const string text = "namespace A.B;\nmodel X(input: [1, 8, 8]) { conv(1, 2, 3) as c -> bn2d -> flatten -> linear(72, 2) }\nmodel Y(input: [4]) { relu }";
        var result = NnParser.Parse(text);
        Assert.Empty(result.Diagnostics);
        var reference = Grammar.File.Parse(text);
        Assert.Equal(reference.Namespace!.Select(n => n.Text), result.File!.Namespace!.Select(n => n.Text));
        Assert.Equal(reference.Models.Select(m => (m.Name, m.Span, m.InputSpan, m.Layers.Count)), result.File.Models.Select(m => (m.Name, m.Span, m.InputSpan, m.Layers.Count)));
        Assert.Equal(reference.Models.SelectMany(m => m.Layers), result.File.Models.SelectMany(m => m.Layers), LayerComparer.Instance);
    }

    private static readonly string[] Tokens =
    {
        "model", "block", "X", "(", ")", "input", ":", "[", "]", "8", "{", "}", "->", ";", "conv", "relu", "linear", ",",
        "as", "none", "1e-5", "namespace", ".", "(3, 3)", "kernel:", "\n", "/* c */", "// c\n",
    };

    private const string Seed = """
        namespace Samples.Vision;
        model LeNet(input: [1, 34, 34]) {
            conv(1, 6, 5) as conv1 -> maxpool(2) -> bn2d as bn1 -> flatten -> linear(1350, 10) as fc1
        }
        model Mlp(input: [10]) { linear(10, 5, bias: false) -> bn1d(5, momentum: none) -> relu -> dropout(p: 0.1) }
        """;

    [Fact]
    public void Property_the_first_error_is_the_one_error_grammars()
    {
        var soup = Gen.OneOf(Tokens).Array[0, 40].Select(t => string.Join(" ", t));
        var edit = Gen.Select(Gen.Int[0, 2], Gen.Double[0, 1], Gen.Char[" ()[]{},:;.->0123456789abnrxyz_\n/*"]);
        var mutated = Gen.Select(edit.Array[1, 6], edits =>
        {
            var text = new System.Text.StringBuilder(Seed);
            foreach (var (kind, where, c) in edits)
            {
                int at = (int)(where * text.Length);
                if (kind == 0) text.Insert(at, c);
                else if (at < text.Length && kind == 1) text.Remove(at, 1);
                else if (at < text.Length) text[at] = c;
            }

            return text.ToString();
        });
        Gen.OneOf(soup, mutated).Sample(text =>
        {
            var reference = Grammar.File.TryParse(text);
            var (file, failures) = RecoveringParser.Parse(text);
            if (reference.WasSuccessful)
            {
                Assert.Empty(failures);
                Assert.Equal(reference.Value.Models.Count, file!.Models.Count);
            }
            else
            {
                Assert.NotEmpty(failures);
                Assert.Equal(reference.Remainder.Position, failures[0].At.Position);
                Assert.Equal(reference.Expectations.Distinct(), failures[0].Expected.Distinct());
            }

            var positions = failures.Select(f => f.At.Position).ToList();
            Assert.Equal(positions.OrderBy(p => p).Distinct(), positions);
        }, iter: 4000);
    }

    /// <summary>Spans inside the text, in strictly increasing order, at most one per character.</summary>
    private static void AssertWellFormed(string text, ParseResult result)
    {
        int previous = -1;
        foreach (var d in result.Diagnostics)
        {
            Assert.InRange(d.Span.Start, 0, text.Length);
            Assert.InRange(d.Span.End, d.Span.Start, text.Length);
            Assert.True(d.Span.Start > previous || d.Id != "NN0001");
            previous = d.Span.Start;
        }
    }

    /// <summary>Text with several <c>[|…|]</c> spans: the text without markers, and each span's start, length, line and column.</summary>
    private static (string Text, List<(int Start, int Length, int Line, int Column)> Spans) Marked(string markup)
    {
        var text = new System.Text.StringBuilder();
        var spans = new List<(int, int, int, int)>();
        int line = 1, column = 1, start = -1, startLine = 0, startColumn = 0;
        for (int i = 0; i < markup.Length; i++)
        {
            if (string.CompareOrdinal(markup, i, "[|", 0, 2) == 0)
            {
                (start, startLine, startColumn) = (text.Length, line, column);
                i++;
                continue;
            }

            if (string.CompareOrdinal(markup, i, "|]", 0, 2) == 0)
            {
                spans.Add((start, text.Length - start, startLine, startColumn));
                i++;
                continue;
            }

            text.Append(markup[i]);
            (line, column) = markup[i] == '\n' ? (line + 1, 1) : (line, column + 1);
        }

        return (text.ToString(), spans);
    }

    private sealed class LayerComparer : IEqualityComparer<LayerSyntax>
    {
        public static readonly LayerComparer Instance = new();

        public bool Equals(LayerSyntax? x, LayerSyntax? y) =>
            x!.Name == y!.Name && x.Alias == y.Alias && x.Span == y.Span && x.HasArgumentList == y.HasArgumentList && x.Arguments.SequenceEqual(y.Arguments);

        public int GetHashCode(LayerSyntax obj) => obj.Name.GetHashCode();
    }
}
