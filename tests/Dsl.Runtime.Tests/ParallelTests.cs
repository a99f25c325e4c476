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

    private struct ChunkHits
    {
        public int* Hits, Threads;
        public int Pool;
    }

    private static void CountChunk(void* state, int chunk, int chunks, int thread)
    {
        var s = (ChunkHits*)state;
        Interlocked.Increment(ref s->Hits[chunk]);
        if (thread < 0 || thread >= s->Pool) throw new InvalidOperationException($"thread {thread} outside the pool");
        Interlocked.Increment(ref s->Threads[thread]);
    }

    // Chunked jobs interleaved with fixed-part jobs (the two protocols share the workers and the signal), with
    // chunk counts below, at and above the thread count: every chunk once per job, every part once per job.
    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void Every_chunk_runs_once_per_job_between_fixed_part_jobs(int threads)
    {
        using var pool = new WorkerPool(threads);
        int* hits = stackalloc int[64];
        int* byThread = stackalloc int[threads];
        int* parts = stackalloc int[3];
        var state = new ChunkHits { Hits = hits, Threads = byThread, Pool = threads };
        int[] counts = [1, 2, 3, 7, 64];
        var expected = new int[64];
        for (int job = 0; job < 2000; job++)
        {
            int chunks = counts[job % counts.Length];
            pool.RunChunks(&CountChunk, &state, chunks);
            for (int c = 0; c < chunks; c++) expected[c]++;
            if (job % 3 == 0 && threads == 3) pool.Run(&CountPart, parts);
        }

        Assert.Equal(expected, new Span<int>(hits, 64).ToArray());
        int total = 0;
        for (int t = 0; t < threads; t++) total += byThread[t];
        Assert.Equal(expected.Sum(), total);
        if (threads == 3) Assert.Equal(new[] { 667, 667, 667 }, new[] { parts[0], parts[1], parts[2] });
    }

    private struct SlowWorker
    {
        public int* Hits;
        public int WorkerChunks;
    }

    // Chunks run on a worker thread take 300 ms; on the caller, no time.
    private static void SlowOnWorkers(void* state, int chunk, int chunks, int thread)
    {
        var s = (SlowWorker*)state;
        Interlocked.Increment(ref s->Hits[chunk]);
        if (thread == 0) return;
        Interlocked.Increment(ref s->WorkerChunks);
        Thread.Sleep(300);
    }

    // What chunking is for: a worker that is slow (here it sleeps; on a shared machine its core is taken) holds
    // up only the chunk it claimed. With fixed parts it would run half of the 16; here it runs at most one.
    [Fact]
    public void A_slow_worker_runs_at_most_the_chunk_it_claimed()
    {
        using var pool = new WorkerPool(2);
        int* hits = stackalloc int[16];
        var state = new SlowWorker { Hits = hits };
        pool.RunChunks(&SlowOnWorkers, &state, 16);
        Assert.Equal(Enumerable.Repeat(1, 16), new Span<int>(hits, 16).ToArray());
        Assert.InRange(state.WorkerChunks, 0, 1);
    }

    private static void FailChunk(void* state, int chunk, int chunks, int thread)
    {
        if (chunk == 5) throw new InvalidOperationException("chunk 5 failed");
        Interlocked.Increment(ref *(int*)state);
    }

    [Fact]
    public void A_failing_chunk_is_reported_after_the_others_ran_and_the_pool_keeps_working()
    {
        using var pool = new WorkerPool(2);
        int* done = stackalloc int[1];
        var e = Assert.Throws<AggregateException>(() => pool.RunChunks(&FailChunk, done, 8));
        Assert.Equal("chunk 5 failed", e.InnerException!.Message);
        Assert.Equal(7, *done);
        Assert.Throws<ArgumentOutOfRangeException>(() => pool.RunChunks(&FailChunk, done, 0));
        int* hits = stackalloc int[4];
        int* byThread = stackalloc int[2];
        var state = new ChunkHits { Hits = hits, Threads = byThread, Pool = 2 };
        pool.RunChunks(&CountChunk, &state, 4);
        Assert.Equal(new[] { 1, 1, 1, 1 }, new Span<int>(hits, 4).ToArray());
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
    [InlineData(2, 8, 784, 512)]   // MlpBn's first layer at batch 8: more chunks than threads, in whole blocks
    [InlineData(3, 130, 200, 150)] // the GEMM forward (from 128 samples), chunks in 16-column panels
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
