using Dsl.Runtime.Kernels;
using Dsl.Training;
using Dsl.Tests;

namespace Dsl.Models.Tests;

/// <summary>
/// On two threads, each pass and optimizer step of every model of <see cref="AllocationTests"/> allocates nothing on any thread: the
/// worker pool's chunks included, which the per-thread count of <see cref="AllocationTests"/> cannot see. Measured
/// with <see cref="EveryThreadAllocation"/> around steady-state calls, after a warm-up, with the pool started.
/// </summary>
[Collection(EveryThreadAllocation.Collection)]
public sealed class EveryThreadAllocationTests
{
    // Batch 32 takes the parallel form of most passes (convolutions, linear layers, batch norm, pooling, ReLU's
    // backward above their thresholds), and inference at 3 and 1 the splits by channel.
    private const int Batch = 32;

    public static TheoryData<string> Models()
    {
        var data = new TheoryData<string>();
        foreach (var (name, threads) in AllocationTests.Models().Select(row => ((string)row[0], (int)row[1])))
            if (threads == 2) data.Add(name);
        return data;
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Every_pass_allocates_zero_bytes_on_every_thread(string name)
    {
        var model = AllocationTests.Create(name, Batch, threads: 2);
        Assert.Equal(2, model.Threads);
        var input = new float[Batch * model.SampleInputLength];
        for (int i = 0; i < input.Length; i++) input[i] = MathF.Sin(i);
        var result = new float[Batch * model.SampleOutputLength];
        var outputGrad = new float[result.Length];
        outputGrad.AsSpan().Fill(0.1f);
        var inputGrad = new float[input.Length];

        // These models are below CompiledModel.ParallelUpdateThreshold, so their steps and clears run on the caller;
        // Dsl.Runtime.Tests' WideMlp covers the ones split across the pool.
        var sgd = new Sgd(model, 1e-3f, momentum: 0.9f, weightDecay: 1e-4f);
        var adam = new AdamW(model, 1e-4f);
        var passes = new (string Name, Action Calls)[]
        {
            ("Forward", () => model.Forward(input, result, Batch)),
            ("Backward with the input gradient", () => model.Backward(outputGrad, inputGrad)),
            ("Backward", () => model.Backward(outputGrad)),
            ("ZeroGrad then Backward (the clear deferred to it)", () =>
            {
                model.ZeroGrad();
                model.Backward(outputGrad);
            }),
            ("ZeroGrad then Gradients (the clear deferred to the read)", () =>
            {
                model.ZeroGrad();
                _ = model.Gradients;
            }),
            ("SGD step", () => sgd.Step(model)),
            ("AdamW step", () => adam.Step(model)),
            ("ZeroGrad then an SGD step (the clear deferred to the step)", () =>
            {
                model.ZeroGrad();
                sgd.Step(model);
            }),
            ("Infer after a parameter change (folds again)", () =>
            {
                model.ParametersChanged();
                model.Infer(input, result, Batch);
            }),
            ("Infer, batch 3", () => model.Infer(input.AsSpan(0, 3 * model.SampleInputLength), result.AsSpan(0, 3 * model.SampleOutputLength), 3)),
            ("Infer, batch 1", () => model.Infer(input.AsSpan(0, model.SampleInputLength), result.AsSpan(0, model.SampleOutputLength), 1)),
        };

        // Warm-up: JIT, type loading, cached delegates; then the workers go to sleep once.
        model.Forward(input, result, Batch);
        foreach (var (_, calls) in passes)
        {
            calls();
            calls();
        }

        EveryThreadAllocation.LetWorkersSleep();
        model.Forward(input, result, Batch); // a backward needs a forward before it
        foreach (var (pass, calls) in passes)
        {
            // 50 ms of calls (at least 5), so that the worker claims chunks.
            long allocated = EveryThreadAllocation.BytesAllocatedByCalls(WorkerPool.Shared(2), calls, minCalls: 5, milliseconds: 50);
            Assert.True(allocated == 0, $"{name}: {pass} allocated {allocated} bytes on the pool's threads");
        }
    }
}
