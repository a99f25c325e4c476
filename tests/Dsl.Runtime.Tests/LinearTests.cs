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

    // Every batch size on both sides of the small-batch kernels' limits, with feature counts that leave
    // remainders for every register block (4 outputs, 8/16/32 features): against a double-precision
    // reference, tolerance 1e-5 relative to the sum of |terms|.
    [Theory]
    [InlineData(37, 13)]
    [InlineData(64, 19)]
    [InlineData(300, 211)]
    public void EveryBatchSizeMatchesADoubleReference(int inF, int outF)
    {
        foreach (int n in new[] { 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 127, 128, 130 })
        {
            var x = TestUtil.Random(n * inF, n);
            var w = TestUtil.Random(outF * inF, 2);
            var b = TestUtil.Random(outF, 3);
            var dy = TestUtil.Random(n * outF, 4 + n);
            var y = new float[n * outF];
            Linear.Forward(x, w, b, y, n, inF, outF);
            var dx = new float[n * inF];
            dx.AsSpan().Fill(float.NaN);
            Linear.BackwardInput(dy, w, dx, n, inF, outF);
            var dw0 = TestUtil.Random(w.Length, 5);
            var dw = (float[])dw0.Clone();
            var db = new float[outF];
            Linear.BackwardWeight(dy, x, dw, db, n, inF, outF);

            AssertForwardMatchesReference(x, w, b, y, n, inF, outF);
            for (int i = 0; i < n; i++)
            {
                for (int k = 0; k < inF; k++)
                {
                    double s = 0, scale = 0;
                    for (int o = 0; o < outF; o++)
                    {
                        s += (double)dy[i * outF + o] * w[o * inF + k];
                        scale += Math.Abs((double)dy[i * outF + o] * w[o * inF + k]);
                    }

                    Assert.True(Math.Abs(dx[i * inF + k] - s) <= 1e-5 * scale, $"n={n}: dx[{i},{k}] = {dx[i * inF + k]}, expected {s}");
                }
            }

            for (int o = 0; o < outF; o++)
            {
                for (int k = 0; k < inF; k++)
                {
                    double s = dw0[o * inF + k], scale = Math.Abs(s);
                    for (int i = 0; i < n; i++)
                    {
                        s += (double)dy[i * outF + o] * x[i * inF + k];
                        scale += Math.Abs((double)dy[i * outF + o] * x[i * inF + k]);
                    }

                    Assert.True(Math.Abs(dw[o * inF + k] - s) <= 1e-5 * scale, $"n={n}: dw[{o},{k}] = {dw[o * inF + k]}, expected {s} (accumulated)");
                }
            }
        }
    }

    // The bias gradient is each column of dy summed over the samples in order (32 and 8 columns side by side in
    // vectors, then one at a time): the bits of the plain float loop, for every width of block and tail, added to
    // what dbias held or written over it, with 1 and 2 threads.
    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 7)]
    [InlineData(5, 13)]
    [InlineData(128, 32)]
    [InlineData(17, 45)]
    [InlineData(128, 512)]
    [InlineData(40, 211)]
    public void BiasGradientIsTheInOrderColumnSum(int n, int outF)
    {
        const int inF = 40;
        var x = TestUtil.Random(n * inF, 1);
        var dy = TestUtil.Random(n * outF, 2);
        var db0 = TestUtil.Random(outF, 3);
        var expectedSum = new float[outF];
        var expectedAdded = new float[outF];
        for (int o = 0; o < outF; o++)
        {
            float sum = 0f;
            for (int i = 0; i < n; i++) sum += dy[i * outF + o];
            expectedSum[o] = sum;
            expectedAdded[o] = db0[o] + sum;
        }

        var pool = WorkerPool.Shared(2);
        var scratch = new float[2 * Gemm.ScratchLength];
        foreach (var threads in new WorkerPool?[] { null, pool })
        {
            var dw = new float[outF * inF];
            var db = (float[])db0.Clone();
            Linear.BackwardWeight(dy, x, dw, db, n, inF, outF, scratch, threads);
            Assert.Equal(expectedAdded, db);
            db.AsSpan().Fill(float.NaN);
            Linear.BackwardWeight(dy, x, dw, db, n, inF, outF, scratch, threads, accumulate: false);
            Assert.Equal(expectedSum, db);
        }
    }

    // The small-batch kernels' wide register blocks (forward: 8 samples × 3 outputs below 16 samples, 4 × 6 from
    // 16; 8 samples × 24 features, 8 rows × 24 columns; with AVX-512's 32 registers) give the bits of the narrow
    // ones, edges included: shapes that leave samples past a multiple of 8 and of 4, outputs past a multiple of 3
    // and of 6, features past a multiple of 24, 16 and 8, and sub-ranges as a thread's share. On a CPU without
    // AVX-512 both sides take the narrow blocks.
    [Theory]
    [InlineData(8, 37, 13, 0, 13)]
    [InlineData(16, 50, 17, 0, 17)]
    [InlineData(35, 131, 128, 5, 70)]
    [InlineData(17, 300, 211, 16, 176)]
    [InlineData(24, 61, 10, 0, 10)]
    [InlineData(9, 784, 40, 3, 29)]
    [InlineData(63, 48, 26, 0, 26)]
    public unsafe void WideBlocksGiveTheNarrowBlocksBits(int n, int inF, int outF, int lo, int hi)
    {
        var x = TestUtil.Random(n * inF, 1);
        var w = TestUtil.Random(outF * inF, 2);
        var b = TestUtil.Random(outF, 3);
        var dy = TestUtil.Random(n * outF, 4);
        var dw0 = TestUtil.Random(w.Length, 5);
        var y = new float[n * outF];
        var yNarrow = new float[n * outF];
        var dx = new float[n * inF];
        var dxNarrow = new float[n * inF];
        var dw = (float[])dw0.Clone();
        var dwNarrow = (float[])dw0.Clone();
        fixed (float* px = x, pw = w, pb = b, pdy = dy, py = y, pyn = yNarrow, pdx = dx, pdxn = dxNarrow, pdw = dw, pdwn = dwNarrow)
        {
            LinearSmall.Forward(px, pw, pb, py, n, inF, outF, lo, hi);
            LinearSmall.ForwardNarrow(px, pw, pyn, n, inF, outF, lo, hi);
            for (int i = 0; i < n; i++)
            {
                for (int o = lo; o < hi; o++) yNarrow[i * outF + o] += b[o];
            }

            // The input gradient over all features, then over a thread's share (whole 16-column panels).
            LinearSmall.BackwardInput(pdy, pw, pdx, n, inF, outF, 0, inF);
            LinearSmall.BackwardInputNarrow(pdy, pw, pdxn, n, inF, outF, 0, inF);
            Assert.Equal(dxNarrow, dx);
            int share = Math.Min(16, inF);
            dx.AsSpan().Clear();
            dxNarrow.AsSpan().Clear();
            LinearSmall.BackwardInput(pdy, pw, pdx, n, inF, outF, share, inF);
            LinearSmall.BackwardInputNarrow(pdy, pw, pdxn, n, inF, outF, share, inF);
            Assert.Equal(dxNarrow, dx);

            // The weight gradient added to dW, then written over it (after ZeroGrad).
            LinearSmall.BackwardWeight(pdy, px, pdw, n, inF, outF, lo, hi);
            LinearSmall.BackwardWeightNarrow(pdy, px, pdwn, n, inF, outF, lo, hi);
            Assert.Equal(dwNarrow, dw);
            Assert.NotEqual(dw0, dw);
            LinearSmall.BackwardWeight(pdy, px, pdw, n, inF, outF, lo, hi, accumulate: false);
            LinearSmall.BackwardWeightNarrow(pdy, px, pdwn, n, inF, outF, lo, hi, accumulate: false);
            Assert.Equal(dwNarrow, dw);
            var fromZero = new float[dw.Length];
            fixed (float* pz = fromZero) LinearSmall.BackwardWeightNarrow(pdy, px, pz, n, inF, outF, lo, hi);
            Assert.Equal(fromZero.AsSpan(lo * inF, (hi - lo) * inF).ToArray(), dw.AsSpan(lo * inF, (hi - lo) * inF).ToArray());
        }

        Assert.Equal(yNarrow, y);
    }

    // Below the small-batch limit a sample's outputs do not depend on the batch it is in: inference of one
    // image gives the same bits alone or among others.
    [Fact]
    public void SmallBatchOutputsDoNotDependOnTheBatch()
    {
        const int inF = 83, outF = 14, n = 11;
        var x = TestUtil.Random(n * inF, 1);
        var w = TestUtil.Random(outF * inF, 2);
        var b = TestUtil.Random(outF, 3);
        var all = new float[n * outF];
        Linear.Forward(x, w, b, all, n, inF, outF);
        var one = new float[outF];
        for (int i = 0; i < n; i++)
        {
            Linear.Forward(x.AsSpan(i * inF, inF), w, b, one, 1, inF, outF);
            Assert.Equal(all.AsSpan(i * outF, outF).ToArray(), one);
        }
    }

    // The inference path with the weight packed once: against a double-precision reference on both sides of
    // PackedBatchLimit, with output counts that leave a partial 16-column panel and an input count past one
    // 256-row K block, serial and split across two threads (same bits: whole panels per thread), ReLU fused.
    [Theory]
    [InlineData(37, 13)]
    [InlineData(300, 211)]
    [InlineData(784, 40)]
    public void PackedForwardMatchesADoubleReference(int inF, int outF)
    {
        var w = TestUtil.Random(outF * inF, 2);
        var b = TestUtil.Random(outF, 3);
        var packed = new float[Linear.PackedWeightLength(inF, outF)];
        Linear.PackWeight(w, packed, inF, outF);
        // The packed GEMM splits the samples: pairs of rows at 16–33 samples, whole 6-row tiles at 130 (on 3 threads
        // 130 = 42 + 42 + 46); each thread's rows get the bias, the product and the ReLU, bit for bit as on one.
        foreach (int threads in new[] { 2, 3 })
        {
            var pool = WorkerPool.Shared(threads);
            foreach (int n in new[] { 1, 6, Linear.PackedBatchLimit, 8, 15, 16, 17, 33, 130 })
            {
                var x = TestUtil.Random(n * inF, n);
                var y = new float[n * outF];
                y.AsSpan().Fill(float.NaN);
                Linear.ForwardPacked(x, w, packed, b, y, n, inF, outF, new float[Gemm.ScratchLength], pool: null);
                var y2 = new float[n * outF];
                y2.AsSpan().Fill(float.NaN);
                Linear.ForwardPacked(x, w, packed, b, y2, n, inF, outF, new float[threads * Gemm.ScratchLength], pool, relu: true);
                AssertForwardMatchesReference(x, w, b, y, n, inF, outF);
                for (int i = 0; i < y.Length; i++) Assert.Equal(Math.Max(y[i], 0f), y2[i]);
            }
        }
    }

    // From the packed limit up, a sample's inference output has the same bits whatever batch it is in and however
    // many threads split it: 7 and 8 samples (one pass of the tall kernel), 9 and 12 (6-row tiles and edge rows),
    // 16 and 40 (split across threads in pairs of rows or whole tiles).
    [Theory]
    [InlineData(784, 512)]
    [InlineData(300, 211)]
    public void PackedForwardGivesASampleTheSameBitsInAnyBatchFromTheLimit(int inF, int outF)
    {
        var w = TestUtil.Random(outF * inF, 2);
        var b = TestUtil.Random(outF, 3);
        var packed = new float[Linear.PackedWeightLength(inF, outF)];
        Linear.PackWeight(w, packed, inF, outF);
        const int most = 40;
        var x = TestUtil.Random(most * inF, 4);
        var reference = new float[most * outF];
        Linear.ForwardPacked(x, w, packed, b, reference, most, inF, outF, new float[Gemm.ScratchLength], pool: null);
        AssertForwardMatchesReference(x, w, b, reference, most, inF, outF);
        foreach (int threads in new[] { 1, 2 })
        {
            var pool = threads == 1 ? null : WorkerPool.Shared(threads);
            foreach (int n in new[] { Linear.PackedBatchLimit, 8, 9, 12, 16, most })
            {
                var y = new float[n * outF];
                Linear.ForwardPacked(x.AsSpan(0, n * inF), w, packed, b, y, n, inF, outF, new float[threads * Gemm.ScratchLength], pool);
                Assert.True(reference.AsSpan(0, n * outF).SequenceEqual(y), $"{n} samples, {threads} threads");
            }
        }
    }

    // y against a double-precision sum, within 1e-5 of the sum of |terms| per output.
    // The narrow forward kernel on 8 lanes (the instance CPUs without AVX-512 run for every block) and on the lane
    // width of this CPU, both against a double reference, edges past multiples of 4 outputs, 2 samples and 16 features.
    [Theory]
    [InlineData(1, 37, 13)]
    [InlineData(5, 300, 7)]
    [InlineData(8, 784, 10)]
    public unsafe void The_narrow_forward_matches_a_double_reference_on_either_lane_width(int n, int inF, int outF)
    {
        var x = TestUtil.Random(n * inF, 1);
        var w = TestUtil.Random(outF * inF, 2);
        var zero = new float[outF];
        foreach (bool wide in new[] { false, true })
        {
            var y = new float[n * outF];
            fixed (float* px = x, pw = w, py = y) LinearSmall.ForwardNarrow(px, pw, py, n, inF, outF, 0, outF, wide);
            AssertForwardMatchesReference(x, w, zero, y, n, inF, outF);
        }
    }

    private static void AssertForwardMatchesReference(float[] x, float[] w, float[] b, float[] y, int n, int inF, int outF)
    {
        for (int i = 0; i < n; i++)
        {
            for (int o = 0; o < outF; o++)
            {
                double s = b[o], scale = Math.Abs(b[o]);
                for (int k = 0; k < inF; k++)
                {
                    s += (double)x[i * inF + k] * w[o * inF + k];
                    scale += Math.Abs((double)x[i * inF + k] * w[o * inF + k]);
                }

                Assert.True(Math.Abs(y[i * outF + o] - s) <= 1e-5 * scale, $"n={n}: y[{i},{o}] = {y[i * outF + o]}, expected {s}");
            }
        }
    }
}
