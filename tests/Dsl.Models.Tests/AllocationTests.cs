namespace Dsl.Models.Tests;

/// <summary>After construction, Forward, Backward and Infer allocate nothing: 0 bytes, measured on this thread from the first call.</summary>
public sealed class AllocationTests
{
    public static TheoryData<string, int> Models()
    {
        var data = new TheoryData<string, int>();
        var names = Golden.CaseNames().Select(n => "golden:" + n)
            .Concat(new[] { nameof(GcConv2d), nameof(GcConv1d), nameof(GcBnPlain), nameof(GcFrozen), nameof(GcMlp), nameof(GcPool), nameof(GcSequence), nameof(GcLayerGroup), nameof(GcInstance), nameof(Drop) });
        foreach (var name in names)
        {
            data.Add(name, 1); // single-threaded
            data.Add(name, 2); // both cores, through the worker pool
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void A_new_instance_allocates_zero_bytes_from_its_first_call(string name, int threads)
    {
        CompiledModel Create() => AllocationTests.Create(name, 4, threads);

        // The process's one-time work (JIT, type loading, cached delegates) happens on a first instance.
        Run(Create());

        // A fresh instance then allocates nothing from its very first call: its scratch is part of its arena.
        Assert.Equal(0, Run(Create()));
    }

    /// <summary>A new instance of a model of <see cref="Models"/>: a golden network (<c>golden:NAME</c>) or a test model by class name.</summary>
    internal static CompiledModel Create(string name, int maxBatch, int threads) => name.StartsWith("golden:", StringComparison.Ordinal)
        ? Golden.CreateModel(Golden.Load(name.Substring(7)), maxBatch, threads)
        : (CompiledModel)Activator.CreateInstance(typeof(GcMlp).Assembly.GetType($"Dsl.Models.Tests.{name}")!, maxBatch, 0, threads)!;

    /// <summary>Three training steps and inferences; returns the bytes the model's calls allocated (the test's own arrays excluded).</summary>
    private static long Run(CompiledModel model)
    {
        const int Batch = 4;
        var input = new float[Batch * model.SampleInputLength];
        for (int i = 0; i < input.Length; i++) input[i] = MathF.Sin(i);
        var result = new float[Batch * model.SampleOutputLength];
        var outputGrad = new float[result.Length];
        outputGrad.AsSpan().Fill(0.1f);
        var inputGrad = new float[input.Length];

        void Step()
        {
            model.ZeroGrad();
            model.Forward(input, result, Batch);
            model.Backward(outputGrad, inputGrad);
            model.Backward(outputGrad); // without the input gradient
            model.ParametersChanged(); // forces Infer to refold
            model.Infer(input, result, Batch);
            model.Infer(input.AsSpan(0, 3 * model.SampleInputLength), result.AsSpan(0, 3 * model.SampleOutputLength), 3); // a smaller batch
            model.Infer(input.AsSpan(0, model.SampleInputLength), result.AsSpan(0, model.SampleOutputLength), 1); // one sample (its passes on the caller, or split by channels where large)
        }

        // A full collection empties this thread's allocation quantum before the window. Otherwise the
        // rest of that quantum (up to 8 KB, left by the arrays above or the constructor's) can be charged
        // to this thread when a collection, started here or by a parallel test, retires it
        // (dotnet/runtime#13502, #74388). An object allocated inside Forward/Backward/Infer takes a new
        // quantum and is still counted.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 3; i++) Step();
        return GC.GetAllocatedBytesForCurrentThread() - before;
    }
}
