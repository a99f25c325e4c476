using Dsl.Runtime;

namespace Dsl.Runtime.Tests;

/// <summary>The worker pool, and the parallel conv and linear passes equal to their serial forms.</summary>
public sealed unsafe class ParallelTests
{
    private static void CountPart(void* state, int part, int parts)
    {
        var hits = (int*)state;
        Interlocked.Increment(ref hits[part]);
        Assert.True(parts == 3);
    }

    [Fact]
    public void Every_part_runs_once_per_job()
    {
        using var pool = new WorkerPool(3);
        int* hits = stackalloc int[3];
        for (int job = 0; job < 100; job++) pool.Run(&CountPart, hits);
        Assert.Equal(new[] { 100, 100, 100 }, new[] { hits[0], hits[1], hits[2] });
    }

    private static void Fail(void* state, int part, int parts)
    {
        if (part == 1) throw new InvalidOperationException("part 1 failed");
    }

    [Fact]
    public void A_failing_worker_is_reported_to_the_caller_and_the_pool_keeps_working()
    {
        using var pool = new WorkerPool(2);
        var e = Assert.Throws<AggregateException>(() => pool.Run(&Fail, null));
        Assert.Equal("part 1 failed", e.InnerException!.Message);
        int* hits = stackalloc int[3];
        using var three = new WorkerPool(3);
        three.Run(&CountPart, hits);
        Assert.Equal(1, hits[2]);
    }

    [Fact]
    public void Shared_pools_are_one_per_thread_count()
    {
        Assert.Same(WorkerPool.Shared(2), WorkerPool.Shared(2));
        Assert.NotSame(WorkerPool.Shared(2), WorkerPool.Shared(3));
        Assert.Equal((0, 3), WorkerPool.Share(10, 0, 3));
        Assert.Equal((6, 10), WorkerPool.Share(10, 2, 3));
    }

    private static float[] Random(int n, int seed)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(r.NextDouble() * 2 - 1)).ToArray();
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void Parallel_convolution_equals_serial(int threads) =>
        // Two groups: split by samples; the weight gradient's per-thread partial sums add in another order.
        AssertParallelConvolutionEqualsSerial(new ConvGeometry(8, 16, 12, 12, 3, 3, 1, 1, 1, 1, 1, 1, 2), n: 7, threads, sameWeightGradientBits: false);

    [Theory]
    [InlineData(2, 1, 30)]
    [InlineData(3, 1, 30)]
    [InlineData(3, 2, 30)]
    [InlineData(2, 1, 32)] // rows of whole tiles, stored straight into y
    public void A_batch_smaller_than_the_pool_splits_by_channels_with_the_same_bits(int threads, int n, int width) =>
        // Stride 1 on the padded grid: parts take whole register tiles of output channels (forward, weight
        // gradient) or input channels (input gradient), so the results equal the serial pass bit for bit.
        AssertParallelConvolutionEqualsSerial(new ConvGeometry(16, 20, 30, width, 3, 3, 1, 1, 1, 1, 1, 1, 1), n, threads, sameWeightGradientBits: true);

    private static void AssertParallelConvolutionEqualsSerial(ConvGeometry g, int n, int threads, bool sameWeightGradientBits)
    {
        var x = Random(n * g.InputLength, 1);
        var w = Random(g.WeightLength, 2);
        var b = Random(g.OutChannels, 3);
        var dy = Random(n * g.OutputLength, 4);
        var pool = WorkerPool.Shared(threads);
        var scratch = new float[threads * Conv2d.ParallelScratchLength(g)];

        var y1 = new float[n * g.OutputLength];
        var y2 = new float[y1.Length];
        Conv2d.Forward(x, w, b, y1, n, g);
        Conv2d.Forward(x, w, b, y2, n, g, scratch, pool);
        Assert.Equal(y1, y2);

        var dx1 = new float[x.Length];
        var dx2 = new float[x.Length];
        Conv2d.BackwardInput(dy, w, dx1, n, g);
        Conv2d.BackwardInput(dy, w, dx2, n, g, scratch, pool);
        Assert.Equal(dx1, dx2);

        var dw1 = Random(w.Length, 5);
        var dw2 = (float[])dw1.Clone();
        var db1 = Random(b.Length, 6);
        var db2 = (float[])db1.Clone();
        Conv2d.BackwardWeight(dy, x, dw1, db1, n, g);
        Conv2d.BackwardWeight(dy, x, dw2, db2, n, g, scratch, pool);
        if (sameWeightGradientBits)
        {
            Assert.Equal(dw1, dw2);
            Assert.Equal(db1, db2);
        }
        else
        {
            for (int i = 0; i < dw1.Length; i++) Assert.Equal(dw1[i], dw2[i], 3);
            for (int i = 0; i < db1.Length; i++) Assert.Equal(db1[i], db2[i], 3);
        }
    }

    [Theory]
    [InlineData(2, 64, 300, 211)]
    [InlineData(3, 64, 300, 211)]
    [InlineData(2, 2, 300, 211)]   // below the parallel threshold: serial in both
    [InlineData(2, 5, 785, 301)]   // the small-batch kernels, split across threads
    [InlineData(2, 24, 401, 203)]  // small-batch forward and weight gradient, GEMM input gradient
    public void Parallel_linear_equals_serial(int threads, int n, int inF, int outF)
    {
        var x = Random(n * inF, 1);
        var w = Random(outF * inF, 2);
        var b = Random(outF, 3);
        var dy = Random(n * outF, 4);
        var pool = WorkerPool.Shared(threads);
        var scratch = new float[threads * Gemm.ScratchLength];

        var y1 = new float[n * outF];
        var y2 = new float[y1.Length];
        Linear.Forward(x, w, b, y1, n, inF, outF);
        Linear.Forward(x, w, b, y2, n, inF, outF, scratch, pool);
        Assert.Equal(y1, y2);

        var dx1 = new float[x.Length];
        var dx2 = new float[x.Length];
        Linear.BackwardInput(dy, w, dx1, n, inF, outF);
        Linear.BackwardInput(dy, w, dx2, n, inF, outF, scratch, pool);
        Assert.Equal(dx1, dx2);

        var dw1 = Random(w.Length, 5);
        var dw2 = (float[])dw1.Clone();
        var db1 = Random(outF, 6);
        var db2 = (float[])db1.Clone();
        Linear.BackwardWeight(dy, x, dw1, db1, n, inF, outF);
        Linear.BackwardWeight(dy, x, dw2, db2, n, inF, outF, scratch, pool);
        Assert.Equal(dw1, dw2);
        Assert.Equal(db1, db2);
    }
}
