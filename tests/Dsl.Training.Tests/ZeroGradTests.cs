// ZeroGrad as PyTorch's set_to_none: no pass over the gradients; the next backward writes them.

namespace Dsl.Training.Tests;

public class ZeroGradTests
{
    // After ZeroGrad the backward pass writes the gradients instead of adding to them (linear layers in their
    // kernels, the others by clearing theirs first). That must give the bits of clearing the array and adding:
    // stale values in the array are replaced, and a second backward before the next ZeroGrad adds to the first.
    // TinyCnn has a convolution, both batch norms and linear layers with and without bias; MixedLayers and
    // MixedOneD the other gradient writers (a frozen batch norm first, affine: false, convolutions with bias on
    // the Winograd and general kernels, conv1d); WideMlp is large enough for the parallel clear; batch 40 takes
    // the GEMM for the weight gradient, batch 4 the small kernels. The arrays start full of NaN: one stale value
    // left in would show.
    [Theory]
    [InlineData(1, 4)]
    [InlineData(2, 4)]
    [InlineData(1, 40)]
    [InlineData(2, 40)]
    public void BackwardAfterZeroGradGivesTheBitsOfClearedGradients(int threads, int batch)
    {
        var pairs = new (CompiledModel Lazy, CompiledModel Eager)[]
        {
            (new TinyCnn(batch, seed: 3, threads), new TinyCnn(batch, seed: 3, threads)),
            (new WideMlp(batch, seed: 3, threads), new WideMlp(batch, seed: 3, threads)),
            (new MixedLayers(batch, seed: 3, threads), new MixedLayers(batch, seed: 3, threads)),
            (new MixedOneD(batch, seed: 3, threads), new MixedOneD(batch, seed: 3, threads)),
        };
        foreach (var (lazy, eager) in pairs)
        {
            var x = TestUtil.Random(batch * lazy.SampleInputLength, 1);
            var g = TestUtil.Random(batch * lazy.SampleOutputLength, 2);
            var y = new float[g.Length];
            lazy.Gradients.Fill(float.NaN);
            eager.Gradients.Fill(float.NaN);
            for (int step = 0; step < 2; step++)
            {
                lazy.ZeroGrad();
                eager.ZeroGrad();
                Assert.All(eager.Gradients.ToArray(), v => Assert.Equal(0f, v)); // reading clears the array now
                for (int pass = 0; pass < 2; pass++)
                {
                    lazy.Forward(x, y, batch);
                    lazy.Backward(g);
                    eager.Forward(x, y, batch);
                    eager.Backward(g);
                }

                var expected = eager.Gradients.ToArray();
                Assert.Contains(expected, v => v != 0f);
                Assert.Equal(expected, lazy.Gradients.ToArray());
            }
        }
    }

    // No pass runs in ZeroGrad itself (a span taken before still shows the old values), but every way of reading
    // the gradients afterwards sees zeros: the Gradients span, a named gradient, and an optimizer step (serial for
    // TinyCnn, split across threads for WideMlp), which then leaves the parameters as they were.
    [Fact]
    public void GradientsReadAfterZeroGradAreZero()
    {
        foreach (var model in new CompiledModel[] { new TinyCnn(4, seed: 1, threads: 1), new WideMlp(4, seed: 1, threads: 2) })
        {
            var before = model.Gradients;
            before.Fill(3f);
            model.ZeroGrad();
            Assert.Equal(3f, before[0]);
            Assert.All(model.Gradient("fc1.weight").ToArray(), v => Assert.Equal(0f, v));
            Assert.All(model.Gradients.ToArray(), v => Assert.Equal(0f, v));

            model.Gradients.Fill(3f);
            model.ZeroGrad();
            var parameters = model.Parameters.ToArray();
            new Sgd(model, 0.1f).Step(model);
            Assert.Equal(parameters, model.Parameters.ToArray());
            Assert.All(model.Gradients.ToArray(), v => Assert.Equal(0f, v));
        }
    }

    // A model whose backward adds to its gradients whatever happened before (generated before ZeroGrad stopped
    // making a pass, or written by hand) does not override WritesGradientsAfterZeroGrad: Backward clears the
    // gradients first, so they hold this pass's sums, not the sums added to the values before ZeroGrad.
    [Fact]
    public void AModelThatOnlyAddsGetsItsGradientsClearedByBackward()
    {
        var model = new Scale(writesAfterZeroGrad: false);
        model.Gradients.Fill(5f);
        model.ZeroGrad();
        float[] x = [1f, 2f, 3f, 4f], dy = [0.5f, 0.25f, 2f, 1f], y = new float[4];
        model.Forward(x, y, 2);
        model.Backward(dy);
        Assert.Equal(new[] { 0.5f * 1f + 2f * 3f, 0.25f * 2f + 1f * 4f }, model.Gradients.ToArray());
    }

    // A backward pass that fails part-way after ZeroGrad leaves no stale gradient behind: they read as zero.
    [Fact]
    public void ABackwardThatFailsAfterZeroGradLeavesTheGradientsZero()
    {
        var model = new Scale(writesAfterZeroGrad: true);
        model.Gradients.Fill(5f);
        model.ZeroGrad();
        float[] x = [1f, 2f], dy = [1f, 1f], y = new float[2];
        model.Forward(x, y, 1);
        model.FailAfterFirstGradient = true;
        Assert.Throws<InvalidOperationException>(() => model.Backward(dy));
        Assert.Equal(new[] { 0f, 0f }, model.Gradients.ToArray());
    }

    // y = w ⊙ x on two features, written by hand; its backward adds to the gradients unless the base class says
    // it may write them, and can fail after writing the first.
    private sealed class Scale(bool writesAfterZeroGrad)
        : CompiledModel(4, [new TensorInfo("w", [2], TensorStorage.Parameter, 0, 2)])
    {
        private readonly float[] _input = new float[8];

        public bool FailAfterFirstGradient { get; set; }

        public override string Name => "Scale";

        public override int SampleInputLength => 2;

        public override int SampleOutputLength => 2;

        public override IReadOnlyList<int> SampleInputShape => [2];

        public override IReadOnlyList<int> SampleOutputShape => [2];

        protected override bool WritesGradientsAfterZeroGrad => writesAfterZeroGrad;

        public override void ResetParameters(int seed)
        {
            ParameterStorage[0] = 2f;
            ParameterStorage[1] = 3f;
        }

        protected override void ForwardCore(ReadOnlySpan<float> input, Span<float> output, int batch)
        {
            input.CopyTo(_input);
            for (int i = 0; i < 2 * batch; i++) output[i] = ParameterStorage[i % 2] * input[i];
        }

        protected override void BackwardCore(ReadOnlySpan<float> outputGrad, Span<float> inputGrad, int batch)
        {
            var gradients = GradientStorage;
            bool accumulate = !writesAfterZeroGrad || BeginGradients();
            for (int j = 0; j < 2; j++)
            {
                float sum = 0f;
                for (int i = 0; i < batch; i++) sum += outputGrad[2 * i + j] * _input[2 * i + j];
                gradients[j] = accumulate ? gradients[j] + sum : sum;
                if (FailAfterFirstGradient) throw new InvalidOperationException("the backward pass failed after its first gradient");
            }
        }

        protected override void InferCore(ReadOnlySpan<float> input, Span<float> output, int batch, int version) => ForwardCore(input, output, batch);
    }
}
