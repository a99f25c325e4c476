using System.Buffers.Binary;
using System.Text.Json;

namespace Dsl.Compiler.Tests;

/// <summary>The 21 networks PyTorch produced the golden bundles from: each checks clean, with PyTorch's state_dict and parameter count.</summary>
public sealed class GoldenNetworkTests
{
    public static TheoryData<string> Cases() => new(Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "Golden"), "*.safetensors")
        .Select(Path.GetFileNameWithoutExtension).OrderBy(n => n, StringComparer.Ordinal)!);

    [Fact]
    public void All_twenty_one_bundles_are_present() => Assert.Equal(21, Cases().Count);

    [Theory]
    [MemberData(nameof(Cases))]
    public void Network_checks_clean_with_pytorch_state_dict(string name)
    {
        var (metadata, tensors) = ReadHeader(Path.Combine(AppContext.BaseDirectory, "Golden", name + ".safetensors"));
        var result = NnCompiler.Compile(metadata["nn"]);
        Assert.DoesNotContain(result.Diagnostics, d => d.IsError);
        var model = Assert.Single(result.Models);
        Assert.Equal(metadata["model"], model.Name);

        // Every state_dict entry PyTorch recorded (not inputs, outputs or gradients), same names and shapes.
        var expected = tensors.Where(t => !t.Key.StartsWith("train.", StringComparison.Ordinal) && !t.Key.StartsWith("eval.", StringComparison.Ordinal)
                                          && t.Key is not ("input" or "output_grad"))
            .ToDictionary(t => t.Key, t => t.Value);
        var actual = model.Tensors.ToDictionary(t => t.Name, t => t.Shape.ToArray());
        Assert.Equal(expected.Keys.OrderBy(k => k, StringComparer.Ordinal), actual.Keys.OrderBy(k => k, StringComparer.Ordinal));
        foreach (var (key, shape) in expected) Assert.Equal(shape, actual[key]);

        long pytorchParameters = expected.Where(t => t.Key.EndsWith(".weight", StringComparison.Ordinal) || t.Key.EndsWith(".bias", StringComparison.Ordinal))
            .Sum(t => t.Value.Aggregate(1L, (a, b) => a * b));
        Assert.Equal(pytorchParameters, model.ParameterCount);

        int batch = int.Parse(metadata["batch"]);
        Assert.Equal(new[] { batch }.Concat(model.InputShape), tensors["input"]);
        Assert.Equal(new[] { batch }.Concat(model.OutputShape), tensors["eval.output"]);
    }

    [Fact]
    public void The_specs_whole_file_example_checks_clean()
    {
        // ../shared/spec/language.md, "A whole file", verbatim.
        const string text = """
            // lenet.nn — the network from the classic PyTorch BatchNorm tutorial
            namespace Samples.Vision;           // optional; default: the project's RootNamespace

            model LeNet(input: [1, 34, 34]) {
                conv(1, 6, 5)       as conv1
                -> maxpool(2)
                -> bn2d             as bn1
                -> flatten
                -> linear(1350, 10) as fc1
            }

            model Chain(input: [1, 34, 34]) {
                conv(1, 6, 5) -> bn2d -> maxpool(2) -> flatten -> linear(1350, 10)
            }
            """;
        var result = NnCompiler.Compile(text);
        Assert.DoesNotContain(result.Diagnostics, d => d.IsError);
        Assert.Equal(new[] { "LeNet", "Chain" }, result.Models.Select(m => m.Name));
        Assert.All(result.Models, m => Assert.Equal("Samples.Vision", m.Namespace));
        Assert.Equal(13678, result.Models[0].ParameterCount); // PyTorch: sum(p.numel() for p in model.parameters())
        Assert.Equal(13678, result.Models[1].ParameterCount);
        // Chain has conv -> bn2d: the redundant-bias warning, and nothing else.
        Assert.Equal(new[] { "NN2001" }, result.Diagnostics.Select(d => d.Id));
    }

    internal static (Dictionary<string, string> Metadata, Dictionary<string, int[]> Shapes) ReadHeader(string path)
    {
        var bytes = File.ReadAllBytes(path);
        long length = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        using var json = JsonDocument.Parse(bytes.AsMemory(8, (int)length));
        var metadata = new Dictionary<string, string>();
        var shapes = new Dictionary<string, int[]>();
        foreach (var property in json.RootElement.EnumerateObject())
        {
            if (property.Name == "__metadata__")
            {
                foreach (var entry in property.Value.EnumerateObject()) metadata[entry.Name] = entry.Value.GetString()!;
                continue;
            }

            shapes[property.Name] = property.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        }

        return (metadata, shapes);
    }
}
