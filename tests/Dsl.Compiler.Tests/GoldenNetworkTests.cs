using System.Buffers.Binary;
using System.Text.Json;

namespace Dsl.Compiler.Tests;

/// <summary>The 13 networks PyTorch produced the golden bundles from: each checks clean, with PyTorch's state_dict and parameter count.</summary>
public sealed class GoldenNetworkTests
{
    public static TheoryData<string> Cases() => new(Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "Golden"), "*.safetensors")
        .Select(Path.GetFileNameWithoutExtension).OrderBy(n => n, StringComparer.Ordinal)!);

    [Fact]
    public void All_thirteen_bundles_are_present() => Assert.Equal(13, Cases().Count);

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
