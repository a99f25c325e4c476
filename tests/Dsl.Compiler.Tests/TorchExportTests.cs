using Dsl.Cli;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Dsl.Compiler.Export;
using Dsl.Runtime;
using Xunit.Abstractions;

namespace Dsl.Compiler.Tests;

/// <summary>
/// The exported PyTorch modules, run by PyTorch: <c>/usr/bin/python3</c> with Debian's <c>python3-torch</c>
/// (<c>.ci/python-torch.sh</c> installs it; <c>.ci/export.sh</c> runs these tests and the golden bundles' replay).
/// Skipped, with the reason, where that interpreter has no torch.
/// </summary>
public sealed class TorchExportTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("nnc-torch-tests").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [TorchFact]
    public void A_dotted_name_graph_has_our_state_dict_keys_in_our_order_and_our_outputs()
    {
        var model = DottedGraph.Build();
        var compiled = DottedGraph.Compile(model, maxBatch: 3);
        File.WriteAllText(Path.Combine(_directory, "resnetlet.py"), PyTorchExporter.Export(new[] { model }, "resnetlet.nn", "0.1.0"));
        compiled.SaveSafetensors(Path.Combine(_directory, "weights.safetensors"));
        var input = DottedGraph.Input(3);
        var ours = new float[3 * compiled.SampleOutputLength];
        compiled.Infer(input, ours, 3);
        File.WriteAllText(Path.Combine(_directory, "input.json"), JsonSerializer.Serialize(input));

        var result = RunPython("""
            import json, sys, torch
            sys.path.insert(0, ".")
            import resnetlet
            model = resnetlet.Resnetlet()
            keys = list(model.state_dict().keys())
            resnetlet.load_safetensors(model, "weights.safetensors")
            model.eval()
            x = torch.tensor(json.load(open("input.json")), dtype=torch.float32).reshape(3, 2, 8, 8)
            with torch.no_grad():
                y = model(x)
            resnetlet.save_safetensors(model, "saved.safetensors")
            print(json.dumps({"keys": keys, "output": y.reshape(-1).tolist()}))
            """);
        var keys = result.GetProperty("keys").EnumerateArray().Select(k => k.GetString()!).ToList();
        Assert.Equal(model.Tensors.Select(t => t.Name), keys);
        Assert.Contains("layer1.0.downsample.1.running_var", keys);

        var theirs = result.GetProperty("output").EnumerateArray().Select(v => v.GetSingle()).ToArray();
        var (error, tolerance) = ExportTests.Compare(theirs, ours);
        output.WriteLine($"dotted graph: PyTorch eval vs Infer, max abs error {error:E2} (tolerance {tolerance:E2})");
        Assert.True(error <= tolerance, $"max abs error {error:E3} > {tolerance:E3}");

        // save_safetensors writes what our loader reads, bit for bit.
        var reloaded = DottedGraph.Compile(model, maxBatch: 3);
        reloaded.LoadSafetensors(Path.Combine(_directory, "saved.safetensors"));
        foreach (var tensor in model.Tensors.Where(t => t.Role != Semantics.TensorRole.NumBatchesTracked))
            Assert.Equal(compiled.Tensor(tensor.Name).ToArray(), reloaded.Tensor(tensor.Name).ToArray());
    }

    [TorchFact]
    public void Block_classes_give_our_state_dict_keys_and_shapes_and_our_outputs()
    {
        var files = new[]
        {
            ("resnet20", File.ReadAllText(Path.Combine(ExportTests.RepositoryRoot, "examples", "ResNet", "resnet20.nn"))),
            ("v2_resnet8", File.ReadAllText(Path.Combine(ExportTests.RepositoryRoot, "tests", "Dsl.Models.Tests", "Golden", "v2_resnet8.nn"))),
            ("v2_dense_concat", File.ReadAllText(Path.Combine(ExportTests.RepositoryRoot, "tests", "Dsl.Models.Tests", "Golden", "v2_dense_concat.nn"))),
            ("inferred", ExportTests.InferredChannels),
            ("edge", ExportTests.NestedBlocks),
        };
        foreach (var (name, text) in files)
        {
            File.WriteAllText(Path.Combine(_directory, name + ".py"), ExportTests.ExportFile(text, name + ".nn"));
            foreach (var model in NnCompiler.Compile(text).Models)
            {
                var result = RunPython($$"""
                    import json, sys
                    sys.path.insert(0, ".")
                    import {{name}}
                    state = {{name}}.{{model.Name}}().state_dict()
                    print(json.dumps([[key, list(value.shape)] for key, value in state.items()]))
                    """);
                var theirs = result.EnumerateArray().Select(e => $"{e[0].GetString()} [{string.Join(", ", e[1].EnumerateArray().Select(d => d.GetInt32()))}]").ToList();
                var ours = model.Tensors.Select(t => $"{t.Name} [{string.Join(", ", t.Shape)}]").ToList();
                output.WriteLine($"{name}.{model.Name}: {theirs.Count} state_dict entries");
                Assert.Equal(ours, theirs);
            }
        }

        // The block classes compute what the generated class computes (eval, loaded from the C# weights).
        const int batch = 2;
        var compiled = InMemoryModel.Create(ExportTests.InferredChannels, "inferred.nn", "Inferred", batch);
        compiled.SaveSafetensors(Path.Combine(_directory, "weights.safetensors"));
        var input = Enumerable.Range(0, batch * 4 * 6 * 6).Select(i => MathF.Sin(0.37f * i)).ToArray();
        var expected = new float[batch * compiled.SampleOutputLength];
        compiled.Infer(input, expected, batch);
        File.WriteAllText(Path.Combine(_directory, "input.json"), JsonSerializer.Serialize(input));
        var run = RunPython("""
            import json, sys, torch
            sys.path.insert(0, ".")
            import inferred
            model = inferred.Inferred()
            inferred.load_safetensors(model, "weights.safetensors")
            model.eval()
            x = torch.tensor(json.load(open("input.json")), dtype=torch.float32).reshape(2, 4, 6, 6)
            with torch.no_grad():
                print(json.dumps({"output": model(x).reshape(-1).tolist()}))
            """);
        var actual = run.GetProperty("output").EnumerateArray().Select(v => v.GetSingle()).ToArray();
        var (error, tolerance) = ExportTests.Compare(actual, expected);
        output.WriteLine($"Inferred (block classes): PyTorch eval vs Infer, max abs error {error:E2} (tolerance {tolerance:E2})");
        Assert.True(error <= tolerance, $"max abs error {error:E3} > {tolerance:E3}");

        // A frozen batch norm inside a block stays in eval mode when the model trains.
        var frozen = RunPython("""
            import json, sys, torch
            sys.path.insert(0, ".")
            import edge
            model = edge.Edge().train()
            model(torch.randn(2, 4, 6, 6)).sum().backward()
            print(json.dumps({"frozen": model.rep[0].body.deep.bn.training, "other": model.rep[0].body["1"].bn.training,
                              "count": int(model.o1.body.deep.bn.num_batches_tracked)}))
            """);
        Assert.False(frozen.GetProperty("frozen").GetBoolean());
        Assert.True(frozen.GetProperty("other").GetBoolean());
        Assert.Equal(0, frozen.GetProperty("count").GetInt32());
    }

    [TorchFact]
    public void PyTorch_eval_gives_what_Infer_gives_with_every_layer_option()
    {
        const int batch = 4;
        File.WriteAllText(Path.Combine(_directory, "options.py"),
            PyTorchExporter.Export(NnCompiler.Compile(LayerOptionModels.Source).Models, "options.nn", "0.1.0"));
        foreach (var name in new[] { "Options", "Sequence", "Frozen" })
        {
            var model = LayerOptionModels.Create(name, batch);
            model.SaveSafetensors(Path.Combine(_directory, "weights.safetensors"));
            var input = LayerOptionModels.Input(model, batch);
            var ours = new float[batch * model.SampleOutputLength];
            model.Infer(input, ours, batch);
            File.WriteAllText(Path.Combine(_directory, "input.json"), JsonSerializer.Serialize(input));
            var result = RunPython($$"""
                import json, sys, torch
                sys.path.insert(0, ".")
                import options
                model = options.{{name}}()
                options.load_safetensors(model, "weights.safetensors")
                model.eval()
                x = torch.tensor(json.load(open("input.json")), dtype=torch.float32).reshape({{batch}}, {{string.Join(", ", model.SampleInputShape)}})
                with torch.no_grad():
                    print(json.dumps({"output": model(x).reshape(-1).tolist()}))
                """);
            var theirs = result.GetProperty("output").EnumerateArray().Select(v => v.GetSingle()).ToArray();
            var (error, tolerance) = ExportTests.Compare(theirs, ours);
            output.WriteLine($"{name}: PyTorch eval vs Infer, max abs error {error:E2} (tolerance {tolerance:E2})");
            Assert.True(error <= tolerance, $"{name}: max abs error {error:E3} > {tolerance:E3}");
        }
    }

    [TorchFact]
    public void A_frozen_batch_norm_stays_in_eval_mode_after_train()
    {
        var models = NnCompiler.Compile("model Frozen(input: [3, 4, 4]) { conv(3, 3, 1, bias: false) -> bn2d(frozen: true) as bn -> relu }").Models;
        File.WriteAllText(Path.Combine(_directory, "frozen.py"), PyTorchExporter.Export(models, "frozen.nn", "0.1.0"));
        var result = RunPython("""
            import json, sys, torch
            sys.path.insert(0, ".")
            import frozen
            model = frozen.Frozen()
            built = model.bn.training
            model.train()
            x = torch.randn(4, 3, 4, 4)
            model(x).sum().backward()
            print(json.dumps({"built": built, "after_train": model.bn.training, "model": model.training,
                              "mean": model.bn.running_mean.tolist(), "count": int(model.bn.num_batches_tracked),
                              "weight_grad": model.bn.weight.grad is not None}))
            """);
        Assert.False(result.GetProperty("built").GetBoolean());
        Assert.False(result.GetProperty("after_train").GetBoolean());
        Assert.True(result.GetProperty("model").GetBoolean());
        Assert.All(result.GetProperty("mean").EnumerateArray(), v => Assert.Equal(0.0, v.GetDouble()));
        Assert.Equal(0, result.GetProperty("count").GetInt32());
        Assert.True(result.GetProperty("weight_grad").GetBoolean()); // γ still learns
    }

    [TorchFact]
    public void Load_safetensors_refuses_another_shape_with_the_key_and_both_shapes()
    {
        var models = NnCompiler.Compile("model LeNet(input: [1, 34, 34]) { conv(1, 6, 5) as conv1 -> maxpool(2) -> bn2d as bn1 -> flatten -> linear(1350, 10) as fc1 }").Models;
        File.WriteAllText(Path.Combine(_directory, "lenet.py"), PyTorchExporter.Export(models, "lenet.nn", "0.1.0"));
        var writer = new SafetensorsWriter();
        writer.Add("conv1.weight", new float[54], new[] { 6, 1, 3, 3 });
        using (var stream = File.Create(Path.Combine(_directory, "w.safetensors"))) writer.WriteTo(stream);
        var result = RunPython("""
            import json, sys
            sys.path.insert(0, ".")
            import lenet
            try:
                lenet.load_safetensors(lenet.LeNet(), "w.safetensors")
                print(json.dumps({"error": None}))
            except ValueError as e:
                print(json.dumps({"error": str(e)}))
            """);
        Assert.Equal("'conv1.weight' has shape [6, 1, 5, 5] in the module but [6, 1, 3, 3] in w.safetensors", result.GetProperty("error").GetString());
    }

    /// <summary>Runs a script in the test's directory with /usr/bin/python3; its last line of output is JSON.</summary>
    private JsonElement RunPython(string script)
    {
        File.WriteAllText(Path.Combine(_directory, "script.py"), script);
        var (exit, stdout, stderr) = TorchFactAttribute.Run(_directory, "script.py");
        Assert.True(exit == 0, $"python exited with {exit}: {stderr}");
        return JsonDocument.Parse(stdout.Trim().Split('\n')[^1]).RootElement;
    }
}

/// <summary>A fact that needs PyTorch: skipped, with the reason, when /usr/bin/python3 cannot import torch.</summary>
public sealed class TorchFactAttribute : FactAttribute
{
    public const string Python = "/usr/bin/python3";

    private static readonly Lazy<string?> Missing = new(() =>
    {
        if (!File.Exists(Python)) return $"{Python} does not exist; install Debian's python3-torch (.ci/python-torch.sh)";
        var (exit, _, stderr) = Run(Path.GetTempPath(), "-c", "import torch");
        return exit == 0 ? null : $"{Python} cannot import torch ({stderr.Trim().Split('\n')[^1]}); install Debian's python3-torch (.ci/python-torch.sh)";
    });

    public TorchFactAttribute()
    {
        if (Missing.Value is { } reason) Skip = reason;
    }

    internal static (int Exit, string Stdout, string Stderr) Run(string directory, params string[] args)
    {
        var start = new ProcessStartInfo(Python) { WorkingDirectory = directory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args) start.ArgumentList.Add(arg);
        start.Environment["OMP_NUM_THREADS"] = "1";
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout, stderr.Result);
    }
}
