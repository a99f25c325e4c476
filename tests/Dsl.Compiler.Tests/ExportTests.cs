using Dsl.Cli;
using Dsl.Compiler.Export;
using Dsl.Runtime;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Xunit.Abstractions;

namespace Dsl.Compiler.Tests;

/// <summary>
/// <c>nnc export onnx</c> and <c>nnc export pytorch</c>: ONNX Runtime runs every golden model's exported graph and gives
/// our generated model's <c>Infer</c> output; the PyTorch text is what users read; errors are the ones users see.
/// (PyTorch itself runs the exports in <see cref="TorchExportTests"/> and in <c>.ci/export.sh</c>.)
/// </summary>
public sealed class ExportTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("nnc-export-tests").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    public static TheoryData<string> GoldenCases() =>
        new(Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "Golden"), "*.safetensors").Select(Path.GetFileNameWithoutExtension).Order(StringComparer.Ordinal)!);

    [Fact]
    public void Every_golden_bundle_is_exported() => Assert.Equal(21, GoldenCases().Count);

    [Theory]
    [MemberData(nameof(GoldenCases))]
    public void Onnx_runtime_gives_what_Infer_gives(string name)
    {
        using var bundle = SafetensorsFile.Read(Path.Combine(AppContext.BaseDirectory, "Golden", name + ".safetensors"));
        string nn = bundle.Metadata["nn"];
        int batch = int.Parse(bundle.Metadata["batch"]);
        var model = InMemoryModel.Create(nn, name + ".nn", null, batch);
        model.LoadState(bundle, allowExtra: true);
        var input = bundle["input"].ToFloatArray();
        var ours = new float[batch * model.SampleOutputLength];
        model.Infer(input, ours, batch);

        var graph = OnnxGraphBuilder.Build(NnCompiler.Compile(nn).Models.Single());
        var onnx = OnnxWriter.Write(graph, bundle, name + ".safetensors", "test");
        var theirs = RunOnnx(onnx, input, bundle["input"].Shape);

        var (error, tolerance) = Compare(theirs, ours);
        output.WriteLine($"{name}: ONNX Runtime vs Infer, max abs error {error:E2} (tolerance {tolerance:E2}), {graph.Nodes.Count} nodes");
        Assert.True(error <= tolerance, $"{name}: max abs error {error:E3} > {tolerance:E3}");
    }

    [Theory]
    [MemberData(nameof(LayerOptionModels.Names), MemberType = typeof(LayerOptionModels))]
    public void Onnx_runtime_gives_what_Infer_gives_with_every_layer_option(string name)
    {
        const int batch = 4;
        var model = LayerOptionModels.Create(name, batch);
        string weights = Path.Combine(_directory, name + ".safetensors");
        model.SaveSafetensors(weights);
        var input = LayerOptionModels.Input(model, batch);
        var ours = new float[batch * model.SampleOutputLength];
        model.Infer(input, ours, batch);

        using var file = SafetensorsFile.Read(weights);
        var onnx = OnnxWriter.Write(OnnxGraphBuilder.Build(LayerOptionModels.Bound(name)), file, name + ".safetensors", "test");
        var theirs = RunOnnx(onnx, input, new[] { batch }.Concat(model.SampleInputShape).ToArray());
        var (error, tolerance) = Compare(theirs, ours);
        output.WriteLine($"{name}: ONNX Runtime vs Infer, max abs error {error:E2} (tolerance {tolerance:E2})");
        Assert.True(error <= tolerance, $"{name}: max abs error {error:E3} > {tolerance:E3}");
    }

    /// <summary>Runs an ONNX model on one input with ONNX Runtime (CPU, one thread); returns the output, flat.</summary>
    internal static float[] RunOnnx(byte[] onnx, float[] input, int[] shape)
    {
        using var options = new SessionOptions { IntraOpNumThreads = 1, InterOpNumThreads = 1 };
        using var session = new InferenceSession(onnx, options);
        Assert.Equal(OnnxGraph.InputName, session.InputMetadata.Keys.Single());
        Assert.Equal(-1, session.InputMetadata[OnnxGraph.InputName].Dimensions[0]); // the batch is symbolic
        var tensor = new DenseTensor<float>(input, shape);
        using var results = session.Run(new[] { NamedOnnxValue.CreateFromTensor(OnnxGraph.InputName, tensor) });
        return results.Single(r => r.Name == OnnxGraph.OutputName).AsEnumerable<float>().ToArray();
    }

    /// <summary>max |a − b| and the parity contract's tolerance 1e-4 · max(1, max |b|).</summary>
    internal static (double Error, double Tolerance) Compare(float[] actual, float[] expected)
    {
        Assert.Equal(expected.Length, actual.Length);
        double error = 0, scale = 1;
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.False(float.IsNaN(actual[i]), $"NaN at {i}");
            error = Math.Max(error, Math.Abs(actual[i] - (double)expected[i]));
            scale = Math.Max(scale, Math.Abs(expected[i]));
        }

        return (error, 1e-4 * scale);
    }

    [Fact]
    public void Onnx_runtime_runs_a_graph_with_dotted_names_add_and_concat_as_Infer_does()
    {
        var model = DottedGraph.Build();
        var compiled = DottedGraph.Compile(model, maxBatch: 3);
        var weights = Path.Combine(_directory, "resnetlet.safetensors");
        compiled.SaveSafetensors(weights);
        var input = DottedGraph.Input(3);
        var ours = new float[3 * compiled.SampleOutputLength];
        compiled.Infer(input, ours, 3);

        using var file = SafetensorsFile.Read(weights);
        var theirs = RunOnnx(OnnxWriter.Write(OnnxGraphBuilder.Build(model), file, "resnetlet.safetensors", "test"), input, new[] { 3 }.Concat(model.InputShape).ToArray());
        var (error, tolerance) = Compare(theirs, ours);
        output.WriteLine($"dotted graph: ONNX Runtime vs Infer, max abs error {error:E2} (tolerance {tolerance:E2})");
        Assert.True(error <= tolerance, $"max abs error {error:E3} > {tolerance:E3}");
    }

    [Fact]
    public void Dotted_names_become_nested_containers_reached_by_attribute_and_index()
    {
        string text = PyTorchExporter.Export(new[] { DottedGraph.Build() }, "resnetlet.nn", "0.1.0");
        output.WriteLine(text);
        Assert.Contains("""
                    self.conv1 = nn.Conv2d(2, 4, kernel_size=3, padding=1, bias=False)
                    self.bn1 = nn.BatchNorm2d(4, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
                    self.add_module("2", nn.ReLU())
                    self.layer1 = nn.Sequential(
                        nn.ModuleDict({
                            "conv1": nn.Conv2d(4, 6, kernel_size=3, stride=2, padding=1, bias=False),
                            "bn1": nn.BatchNorm2d(6, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True),
                            "2": nn.ReLU(),
                            "conv2": nn.Conv2d(6, 6, kernel_size=3, padding=1, bias=False),
                            "bn2": nn.BatchNorm2d(6, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True),
                            "downsample": nn.Sequential(
                                nn.Conv2d(4, 6, kernel_size=1, stride=2, bias=False),  # layer1.0.downsample.0
                                nn.BatchNorm2d(6, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True),  # layer1.0.downsample.1
                            ),
                            "6": nn.ReLU(),
                        }),  # layer1.0
                    )
            """.Replace("\r\n", "\n"), text, StringComparison.Ordinal);
        Assert.Contains("x9 = self.layer1[0].downsample[0](x3)", text, StringComparison.Ordinal);
        Assert.Contains("x11 = x8 + x10  # add(out, skip)", text, StringComparison.Ordinal);
        Assert.Contains("x12 = self.layer1[0][\"6\"](x11)", text, StringComparison.Ordinal);
        Assert.Contains("x15 = torch.cat([x13, x14], dim=1)  # concat(pooled, fc)", text, StringComparison.Ordinal);
    }

    [Fact]
    public void The_pytorch_export_of_LeNet_reads_like_the_nn_file()
    {
        var models = NnCompiler.Compile(File.ReadAllText(Path.Combine(RepositoryRoot, "examples", "LeNet", "lenet.nn"))).Models;
        string text = PyTorchExporter.Export(models, "lenet.nn", "0.1.0");
        Assert.StartsWith("# Generated by nnc 0.1.0 (nnc export pytorch) from lenet.nn. Edit the .nn file, not this one.\n", text, StringComparison.Ordinal);
        Assert.Contains(""""
            class LeNet(nn.Module):
                """LeNet of lenet.nn: input [1, 34, 34] per sample, output [10]."""

                def __init__(self):
                    super().__init__()
                    self.conv1 = nn.Conv2d(1, 6, kernel_size=5)
                    self.add_module("1", nn.MaxPool2d(kernel_size=2, stride=2))
                    self.bn1 = nn.BatchNorm2d(6, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
                    self.add_module("3", nn.Flatten())
                    self.fc1 = nn.Linear(1350, 10)

                def forward(self, x0: torch.Tensor) -> torch.Tensor:
                    # x0: [N, 1, 34, 34]
                    x1 = self.conv1(x0)  # conv(1, 6, 5) as conv1 -> [N, 6, 30, 30]
                    x2 = getattr(self, "1")(x1)  # maxpool(2) -> [N, 6, 15, 15]
                    x3 = self.bn1(x2)  # bn2d as bn1 -> [N, 6, 15, 15]
                    x4 = getattr(self, "3")(x3)  # flatten -> [N, 1350]
                    x5 = self.fc1(x4)  # linear(1350, 10) as fc1 -> [N, 10]
                    return x5
            """".Replace("\r\n", "\n"), text, StringComparison.Ordinal);
        Assert.Equal(text, PyTorchExporter.Export(models, "lenet.nn", "0.1.0")); // deterministic
    }

    [Fact]
    public void Momentum_none_and_frozen_batch_norm_are_exported_with_a_train_override()
    {
        var models = NnCompiler.Compile("model Frozen(input: [4, 5, 5]) { bn2d(4, momentum: none) -> relu -> bn2d(frozen: true) as bn }").Models;
        string text = PyTorchExporter.Export(models, "frozen.nn", "0.1.0");
        Assert.Contains("self.add_module(\"0\", nn.BatchNorm2d(4, eps=1e-05, momentum=None, affine=True, track_running_stats=True))", text, StringComparison.Ordinal);
        Assert.Contains("""
                    self.train()

                def forward(
            """.Replace("\r\n", "\n"), text, StringComparison.Ordinal);
        Assert.Contains("""
                def train(self, mode: bool = True):
                    super().train(mode)
                    self.bn.eval()  # frozen: true
                    return self
            """.Replace("\r\n", "\n"), text, StringComparison.Ordinal);
    }

    // ---- blocks: one class per block declaration ----

    /// <summary>Exports a file as nnc export pytorch does: its models, with its blocks.</summary>
    internal static string ExportFile(string text, string fileName)
    {
        var result = NnCompiler.Compile(text);
        Assert.False(result.HasErrors, string.Join("\n", result.Diagnostics.Select(d => d.Format(fileName))));
        return PyTorchExporter.Export(result.Models, fileName, "0.1.0", result.Syntax!.Blocks);
    }

    [Fact]
    public void Each_block_is_a_class_with_its_parameters_and_the_model_builds_the_blocks_by_name()
    {
        string source = File.ReadAllText(Path.Combine(RepositoryRoot, "examples", "ResNet", "resnet20.nn"));
        string text = ExportFile(source, "resnet20.nn");
        output.WriteLine(text);
        Assert.Contains("# Blocks: BasicBlock, DownBlock, one class each, built by the models with their .nn arguments.\n", text, StringComparison.Ordinal);
        Assert.Contains(""""
            class BasicBlock(nn.Module):
                """block BasicBlock of resnet20.nn; used as layer1.0, layer1.1, layer1.2, ... (7 uses)."""

                def __init__(self, inplanes, planes, stride=1):
                    super().__init__()
                    self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
                    self.bn1 = nn.BatchNorm2d(planes, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
                    self.add_module("2", nn.ReLU())
                    self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, padding=1, bias=False)
                    self.bn2 = nn.BatchNorm2d(planes, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
                    self.add_module("5", nn.ReLU())

                def forward(self, x: torch.Tensor) -> torch.Tensor:
                    out = self.conv1(x)
                    out = self.bn1(out)
                    out = getattr(self, "2")(out)
                    out = self.conv2(out)
                    out = self.bn2(out)
                    y = getattr(self, "5")(out + x)
                    return y
            """".Replace("\r\n", "\n"), text, StringComparison.Ordinal);
        Assert.Contains("""
                    self.downsample = nn.Sequential(
                        nn.Conv2d(inplanes, planes, kernel_size=1, stride=stride, bias=False),
                        nn.BatchNorm2d(planes, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True),
                    )
                    self.add_module("6", nn.ReLU())

                def forward(self, x: torch.Tensor) -> torch.Tensor:
                    out = self.conv1(x)
                    out = self.bn1(out)
                    out = getattr(self, "2")(out)
                    out = self.conv2(out)
                    out = self.bn2(out)
                    skip = self.downsample(x)
                    y = getattr(self, "6")(out + skip)
                    return y
            """.Replace("\r\n", "\n"), text, StringComparison.Ordinal);
        Assert.Contains("""
                    self.layer1 = nn.Sequential(BasicBlock(16, 16), BasicBlock(16, 16), BasicBlock(16, 16))
                    self.layer2 = nn.Sequential(DownBlock(16, 32), BasicBlock(32, 32), BasicBlock(32, 32))
                    self.layer3 = nn.Sequential(DownBlock(32, 64), BasicBlock(64, 64), BasicBlock(64, 64))
            """.Replace("\r\n", "\n"), text, StringComparison.Ordinal);
        Assert.DoesNotContain("nested containers", text, StringComparison.Ordinal);
        Assert.Equal(text, ExportFile(source, "resnet20.nn")); // deterministic

        // nnc export pytorch passes the file's blocks.
        string py = Path.Combine(_directory, "resnet20.py");
        var (exit, stdout, stderr) = Run("export", "pytorch", Write("resnet20.nn", source), "-o", py);
        Assert.Equal((0, "", ""), (exit, stdout, stderr));
        Assert.Equal(text, File.ReadAllText(py));
    }

    [Fact]
    public void A_dense_block_concatenates_with_torch_cat_and_its_uses_pass_their_arguments()
    {
        string text = ExportFile(File.ReadAllText(Path.Combine(RepositoryRoot, "tests", "Dsl.Models.Tests", "Golden", "v2_dense_concat.nn")), "v2_dense_concat.nn");
        Assert.Contains("""
                def __init__(self, channels, growth):
                    super().__init__()
                    self.norm = nn.BatchNorm2d(channels, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
                    self.add_module("1", nn.ReLU())
                    self.conv = nn.Conv2d(channels, growth, kernel_size=3, padding=1, bias=False)

                def forward(self, x: torch.Tensor) -> torch.Tensor:
                    new = self.norm(x)
                    new = getattr(self, "1")(new)
                    new = self.conv(new)
                    return torch.cat([x, new], dim=1)
            """.Replace("\r\n", "\n"), text, StringComparison.Ordinal);
        Assert.Contains("        self.dense1 = Dense(6, 4)\n        self.dense2 = Dense(10, 4)\n", text, StringComparison.Ordinal);
    }

    /// <summary>Blocks whose batch norms infer their channels, each resolved by one rule (see <see cref="PyTorchExporter"/>).</summary>
    internal const string InferredChannels = """
        block Traced(a, b) {
            l = conv(a, b, 1, bias: false) as left;
            r = conv(a, b, 3, padding: 1, bias: false) as right;
            concat(l, r) -> bn2d as norm -> relu
        }
        block ByParameter(c) { bn2d as norm -> relu }
        block ByValue(scale) { bn2d as norm -> maxpool(scale, stride: 1) }
        model Inferred(input: [4, 6, 6]) {
            Traced(4, 3) as t1 -> Traced(6, 2) as t2
            -> ByParameter(4) as p1 -> conv(4, 8, 1) -> ByParameter(8) as p2
            -> (ByValue(1) * 2) as v
        }
        block Unresolved(scale) { bn2d as norm -> relu }
        model Fallback(input: [4, 6, 6]) {
            Unresolved(1) as a -> conv(4, 8, 1) -> Unresolved(1) as b
        }
        """;

    /// <summary>Nested blocks, a named group inside a block, a merge of a merge, keyword arguments, a frozen batch norm in a block.</summary>
    internal const string NestedBlocks = """
        block Inner(c, frozen = false) {
            x = bn2d(frozen: frozen) as bn -> relu;
            add(x, input)
        }
        block Outer(c, k = 3) {
            a = (conv(c, c, k, padding: 1, bias: false) as first -> Inner(c) -> Inner(c, frozen: true) as deep) as body;
            b = input -> avgpool(k, stride: 1, padding: 1);
            concat(add(a, b), input) -> bn2d as mix
        }
        model Edge(input: [4, 6, 6]) {
            Outer(4) as o1 -> conv(8, 4, 1, bias: false) -> (Outer(4, k: 3) -> conv(8, 4, 1, bias: false) -> Outer(4)) as rep -> global_avgpool -> linear(8, 2) as fc
        }
        """;

    [Fact]
    public void Nested_blocks_named_groups_and_frozen_batch_norms_in_blocks_are_written_with_block_classes()
    {
        string text = ExportFile(NestedBlocks, "edge.nn");
        output.WriteLine(text);
        Assert.Contains("""
                    self.body = nn.ModuleDict({
                        "first": nn.Conv2d(c, c, kernel_size=k, padding=1, bias=False),
                        "1": Inner(c),
                        "deep": Inner(c, frozen=True),
                    })
                    self.add_module("1", nn.AvgPool2d(kernel_size=k, stride=1, padding=1))
            """.Replace("\r\n", "\n"), text, StringComparison.Ordinal);
        Assert.Contains("""
                    a = self.body.first(x)
                    a = self.body["1"](a)
                    a = self.body.deep(a)
                    b = getattr(self, "1")(x)
                    y = self.mix(torch.cat([a + b, x], dim=1))
                    return y
            """.Replace("\r\n", "\n"), text, StringComparison.Ordinal);
        Assert.Contains("        x_ = self.bn(x)\n        x_ = getattr(self, \"1\")(x_)\n        return x_ + x\n", text, StringComparison.Ordinal); // a value named x
        Assert.Contains("self.rep = nn.Sequential(Outer(4, k=3), nn.Conv2d(8, 4, kernel_size=1, bias=False), Outer(4))", text, StringComparison.Ordinal);
        Assert.Contains("        self.get_submodule(\"rep.0.body.deep.bn\").eval()  # frozen: true\n", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Inferred_channels_are_traced_through_the_block_else_a_parameter_else_the_literal_else_containers()
    {
        string text = ExportFile(InferredChannels, "inferred.nn");
        output.WriteLine(text);
        Assert.Contains("self.norm = nn.BatchNorm2d(b + b, eps=1e-05", text, StringComparison.Ordinal);       // conv out_channels, summed by concat
        Assert.Contains("        y = self.norm(torch.cat([l, r], dim=1))\n        y = getattr(self, \"3\")(y)\n        return y\n", text, StringComparison.Ordinal);
        Assert.Contains("class ByParameter(nn.Module):", text, StringComparison.Ordinal);
        Assert.Contains("self.norm = nn.BatchNorm2d(c, eps=1e-05", text, StringComparison.Ordinal);           // the input's channels: a parameter equal at every use
        Assert.Contains("self.norm = nn.BatchNorm2d(8, eps=1e-05", text, StringComparison.Ordinal);           // no parameter: the literal every use agrees on
        Assert.Contains("self.add_module(\"1\", nn.MaxPool2d(kernel_size=scale, stride=1))", text, StringComparison.Ordinal);
        Assert.Contains("self.v = nn.Sequential(ByValue(1), ByValue(1))", text, StringComparison.Ordinal);
        Assert.Contains("# Fallback is written with nested containers, not block classes: the num_features of 'norm' in block Unresolved is inferred (4 at a, 8 at b), "
            + "and neither the channels before it, nor a parameter, nor one value gives it at every use; write it in the block.\nclass Fallback(nn.Module):", text, StringComparison.Ordinal);
        Assert.DoesNotContain("class Unresolved", text, StringComparison.Ordinal);
        Assert.Contains("\"norm\": nn.BatchNorm2d(4, eps=1e-05", text, StringComparison.Ordinal);            // the container export of Fallback
    }

    [Fact]
    public void A_block_repeated_by_a_parameter_falls_back_to_containers_and_chains_are_unchanged_by_blocks()
    {
        const string source = """
            block Stack(n) { conv(4, 4, 1) * n }
            model Stacked(input: [4, 5, 5]) { Stack(2) as s }
            model Plain(input: [4, 5, 5]) { conv(4, 4, 1) as c -> relu }
            """;
        string text = ExportFile(source, "stack.nn");
        Assert.Contains("# Stacked is written with nested containers, not block classes: 'conv(...) * n' repeats by a parameter, so the block's children differ between uses.", text, StringComparison.Ordinal);
        Assert.DoesNotContain("class Stack(", text, StringComparison.Ordinal);
        Assert.DoesNotContain("# Blocks:", text, StringComparison.Ordinal);
        // A model that uses no block is written as without blocks.
        var plain = NnCompiler.Compile(source).Models.Where(m => m.Name == "Plain").ToList();
        string alone = PyTorchExporter.Export(plain, "stack.nn", "0.1.0");
        int start = alone.IndexOf("class Plain", StringComparison.Ordinal);
        int end = alone.IndexOf("# ---- safetensors", StringComparison.Ordinal);
        Assert.Contains(alone[start..end], text, StringComparison.Ordinal);
    }

    // ---- nnc export on the command line ----

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

    private const string LeNet = "model LeNet(input: [1, 34, 34]) { conv(1, 6, 5) as conv1 -> maxpool(2) -> bn2d as bn1 -> flatten -> linear(1350, 10) as fc1 }";

    [Fact]
    public void Export_of_a_file_with_errors_prints_the_diagnostics_and_exits_1()
    {
        string path = Write("lenet.nn", LeNet.Replace("34, 34", "30, 30"));
        foreach (var format in new[] { "pytorch", "onnx" })
        {
            var (exit, stdout, stderr) = format == "onnx" ? Run("export", format, path, "--weights", Path.Combine(_directory, "unused.safetensors")) : Run("export", format, path);
            Assert.Equal(1, exit);
            Assert.Equal("", stdout);
            Assert.Contains($"{path}(1,108): error NN1011: 'flatten' yields 1014 features (6×13×13) but 'linear' expects 1350; write linear(1014, 10)", stderr);
        }
    }

    [Fact]
    public void Export_pytorch_writes_the_file_named_with_o()
    {
        string path = Write("lenet.nn", LeNet);
        string py = Path.Combine(_directory, "lenet.py");
        var (exit, stdout, stderr) = Run("export", "pytorch", path, "-o", py);
        Assert.Equal((0, "", ""), (exit, stdout, stderr));
        Assert.Contains("class LeNet(nn.Module):", File.ReadAllText(py));
        Assert.Contains("def load_safetensors(module: nn.Module, path: str) -> None:", File.ReadAllText(py));
    }

    [Fact]
    public void Export_onnx_refuses_weights_of_another_shape_with_the_key_and_both_shapes()
    {
        string path = Write("lenet.nn", LeNet);
        string other = Write("small.nn", LeNet.Replace("conv(1, 6, 5)", "conv(1, 6, 3)").Replace("1350", "1536"));
        var model = InMemoryModel.Create(File.ReadAllText(other), "small.nn", null, 1);
        string weights = Path.Combine(_directory, "w.safetensors");
        model.SaveSafetensors(weights);
        var (exit, _, stderr) = Run("export", "onnx", path, "--weights", weights, "-o", Path.Combine(_directory, "lenet.onnx"));
        Assert.Equal(1, exit);
        Assert.Equal("nnc: the weights do not match the model: 'conv1.weight' has shape [6, 1, 5, 5] in the model but [6, 1, 3, 3] in w.safetensors" + Environment.NewLine, stderr);
        Assert.False(File.Exists(Path.Combine(_directory, "lenet.onnx")));
    }

    [Fact]
    public void Export_onnx_refuses_weights_that_lack_a_key()
    {
        string path = Write("lenet.nn", LeNet);
        var writer = new SafetensorsWriter();
        writer.Add("conv1.weight", new float[150], new[] { 6, 1, 5, 5 });
        string weights = Path.Combine(_directory, "partial.safetensors");
        using (var stream = File.Create(weights)) writer.WriteTo(stream);
        var (exit, _, stderr) = Run("export", "onnx", path, "--weights", weights);
        Assert.Equal(1, exit);
        Assert.Equal("nnc: the weights do not match the model: partial.safetensors has no 'conv1.bias' (the model's has shape [6])" + Environment.NewLine, stderr);
    }

    [Fact]
    public void Export_onnx_writes_a_model_onnx_runtime_loads()
    {
        string path = Write("lenet.nn", LeNet);
        var model = InMemoryModel.Create(LeNet, "lenet.nn", null, 2);
        string weights = Path.Combine(_directory, "lenet.safetensors");
        model.SaveSafetensors(weights);
        var (exit, stdout, stderr) = Run("export", "onnx", path, "--weights", weights);
        Assert.Equal((0, "", ""), (exit, stdout, stderr));
        var input = Enumerable.Range(0, 2 * 34 * 34).Select(i => MathF.Sin(i)).ToArray();
        var ours = new float[20];
        model.Infer(input, ours, 2);
        var theirs = RunOnnx(File.ReadAllBytes(Path.Combine(_directory, "lenet.onnx")), input, new[] { 2, 1, 34, 34 });
        var (error, tolerance) = Compare(theirs, ours);
        Assert.True(error <= tolerance, $"max abs error {error:E3} > {tolerance:E3}");
    }

    [Fact]
    public void Export_needs_a_format_and_onnx_needs_weights()
    {
        string path = Write("lenet.nn", LeNet);
        var (exit, _, stderr) = Run("export", "pytorh", path);
        Assert.Equal(2, exit);
        Assert.StartsWith("nnc: export takes a format, pytorch or onnx, not 'pytorh'; did you mean 'pytorch'?", stderr);
        (exit, _, stderr) = Run("export", "onnx", path);
        Assert.Equal(2, exit);
        Assert.StartsWith("nnc: export onnx needs --weights W.safetensors", stderr);
    }

    internal static string RepositoryRoot
    {
        get
        {
            var directory = new DirectoryInfo(AppContext.BaseDirectory);
            while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Dsl.sln"))) directory = directory.Parent;
            return directory?.FullName ?? throw new InvalidOperationException("no Dsl.sln above the test binaries");
        }
    }
}
