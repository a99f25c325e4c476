// A model's arrays and its optimizers' state start on a 64-byte line (AlignedFloats), as the vectorized step expects.
namespace Dsl.Training.Tests;

public sealed unsafe class AlignmentTests
{
    private static long Misalignment(ReadOnlySpan<float> span)
    {
        fixed (float* p = span) return (long)p % AlignedFloats.Alignment;
    }

    [Fact]
    public void A_model_and_its_optimizers_keep_their_storage_on_lines()
    {
        var model = new TinyCnn(4, seed: 1, threads: 1);
        Assert.Equal(0, Misalignment(model.Parameters));
        Assert.Equal(0, Misalignment(model.Gradients));
        Assert.Equal(0, Misalignment(model.Tensor("bn1.running_mean")));
        Assert.Equal(0, Misalignment(new Sgd(model, 0.1f, momentum: 0.9f).MomentumBuffer));
        var adam = new Adam(model, 0.01f);
        Assert.Equal(0, Misalignment(adam.ExpAvg));
        Assert.Equal(0, Misalignment(adam.ExpAvgSq));
    }
}
