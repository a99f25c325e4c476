using Dsl.Compiler.Diagnostics;

namespace Dsl.Compiler.Tests;

/// <summary>Every diagnostic code: its severity, exact span and the words of its message a user relies on.</summary>
public sealed class DiagnosticTests
{
    [Theory]
    // NN0xxx: syntax
    [InlineData("NN0001", "model X(input: [1, 8]) { conv1d(1, 2, 3 [|}|] }", "unexpected '}'", "expected ',' or ')'")]
    [InlineData("NN0001", "model X(input: [1, 8]) { relu -> [|}|]", "expected layer")]
    [InlineData("NN0001", "model X(input: [8]) { relu [|-|] tanh }", "unexpected '-'", "expected '->'")]
    [InlineData("NN0001", "model X(input: [8]) { relu } [|junk|]", "unexpected 'junk'", "expected 'model'")]
    [InlineData("NN0001", "namespace A.B\n[|model|] X(input: [8]) { relu }", "expected '.' or ';'")]
    [InlineData("NN0002", "model X(input: [8]) { relu } [|/*|] never closed", "unterminated block comment", "'*/'")]
    [InlineData("NN0003", "model X(input: [8]) { linear(8, [|99999999999|]) }", "out of range", "99999999999")]
    [InlineData("NN0003", "model X(input: [8]) { dropout([|1e999|]) }", "out of range")]
    [InlineData("NN0004", "// only a comment\n[||]", "declares no model")]
    [InlineData("NN0005", "model X(input: [8]) { relu [|#|] }", "invalid character '#'")]
    // NN1xxx: semantics and shapes
    [InlineData("NN1001", "model X(input: [6, 4, 4]) { [|batchnorm2d|] }", "unknown layer 'batchnorm2d'", "did you mean 'bn2d'?")]
    [InlineData("NN1001", "model X(input: [6]) { [|relux|] }", "did you mean 'relu'?")]
    [InlineData("NN1001", "model X(input: [6]) { [|rleu|] }", "unknown layer 'rleu'", "did you mean 'relu'?")]
    [InlineData("NN1002", "model X(input: [1, 8, 8]) { conv(1, 2, 3, [|sritde|]: 2) }", "no argument 'sritde'", "did you mean 'stride'?")]
    [InlineData("NN1002", "model X(input: [1, 8, 8]) { conv(1, 2, 3, [|kernal|]: 2) }", "no argument 'kernal'", "did you mean 'kernel'?")]
    [InlineData("NN1003", "model X(input: [1, 8, 8]) { conv(1, 2, 3, [|kernel_size: 2|]) }", "'kernel_size'", "more than once")]
    [InlineData("NN1004", "model X(input: [1, 8, 8]) { [|conv|](1, 2) }", "needs 'kernel_size'", "conv(1, 6, 5)")]
    [InlineData("NN1005", "model X(input: [1, 8, 8]) { conv(1, 2, 3, stride: [|1.5|]) }", "must be an integer or a pair", "the decimal 1.5")]
    [InlineData("NN1005", "model X(input: [1, 8]) { conv1d(1, 2, [|(3, 3)|]) }", "single integer", "the pair (3, 3)")]
    [InlineData("NN1005", "model X(input: [2, 8]) { conv(2, 4, [|(3, 5)|]) }", "single integer on a [C, L] input", "the pair (3, 5)")]
    [InlineData("NN1005", "model X(input: [8]) { linear(8, 4, bias: [|True|]) }", "'True' is not a value", "write 'true'")]
    [InlineData("NN1005", "model X(input: [1, 8, 8]) { conv(1, 4, 3, padding: [|same|]) }", "padding 'same' is not in v1", "padding: 1")]
    [InlineData("NN1006", "model X(input: [4]) { leaky_relu([|1e300|]) }", "beyond the range of float32")]
    [InlineData("NN1006", "model X(input: [4]) { bn(eps: [|1e-50|]) }", "greater than 0 in float32")]
    [InlineData("NN1006", "model X(input: [1, 8, 8]) { conv(1, 2, 3, padding: [|-1|]) }", "'padding' of 'conv' must be at least 0", "got -1")]
    [InlineData("NN1006", "model X(input: [4]) { dropout([|1.0|]) }", "'p'", "less than 1")]
    [InlineData("NN1006", "model X(input: [4]) { bn(eps: [|0|]) }", "'eps'", "greater than 0")]
    [InlineData("NN1006", "model X(input: [4]) { bn(momentum: [|1.5|]) }", "between 0 and 1")]
    [InlineData("NN1007", "model X(input: [4]) { relu([|1|]) }", "'relu' takes no arguments")]
    [InlineData("NN1007", "model X(input: [4]) { linear(4, 2, true, [|5|]) }", "at most 3 positional arguments")]
    [InlineData("NN1008", "model X(input: [4]) { linear(in: 4, [|2|]) }", "positional argument cannot follow named")]
    [InlineData("NN1010", "model X(input: [1, 34, 34]) { conv([|3|], 6, 5) }", "expects 3 input channels but receives 1", "conv(1, 6, ...)")]
    [InlineData("NN1011", "model LeNet(input: [1, 30, 30]) {\n    conv(1, 6, 5) as conv1\n    -> maxpool(2)\n    -> bn2d as bn1\n    -> flatten\n    -> linear([|1350|], 10) as fc1\n}",
        "'flatten' yields 1014 features (6×13×13) but 'linear' expects 1350", "linear(1014, 10)")]
    [InlineData("NN1011", "model X(input: [64]) { relu -> linear([|128|], 10) }", "expects 128 input features but receives 64", "'relu'")]
    [InlineData("NN1012", "model X(input: [6, 4, 4]) { bn2d([|16|]) }", "num_features 16 but its input has 6 channels", "bn2d(6)")]
    [InlineData("NN1012", "model X(input: [6, 4, 4]) { group_norm(3, [|8|]) }", "num_channels 8 but its input has 6 channels", "group_norm(3, 6)")]
    [InlineData("NN1012", "model X(input: [6, 4, 4]) { instance_norm([|8|]) }", "num_features 8 but its input has 6 channels", "instance_norm(6)")]
    [InlineData("NN1013", "model X(input: [6, 4, 4]) { [|linear|](96, 10) }", "takes an input of shape [F] but receives [6, 4, 4]", "insert 'flatten'")]
    [InlineData("NN1013", "model X(input: [64]) { [|conv2d|](64, 8, 3) }", "[C, H, W]", "receives [64]")]
    [InlineData("NN1013", "model X(input: [16]) { [|bn2d|] }", "receives [16]", "did you mean 'bn1d'?")]
    [InlineData("NN1013", "model X(input: [4, 16]) { [|bn2d|] }", "receives [4, 16]", "did you mean 'bn1d'?")]
    [InlineData("NN1013", "model X(input: [4, 8, 8]) { [|bn1d|] }", "receives [4, 8, 8]", "did you mean 'bn2d'?")]
    [InlineData("NN1013", "model X(input: [4, 16]) { [|conv2d|](4, 8, 3) }", "[C, H, W] but receives [4, 16]", "did you mean 'conv1d'?")]
    [InlineData("NN1013", "model X(input: [4, 8, 8]) { [|conv1d|](4, 8, 3) }", "[C, L] but receives [4, 8, 8]", "did you mean 'conv2d'?")]
    [InlineData("NN1013", "model X(input: [4, 16]) { [|maxpool2d|](2) }", "receives [4, 16]", "did you mean 'maxpool1d'?")]
    [InlineData("NN1013", "model X(input: [4, 8, 8]) { [|avgpool1d|](2) }", "receives [4, 8, 8]", "did you mean 'avgpool2d'?")]
    [InlineData("NN1014", "model X(input: [1, 4, 4]) { conv(1, 6, [|5|]) }", "reduces the height to 0", "input height of 4")]
    [InlineData("NN1014", "model X(input: [1, 8, 8]) { maxpool(2) -> maxpool(2) -> maxpool(2) -> maxpool([|2|]) }", "reduces the height to 0")]
    [InlineData("NN1015", "model X(input: [2, 4, 4]) { conv(2, 4, 3, groups: [|3|]) }", "groups 3 must divide both in_channels 2 and out_channels 4")]
    [InlineData("NN1016", "model A(input: [4]) { relu }\nmodel [|A|](input: [4]) { tanh }", "model 'A' is already declared at (1,7)")]
    [InlineData("NN1017", "model X(input: [4]) { relu as a -> tanh as [|a|] }", "layer name 'a' is already used")]
    [InlineData("NN1018", "model [|class|](input: [4]) { relu }", "C# keyword")]
    [InlineData("NN1018", "model [|InputLength|](input: [4]) { relu }", "member of every generated model")]
    [InlineData("NN1018", "model [|_arena|](input: [4]) { relu }", "reserved")]
    [InlineData("NN1018", "model [|net|](input: [4]) { relu }", "all-lowercase type names", "write Net")]
    [InlineData("NN1018", "model [|var|](input: [4]) { relu }", "'var' or 'record' would break other code")]
    [InlineData("NN1019", "model X(input: [[|0|], 4]) { relu }", "input dimension 0 must be at least 1")]
    [InlineData("NN1019", "model X(input: [|[1, 2, 3, 4]|]) { relu }", "1 to 3 dimensions")]
    [InlineData("NN1020", "model X(input: [1, 8, 8]) { maxpool(2, padding: [|2|]) }", "at most half", "got 2")]
    [InlineData("NN1020", "model X(input: [1, 9, 9]) { maxpool(2, dilation: 3, padding: [|2|]) }", "at most 1 for kernel 2")] // PyTorch: pad ≤ kernel/2, dilation aside
    [InlineData("NN1021", "model X(input: [4]) { bn(frozen: [|true|], track_running_stats: false) }", "needs running statistics", "keeps none")]
    [InlineData("NN1022", "model X(input: [|[46341, 46341]|]) { relu }", "2147488281 values per sample", "2 GiB")]
    [InlineData("NN1022", "model X(input: [1000000]) { [|linear|](1000000, 1000000) }", "weight of 1000000000000 values")]
    [InlineData("NN1022", "model X(input: [4]) { [|linear|](4, 2147483647) }", "produces 2147483647 values per sample")]
    [InlineData("NN1023", "model X(input: [6, 4, 4]) { group_norm([|4|]) }", "num_groups 4 does not divide the 6 channels", "write group_norm(3)")]
    [InlineData("NN1023", "model X(input: [8, 4, 4]) { group_norm(num_groups: [|3|]) }", "the divisors of 8: 1, 2, 4, 8", "write group_norm(4)")]
    [InlineData("NN1024", "model X(input: [4, 6, 6]) { layer_norm([|4|]) }", "last dimension, which is 6", "write layer_norm(6), or leave it out to normalize the whole sample [4, 6, 6]")]
    [InlineData("NN1024", "model X(input: [12]) { linear(12, 16) -> layer_norm([|12|]) }", "which is 16 in the output of 'linear', [16], not 12", "write layer_norm(16)")]
    [InlineData("NN1025", "model X(input: [16]) { [|instance_norm|] }", "'instance_norm' normalizes each channel over its positions", "write layer_norm")]
    [InlineData("NN1025", "model X(input: [4, 4]) { flatten -> instance_norm2d([|16|]) }", "feature vector", "bn1d")]
    [InlineData("NN1026", "model X(input: [4, 8, 8]) { out = conv(4, 8, 1) as c; add(out, [|input|]) }", "add: 'input' is [4, 8, 8] but 'out' is [8, 8, 8]", "skip = input -> (conv(4, 8, 1, bias: false) -> bn2d) as downsample")]
    [InlineData("NN1026", "model X(input: [4, 8, 8]) { out = conv(4, 4, 3, stride: 2, padding: 1) as c; add(out, [|input|]) }", "but 'out' is [4, 4, 4]", "conv(4, 4, 1, stride: 2, bias: false)")]
    [InlineData("NN1027", "model X(input: [4, 8, 8]) { out = maxpool(2) as p; concat(out, [|input|]) }", "concat: 'input' is [4, 8, 8] but 'out' is [4, 4, 4]", "every other dimension must agree")]
    [InlineData("NN1028", "model X(input: [4]) { [|add(input)|] }", "'add' of one value is that value", "add(input, input)")]
    [InlineData("NN1028", "model X(input: [4]) { [|concat()|] }", "'concat' needs at least two values")]
    [InlineData("NN1029", "block BasicBlock(c) { relu }\nmodel X(input: [4]) { [|BasicBlok|](4) }", "unknown block 'BasicBlok'", "did you mean 'BasicBlock'?")]
    [InlineData("NN1029", "model X(input: [4]) { [|Relu|] }", "unknown block 'Relu'", "layer names are lower-case: write 'relu'")]
    [InlineData("NN1030", "block A(c) { relu -> [|A|](c) }\nmodel X(input: [4]) { relu }", "block 'A' uses itself (A → A)", "repeat it instead")]
    [InlineData("NN1030", "block A(c) { B(c) }\nblock B(c) { [|A|](c) }\nmodel X(input: [4]) { relu }", "block 'A' uses itself (A → B → A)")]
    [InlineData("NN1031", "model X(input: [4]) { a = relu; add(a, [|zzz|]) }", "unknown value 'zzz'", "the values here are input, a")]
    [InlineData("NN1031", "model X(input: [4]) { a = add([|b|], input); b = relu; add(a, b) }", "'b' is used before it is bound (at (1,42))", "move that statement before this one")]
    [InlineData("NN1032", "model X(input: [4]) { a = relu; [|a|] = tanh; add(a, input) }", "'a' is already bound at (1,23)")]
    [InlineData("NN1032", "model X(input: [4]) { [|relu|] = tanh; add(relu, input) }", "'relu' is a layer and cannot name a value")]
    [InlineData("NN1033", "model X(input: [4]) { [|(relu -> tanh)|] }", "a group is a child (nn.Sequential) and needs a name", "as layer1")]
    [InlineData("NN1034", "block B(c) { relu }\nmodel X(input: [4]) { B(4) * [|0|] }", "the count after '*' must be an integer of at least 1, not 0")]
    [InlineData("NN1034", "model X(input: [4]) { (relu) as g [|*|] 2 }", "a group cannot be repeated", "repeat the block")]
    [InlineData("NN1034", "block B(c) { relu }\nmodel X(input: [4]) { B(4) as [|b|] * 2 }", "a repeated item takes no 'as'")]
    [InlineData("NN1034", "block B(c, n) { relu * [|m|] }\nmodel X(input: [4]) { B(4, 2) }", "'m' is not a parameter of block 'B'")]
    [InlineData("NN1035", "model X(input: [4]) { a = relu; tanh -> [|a|] }", "'a' is a value, and only a chain's start can be a value", "add(x, a)")]
    [InlineData("NN1035", "model X(input: [4]) { [|relu|]; tanh }", "this chain's value is never used")]
    [InlineData("NN1035", "model X(input: [4]) { relu [|;|] }", "the last statement is the body's output: remove this ';'")]
    [InlineData("NN1035", "model X(input: [4]) { [|a|] = relu; }", "write it without 'a =' and without ';'")]
    [InlineData("NN1035", "model X(input: [4]) { [|}|]", "is empty")]
    [InlineData("NN1035", "model X(input: [4]) { ([|add(input, input)|] -> relu) as g }", "a group is a sequence of layers (nn.Sequential): it starts with a layer, not a value")]
    [InlineData("NN1036", "block [|basic|](c) { relu }\nmodel X(input: [4]) { relu }", "block names start with an upper-case letter", "write 'Basic'")]
    [InlineData("NN1036", "block B(c) { relu }\nblock [|B|](d) { tanh }\nmodel X(input: [4]) { relu }", "block 'B' is already declared at (1,7)")]
    [InlineData("NN1036", "block B(c, [|c|]) { relu }\nmodel X(input: [4]) { relu }", "parameter 'c' of block 'B' is already declared")]
    [InlineData("NN1036", "block B(c = 1, [|d|]) { relu }\nmodel X(input: [4]) { relu }", "parameter 'd' has no default but follows one that has")]
    // NN2xxx: warnings
    [InlineData("NN2001", "model X(input: [1, 8, 8]) { [|conv|](1, 6, 3) -> bn2d }", "cancelled by the following 'bn2d'", "bias: false")]
    [InlineData("NN2001", "model X(input: [1, 8, 8]) { [|conv|](1, 6, 3) as c1 -> bn2d }", "weights that carry 'c1.bias'", "allowExtra: true")]
    [InlineData("NN2001", "model X(input: [4]) { linear(4, 3, bias: [|true|]) -> bn1d }", "bias: false")]
    [InlineData("NN2002", "model X(input: [4]) { [|dropout|](0.2) -> linear(4, 4, bias: false) -> bn1d }", "'dropout' before 'bn1d'", "variance")]
    [InlineData("NN2003", "model X(input: [4]) { bn(momentum: [|0.99|]) }", "replace 99% of the running statistics", "momentum: 0.01")]
    [InlineData("NN2004", "model X(input: [4]) { bn(momentum: [|0|]) }", "never updates the running statistics", "frozen: true")]
    [InlineData("NN2005", "model X(input: [4]) { bn1d -> [|bn1d|] }", "directly follows another batch norm")]
    [InlineData("NN2006", "model X(input: [4]) { [|softmax|] -> linear(4, 2) }", "'softmax' is followed by 'linear'")]
    [InlineData("NN2007", "model X(input: [4]) { bn(track_running_stats: [|false|]) }", "depends on the rest of its batch", "batch of one sample fails")]
    [InlineData("NN2008", "model X(input: [4]) { [|a|] = relu; tanh }", "'a' is bound but never used", "add(a, input)")]
    public void Reports_code_span_and_message(string id, string markup, string keyword1, string? keyword2 = null)
    {
        var diagnostic = Markup.Expect(markup, id);
        var expectedSeverity = id.StartsWith("NN2", StringComparison.Ordinal) ? Severity.Warning : Severity.Error;
        Assert.Equal(expectedSeverity, diagnostic.Severity);
        Assert.Contains(keyword1, diagnostic.Message, StringComparison.Ordinal);
        if (keyword2 is not null) Assert.Contains(keyword2, diagnostic.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_descriptor_has_a_test_above()
    {
        var tested = typeof(DiagnosticTests).GetMethod(nameof(Reports_code_span_and_message))!
            .GetCustomAttributes(typeof(InlineDataAttribute), false).Cast<InlineDataAttribute>()
            .Select(a => (string)a.GetData(null!).First()[0]).ToHashSet();
        var untested = DiagnosticDescriptors.All.Select(d => d.Id).Where(id => id != "NN9001" && !tested.Contains(id)).ToList();
        Assert.Empty(untested);
    }

    [Fact]
    public void Descriptor_ids_are_unique_and_follow_the_numbering()
    {
        var ids = DiagnosticDescriptors.All.Select(d => d.Id).ToList();
        Assert.Equal(ids.Count, ids.Distinct().Count());
        Assert.All(DiagnosticDescriptors.All, d =>
            Assert.Equal(d.Id.StartsWith("NN2", StringComparison.Ordinal) ? Severity.Warning : Severity.Error, d.Severity));
    }

    [Fact]
    public void Every_bad_argument_of_a_layer_is_reported_not_just_the_first()
    {
        var result = NnCompiler.Compile("model X(input: [2, 4, 4]) { conv(2, 4, 3, dilation: 0, padding: -1, stride: 1.5) }");
        Assert.Equal(new[] { "NN1006", "NN1006", "NN1005" }, result.Diagnostics.Select(d => d.Id));
    }

    [Fact]
    public void A_model_with_errors_does_not_bind_but_its_neighbours_do()
    {
        var result = NnCompiler.Compile("model Good(input: [4]) { relu }\nmodel Bad(input: [4]) { linear(5, 2) }");
        Assert.Equal(new[] { "Good" }, result.Models.Select(m => m.Name));
        Assert.Single(result.Diagnostics, d => d.Id == "NN1011");
    }

    [Fact]
    public void One_shape_error_does_not_cascade_through_the_rest_of_the_chain()
    {
        var result = NnCompiler.Compile("model X(input: [1, 8, 8]) { conv(3, 4, 3) -> bn2d(4) -> flatten -> linear(144, 2) }");
        Assert.Equal(new[] { "NN1010" }, result.Diagnostics.Select(d => d.Id));
    }

    [Theory]
    [InlineData("// c\rmodel A(input: [8]) { relux }", 2, 23)]
    [InlineData("// c\r\nmodel A(input: [8]) { relux }", 2, 23)]
    [InlineData("// c\u2028model A(input: [8]) {\u0085relux }", 3, 1)]
    public void Every_line_break_roslyn_knows_counts_as_one(string text, int line, int column)
    {
        var d = NnCompiler.Compile(text).Diagnostics.Single();
        Assert.Equal("NN1001", d.Id);
        Assert.Equal((line, column), (d.Span.Line, d.Span.Column));
    }

    [Fact]
    public void Messages_do_not_depend_on_the_current_culture()
    {
        var saved = System.Globalization.CultureInfo.CurrentCulture;
        try
        {
            System.Globalization.CultureInfo.CurrentCulture = new System.Globalization.CultureInfo("de-DE");
            var d = NnCompiler.Compile("model X(input: [4]) { bn(momentum: 0.925) }").Diagnostics.Single();
            Assert.Contains("replace 92.5%", d.Message);
            Assert.Contains("momentum: 0.075", d.Message);
        }
        finally
        {
            System.Globalization.CultureInfo.CurrentCulture = saved;
        }
    }

    [Theory]
    [InlineData("model X(input: [4]) { bn1d(momentum: 0.95, frozen: true) }")]
    [InlineData("model X(input: [4]) { bn1d(momentum: 0, track_running_stats: false) }")]
    public void Momentum_lints_stay_quiet_where_momentum_is_never_used(string text) =>
        Assert.DoesNotContain(NnCompiler.Compile(text).Diagnostics, d => d.Id is "NN2003" or "NN2004");

    [Fact]
    public void A_duplicate_model_is_reported_once_and_not_bound()
    {
        var result = NnCompiler.Compile("model A(input: [4]) { relu }\nmodel A(input: [4]) { linear(4, 3) -> bn1d }");
        Assert.Equal(new[] { "NN1016" }, result.Diagnostics.Select(d => d.Id)); // no NN2001 from the duplicate
        Assert.Single(result.Models);
    }

    [Fact]
    public void Non_ascii_digits_are_not_numbers() =>
        Assert.Equal("NN0001", NnCompiler.Compile("model X(input: [8]) { linear(\u0668, 4) }").Diagnostics.Single().Id);

    [Fact]
    public void Diagnostics_format_in_msbuild_canonical_form()
    {
        var d = NnCompiler.Compile("model X(input: [64]) { relu -> linear(128, 10) }").Diagnostics.Single();
        Assert.Equal("lenet.nn(1,39): error NN1011: 'linear' expects 128 input features but receives 64 (the output of 'relu', [64]); write linear(64, 10)", d.Format("lenet.nn"));
    }

    [Theory]
    [InlineData("rleu", "relu", 1)] // a transposition is one edit (optimal string alignment)
    [InlineData("relu", "relu", 0)]
    [InlineData("lienar", "linear", 1)]
    [InlineData("ca", "abc", 3)] // OSA, not unrestricted Damerau (which says 2)
    [InlineData("kernal", "kernel", 1)]
    public void Edit_distance_counts_adjacent_transpositions_as_one(string a, string b, int distance) =>
        Assert.Equal(distance, Dsl.Compiler.Ops.OpRegistry.EditDistance(a, b));
}
