using Dsl.Training;

namespace Dsl.Models.Tests;

/// <summary>
/// The optimizer step fused into backward (<see cref="Optimizer.BackwardAndStep"/>): the same parameters and
/// optimizer state, bit for bit, as <c>Backward</c> then <c>Step</c>, on every test network (chains, residual and
/// dense graphs, frozen batch norm, group/layer/instance norm, dropout), on one thread and two.
/// </summary>
public sealed class FusedStepTests
{
    private const int Batch = 4;

    public static TheoryData<string, int> Models()
    {
        var data = AllocationTests.Models();
        data.Add(nameof(FrozenHead), 1);
        data.Add(nameof(FusedEpilogues), 2);
        data.Add(nameof(ResNet18), 2); // tensors of more than 65,536 parameters: each update split across the threads
        return data;
    }

    private static (float[] Input, float[] OutputGrad) Data(CompiledModel model)
    {
        var input = new float[Batch * model.SampleInputLength];
        for (int i = 0; i < input.Length; i++) input[i] = MathF.Sin(0.7f * i);
        var outputGrad = new float[Batch * model.SampleOutputLength];
        for (int i = 0; i < outputGrad.Length; i++) outputGrad[i] = MathF.Cos(1.3f * i);
        return (input, outputGrad);
    }

    private static Optimizer[] Optimizers(CompiledModel model) =>
    [
        new Sgd(model, 0.05f, momentum: 0.9f, weightDecay: 5e-4f, nesterov: true, decayNormAndBias: false),
        new AdamW(model, 3e-3f, weightDecay: 0.05f, decayNormAndBias: false),
    ];

    [Theory]
    [MemberData(nameof(Models))]
    public void Fused_step_gives_the_bits_of_backward_then_step(string name, int threads)
    {
        for (int which = 0; which < 2; which++)
        {
            var separate = AllocationTests.Create(name, Batch, threads);
            var fused = AllocationTests.Create(name, Batch, threads);
            Assert.Equal(separate.Parameters.ToArray(), fused.Parameters.ToArray());
            var separateOptimizer = Optimizers(separate)[which];
            var fusedOptimizer = Optimizers(fused)[which];
            var (input, outputGrad) = Data(separate);
            var output = new float[outputGrad.Length];
            var inputGrad = new float[input.Length];
            var fusedInputGrad = new float[input.Length];
            for (int step = 0; step < 3; step++)
            {
                separate.ZeroGrad();
                separate.Forward(input, output, Batch);
                separate.Backward(outputGrad, inputGrad);
                separateOptimizer.Step(separate);

                fused.ZeroGrad();
                fused.Forward(input, output, Batch);
                fusedOptimizer.BackwardAndStep(fused, outputGrad, fusedInputGrad);

                Assert.Equal(inputGrad, fusedInputGrad);
                Assert.Equal(separate.Gradients.ToArray(), fused.Gradients.ToArray());
                Assert.True(separate.Parameters.SequenceEqual(fused.Parameters), $"{name}, {separateOptimizer.Kind}, step {step + 1}: parameters differ");
                Assert.Equal(separateOptimizer.StepCount, fusedOptimizer.StepCount);
            }

            if (separateOptimizer is Sgd sgd) Assert.True(sgd.MomentumBuffer.SequenceEqual(((Sgd)fusedOptimizer).MomentumBuffer), "momentum buffers differ");

            // The parameters changed: inference refolds and sees the same weights.
            var inferred = new float[output.Length];
            var fusedInferred = new float[output.Length];
            separate.Infer(input, inferred, Batch);
            fused.Infer(input, fusedInferred, Batch);
            Assert.Equal(inferred, fusedInferred);
        }
    }

    // A generated model reports every parameter tensor, each once, after its own layer: the hook sees the
    // state_dict's parameter tensors exactly, in backward order (the last layer first).
    [Fact]
    public void Every_parameter_tensor_is_reported_once_after_its_layer()
    {
        var model = AllocationTests.Create("golden:v2_resnet8", Batch, 1);
        var (input, outputGrad) = Data(model);
        var output = new float[outputGrad.Length];
        model.Forward(input, output, Batch);
        var hook = new Recorder();
        model.Backward(outputGrad, default, hook);
        var parameters = model.Tensors.Where(t => t.Storage == TensorStorage.Parameter).ToList();
        var covered = new int[parameters.Sum(t => t.Length)];
        foreach (var (offset, length) in hook.Ranges)
        {
            for (int i = offset; i < offset + length; i++) covered[i]++;
        }

        Assert.All(covered, c => Assert.Equal(1, c));
        Assert.Equal(parameters[^1].Offset + parameters[^1].Length, hook.Ranges[0].Offset + hook.Ranges[0].Length); // fc first
        Assert.Equal(0, hook.Ranges[^1].Offset); // the stem's conv last
    }

    [Fact]
    public void A_backward_that_fails_its_checks_leaves_the_parameters_and_the_step_count()
    {
        var model = AllocationTests.Create(nameof(GcMlp), Batch, 1);
        var optimizer = new Sgd(model, 0.1f, momentum: 0.9f);
        var before = model.Parameters.ToArray();
        var (input, outputGrad) = Data(model);
        Assert.Throws<InvalidOperationException>(() => optimizer.BackwardAndStep(model, outputGrad)); // no forward yet
        var output = new float[outputGrad.Length];
        model.Forward(input, output, Batch);
        var error = Assert.Throws<ArgumentException>(() => optimizer.BackwardAndStep(model, outputGrad.AsSpan(0, 1).ToArray()));
        Assert.Contains("outputGrad", error.Message);
        Assert.Equal(0, optimizer.StepCount);
        Assert.Equal(before, model.Parameters.ToArray());

        var other = AllocationTests.Create(nameof(GcConv2d), Batch, 1);
        error = Assert.Throws<ArgumentException>(() => optimizer.BackwardAndStep(other, outputGrad));
        Assert.Contains("parameters, but this optimizer was built for", error.Message);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void The_fused_step_allocates_nothing(int threads)
    {
        var model = AllocationTests.Create("golden:v2_resnet8", Batch, threads);
        var optimizer = new Sgd(model, 0.05f, momentum: 0.9f, weightDecay: 5e-4f);
        var (input, outputGrad) = Data(model);
        var output = new float[outputGrad.Length];
        void Step()
        {
            model.ZeroGrad();
            model.Forward(input, output, Batch);
            optimizer.BackwardAndStep(model, outputGrad);
        }

        Step();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 3; i++) Step();
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    private sealed class Recorder : IGradientHook
    {
        public List<(int Offset, int Length)> Ranges { get; } = [];

        public void GradientsReady(int offset, int length) => Ranges.Add((offset, length));
    }
}
