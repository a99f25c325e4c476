namespace Dsl.Models.Tests;

/// <summary>Safetensors load and save with PyTorch's state_dict names: all or nothing, with reasons.</summary>
public sealed class StateDictTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("dsl-state").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static byte[] Write(Action<SafetensorsWriter> fill)
    {
        var writer = new SafetensorsWriter();
        fill(writer);
        var stream = new MemoryStream();
        writer.WriteTo(stream);
        return stream.ToArray();
    }

    /// <summary>
    /// A LeNet whose every value differs from a new model's: weights from another seed, batch norm's γ, β and
    /// running statistics off 1, 0, 0 and 1, a batch count off 0.
    /// </summary>
    private static LeNet Source()
    {
        var source = new LeNet(1, seed: 9);
        var gamma = source.Tensor("bn1.weight");
        var beta = source.Tensor("bn1.bias");
        var mean = source.Tensor("bn1.running_mean");
        var variance = source.Tensor("bn1.running_var");
        for (int i = 0; i < mean.Length; i++)
        {
            gamma[i] = 0.5f + 0.125f * i;
            beta[i] = -0.25f * (i + 1);
            mean[i] = 0.25f * (i + 1);
            variance[i] = 1.5f + i;
        }

        source.Counter("bn1.num_batches_tracked") = 17;
        return source;
    }

    /// <summary>A valid LeNet state (<see cref="Source"/>'s) with one tensor changed by <paramref name="edit"/> (null drops it).</summary>
    private static byte[] LeNetState(string? replaced = null, Action<SafetensorsWriter>? edit = null, bool extra = false)
    {
        var source = Source();
        return Write(w =>
        {
            foreach (var t in source.Tensors)
            {
                if (t.Name == replaced)
                {
                    edit?.Invoke(w);
                    continue;
                }

                if (t.Storage == TensorStorage.Counter) w.Add(t.Name, new[] { source.Counter(t.Name) }, t.Shape);
                else w.Add(t.Name, source.Tensor(t.Name), t.Shape);
            }

            if (extra) w.Add("conv2.weight", new float[4], new[] { 4 });
        });
    }

    private static void AssertRejected(byte[] bytes, string expected)
    {
        var model = new LeNet(1, seed: 1);
        var before = model.Parameters.ToArray();
        var e = Assert.Throws<InvalidDataException>(() => model.LoadSafetensors(new MemoryStream(bytes)));
        Assert.Contains(expected, e.Message);
        Assert.Equal(before, model.Parameters.ToArray()); // nothing half-loaded
    }

    // Every parameter, running statistic and counter of the file lands in the model (each differed before the
    // load), and inference then uses them: batch norm is folded again from the loaded values.
    [Fact]
    public void A_valid_state_loads_every_value()
    {
        var source = Source();
        var model = new LeNet(1, seed: 1);
        var input = Enumerable.Range(0, LeNet.InputLength).Select(i => MathF.Sin(0.1f * i)).ToArray();
        var before = new float[10];
        model.Infer(input, before, 1);
        foreach (var t in source.Tensors.Where(t => t.Storage != TensorStorage.Counter))
            Assert.NotEqual(source.Tensor(t.Name).ToArray(), model.Tensor(t.Name).ToArray());
        Assert.NotEqual(source.Counter("bn1.num_batches_tracked"), model.Counter("bn1.num_batches_tracked"));

        model.LoadSafetensors(new MemoryStream(LeNetState()));

        Assert.Equal(9, source.Tensors.Count); // conv1 and fc1 (weight, bias); bn1 (weight, bias, running mean and variance, batch count)
        foreach (var t in source.Tensors)
        {
            if (t.Storage == TensorStorage.Counter) Assert.Equal(source.Counter(t.Name), model.Counter(t.Name));
            else Assert.Equal(source.Tensor(t.Name).ToArray(), model.Tensor(t.Name).ToArray());
        }

        var expected = new float[10];
        var loaded = new float[10];
        source.Infer(input, expected, 1);
        model.Infer(input, loaded, 1);
        Assert.Equal(expected, loaded);
        Assert.NotEqual(before, loaded);
    }

    [Fact]
    public void Missing_tensor_is_named() => AssertRejected(LeNetState("conv1.bias"), "'conv1.bias' [6] is missing");

    [Fact]
    public void Extra_tensor_is_named() => AssertRejected(LeNetState(extra: true), "'conv2.weight' is not a tensor of LeNet (pass allowExtra: true");

    [Fact]
    public void Misshaped_tensor_is_named() =>
        AssertRejected(LeNetState("fc1.weight", w => w.Add("fc1.weight", new float[13500], new[] { 1350, 10 })), "'fc1.weight' has shape [1350, 10] but LeNet expects [10, 1350]");

    [Fact]
    public void Counter_of_the_wrong_dtype_is_named() =>
        AssertRejected(LeNetState("bn1.num_batches_tracked", w => w.Add("bn1.num_batches_tracked", new float[1], Array.Empty<int>())), "'bn1.num_batches_tracked' is F32 but LeNet expects I64");

    [Fact]
    public void Truncated_file_is_rejected_with_the_reason()
    {
        var bytes = LeNetState();
        var model = new LeNet(1, seed: 1);
        var before = model.Parameters.ToArray();
        var e = Assert.Throws<InvalidDataException>(() => model.LoadSafetensors(new MemoryStream(bytes[..^100])));
        Assert.Contains("fc1", e.Message); // the last tensor is the one cut short
        Assert.Equal(before, model.Parameters.ToArray());
    }

    [Fact]
    public void Save_then_load_round_trips_parameters_buffers_and_counters()
    {
        var source = new SmallCnn(maxBatch: 2, seed: 3);
        source.Forward(Enumerable.Range(0, 2 * SmallCnn.InputLength).Select(i => MathF.Cos(i)).ToArray(), new float[20], 2);
        string path = Path.Combine(_directory, "small.safetensors");
        source.SaveSafetensors(path);

        var loaded = new SmallCnn(maxBatch: 2, seed: 4);
        loaded.LoadSafetensors(path);
        Assert.Equal(source.Parameters.ToArray(), loaded.Parameters.ToArray());
        foreach (var t in source.Tensors.Where(t => t.Storage == TensorStorage.Buffer))
            Assert.Equal(source.Tensor(t.Name).ToArray(), loaded.Tensor(t.Name).ToArray());
        Assert.Equal(1, loaded.Counter("1.num_batches_tracked"));

        var file = SafetensorsFile.Read(path);
        Assert.Equal("I64", file["1.num_batches_tracked"].DTypeName);
        Assert.Empty(file["1.num_batches_tracked"].Shape);
        Assert.Equal("SmallCnn", file.Metadata["model"]);
        Assert.Equal(new[] { path }, Directory.GetFiles(_directory)); // no temp file left
    }

    [Fact]
    public void Pytorch_bundle_state_loads_with_extras_allowed_only_when_asked()
    {
        var bundle = Golden.Load("seed_lenet");
        var model = new LeNet(4);
        Assert.Throws<InvalidDataException>(() => model.LoadState(bundle));
        model.LoadState(bundle, allowExtra: true);
        Assert.Equal(bundle["conv1.weight"].ToFloatArray(), model.Tensor("conv1.weight").ToArray());
    }
}
