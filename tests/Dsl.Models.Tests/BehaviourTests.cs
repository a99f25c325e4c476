namespace Dsl.Models.Tests;

/// <summary>What a user relies on beyond the numbers: clear argument errors, PyTorch's batch-1 rule, refolding, dropout, frozen BN.</summary>
public sealed class BehaviourTests
{
    private static float[] Ramp(int n) => Enumerable.Range(0, n).Select(i => MathF.Sin(0.7f * i)).ToArray();

    [Fact]
    public void Batch_outside_1_to_maxBatch_is_an_ArgumentException_naming_both()
    {
        var model = new LeNet(maxBatch: 4);
        var input = new float[5 * LeNet.InputLength];
        var output = new float[5 * LeNet.OutputLength];
        var e = Assert.ThrowsAny<ArgumentException>(() => model.Forward(input, output, 5));
        Assert.Contains("between 1 and maxBatch = 4", e.Message);
        Assert.Contains("got 5", e.Message);
        Assert.ThrowsAny<ArgumentException>(() => model.Infer(input.AsSpan(0, 0), output.AsSpan(0, 0), 0));
    }

    [Fact]
    public void Wrong_span_lengths_are_ArgumentExceptions_stating_expected_and_actual()
    {
        var model = new LeNet(maxBatch: 4);
        var e = Assert.Throws<ArgumentException>(() => model.Forward(new float[10], new float[40], 4));
        Assert.Equal("input has 10 floats, but batch 4 × [1, 34, 34] needs at least 4624. (Parameter 'input')", e.Message);
        e = Assert.Throws<ArgumentException>(() => model.Infer(new float[4624], new float[39], 4));
        Assert.Equal("output has 39 floats, but batch 4 × [10] needs at least 40. (Parameter 'output')", e.Message);
        model.Forward(new float[4624], new float[40], 4);
        e = Assert.Throws<ArgumentException>(() => model.Backward(new float[30]));
        Assert.Contains("outputGrad has 30 floats, but batch 4 × [10] needs at least 40", e.Message);
        e = Assert.Throws<ArgumentException>(() => model.Backward(new float[40], new float[5]));
        Assert.Contains("inputGrad has 5 floats", e.Message);
    }

    [Fact]
    public void Longer_spans_are_accepted_and_only_the_batch_is_read_and_written()
    {
        // As TensorPrimitives does for destinations: buffers sized for maxBatch serve a smaller batch.
        var exact = new LeNet(maxBatch: 4, seed: 3);
        var longer = new LeNet(maxBatch: 4, seed: 3);
        var input = Ramp(4 * LeNet.InputLength);
        var expected = new float[2 * LeNet.OutputLength];
        exact.Infer(input.AsSpan(0, 2 * LeNet.InputLength), expected, 2);
        var output = Enumerable.Repeat(42f, 4 * LeNet.OutputLength + 3).ToArray();
        longer.Infer(input, output, 2);
        Assert.Equal(expected, output[..expected.Length]);
        Assert.All(output[expected.Length..], v => Assert.Equal(42f, v));

        exact.Forward(input.AsSpan(0, 2 * LeNet.InputLength), expected, 2);
        longer.Forward(input, output, 2);
        Assert.Equal(expected, output[..expected.Length]);
        Assert.All(output[expected.Length..], v => Assert.Equal(42f, v));
        var inputGrad = new float[2 * LeNet.InputLength];
        var longInputGrad = Enumerable.Repeat(7f, 4 * LeNet.InputLength).ToArray();
        exact.Backward(Ramp(2 * LeNet.OutputLength), inputGrad);
        longer.Backward(Ramp(4 * LeNet.OutputLength), longInputGrad);
        Assert.Equal(inputGrad, longInputGrad[..inputGrad.Length]);
        Assert.All(longInputGrad[inputGrad.Length..], v => Assert.Equal(7f, v));
        Assert.Equal(exact.Gradients.ToArray(), longer.Gradients.ToArray());
    }

    [Fact]
    public void A_maxBatch_too_large_for_one_array_is_refused_with_the_limit()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new LeNet(maxBatch: 250_000));
        Assert.Contains("LeNet with maxBatch 250000 needs", e.Message);
        Assert.Contains("use a smaller maxBatch", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new LeNet(maxBatch: 0));
    }

    [Fact]
    public void Backward_without_forward_is_refused()
    {
        var model = new LeNet(maxBatch: 2);
        Assert.Throws<InvalidOperationException>(() => model.Backward(new float[20]));
    }

    [Fact]
    public void Training_batch_norm_on_one_sample_throws_like_pytorch_and_changes_nothing()
    {
        var model = new Mlp(maxBatch: 4);
        var meanBefore = model.Tensor("1.running_mean").ToArray();
        var e = Assert.Throws<ArgumentException>(() => model.Forward(new float[10], new float[1], 1));
        Assert.StartsWith("Expected more than 1 value per channel when training, got input size [1, 5]", e.Message);
        Assert.Equal(meanBefore, model.Tensor("1.running_mean").ToArray());
        Assert.Equal(0, model.Counter("1.num_batches_tracked"));
        Assert.Throws<InvalidOperationException>(() => model.Backward(new float[1]));
        model.Infer(new float[10], new float[1], 1); // running statistics: one sample is fine at inference
    }

    [Fact]
    public void One_sample_with_several_values_per_channel_trains()
    {
        var model = new One(maxBatch: 1); // conv -> bn2d on [2, 3, 3]: 9 values per channel
        model.Forward(Ramp(25), new float[18], 1);
        Assert.Equal(1, model.Counter("1.num_batches_tracked"));
    }

    [Fact]
    public void Batch_statistics_at_inference_refuse_one_sample_too()
    {
        var model = new UntrackedFeatures(maxBatch: 2);
        Assert.Throws<ArgumentException>(() => model.Infer(new float[4], new float[4], 1));
        var output = new float[8];
        model.Infer(Ramp(8), output, 2);
        Assert.Equal(output[0], -output[4], 4); // two samples normalized with their own mean: ±1
    }

    [Fact]
    public void Frozen_batch_norm_never_updates_its_statistics_but_learns_gamma_and_beta()
    {
        var model = new FrozenHead(maxBatch: 4);
        model.Tensor("1.running_mean")[0] = 0.5f;
        var output = new float[12];
        model.Forward(Ramp(16), output, 4);
        model.Backward(Enumerable.Repeat(1f, 12).ToArray());
        Assert.Equal(0.5f, model.Tensor("1.running_mean")[0]);
        Assert.Equal(1f, model.Tensor("1.running_var")[0]);
        Assert.Equal(0, model.Counter("1.num_batches_tracked"));
        Assert.Contains(model.Gradient("1.weight").ToArray(), g => g != 0);
        // Frozen: training and inference compute the same function.
        var inferred = new float[12];
        model.Infer(Ramp(16), inferred, 4);
        for (int i = 0; i < 12; i++) Assert.Equal(output[i], inferred[i], 5);
    }

    [Theory]
    [InlineData(nameof(FusedEpilogues))]
    [InlineData(nameof(FlattenThenBn))]
    public void Fused_and_folded_inference_equals_unfused_training_with_frozen_statistics(string name)
    {
        const int Batch = 3;
        var model = (CompiledModel)Activator.CreateInstance(typeof(FusedEpilogues).Assembly.GetType($"Dsl.Models.Tests.{name}")!, Batch, 2, 0)!;
        var random = new Random(5);
        foreach (var t in model.Tensors.Where(t => t.Storage != TensorStorage.Counter))
        {
            var values = model.Tensor(t.Name);
            for (int i = 0; i < values.Length; i++)
            {
                values[i] = t.Name.EndsWith("running_var", StringComparison.Ordinal) ? 0.5f + 1.5f * random.NextSingle()
                    : t.Name.EndsWith("running_mean", StringComparison.Ordinal) || t.Name.EndsWith(".bias", StringComparison.Ordinal) ? random.NextSingle() - 0.5f
                    : t.Name.EndsWith(".weight", StringComparison.Ordinal) && t.Shape.Length == 1 ? 0.5f + random.NextSingle()
                    : values[i];
            }
        }

        var input = Enumerable.Range(0, Batch * model.SampleInputLength).Select(_ => 2 * random.NextSingle() - 1).ToArray();
        var trained = new float[Batch * model.SampleOutputLength];
        var inferred = new float[trained.Length];
        model.Forward(input, trained, Batch);
        model.Infer(input, inferred, Batch);
        for (int i = 0; i < trained.Length; i++) Assert.Equal(trained[i], inferred[i], 5);
        Assert.Contains(trained, v => Math.Abs(v) > 1e-3); // not vacuously zero
    }

    [Fact]
    public void Inference_refolds_after_parameters_or_running_statistics_change()
    {
        var model = new Chain(maxBatch: 3, seed: 5); // conv -> bn2d: folded
        var input = Ramp(3 * Chain.InputLength);
        var before = new float[30];
        model.Infer(input, before, 3);

        model.Tensor("1.weight")[2] *= 3; // γ of one channel
        var after = new float[30];
        model.Infer(input, after, 3);
        Assert.NotEqual(before, after);
        Assert.Equal(Reference(model, input), after);

        model.Forward(input, new float[30], 3); // training updates the running statistics
        model.Infer(input, after, 3);
        Assert.Equal(Reference(model, input), after);
    }

    // Infer reads the transformed weights RefreshFolded wrote: a change of the conv's weight (or of the folded batch
    // norm) must reach them, and the result must be what a fresh model with the same state infers.
    [Theory]
    [InlineData(nameof(WinogradFolded))]
    [InlineData(nameof(WinogradPlain))]
    public void Inference_transforms_Winograd_weights_again_after_they_change(string name)
    {
        CompiledModel Create(int seed) => (CompiledModel)Activator.CreateInstance(typeof(WinogradPlain).Assembly.GetType($"Dsl.Models.Tests.{name}")!, 2, seed, 1)!;
        var model = Create(5);
        var input = Ramp(2 * model.SampleInputLength);
        var before = new float[2 * model.SampleOutputLength];
        model.Infer(input, before, 2);

        var weight = model.Tensor("c.weight");
        for (int i = 0; i < weight.Length; i += 7) weight[i] *= -2;
        var after = new float[before.Length];
        model.Infer(input, after, 2);
        Assert.NotEqual(before, after);

        var stream = new MemoryStream();
        model.SaveSafetensors(stream);
        stream.Position = 0;
        var fresh = Create(99);
        fresh.LoadSafetensors(stream);
        var expected = new float[before.Length];
        fresh.Infer(input, expected, 2);
        Assert.Equal(expected, after);
    }

    private static int InferenceChunk(CompiledModel model) =>
        (int)typeof(CompiledModel).GetProperty("InferenceChunk", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!.GetValue(model)!;

    [Fact]
    public void A_batch_larger_than_the_inference_chunk_gives_each_sample_its_own_result_without_allocating()
    {
        // 20 samples in chunks of at most 8 (7, 7, 6): each equals the sample inferred alone.
        var model = new ChunkedInference(maxBatch: 20, seed: 3);
        Assert.Equal(8, InferenceChunk(model));
        var input = Ramp(20 * model.SampleInputLength);
        var batch = new float[20 * model.SampleOutputLength];
        model.Infer(input, batch, 20);
        var single = new float[model.SampleOutputLength];
        for (int s = 0; s < 20; s++)
        {
            model.Infer(input.AsSpan(s * model.SampleInputLength, model.SampleInputLength), single, 1);
            for (int j = 0; j < single.Length; j++) Assert.Equal(single[j], batch[s * single.Length + j], 6);
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        model.Infer(input, batch, 20);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void Batch_statistics_at_inference_keep_the_whole_batch_together()
    {
        // Without running statistics, inference normalizes over the whole batch, as training does: no chunks.
        var model = new WholeBatchStatistics(maxBatch: 20, seed: 3);
        Assert.Equal(0, InferenceChunk(model));
        var input = Ramp(20 * model.SampleInputLength);
        var inferred = new float[20 * model.SampleOutputLength];
        var trained = new float[inferred.Length];
        model.Infer(input, inferred, 20);
        model.Forward(input, trained, 20);
        for (int i = 0; i < inferred.Length; i++) Assert.Equal(trained[i], inferred[i], 5);
    }

    /// <summary>Infer of a fresh model loaded with the same state, which folds from scratch.</summary>
    private static float[] Reference(Chain model, float[] input)
    {
        var stream = new MemoryStream();
        model.SaveSafetensors(stream);
        stream.Position = 0;
        var fresh = new Chain(maxBatch: 3, seed: 99);
        fresh.LoadSafetensors(stream);
        var result = new float[30];
        fresh.Infer(input, result, 3);
        return result;
    }

    [Fact]
    public void Infer_between_forward_and_backward_does_not_disturb_backward()
    {
        var a = new SmallCnn(maxBatch: 2, seed: 1);
        var b = new SmallCnn(maxBatch: 2, seed: 1);
        var input = Ramp(2 * SmallCnn.InputLength);
        var grad = Ramp(20);
        a.Forward(input, new float[20], 2);
        a.Backward(grad);
        b.Forward(input, new float[20], 2);
        b.Infer(input.Reverse().ToArray(), new float[20], 2);
        b.Backward(grad);
        Assert.Equal(a.Gradients.ToArray(), b.Gradients.ToArray());
    }

    [Fact]
    public void Dropout_zeroes_about_p_scales_the_rest_and_is_identity_at_inference()
    {
        var model = new Drop(maxBatch: 2, seed: 4);
        var input = Enumerable.Repeat(1f, 2000).ToArray();
        var output = new float[2000];
        model.Forward(input, output, 2);
        int zeros = output.Count(v => v == 0);
        Assert.InRange(zeros, 440, 560); // p = 0.25 of 2000, ± 4.5 standard deviations
        Assert.All(output.Where(v => v != 0), v => Assert.Equal(1 / 0.75f, v, 6));
        var grad = new float[2000];
        model.Backward(Enumerable.Repeat(2f, 2000).ToArray(), grad);
        for (int i = 0; i < 2000; i++) Assert.Equal(output[i] * 2, grad[i], 6);

        var second = new float[2000];
        model.Forward(input, second, 2);
        Assert.NotEqual(output, second); // a new mask every step
        var again = new Drop(maxBatch: 2, seed: 4);
        var replay = new float[2000];
        again.Forward(input, replay, 2);
        Assert.Equal(output, replay); // same seed, same masks

        model.Infer(input, output, 2);
        Assert.All(output, v => Assert.Equal(1f, v));
    }

    [Fact]
    public void Default_initialization_follows_pytorch()
    {
        var model = new LeNet(maxBatch: 1, seed: 123);
        var weight = model.Tensor("conv1.weight").ToArray();
        float bound = 1 / MathF.Sqrt(25); // fan_in = 1 × 5 × 5
        Assert.All(weight, w => Assert.InRange(w, -bound, bound));
        Assert.True(weight.Max() > 0.8 * bound && weight.Min() < -0.8 * bound);
        Assert.All(model.Tensor("fc1.bias").ToArray(), b => Assert.InRange(b, -1 / MathF.Sqrt(1350), 1 / MathF.Sqrt(1350)));
        Assert.All(model.Tensor("bn1.weight").ToArray(), g => Assert.Equal(1f, g));
        Assert.All(model.Tensor("bn1.bias").ToArray(), b => Assert.Equal(0f, b));
        Assert.All(model.Tensor("bn1.running_mean").ToArray(), m => Assert.Equal(0f, m));
        Assert.All(model.Tensor("bn1.running_var").ToArray(), v => Assert.Equal(1f, v));
        Assert.Equal(weight, new LeNet(maxBatch: 1, seed: 123).Tensor("conv1.weight").ToArray());
        Assert.NotEqual(weight, new LeNet(maxBatch: 1, seed: 124).Tensor("conv1.weight").ToArray());
    }

    [Fact]
    public void Generated_constants_describe_the_model()
    {
        Assert.Equal(1156, LeNet.InputLength);
        Assert.Equal(10, LeNet.OutputLength);
        Assert.Equal(13678, LeNet.ParameterCount);
        Assert.Equal(new[] { 1, 34, 34 }, LeNet.InputShape.ToArray());
        var model = new LeNet(2);
        Assert.Equal(LeNet.ParameterCount, model.Parameters.Length);
        Assert.Equal(new[] { "conv1.weight", "conv1.bias", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked", "fc1.weight", "fc1.bias" },
            model.Tensors.Select(t => t.Name));
        Assert.Equal(new[] { 6, 1, 5, 5 }, model.Info("conv1.weight").Shape);
        Assert.Throws<KeyNotFoundException>(() => model.Tensor("conv2.weight"));
    }
}
