using Dsl.Cli;

namespace Dsl.Compiler.Tests;

/// <summary><c>nnc check</c> and <c>nnc summary</c> run in process.</summary>
public sealed class CliTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("nnc-tests").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private string Write(string name, string text)
    {
        string path = Path.Combine(_directory, name);
        File.WriteAllText(path, text);
        return path;
    }

    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int exit = Cli.Cli.Run(args, stdout, stderr, plain: true);
        return (exit, stdout.ToString(), stderr.ToString());
    }

    private const string Tutorial30 = """
        // The classic tutorial's network, with the input it assumed.
        model LeNet(input: [1, 30, 30]) {
            conv(1, 6, 5)       as conv1
            -> maxpool(2)
            -> bn2d             as bn1
            -> flatten
            -> linear(1350, 10) as fc1
        }
        """;

    [Fact]
    public void Check_points_at_1350_and_explains_the_1014()
    {
        string path = Write("lenet.nn", Tutorial30);
        var (exit, output, _) = Run("check", path);
        Assert.Equal(1, exit);
        Assert.Contains($"{path}(7,15): error NN1011: 'flatten' yields 1014 features (6×13×13) but 'linear' expects 1350; write linear(1014, 10)", output);
        Assert.EndsWith("1 file(s): 1 error(s), 0 warning(s)" + Environment.NewLine, output);
    }

    [Fact]
    public void Check_prints_the_layer_inside_a_block_on_a_second_line()
    {
        string path = Write("block.nn", "block B(c) {\n    conv(c, c, 3) as conv\n}\nmodel M(input: [4, 2, 2]) {\n    B(4) as b\n}\n");
        var (exit, output, _) = Run("check", path);
        Assert.Equal(1, exit);
        var lines = output.Split(Environment.NewLine);
        Assert.StartsWith($"{path}(5,5): error NN1014: in 'b' = B(c: 4): ", lines[0]);
        Assert.Equal($"{path}(2,16): related location of NN1014", lines[1]);
        Assert.Equal("1 file(s): 1 error(s), 0 warning(s)", lines[2]);
    }

    private const string TwoBlocks = """
        block BasicBlock(inplanes, planes, stride = 1) {
            out = conv(inplanes, planes, 3, stride: stride, padding: 1, bias: false) as conv1
                  -> bn2d as bn1 -> relu
                  -> conv(planes, planes, 3, padding: 1, bias: false) as conv2
                  -> bn2d as bn2;
            add(out, input) -> relu
        }
        model Res(input: [4, 8, 8]) {
            conv(4, 8, 3, padding: 1, bias: false) as stem -> (BasicBlock(8, 8) * 2) as layer1 -> global_avgpool -> linear(8, 2) as fc
        }
        """;

    [Fact]
    public void Summary_prints_blocks_and_groups_with_their_totals_and_their_layers_indented()
    {
        var (exit, output, _) = Run("summary", Write("res.nn", TwoBlocks));
        Assert.Equal(0, exit);
        var rows = output.Split(Environment.NewLine).Select(l => l.TrimEnd()).ToList();
        // group: 2 × (2 convs of 8·8·9 + 2 batch norms of 16) = 2 × 1,184
        Assert.Matches(@"^group +layer1 +\[B, 8, 8, 8\] +2,368 +", rows.Single(r => r.StartsWith("group", StringComparison.Ordinal)));
        Assert.Matches(@"^  BasicBlock\(8, 8, 1\) +layer1\.1 +\[B, 8, 8, 8\] +1,184 +", rows.Single(r => r.Contains("layer1.1 ", StringComparison.Ordinal) && r.Contains("BasicBlock", StringComparison.Ordinal)));
        Assert.Contains(rows, r => r.StartsWith("    conv(8, 8, 3, stride: 1, padding: 1, bias: false) (conv2d)  layer1.0.conv1", StringComparison.Ordinal));
        Assert.Contains(rows, r => r.StartsWith("    add(out, input)", StringComparison.Ordinal));
        Assert.Contains("Total params: 2,674", output); // stem 288 + 2,368 + fc 18; each layer counted once
        Assert.Matches(@"Arena per sample: [0-9.]+ KiB planned from live ranges \(training and inference; [0-9.]+ KiB without reuse\), [0-9.]+ KiB of it kept from Forward for Backward", output);

        using var json = System.Text.Json.JsonDocument.Parse(Run("summary", Write("res2.nn", TwoBlocks), "--format", "json").Out);
        var layer1 = json.RootElement.GetProperty("modules").EnumerateArray().Single(m => m.GetProperty("name").GetString() == "layer1");
        Assert.Equal("group", layer1.GetProperty("kind").GetString());
        Assert.Equal(2368, layer1.GetProperty("parameters").GetInt64());
        var block = layer1.GetProperty("children")[0];
        Assert.Equal(("block", "BasicBlock", "8, 8, 1"), (block.GetProperty("kind").GetString(), block.GetProperty("type").GetString(), block.GetProperty("arguments").GetString()));
    }

    [Fact]
    public void Check_exits_0_with_warnings_only()
    {
        string path = Write("warn.nn", "model X(input: [4]) { linear(4, 3) -> bn1d }");
        var (exit, output, _) = Run("check", path);
        Assert.Equal(0, exit);
        Assert.Contains($"{path}(1,23): warning NN2001:", output);
    }

    [Fact]
    public void Check_takes_several_files()
    {
        var (exit, output, _) = Run("check", Write("a.nn", "model A(input: [4]) { relu }"), Write("b.nn", "model B(input: [4]) { relux }"));
        Assert.Equal(1, exit);
        Assert.Contains("2 file(s): 1 error(s), 0 warning(s)", output);
    }

    [Fact]
    public void Missing_file_and_bad_usage_are_reported()
    {
        Assert.Equal(1, Run("check", Path.Combine(_directory, "nope.nn")).Exit);
        Assert.Equal(2, Run("frobnicate").Exit);
        Assert.Equal(2, Run("check").Exit);
    }

    [Fact]
    public void Summary_prints_the_per_layer_table_and_totals()
    {
        string path = Write("lenet.nn", Tutorial30.Replace("30, 30", "34, 34"));
        var (exit, output, _) = Run("summary", path);
        Assert.Equal(0, exit);
        var lines = output.Split(Environment.NewLine);
        Assert.Contains(lines, l => l.StartsWith("conv(1, 6, 5) (conv2d)", StringComparison.Ordinal) && l.Contains("conv1") && l.Contains("[B, 6, 30, 30]") && l.Contains("156") && l.Contains("275,400"));
        Assert.Contains(lines, l => l.StartsWith("linear(1350, 10)", StringComparison.Ordinal) && l.Contains("fc1") && l.Contains("[B, 10]") && l.Contains("13,510"));
        Assert.Contains("Total params: 13,678", output);
        Assert.Contains("Non-trainable buffers: 13", output);
    }

    [Fact]
    public void Summary_as_json_lists_the_state_dict_with_shapes_and_dtypes()
    {
        string path = Write("lenet.nn", Tutorial30.Replace("30, 30", "34, 34"));
        var (exit, output, _) = Run("summary", path, "--format", "json");
        Assert.Equal(0, exit);
        using var json = System.Text.Json.JsonDocument.Parse(output);
        var model = json.RootElement;
        Assert.Equal("LeNet", model.GetProperty("model").GetString());
        Assert.Equal(13678, model.GetProperty("parameters").GetInt64());
        Assert.Equal(13, model.GetProperty("buffers").GetInt64());
        var keys = model.GetProperty("state_dict").EnumerateArray()
            .Select(t => (t.GetProperty("key").GetString(), string.Join(",", t.GetProperty("shape").EnumerateArray().Select(d => d.GetInt32())), t.GetProperty("dtype").GetString()))
            .ToList();
        Assert.Equal(new (string?, string, string?)[]
        {
            ("conv1.weight", "6,1,5,5", "F32"), ("conv1.bias", "6", "F32"),
            ("bn1.weight", "6", "F32"), ("bn1.bias", "6", "F32"), ("bn1.running_mean", "6", "F32"), ("bn1.running_var", "6", "F32"), ("bn1.num_batches_tracked", "", "I64"),
            ("fc1.weight", "10,1350", "F32"), ("fc1.bias", "10", "F32"),
        }, keys);
        Assert.Equal(5, model.GetProperty("layers").GetArrayLength());
        Assert.Equal("conv2d", model.GetProperty("layers")[0].GetProperty("kind").GetString());

        string two = Write("two.nn", "model A(input: [4]) { relu }\nmodel B(input: [4]) { linear(4, 2) }");
        using var both = System.Text.Json.JsonDocument.Parse(Run("summary", two, "--format", "json").Out);
        Assert.Equal(2, both.RootElement.GetArrayLength()); // several models: an array
        Assert.Equal(2, Run("summary", two, "--format", "xml").Exit);
    }

    [Fact]
    public void Summary_selects_a_model_and_rejects_unknown_ones()
    {
        string path = Write("two.nn", "model A(input: [4]) { relu }\nmodel B(input: [4]) { linear(4, 2) }");
        var (exit, output, _) = Run("summary", path, "--model", "B");
        Assert.Equal(0, exit);
        Assert.Contains("Model B", output);
        Assert.DoesNotContain("Model A", output);
        var missing = Run("summary", path, "--model", "C");
        Assert.Equal(1, missing.Exit);
        Assert.Contains("no model 'C'", missing.Err);
    }

    [Fact]
    public void Unknown_commands_options_and_models_get_a_suggestion()
    {
        string path = Write("nets.nn", "model LeNet(input: [4]) { relu }\nmodel Mlp(input: [4]) { linear(4, 2) }");
        Assert.Contains("unknown command 'chekc'; did you mean 'check'?", Run("chekc", path).Err);
        Assert.Contains("unknown option '--mdoel'; did you mean '--model'?", Run("summary", path, "--mdoel", "Mlp").Err);
        Assert.Contains("no model 'LeNte' in", Run("summary", path, "--model", "LeNte").Err);
        Assert.Contains("did you mean 'LeNet'?", Run("summary", path, "--model", "LeNte").Err);
    }

    /// <summary>Every .nn file the repository trains or checks against PyTorch: the golden bundles' models and the examples.</summary>
    public static TheoryData<string> SummaryModels()
    {
        var data = new TheoryData<string>();
        foreach (var bundle in Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "Golden"), "*.safetensors").Order(StringComparer.Ordinal))
            data.Add(Dsl.Runtime.SafetensorsFile.Read(bundle).Metadata["nn"]);
        var root = new DirectoryInfo(AppContext.BaseDirectory);
        while (!File.Exists(Path.Combine(root.FullName, "Dsl.sln"))) root = root.Parent!;
        foreach (var file in Directory.GetFiles(Path.Combine(root.FullName, "examples"), "*.nn", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
            data.Add(File.ReadAllText(file));
        return data;
    }

    [Theory]
    [MemberData(nameof(SummaryModels))]
    public void A_generated_models_Summary_is_what_nnc_summary_prints(string nn)
    {
        string path = Write("model.nn", nn);
        foreach (var model in NnCompiler.Compile(nn).Models)
        {
            var (exit, output, error) = Run("summary", path, "--model", model.Name);
            Assert.True(exit == 0, error);
            var generated = InMemoryModel.Create(nn, "model.nn", model.Name, maxBatch: 1);
            // nnc adds the arena it plans after the table.
            int arena = output.IndexOf("Arena per sample: ", StringComparison.Ordinal);
            Assert.True(arena > 0, output);
            Assert.Equal(output[..arena], generated.Summary().Replace("\n", Environment.NewLine, StringComparison.Ordinal));
        }
    }
}
