// Linear layer: hand-computed values and finite-difference gradients.
namespace Dsl.Runtime.Tests;

public class LinearTests
{
    [Fact]
    public void ForwardMatchesHandComputation()
    {
        // x [2, 3], w [2, 3]
        float[] x = [1, 2, 3, -1, 0, 1];
        float[] w = [1, 0, -1, 0.5f, 0.5f, 0.5f];
        var y = new float[4];
        Linear.Forward(x, w, [10, 20], y, 2, 3, 2);
        Assert.Equal([10 + 1 - 3f, 20 + 3f, 10 - 1 - 1f, 20 + 0f], y);
        Linear.Forward(x, w, [], y, 2, 3, 2);
        Assert.Equal([-2f, 3f, -2f, 0f], y);
    }

    [Fact]
    public void BackwardMatchesHandComputation()
    {
        float[] x = [1, 2, 3, -1, 0, 1];
        float[] w = [1, 0, -1, 0.5f, 0.5f, 0.5f];
        float[] dy = [1, 2, 3, 4];
        var dx = new float[6];
        Linear.BackwardInput(dy, w, dx, 2, 3, 2);
        Assert.Equal([1 + 1f, 1, -1 + 1f, 3 + 2f, 2, -3 + 2f], dx);

        var dw = Enumerable.Repeat(1f, 6).ToArray();
        var db = new float[] { 1, 1 };
        Linear.BackwardWeight(dy, x, dw, db, 2, 3, 2);
        // dw[o, k] = 1 + Σ_i dy[i, o] x[i, k]
        Assert.Equal([1 + 1 - 3f, 1 + 2f, 1 + 3 + 3f, 1 + 2 - 4f, 1 + 4f, 1 + 6 + 4f], dw);
        Assert.Equal([1 + 4f, 1 + 6f], db);
    }

    // Central differences, ε = 1e-2, tolerance 1e-3 relative (linear loss: only rounding error).
    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(3, 7, 5)]
    [InlineData(4, 33, 10)]
    public void GradientsMatchFiniteDifferences(int n, int inF, int outF)
    {
        var x = TestUtil.Random(n * inF, 1);
        var w = TestUtil.Random(outF * inF, 2);
        var b = TestUtil.Random(outF, 3);
        var r = TestUtil.Random(n * outF, 4);
        var y = new float[n * outF];
        double Loss()
        {
            Linear.Forward(x, w, b, y, n, inF, outF);
            return TestUtil.WeightedSum(y, r);
        }

        var dx = new float[x.Length];
        dx.AsSpan().Fill(float.NaN);
        Linear.BackwardInput(r, w, dx, n, inF, outF);
        var dw = new float[w.Length];
        var db = new float[b.Length];
        Linear.BackwardWeight(r, x, dw, db, n, inF, outF);

        GradCheck.Check(x, dx, Loss, 1e-3, "dx");
        GradCheck.Check(w, dw, Loss, 1e-3, "dw");
        GradCheck.Check(b, db, Loss, 1e-3, "db");
    }
}
