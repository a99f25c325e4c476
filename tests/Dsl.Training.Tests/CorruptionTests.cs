// Issue #16: every kind of damaged file is refused by LoadSafetensors and Checkpoint.Load with InvalidDataException, changing nothing.

using Dsl.Training;

namespace Dsl.Training.Tests;

public sealed class CorruptionTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("dsl-corrupt-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public static TheoryData<string> Cases() => new(Corruption.Names);

    private static TinyCnn Trained(int seed)
    {
        var model = new TinyCnn(maxBatch: 4, seed: seed, threads: 1);
        model.Forward(TestUtil.Random(4 * 36, seed), new float[12], 4); // running statistics and counters move
        return model;
    }

    private static object[] State(CompiledModel model, Optimizer? optimizer = null) =>
    [
        model.Parameters.ToArray(),
        model.Tensors.Where(t => t.Storage == TensorStorage.Buffer).SelectMany(t => model.Tensor(t.Name).ToArray()).ToArray(),
        model.Tensors.Where(t => t.Storage == TensorStorage.Counter).Select(t => model.Counter(t.Name)).ToArray(),
        optimizer?.StepCount ?? -1,
    ];

    [Theory]
    [MemberData(nameof(Cases))]
    public void LoadSafetensorsRefusesAndChangesNothing(string corruption)
    {
        var saved = new MemoryStream();
        Trained(1).SaveSafetensors(saved);
        byte[] bytes = Corruption.Apply(corruption, saved.ToArray());
        string path = Path.Combine(_dir, "m.safetensors");
        File.WriteAllBytes(path, bytes);

        var model = Trained(2);
        var before = State(model);
        var fromStream = Assert.Throws<InvalidDataException>(() => model.LoadSafetensors(new MemoryStream(bytes)));
        Assert.False(string.IsNullOrWhiteSpace(fromStream.Message));
        Assert.Throws<InvalidDataException>(() => model.LoadSafetensors(path));
        // The path for files above 64 MiB: the header is checked before any tensor is read.
        Assert.Throws<InvalidDataException>(() =>
        {
            using var file = SafetensorsFile.Read(path, inMemoryLimit: 0, chunkBytes: 64);
            model.LoadState(file);
        });
        Assert.Equal(before, State(model));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void CheckpointLoadRefusesAndChangesNothing(string corruption)
    {
        var source = Trained(1);
        var sgd = new Sgd(source, 0.1f, momentum: 0.9f);
        source.Backward(TestUtil.Random(12, 3));
        sgd.Step(source);
        string path = Path.Combine(_dir, "ckpt.safetensors");
        Checkpoint.Save(path, source, sgd);
        File.WriteAllBytes(path, Corruption.Apply(corruption, File.ReadAllBytes(path)));

        var model = Trained(2);
        var optimizer = new Sgd(model, 0.1f, momentum: 0.9f);
        var before = State(model, optimizer);
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(path, model, optimizer));
        Assert.Contains(path, e.Message);
        Assert.Equal(before, State(model, optimizer));
    }

    [Fact]
    public void EveryCaseChangesTheFile()
    {
        var saved = new MemoryStream();
        Trained(1).SaveSafetensors(saved);
        byte[] bytes = saved.ToArray();
        foreach (string name in Corruption.Names) Assert.False(bytes.AsSpan().SequenceEqual(Corruption.Apply(name, bytes)), name);
    }
}
