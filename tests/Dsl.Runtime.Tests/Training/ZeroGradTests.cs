// ZeroGrad as PyTorch's set_to_none: no pass over the gradients; the next backward writes them.
using Dsl.Runtime.Training;

namespace Dsl.Runtime.Tests.Training;

public class ZeroGradTests
{
    // After ZeroGrad the backward pass writes the gradients instead of adding to them (linear layers in their
    // kernels, the others by clearing theirs first). That must give the bits of clearing the array and adding:
    // stale values in the array are replaced, and a second backward before the next ZeroGrad adds to the first.
    // TinyCnn has a convolution, both batch norms and linear layers with and without bias; WideMlp is large
    // enough for the parallel clear; batch 40 takes the GEMM for the weight gradient, batch 4 the small kernels.
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
        };
        foreach (var (lazy, eager) in pairs)
        {
            var x = TestUtil.Random(batch * lazy.SampleInputLength, 1);
            var g = TestUtil.Random(batch * lazy.SampleOutputLength, 2);
            var y = new float[g.Length];
            lazy.Gradients.Fill(7f);
            eager.Gradients.Fill(7f);
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
}
