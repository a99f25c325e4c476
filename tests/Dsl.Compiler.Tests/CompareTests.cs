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
        Assert.Matches(@"\d+ passed, 0 failed", output.Trim().Split('\n').Last());
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
        Assert.True(exit == 0, output + error);
        Assert.DoesNotContain("train.", output);
        Assert.Contains("1 passed, 0 failed", output);
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

        var (exit, output, error) = Run("compare", nn, bundle);
        Assert.True(exit == 0, output + error);
        Assert.Contains("train (expected to fail)", output);
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
}
