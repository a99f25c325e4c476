using System.Text.Json;

namespace Dsl.Models.Tests;

/// <summary>
/// The graph language's naming rule gives PyTorch's own keys: the spec's ResNet18 (blocks, groups, repetition, a
/// projection shortcut) has exactly the state_dict of torchvision's <c>resnet18(num_classes=10)</c>, recorded in
/// tests/Golden/resnet18_keys.json (from TorchVision 0.107.0): a checkpoint with those names loads, and saves back.
/// </summary>
public sealed class ResNet18StateDictTests
{
    private static (string Key, int[] Shape, string DType)[] TorchvisionKeys()
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Golden", "resnet18_keys.json")));
        return json.RootElement.GetProperty("state_dict").EnumerateArray()
            .Select(e => (e.GetProperty("key").GetString()!, e.GetProperty("shape").EnumerateArray().Select(d => d.GetInt32()).ToArray(), e.GetProperty("dtype").GetString()!))
            .ToArray();
    }

    [Fact]
    public void Keys_shapes_and_dtypes_are_torchvisions()
    {
        // The file lists parameters, then buffers (as TorchSharp enumerates them); ours are in PyTorch's state_dict
        // order, module by module. The keys are what a checkpoint is matched by.
        var expected = TorchvisionKeys().OrderBy(e => e.Key, StringComparer.Ordinal).ToArray();
        Assert.Equal(122, expected.Length);
        var model = new ResNet18(1);
        var actual = model.Tensors.Select(t => (Key: t.Name, Shape: t.Shape.ToArray(), DType: t.Storage == TensorStorage.Counter ? "I64" : "F32"))
            .OrderBy(t => t.Key, StringComparer.Ordinal).ToArray();
        Assert.Equal(expected.Select(e => e.Key), actual.Select(a => a.Key));
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.Equal(expected[i].Shape, actual[i].Shape);
            Assert.Equal(expected[i].DType, actual[i].DType);
        }

        // PyTorch's own order: a module's parameters, then its buffers, module after module.
        Assert.Equal(new[] { "conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked", "layer1.0.conv1.weight" },
            model.Tensors.Take(7).Select(t => t.Name));

        Assert.Equal(11_181_642, model.Tensors.Where(t => t.Storage == TensorStorage.Parameter).Sum(t => (long)t.Shape.Aggregate(1, (a, b) => a * b)));
    }

    [Fact]
    public void A_torchvision_state_dict_loads_unchanged_and_saves_back()
    {
        // A checkpoint as torchvision writes it: its keys and shapes, every value distinct.
        var writer = new SafetensorsWriter();
        var values = new Dictionary<string, float[]>();
        var counters = new Dictionary<string, long>();
        int k = 0;
        foreach (var (key, shape, dtype) in TorchvisionKeys())
        {
            if (dtype == "I64")
            {
                counters[key] = 1000L + k++;
                writer.Add(key, new[] { counters[key] }, shape);
                continue;
            }

            var data = new float[shape.Aggregate(1, (a, b) => a * b)];
            for (int i = 0; i < data.Length; i++) data[i] = (float)Math.Sin(0.001 * i + k) + (key.EndsWith("running_var", StringComparison.Ordinal) ? 2f : 0f);
            values[key] = data;
            writer.Add(key, data, shape);
            k++;
        }

        var checkpoint = new MemoryStream();
        writer.WriteTo(checkpoint);
        var model = new ResNet18(1);
        checkpoint.Position = 0;
        model.LoadSafetensors(checkpoint); // strict: every key present, none extra, every shape equal
        Assert.Equal(values["layer2.0.downsample.0.weight"], model.Tensor("layer2.0.downsample.0.weight").ToArray());
        Assert.Equal(values["layer4.1.bn2.running_var"], model.Tensor("layer4.1.bn2.running_var").ToArray());

        var saved = new MemoryStream();
        model.SaveSafetensors(saved);
        saved.Position = 0;
        var reloaded = new ResNet18(1, seed: 5);
        reloaded.LoadSafetensors(saved);
        foreach (var (key, _, dtype) in TorchvisionKeys())
        {
            if (dtype == "I64") Assert.Equal(counters[key], reloaded.Counter(key));
            else Assert.Equal(values[key], reloaded.Tensor(key).ToArray());
        }

        Assert.Equal(counters["layer3.0.downsample.1.num_batches_tracked"], model.Counter("layer3.0.downsample.1.num_batches_tracked"));
    }
}
