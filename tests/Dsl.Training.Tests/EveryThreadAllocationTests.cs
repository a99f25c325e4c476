// On two threads, the training models' passes, the optimizer steps, the deferred gradient clear and the training
// loop allocate nothing on any thread the pool runs: measured on the caller and the workers (EveryThreadAllocation).
using Dsl.Runtime.Kernels;
using Dsl.Training;
using Dsl.Tests;

namespace Dsl.Training.Tests;

[Collection(EveryThreadAllocation.Collection)]
public sealed class EveryThreadAllocationTests
{
    // Batch 32; WideMlp's 79,882 parameters (above CompiledModel.ParallelUpdateThreshold) split the optimizer step and
    // the deferred clear across the pool; the others take the serial step, which runs on the caller.
    private const int Batch = 32;

    public static TheoryData<string> Models() => new() { nameof(TinyCnn), nameof(TinyDropout), nameof(WideMlp), nameof(MixedLayers), nameof(MixedOneD) };

    private static CompiledModel Create(string name) =>
        (CompiledModel)Activator.CreateInstance(typeof(TinyCnn).Assembly.GetType($"Dsl.Training.Tests.{name}")!, Batch, 3, 2)!;

    // 50 ms of calls (at least minCalls), so that the worker claims chunks.
    private static void AssertNoAllocation(string what, Action call, int minCalls = 5)
    {
        call(); // warm-up: JIT, type loading, the optimizers' cached delegates
        call();
        EveryThreadAllocation.LetWorkersSleep();
        long allocated = EveryThreadAllocation.BytesAllocatedByCalls(WorkerPool.Shared(2), call, minCalls, milliseconds: 50);
        Assert.True(allocated == 0, $"{what} allocated {allocated} bytes on the pool's threads");
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Passes_optimizer_steps_and_the_deferred_clear_allocate_zero_bytes_on_every_thread(string name)
    {
        var model = Create(name);
        Assert.Equal(2, model.Threads);
        var input = TestUtil.Random(Batch * model.SampleInputLength, 1);
        var result = new float[Batch * model.SampleOutputLength];
        var outputGrad = TestUtil.Random(result.Length, 2);
        var inputGrad = new float[input.Length];
        model.Forward(input, result, Batch);
        model.Backward(outputGrad);

        AssertNoAllocation($"{name}: Forward", () => model.Forward(input, result, Batch));
        AssertNoAllocation($"{name}: Backward with the input gradient", () => model.Backward(outputGrad, inputGrad));
        AssertNoAllocation($"{name}: ZeroGrad then Backward", () =>
        {
            model.ZeroGrad();
            model.Backward(outputGrad);
        });
        AssertNoAllocation($"{name}: ZeroGrad then Gradients (the deferred clear)", () =>
        {
            model.ZeroGrad();
            _ = model.Gradients;
        });
        AssertNoAllocation($"{name}: Infer after a step (folds again)", () =>
        {
            model.ParametersChanged();
            model.Infer(input, result, Batch);
            model.Infer(input.AsSpan(0, model.SampleInputLength), result.AsSpan(0, model.SampleOutputLength), 1);
        });
        foreach (var optimizer in new Optimizer[]
        {
            new Sgd(model, 0.01f, momentum: 0.9f, weightDecay: 1e-4f, nesterov: true),
            new Sgd(model, 0.01f, momentum: 0.9f),
            new Adam(model, 1e-3f, weightDecay: 1e-4f),
            new AdamW(model, 1e-3f),
        })
        {
            model.Backward(outputGrad);
            AssertNoAllocation($"{name}: {optimizer.Kind} step", () => optimizer.Step(model));
            AssertNoAllocation($"{name}: ZeroGrad then a {optimizer.Kind} step (the deferred clear in the step)", () =>
            {
                model.ZeroGrad();
                optimizer.Step(model);
            });
        }
    }

    // CheckpointTests.TrainingStepsDoNotAllocate at two threads: batches (across an epoch boundary), with ZeroGrad,
    // the loss, backward, a schedule and the step, on a model whose step is split (WideMlp) and one whose is not.
    [Theory]
    [InlineData(nameof(WideMlp), "sgd")]
    [InlineData(nameof(WideMlp), "adamw")]
    [InlineData(nameof(TinyCnn), "sgd")]
    public void Training_steps_allocate_zero_bytes_on_every_thread(string name, string kind)
    {
        var model = Create(name);
        int features = model.SampleInputLength, classes = model.SampleOutputLength;
        var random = new Random(5);
        var samples = new float[80 * features];
        var labels = new int[80];
        for (int i = 0; i < labels.Length; i++) labels[i] = i % classes;
        for (int i = 0; i < samples.Length; i++) samples[i] = (float)(random.NextDouble() - 0.5 + (i % classes == labels[i / features] ? 0.5 : 0));
        Optimizer optimizer = kind == "sgd" ? new Sgd(model, 0.05f, momentum: 0.9f, weightDecay: 5e-4f) : new AdamW(model, 0.01f);
        var trainer = new Trainer(model, optimizer, new BatchLoader(new LabeledDataset(samples, labels, features, classes), 16, seed: 1),
            new CosineSchedule(0.05f, 1000, warmupSteps: 3), labelSmoothing: 0.1f); // 5 batches per epoch
        AssertNoAllocation($"{name}: Trainer.TrainBatch with {kind}", () => trainer.TrainBatch(out _, out _), minCalls: 12);
        Assert.True(trainer.CompletedEpochs >= 2, $"{trainer.CompletedEpochs} epochs"); // the window crossed an epoch boundary
    }
}
