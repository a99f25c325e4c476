using Dsl.Runtime;

namespace Dsl.Compiler.Tests;

/// <summary><c>nnc compare</c>: the tool a user runs to prove a port matches PyTorch.</summary>
public sealed class CompareTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("nnc-compare").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static string GoldenPath(string name) => Path.Combine(AppContext.BaseDirectory, "Golden", name + ".safetensors");

    public static TheoryData<string> Cases() => new(Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "Golden"), "*.safetensors")
        .Select(Path.GetFileNameWithoutExtension).OrderBy(n => n, StringComparer.Ordinal)!);

    private string NnFor(string bundle)
    {
        string path = Path.Combine(_directory, bundle + ".nn");
        File.WriteAllText(path, SafetensorsFile.Read(GoldenPath(bundle)).Metadata["nn"]);
        return path;
    }

    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int exit = Cli.Cli.Run(args, stdout, stderr, plain: true);
        return (exit, stdout.ToString(), stderr.ToString());
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Every_golden_bundle_passes(string name)
    {
        var (exit, output, error) = Run("compare", NnFor(name), GoldenPath(name));
        Assert.True(exit == 0, output + error);
        Assert.Contains("eval.output", output);
        Assert.Contains("train.output", output);
        Assert.DoesNotContain("FAIL", output);
        Assert.DoesNotContain("missing", output);
        // Issue #22: the count of tensors compared is every reference the bundle holds, none skipped.
        int references = SafetensorsFile.Read(GoldenPath(name)).Tensors.Count(t => t.Name.StartsWith("train.", StringComparison.Ordinal) || t.Name == "eval.output");
        Assert.Equal($"compared {references} tensor(s): {references} passed, 0 failed", output.Trim().Split('\n').Last());
    }

    /// <summary>Rewrites the seed_lenet bundle with <paramref name="edit"/> applied to its tensors and metadata.</summary>
    private string Rewritten(Func<string, float[], float[]?> edit, Dictionary<string, string>? metadata = null)
    {
        var source = SafetensorsFile.Read(GoldenPath("seed_lenet"));
        var writer = new SafetensorsWriter();
        foreach (var t in source.Tensors)
        {
            if (t.DTypeName == "I64")
            {
                if (edit(t.Name, Array.Empty<float>()) is not null) writer.Add(t.Name, t.ToInt64Array(), t.Shape);
                continue;
            }

            var data = edit(t.Name, t.ToFloatArray());
            if (data is not null) writer.Add(t.Name, data, t.Shape);
        }

        foreach (var (key, value) in metadata ?? source.Metadata.ToDictionary(kv => kv.Key, kv => kv.Value)) writer.AddMetadata(key, value);
        string path = Path.Combine(_directory, Guid.NewGuid().ToString("N") + ".safetensors");
        using var stream = File.Create(path);
        writer.WriteTo(stream);
        return path;
    }

    [Fact]
    public void A_wrong_reference_fails_with_exit_1_and_names_the_tensor()
    {
        string bundle = Rewritten((name, data) =>
        {
            if (name == "train.grad.bn1.weight") data[3] += 0.01f;
            return data;
        });
        var (exit, output, _) = Run("compare", NnFor("seed_lenet"), bundle);
        Assert.Equal(1, exit);
        var row = output.Split('\n').Single(l => l.StartsWith("train.grad.bn1.weight", StringComparison.Ordinal));
        Assert.Contains("FAIL", row);
        Assert.Contains("1.00E-02", row);
        Assert.Contains("11 passed, 1 failed", output);
    }

    [Fact]
    public void A_bundle_with_only_the_eval_output_compares_inference_alone()
    {
        // PyTorch's eval.output used the running statistics after training: give the model those.
        var source = SafetensorsFile.Read(GoldenPath("seed_lenet"));
        string bundle = Rewritten((name, data) =>
        {
            if (name is "bn1.running_mean" or "bn1.running_var") return source["train.state." + name].ToFloatArray();
            bool dropped = name == "output_grad" || name.StartsWith("train.", StringComparison.Ordinal);
            return dropped ? null : data;
        }, new Dictionary<string, string> { ["model"] = "LeNet" });
        var (exit, output, error) = Run("compare", NnFor("seed_lenet"), bundle);
        Assert.Equal(1, exit); // issue #22: no training results for a model that trains is a failure unless allowed
        Assert.Contains("training results", error);
        Assert.Contains("--allow-missing", error);

        (exit, output, error) = Run("compare", NnFor("seed_lenet"), bundle, "--allow-missing");
        Assert.True(exit == 0, output + error);
        Assert.DoesNotContain(output.Split('\n'), line => line.StartsWith("train.", StringComparison.Ordinal));
        Assert.Contains("missing: training results", output);
        Assert.Equal("compared 1 tensor(s): 1 passed, 0 failed; 1 missing (allowed)", output.Trim().Split('\n').Last());
    }

    [Fact]
    public void A_bundle_recording_a_training_error_expects_training_to_throw()
    {
        string nn = Path.Combine(_directory, "mlp.nn");
        File.WriteAllText(nn, "model Mlp(input: [10]) { linear(10, 5) -> bn1d(5) -> linear(5, 1) }");
        var model = new Dictionary<string, string> { ["model"] = "Mlp", ["batch"] = "1", ["train_error"] = "Expected more than 1 value per channel when training, got input size torch.Size([1, 5])" };
        var writer = new SafetensorsWriter();
        var source = SafetensorsFile.Read(GoldenPath("mlp_bn"));
        foreach (var t in source.Tensors.Where(t => !t.Name.StartsWith("train.", StringComparison.Ordinal) && !t.Name.StartsWith("eval.", StringComparison.Ordinal) && t.Name != "output_grad"))
        {
            if (t.DTypeName == "I64") writer.Add(t.Name, t.ToInt64Array(), t.Shape);
            else if (t.Name == "input") writer.Add(t.Name, t.ToFloatArray().AsSpan(0, 10), new[] { 1, 10 });
            else writer.Add(t.Name, t.ToFloatArray(), t.Shape);
        }

        foreach (var (k, v) in model) writer.AddMetadata(k, v);
        string bundle = Path.Combine(_directory, "mlp_error.safetensors");
        using (var stream = File.Create(bundle)) writer.WriteTo(stream);

        var (exit, output, error) = Run("compare", nn, bundle, "--allow-missing"); // no eval.output
        Assert.True(exit == 0, output + error);
        Assert.Contains("train (expected to fail)", output);
        Assert.Contains("compared 0 tensor(s): 1 passed, 0 failed; 1 missing (allowed)", output);
        Assert.Contains("Expected more than 1 value per channel when training", output);
    }

    [Fact]
    public void A_model_file_with_errors_is_reported_not_compared()
    {
        string nn = Path.Combine(_directory, "bad.nn");
        File.WriteAllText(nn, "model LeNet(input: [1, 34, 34]) { conv(1, 6, 5) -> maxpool(2) -> bn2d -> flatten -> linear(1014, 10) }");
        var (exit, _, error) = Run("compare", nn, GoldenPath("seed_lenet"));
        Assert.Equal(1, exit);
        Assert.Contains("error NN1011", error);
    }

    /// <summary>The seed_lenet bundle rebuilt with its tensors and metadata edited (a tensor set to null is dropped).</summary>
    private string Edited(Action<Dictionary<string, (Array Data, int[] Shape)?>> tensors, Action<Dictionary<string, string>>? metadata = null, string source = "seed_lenet")
    {
        var file = SafetensorsFile.Read(GoldenPath(source));
        var table = file.Tensors.ToDictionary(t => t.Name, t => ((Array Data, int[] Shape)?)(t.DTypeName == "I64" ? t.ToInt64Array() : t.ToFloatArray(), t.Shape));
        var meta = file.Metadata.ToDictionary();
        tensors(table);
        metadata?.Invoke(meta);
        var writer = new SafetensorsWriter();
        foreach (var (name, entry) in table)
        {
            if (entry is not { } e) continue;
            if (e.Data is long[] longs) writer.Add(name, longs, e.Shape);
            else writer.Add(name, (float[])e.Data, e.Shape);
        }

        foreach (var (key, value) in meta) writer.AddMetadata(key, value);
        string path = Path.Combine(_directory, Guid.NewGuid().ToString("N") + ".safetensors");
        using var stream = File.Create(path);
        writer.WriteTo(stream);
        return path;
    }

    private static void AssertCleanError((int Exit, string Out, string Err) result, string expected)
    {
        Assert.True(result.Exit == 1, result.Out + result.Err);
        Assert.StartsWith("nnc: ", result.Err);
        Assert.Contains(expected, result.Err);
        Assert.DoesNotContain("   at ", result.Err); // no stack trace
    }

    public static TheoryData<string, string> MalformedMetadata() => new()
    {
        { "abc", "train_steps is 'abc'" },           // was FormatException, exit 134
        { "99999999999", "train_steps is '99999999999'" }, // was OverflowException
        { "-1", "not a whole number from 1 to" },
        { "0", "not a whole number from 1 to" },
    };

    [Theory]
    [MemberData(nameof(MalformedMetadata))]
    public void Malformed_train_steps_is_an_error_not_a_crash(string steps, string expected) =>
        AssertCleanError(Run("compare", NnFor("seed_lenet"), Edited(_ => { }, m => m["train_steps"] = steps)), expected);

    [Fact]
    public void An_output_grad_of_the_wrong_length_is_an_error()
    {
        string bundle = Edited(t => t["output_grad"] = (new float[39], new[] { 39 }));
        AssertCleanError(Run("compare", NnFor("seed_lenet"), bundle), "'output_grad' has shape [39], not 4 samples of [10]");
    }

    [Fact]
    public void A_num_batches_tracked_of_shape_0_is_an_error()
    {
        string bundle = Edited(t => t["train.state.bn1.num_batches_tracked"] = (Array.Empty<long>(), new[] { 0 }));
        AssertCleanError(Run("compare", NnFor("seed_lenet"), bundle), "'train.state.bn1.num_batches_tracked' is I64 [0], not an I64 scalar");
    }

    [Fact]
    public void A_bundle_with_nothing_to_compare_is_an_error_when_stdout_is_redirected()
    {
        string bundle = Edited(t =>
        {
            foreach (var name in t.Keys.Where(n => n.StartsWith("train.", StringComparison.Ordinal) || n.StartsWith("eval.", StringComparison.Ordinal)).ToList()) t.Remove(name);
        });
        AssertCleanError(Run("compare", NnFor("seed_lenet"), bundle), "nothing to compare");
        AssertCleanError(Run("compare", NnFor("seed_lenet"), bundle, "--allow-missing"), "nothing to compare");
    }

    [Theory]
    [InlineData(new[] { 0, 1, 34, 34 }, "'input' has shape [0, 1, 34, 34]: no samples")]
    [InlineData(new[] { 1, 4624 }, "'input' has shape [1, 4624], not 1 samples of [1, 34, 34]")]
    public void An_input_without_whole_samples_is_an_error_without_batch_metadata(int[] shape, string expected)
    {
        string bundle = Edited(
            t => t["input"] = (new float[shape.Aggregate(1, (a, b) => a * b)], shape),
            m => m.Remove("batch"));
        AssertCleanError(Run("compare", NnFor("seed_lenet"), bundle), expected);
    }

    [Fact]
    public void Training_that_fails_without_a_recorded_train_error_is_an_error()
    {
        // bn1d at batch 1: PyTorch would have raised, so a bundle that says it trained is inconsistent.
        string nn = Path.Combine(_directory, "mlp.nn");
        File.WriteAllText(nn, SafetensorsFile.Read(GoldenPath("mlp_bn")).Metadata["nn"]);
        string bundle = Edited(t =>
        {
            foreach (var name in t.Keys.ToList())
            {
                if (t[name] is not { Data: float[] data, Shape: var shape } || shape.Length != 2 || shape[0] != 10) continue;
                t[name] = (data[..shape[1]], new[] { 1, shape[1] }); // the first sample of input, output_grad, train.output, eval.output
            }
        }, m => m["batch"] = "1", source: "mlp_bn");
        AssertCleanError(Run("compare", nn, bundle), "Expected more than 1 value per channel when training");
    }

    [Fact]
    public void A_bundle_without_gradients_for_a_model_with_parameters_fails_unless_allowed()
    {
        // Issue #22: a bundle whose export forgot the gradients used to pass, comparing only what it had.
        string bundle = Edited(t =>
        {
            foreach (var name in t.Keys.Where(n => n.StartsWith("train.grad.", StringComparison.Ordinal)).ToList()) t.Remove(name);
        });
        var (exit, output, error) = Run("compare", NnFor("seed_lenet"), bundle);
        Assert.Equal(1, exit);
        Assert.Contains("parameter gradient train.grad.conv1.weight", error);
        Assert.Contains("missing: parameter gradient train.grad.fc1.bias", output);
        Assert.Equal("compared 6 tensor(s): 6 passed, 0 failed; 6 missing", output.Trim().Split('\n').Last());

        (exit, output, error) = Run("compare", NnFor("seed_lenet"), bundle, "--allow-missing");
        Assert.True(exit == 0, output + error);
        Assert.Equal("compared 6 tensor(s): 6 passed, 0 failed; 6 missing (allowed)", output.Trim().Split('\n').Last());
    }

    public static TheoryData<string> Corruptions() => new(Dsl.Training.Tests.Corruption.Names);

    [Theory]
    [MemberData(nameof(Corruptions))]
    public void A_damaged_bundle_is_an_error_not_a_crash(string corruption)
    {
        string bundle = Path.Combine(_directory, "damaged.safetensors");
        File.WriteAllBytes(bundle, Dsl.Training.Tests.Corruption.Apply(corruption, File.ReadAllBytes(GoldenPath("seed_lenet"))));
        var result = Run("compare", NnFor("seed_lenet"), bundle);
        Assert.True(result.Exit == 1, corruption + ": " + result.Out + result.Err);
        Assert.StartsWith("nnc: ", result.Err);
        Assert.DoesNotContain("   at ", result.Err);
    }
}
