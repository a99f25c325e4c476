// Checkpoints: training N steps, saving, loading into fresh objects and continuing is bit-identical to not stopping.

namespace Dsl.Training.Tests;

public sealed class CheckpointTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("dsl-ckpt-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    internal static LabeledDataset Synthetic(int n, int seed)
    {
        // Three classes with different mean images, so training has something to learn.
        var random = new Random(seed);
        var x = new float[n * 36];
        var y = new int[n];
        for (int i = 0; i < n; i++)
        {
            y[i] = i % 3;
            for (int k = 0; k < 36; k++) x[i * 36 + k] = (float)(random.NextDouble() - 0.5 + (k % 3 == y[i] ? 0.8 : 0));
        }

        return new LabeledDataset(x, y, 36, 3);
    }

    private static Trainer NewTrainer(LabeledDataset data, string optimizer)
    {
        var model = new TinyCnn(maxBatch: 8, seed: 7, threads: 1); // one thread: bit-exact
        Optimizer opt = optimizer switch
        {
            "sgd" => new Sgd(model, 0.05f, momentum: 0.9f, weightDecay: 5e-4f, decayNormAndBias: false),
            "adam" => new Adam(model, 0.01f, weightDecay: 1e-4f),
            _ => new AdamW(model, 0.01f),
        };
        var loader = new BatchLoader(data, 8, seed: 11);
        var schedule = new CosineSchedule(optimizer == "sgd" ? 0.05f : 0.01f, 40, warmupSteps: 3);
        return new Trainer(model, opt, loader, schedule, labelSmoothing: 0.1f);
    }

    [Theory]
    [InlineData("sgd", 13)]  // mid-epoch (5 batches per epoch)
    [InlineData("sgd", 10)]  // at an epoch boundary
    [InlineData("adam", 7)]
    [InlineData("adamw", 12)]
    public void ResumingIsBitIdentical(string optimizer, int stepsBefore)
    {
        var data = Synthetic(43, 1); // 5 batches of 8, 3 samples dropped each epoch
        const int total = 23;

        var straight = NewTrainer(data, optimizer);
        for (int i = 0; i < total; i++) straight.TrainBatch(out _, out _);

        var first = NewTrainer(data, optimizer);
        for (int i = 0; i < stepsBefore; i++) first.TrainBatch(out _, out _);
        string path = Path.Combine(_dir, "run.safetensors");
        first.SaveCheckpoint(path, [new("note", "test")]);

        var resumed = NewTrainer(data, optimizer);
        var metadata = resumed.LoadCheckpoint(path);
        Assert.Equal("test", metadata["note"]);
        Assert.Equal(stepsBefore.ToString(System.Globalization.CultureInfo.InvariantCulture), metadata["step"]);
        Assert.Equal(stepsBefore, resumed.Step);
        for (int i = stepsBefore; i < total; i++) resumed.TrainBatch(out _, out _);

        Assert.Equal(straight.Model.Parameters.ToArray(), resumed.Model.Parameters.ToArray());
        foreach (var t in straight.Model.Tensors)
        {
            if (t.Storage == TensorStorage.Counter) Assert.Equal(straight.Model.Counter(t.Name), resumed.Model.Counter(t.Name));
            else Assert.Equal(straight.Model.Tensor(t.Name).ToArray(), resumed.Model.Tensor(t.Name).ToArray());
        }

        Assert.Equal(straight.Optimizer.LearningRate, resumed.Optimizer.LearningRate);
        Assert.Equal(straight.Loader.State, resumed.Loader.State);
        Assert.Empty(Directory.GetFiles(_dir, "*.tmp")); // written atomically: no temporary file left behind
    }

    private static Trainer NewDropoutTrainer(LabeledDataset data)
    {
        var model = new TinyDropout(maxBatch: 8, seed: 5, threads: 1);
        return new Trainer(model, new Sgd(model, 0.05f, momentum: 0.9f), new BatchLoader(data, 8, seed: 11));
    }

    [Fact]
    public void ResumingAModelWithDropoutDrawsTheSameMasks()
    {
        var data = Synthetic(43, 1);
        var straight = NewDropoutTrainer(data);
        for (int i = 0; i < 12; i++) straight.TrainBatch(out _, out _);

        var first = NewDropoutTrainer(data);
        for (int i = 0; i < 7; i++) first.TrainBatch(out _, out _);
        string path = Path.Combine(_dir, "dropout.safetensors");
        first.SaveCheckpoint(path);
        Assert.Equal(first.Model.DropoutRandomState.ToString(), SafetensorsFile.Read(path).Metadata[Checkpoint.DropoutStateKey]);

        var resumed = NewDropoutTrainer(data);
        Assert.NotEqual(first.Model.DropoutRandomState, resumed.Model.DropoutRandomState);
        resumed.LoadCheckpoint(path);
        Assert.Equal(first.Model.DropoutRandomState, resumed.Model.DropoutRandomState);
        for (int i = 7; i < 12; i++) resumed.TrainBatch(out _, out _);
        Assert.Equal(straight.Model.Parameters.ToArray(), resumed.Model.Parameters.ToArray());
        Assert.Equal(straight.Model.DropoutRandomState, resumed.Model.DropoutRandomState);

        // Without the generator state (as from an older checkpoint) the masks differ: the state is what makes resume exact.
        var stale = NewDropoutTrainer(data);
        ulong? fresh = stale.Model.DropoutRandomState;
        stale.LoadCheckpoint(path);
        stale.Model.DropoutRandomState = fresh;
        for (int i = 7; i < 12; i++) stale.TrainBatch(out _, out _);
        Assert.NotEqual(straight.Model.Parameters.ToArray(), stale.Model.Parameters.ToArray());

        var model = new TinyDropout(maxBatch: 8, seed: 5, threads: 1);
        Assert.Null(new TinyCnn(maxBatch: 8, seed: 1, threads: 1).DropoutRandomState);
        Assert.Throws<InvalidOperationException>(() => new TinyCnn(maxBatch: 8, seed: 1, threads: 1).DropoutRandomState = 1UL);
        model.DropoutRandomState = 42UL;
        Assert.Equal(42UL, model.DropoutRandomState);
    }

    [Fact]
    public void AMalformedDropoutStateLoadsNothing()
    {
        var data = Synthetic(16, 4);
        var trainer = NewDropoutTrainer(data);
        trainer.TrainBatch(out _, out _);
        // Caller metadata cannot overwrite the generator state, so the junk is written into the file by hand.
        string broken = Path.Combine(_dir, "broken.safetensors");
        Assert.Throws<ArgumentException>(() => Checkpoint.Save(broken, trainer.Model, metadata: [new(Checkpoint.DropoutStateKey, "-3")]));
        using (var stream = File.Create(broken)) Checkpoint.Save(stream, trainer.Model);
        RewriteMetadata(broken, m => m[Checkpoint.DropoutStateKey] = "-3");

        var other = NewDropoutTrainer(data);
        var before = other.Model.Parameters.ToArray();
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(broken, other.Model));
        Assert.Contains("not an unsigned 64-bit integer", e.Message);
        Assert.Contains("Nothing was loaded", e.Message);
        Assert.Equal(before, other.Model.Parameters.ToArray());
    }

    /// <summary>Rewrites a safetensors file with its metadata edited: what a hand-edited or foreign file looks like.</summary>
    internal static void RewriteMetadata(string path, Action<Dictionary<string, string>> edit)
    {
        var writer = new SafetensorsWriter();
        Dictionary<string, string> metadata;
        using (var file = SafetensorsFile.Read(path))
        {
            foreach (var t in file.Tensors)
            {
                if (t.DTypeName == "I64") writer.Add(t.Name, t.ToInt64Array(), t.Shape);
                else writer.Add(t.Name, t.ToFloatArray(), t.Shape);
            }

            metadata = file.Metadata.ToDictionary();
        }

        edit(metadata);
        foreach (var (key, value) in metadata) writer.AddMetadata(key, value);
        using var stream = File.Create(path);
        writer.WriteTo(stream);
    }

    [Fact]
    public void TrainEpochAfterResumeFinishesThePartialEpoch()
    {
        var data = Synthetic(40, 2);
        var a = NewTrainer(data, "sgd");
        for (int i = 0; i < 2; i++) a.TrainBatch(out _, out _);
        string path = Path.Combine(_dir, "mid.safetensors");
        a.SaveCheckpoint(path);
        var b = NewTrainer(data, "sgd");
        b.LoadCheckpoint(path);
        Assert.Equal(0, b.CompletedEpochs);
        var rest = b.TrainEpoch();
        Assert.Equal(24, rest.Samples); // 3 of 5 batches were left
        Assert.Equal(1, b.CompletedEpochs);
        Assert.Equal(40, b.TrainEpoch().Samples);
        Assert.Equal(2, b.CompletedEpochs);
    }

    [Fact]
    public void ACheckpointIsAStateDictPlusOptimizerState()
    {
        var data = Synthetic(16, 3);
        var trainer = NewTrainer(data, "adam");
        trainer.TrainBatch(out _, out _);
        string path = Path.Combine(_dir, "adam.safetensors");
        trainer.SaveCheckpoint(path);

        var file = SafetensorsFile.Read(path);
        Assert.Equal("adam", file.Metadata["optimizer.kind"]);
        Assert.Equal([1L], file["optimizer.step"].ToInt64Array());
        Assert.Equal("I64", file["bn1.num_batches_tracked"].DTypeName);
        Assert.Equal([trainer.Model.Parameters.Length], file["optimizer.exp_avg"].Shape);
        Assert.True(file.Metadata.ContainsKey("loader.rng_state"));

        // The model part loads like any state_dict (extra tensors allowed).
        var plain = new TinyCnn(maxBatch: 8, seed: 99, threads: 1);
        plain.LoadSafetensors(path, allowExtra: true);
        Assert.Equal(trainer.Model.Parameters.ToArray(), plain.Parameters.ToArray());
    }

    [Fact]
    public void AMismatchedCheckpointLoadsNothing()
    {
        var data = Synthetic(16, 4);
        var sgd = NewTrainer(data, "sgd");
        sgd.TrainBatch(out _, out _);
        string path = Path.Combine(_dir, "sgd.safetensors");
        sgd.SaveCheckpoint(path);

        var adam = NewTrainer(data, "adam");
        var before = adam.Model.Parameters.ToArray();
        var e = Assert.Throws<InvalidDataException>(() => adam.LoadCheckpoint(path));
        Assert.Contains("'sgd', not 'adam'", e.Message);
        Assert.Contains("Nothing was loaded", e.Message);
        Assert.Equal(before, adam.Model.Parameters.ToArray());
        Assert.Equal(0, adam.Step);

        // A model-only file (no optimizer state) cannot resume training either.
        string modelOnly = Path.Combine(_dir, "model.safetensors");
        sgd.Model.SaveSafetensors(modelOnly);
        Assert.Throws<InvalidDataException>(() => NewTrainer(data, "sgd").LoadCheckpoint(modelOnly));
    }

    [Fact]
    public void TrainingStepsDoNotAllocate()
    {
        var trainer = NewTrainer(Synthetic(64, 5), "sgd");
        trainer.TrainBatch(out _, out _);
        trainer.TrainBatch(out _, out _);
        Assert.Equal(0, TestUtil.BytesAllocatedBy(() =>
        {
            for (int i = 0; i < 10; i++) trainer.TrainBatch(out _, out _); // crosses an epoch boundary (8 batches per epoch)
        }));
    }

    [Fact]
    public void TrainingLearnsTheSyntheticClasses()
    {
        var data = Synthetic(96, 6);
        var model = new TinyCnn(maxBatch: 32, seed: 3, threads: 1);
        var trainer = new Trainer(model, new Sgd(model, 0.05f, momentum: 0.9f), new BatchLoader(data, 16, seed: 1));
        EpochResult last = trainer.TrainEpoch();
        for (int e = 0; e < 5; e++) last = trainer.TrainEpoch();
        var eval = trainer.Evaluate(Synthetic(60, 7));
        Assert.True(last.Loss < 0.5, $"training loss {last.Loss}");
        Assert.True(eval.Accuracy > 0.9, $"held-out accuracy {eval.Accuracy}");
        Assert.Equal(eval.Accuracy, Trainer.Evaluate(model, Synthetic(60, 7)).Accuracy);
    }
}
