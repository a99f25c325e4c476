// A CompiledModel written by hand: a scaled sum per sample, tensors of any size, an architecture text to override, a gate to hold Infer.
namespace Dsl.Training.Tests;

/// <summary>
/// One weight tensor <c>w</c> (any length) and optionally a batch norm's buffers, without a generator: each output is
/// w[0] × the sum of its sample. <see cref="Gate"/>, when set, holds <see cref="InferCore"/> until released, which
/// lets a test put a second call on the instance while the first is running.
/// </summary>
internal sealed class HandModel : CompiledModel
{
    private readonly string _name;
    private readonly string? _architecture;

    public HandModel(string name, int weights, string? architecture = null, int maxBatch = 4)
        : base(maxBatch, TensorTable(weights))
    {
        _name = name;
        _architecture = architecture;
    }

    private static TensorInfo[] TensorTable(int weights) =>
    [
        new("w", [weights], TensorStorage.Parameter, 0, weights),
        new("bn.running_mean", [2], TensorStorage.Buffer, 0, 2),
        new("bn.num_batches_tracked", [], TensorStorage.Counter, 0, 1),
    ];

    /// <summary>When set, Infer signals <see cref="Entered"/> and waits for it.</summary>
    public ManualResetEventSlim? Gate { get; set; }

    public ManualResetEventSlim Entered { get; } = new();

    public override string Name => _name;

    public override int SampleInputLength => 3;

    public override int SampleOutputLength => 1;

    public override IReadOnlyList<int> SampleInputShape => [3];

    public override IReadOnlyList<int> SampleOutputShape => [1];

    protected override string Architecture => _architecture ?? base.Architecture;

    protected override void ForwardCore(ReadOnlySpan<float> input, Span<float> output, int batch) => InferCore(input, output, batch, 0);

    protected override void BackwardCore(ReadOnlySpan<float> outputGrad, Span<float> inputGrad, int batch)
    {
    }

    protected override void InferCore(ReadOnlySpan<float> input, Span<float> output, int batch, int version)
    {
        if (Gate is { } gate)
        {
            Entered.Set();
            gate.Wait();
        }

        float w = ParameterStorage[0];
        for (int n = 0; n < batch; n++) output[n] = w * (input[3 * n] + input[3 * n + 1] + input[3 * n + 2]);
    }

    public override void ResetParameters(int seed)
    {
        var random = new Random(seed);
        foreach (ref float p in ParameterStorage.AsSpan()) p = (float)random.NextDouble();
    }
}
