namespace Dsl.Models.Tests;

/// <summary>After construction, Forward, Backward and Infer allocate nothing: 0 bytes, measured on this thread.</summary>
public sealed class AllocationTests
{
    public static TheoryData<string> Models() => new(Golden.CaseNames().Select(n => "golden:" + n)
        .Concat(new[] { nameof(GcConv2d), nameof(GcConv1d), nameof(GcBnPlain), nameof(GcFrozen), nameof(GcMlp), nameof(GcPool), nameof(GcSequence), nameof(Drop) }));

    [Theory]
    [MemberData(nameof(Models))]
    public void Steady_state_allocates_zero_bytes(string name)
    {
        const int Batch = 4;
        var model = name.StartsWith("golden:", StringComparison.Ordinal)
            ? Golden.CreateModel(Golden.Load(name.Substring(7)), Batch)
            : (CompiledModel)Activator.CreateInstance(typeof(GcMlp).Assembly.GetType($"Dsl.Models.Tests.{name}")!, Batch, 0)!;
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
        }

        Step(); // JIT and first-call work
        Step();
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 3; i++) Step();
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);
    }
}
