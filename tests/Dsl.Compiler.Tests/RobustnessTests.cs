using CsCheck;
using Dsl.Compiler.Diagnostics;

namespace Dsl.Compiler.Tests;

/// <summary>The front end never throws and never accepts a broken file silently, whatever the input.</summary>
public sealed class RobustnessTests
{
    private const string LeNet = """
        namespace Samples.Vision; // optional
        model LeNet(input: [1, 34, 34]) {
            conv(1, 6, 5) as conv1 -> maxpool(2) -> bn2d as bn1 -> flatten -> linear(1350, 10) as fc1
        }
        /* a second model */
        model Mlp(input: [10]) { linear(10, 5, bias: false) -> bn1d(5, momentum: none, eps: 1e-3) -> relu -> dropout(p: 0.1) -> linear(in: 5, out: 1) }
        model Pairs(input: [2, 9, 9]) { conv2d(2, 4, (3, 1), stride: (2, 1), padding: (1, 0)) -> avgpool(kernel: 2, ceil_mode: true) -> global_avgpool -> log_softmax }
        """;

    [Fact]
    public void The_seed_corpus_compiles_clean()
    {
        var result = NnCompiler.Compile(LeNet);
        Assert.Empty(result.Diagnostics);
        Assert.Equal(new[] { "LeNet", "Mlp", "Pairs" }, result.Models.Select(m => m.Name));
    }

    [Theory]
    [InlineData("")]
    [InlineData("   \n\t  ")]
    [InlineData("\0")]
    [InlineData("model X(input: [4]) { relu \0 }")]
    [InlineData("/* never closed")]
    [InlineData("model")]
    [InlineData("model X(input: [4]) {")]
    [InlineData("model X(input: [99999999999999999999999]) { relu }")]
    [InlineData("model X(input: [4]) { dropout(1e400) }")]
    [InlineData("model X(input: [4]) { dropout(-) }")]
    [InlineData("model X(input: [4]) { linear(4, 2147483647) -> linear(2147483647, 2147483647) }")]
    [InlineData("model X(input: [2147483647, 2147483647, 2147483647]) { flatten }")]
    [InlineData("model X(input: [1, 2147483647, 2147483647]) { conv(1, 2147483647, 3) }")]
    [InlineData("\uFEFFmodel X(input: [4]) { relu }")]
    [InlineData("model X(input: [4]) { relu } \uD800")]
    public void Hostile_input_yields_diagnostics_not_exceptions(string text)
    {
        var result = NnCompiler.Compile(text);
        Assert.DoesNotContain(result.Diagnostics, d => d.Id == "NN9001");
        AssertConsistent(text, result);
    }

    [Fact]
    public void Binary_junk_yields_an_error()
    {
        var random = new Random(42);
        for (int i = 0; i < 200; i++)
        {
            var bytes = new byte[random.Next(1, 400)];
            random.NextBytes(bytes);
            string text = System.Text.Encoding.UTF8.GetString(bytes);
            var result = NnCompiler.Compile(text);
            Assert.True(result.HasErrors, $"junk accepted: {Convert.ToBase64String(bytes)}");
            Assert.DoesNotContain(result.Diagnostics, d => d.Id == "NN9001");
        }
    }

    [Fact]
    public void A_chain_of_5000_layers_binds_on_a_small_stack()
    {
        string text = "model Deep(input: [4]) { " + string.Join(" -> ", Enumerable.Repeat("relu", 5000)) + " }";
        CompilationResult? result = null;
        // 256 KiB is a quarter of the usual stack: recursion per layer would overflow it.
        var thread = new Thread(() => result = NnCompiler.Compile(text), 256 * 1024);
        thread.Start();
        thread.Join();
        Assert.NotNull(result);
        Assert.Empty(result!.Diagnostics);
        Assert.Equal(5000, result.Models.Single().Layers.Count);
    }

    private static readonly string[] Tokens =
    {
        "model", "X", "Y", "(", ")", "input", ":", "[", "]", "1", "34", "0", "-1", "{", "}", "->", "conv", "bn2d", "bn", ",",
        "as", "relu", "linear", "//", "/*", "*/", "\n", " ", "none", "true", "0.5", "1e-5", "namespace", ";", ".", "flatten",
        "maxpool", "(3, 3)", "\0", "é", "99999999999", "kernel:", "momentum:", "frozen:", "dropout", "softmax", "global_avgpool",
    };

    [Fact]
    public void Property_random_token_soup_never_throws_and_rejections_carry_errors()
    {
        Gen.OneOf(Tokens).Array[0, 60]
            .Select(tokens => string.Join(" ", tokens))
            .Sample(text => AssertConsistent(text, NnCompiler.Compile(text)), iter: 3000);
    }

    [Fact]
    public void Property_mutated_valid_files_never_throw_and_rejections_carry_errors()
    {
        var edit = Gen.Select(Gen.Int[0, 2], Gen.Double[0, 1], Gen.Char[" ()[]{},:;.->0123456789abnrxyz_\n/*"]);
        Gen.Select(edit.Array[1, 6], edits =>
            {
                var text = new System.Text.StringBuilder(LeNet);
                foreach (var (kind, where, c) in edits)
                {
                    int at = (int)(where * text.Length);
                    if (kind == 0) text.Insert(at, c);
                    else if (at < text.Length && kind == 1) text.Remove(at, 1);
                    else if (at < text.Length) text[at] = c;
                }

                return text.ToString();
            })
            .Sample(text => AssertConsistent(text, NnCompiler.Compile(text)), iter: 3000);
    }

    /// <summary>What holds for every input: no crash, spans inside the text, and nothing dropped without an error.</summary>
    private static void AssertConsistent(string text, CompilationResult result)
    {
        Assert.DoesNotContain(result.Diagnostics, d => d.Id == "NN9001");
        foreach (var d in result.Diagnostics)
        {
            Assert.InRange(d.Span.Start, 0, text.Length);
            Assert.InRange(d.Span.End, d.Span.Start, text.Length);
            Assert.True(d.Span.Line >= 1 && d.Span.Column >= 1);
        }

        int declared = result.Syntax?.Models.Count ?? 0;
        if (result.Syntax is null || declared == 0 || result.Models.Count < declared)
            Assert.Contains(result.Diagnostics, d => d.Severity == Severity.Error);
        if (!result.HasErrors)
        {
            Assert.Equal(declared, result.Models.Count);
            Assert.All(result.Models, m => Assert.All(m.Layers, l => Assert.All(l.OutputShape, dim => Assert.True(dim >= 1))));
        }
    }
}
