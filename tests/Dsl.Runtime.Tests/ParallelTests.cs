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

    private struct ChunkJob
    {
        public int Chunks, Pool;
        public int* Hits, ByThread, Busy;
        public int Mismatch;
    }

    // Records the chunk, and counts a mismatch when the chunk count is not this job's, the thread index is
    // outside the pool, or another chunk is running with the same thread index at the same time.
    private static void CountChunk(void* state, int chunk, int chunks, int thread)
    {
        var s = (ChunkJob*)state;
        if (chunks != s->Chunks || thread < 0 || thread >= s->Pool) Interlocked.Increment(ref s->Mismatch);
        else if (Interlocked.Exchange(ref s->Busy[thread], 1) != 0) Interlocked.Increment(ref s->Mismatch);
        else
        {
            Interlocked.Increment(ref s->Hits[chunk]);
            Interlocked.Increment(ref s->ByThread[thread]);
            Thread.SpinWait(50 * (chunk % 4)); // uneven chunks, so the threads interleave their claims
            Volatile.Write(ref s->Busy[thread], 0);
        }
    }

    // Chunked jobs, one after another on the same pool and between fixed-part jobs (the two protocols share the
    // workers and the signal), with chunk counts below, at and above the thread count. Each job is checked the
    // moment it returns: every chunk exactly once, with this job's count, never two at a time on one thread
    // index; and over all jobs the workers take part.
    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void Every_chunk_runs_once_with_its_own_job_before_the_call_returns(int threads)
    {
        using var pool = new WorkerPool(threads);
        int* parts = stackalloc int[threads];
        int* byThread = stackalloc int[threads];
        int* busy = stackalloc int[threads];
        new Span<int>(parts, threads).Clear();
        new Span<int>(byThread, threads).Clear();
        new Span<int>(busy, threads).Clear();
        int* hits = stackalloc int[64];
        int[] counts = [1, 2, 3, 7, 64];
        int fixedJobs = 0;
        for (int job = 0; job < 2000; job++)
        {
            int chunks = counts[job % counts.Length];
            new Span<int>(hits, 64).Clear();
            var state = new ChunkJob { Chunks = chunks, Pool = threads, Hits = hits, ByThread = byThread, Busy = busy };
            pool.RunChunks(&CountChunk, &state, chunks);
            Assert.Equal(0, state.Mismatch);
            for (int c = 0; c < 64; c++) Assert.Equal(c < chunks ? 1 : 0, hits[c]);
            if (job % 3 == 0)
            {
                pool.Run(threads == 3 ? &CountPart : &CountTwoParts, parts);
                fixedJobs++;
            }
        }

        for (int t = 0; t < threads; t++) Assert.Equal(fixedJobs, parts[t]);

        // Workers take part: a job whose two chunks each wait until both have started can only finish when a
        // second thread runs one of them (counting how many quick chunks landed on a worker, as this test did
        // before, depends on how fast the workers wake and failed on a loaded machine).
        int* rendezvous = stackalloc int[3];
        rendezvous[0] = 0; // chunks started
        rendezvous[1] = -1; // highest thread index that ran one
        rendezvous[2] = 0; // chunks that gave up waiting
        pool.RunChunks(&Rendezvous, rendezvous, 2);
        Assert.True(rendezvous[2] == 0, "the two chunks of a rendezvous job never ran at the same time: no worker took part");
        Assert.True(rendezvous[1] > 0, "both chunks of the rendezvous job ran on the caller");
    }

    // Each chunk counts itself in, then waits (up to 10 s, counted as a failure) for the other.
    private static void Rendezvous(void* state, int chunk, int chunks, int thread)
    {
        var s = (int*)state;
        Interlocked.Increment(ref s[0]);
        int seen;
        do
        {
            seen = Volatile.Read(ref s[1]);
        }
        while (thread > seen && Interlocked.CompareExchange(ref s[1], thread, seen) != seen);

        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (Volatile.Read(ref s[0]) < 2)
        {
            if (clock.ElapsedMilliseconds > 10_000)
            {
                Interlocked.Increment(ref s[2]);
                return;
            }

            Thread.Yield();
        }
    }

    private static void CountTwoParts(void* state, int part, int parts)
    {
        Interlocked.Increment(ref ((int*)state)[part]);
        Assert.True(parts == 2);
    }

    // The delegate form (an optimizer's step, the deferred gradient clear): every chunk once per job, between
    // function-pointer jobs on the same pool; a failure comes back as an AggregateException after the others ran.
    [Fact]
    public void Delegate_chunks_run_once_per_job_and_report_failures()
    {
        using var pool = new WorkerPool(2);
        var hits = new int[5];
        int chunks = 5;
        Action<int, int> body = (chunk, count) =>
        {
            Assert.Equal(chunks, count);
            Interlocked.Increment(ref hits[chunk]);
        };
        int* parts = stackalloc int[2];
        parts[0] = parts[1] = 0;
        for (int job = 0; job < 500; job++)
        {
            Array.Clear(hits);
            pool.RunChunks(body, chunks);
            Assert.Equal(new[] { 1, 1, 1, 1, 1 }, hits);
            pool.Run(&CountTwoParts, parts);
        }

        Assert.Equal(new[] { 500, 500 }, new[] { parts[0], parts[1] });
        int ran = 0;
        var e = Assert.Throws<AggregateException>(() => pool.RunChunks((chunk, count) =>
        {
            if (chunk == 2) throw new InvalidOperationException("chunk 2 failed");
            Interlocked.Increment(ref ran);
        }, 4));
        Assert.Equal("chunk 2 failed", e.InnerException!.Message);
        Assert.Equal(3, ran);
    }

    private struct SlowWorker
    {
        public int* Hits;
        public int* CallerOrder; // when not null: the chunks the caller ran, in order
        public int Done, WorkerChunks, WorkerChunk, CallerRan, TimedOut;
    }

    // A rendezvous makes the worker take part in every job: the caller's chunks do not finish until a worker has
    // claimed one. That worker's chunk then does not finish until every other chunk has: it stands for a worker
    // whose core was taken. Either wait gives up after 10 s and counts as a failure (a broken protocol, or a worker
    // that never claims), so the test fails instead of hanging.
    private static void SlowOnWorkers(void* state, int chunk, int chunks, int thread)
    {
        var s = (SlowWorker*)state;
        var wait = System.Diagnostics.Stopwatch.StartNew();
        if (thread != 0)
        {
            s->WorkerChunk = chunk;
            Interlocked.Increment(ref s->WorkerChunks);
            while (Volatile.Read(ref s->Done) < chunks - 1 && Volatile.Read(ref s->TimedOut) == 0)
            {
                if (wait.ElapsedMilliseconds > 10_000) s->TimedOut = 1;
                Thread.Sleep(1);
            }
        }
        else
        {
            while (Volatile.Read(ref s->WorkerChunks) == 0 && Volatile.Read(ref s->TimedOut) == 0)
            {
                if (wait.ElapsedMilliseconds > 10_000) s->TimedOut = 1;
                Thread.Yield();
            }

            if (s->CallerOrder != null) s->CallerOrder[s->CallerRan++] = chunk;
        }

        Interlocked.Increment(ref s->Hits[chunk]);
        Interlocked.Increment(ref s->Done);
    }

    // What chunking is for: a worker that stalls holds up only the chunk it claimed; the caller runs the other 15.
    // With fixed parts the worker would hold half of the 16 and its wait would time out.
    [Fact]
    public void A_stalled_worker_holds_only_the_chunk_it_claimed()
    {
        using var pool = new WorkerPool(2);
        int* hits = stackalloc int[16];
        for (int job = 0; job < 20; job++)
        {
            new Span<int>(hits, 16).Clear();
            var state = new SlowWorker { Hits = hits };
            pool.RunChunks(&SlowOnWorkers, &state, 16);
            Assert.True(state.TimedOut == 0, "a chunk waited 10 s: the worker never claimed one, or it held more than its own");
            Assert.Equal(Enumerable.Repeat(1, 16), new Span<int>(hits, 16).ToArray());
            Assert.Equal(1, state.WorkerChunks);
        }
    }

    // Locality across consecutive jobs: each thread starts on its own block of chunks (Share(chunks, thread, Threads)),
    // so when two layers split the same samples into the same chunks, a sample's data stays with the core that wrote
    // it. The worker's first claim is the front of its block (8 of 16), the caller runs its block in order and then
    // takes the stalled worker's unclaimed chunks from the far end (15 down to 9).
    [Fact]
    public void Each_thread_starts_on_its_own_block_and_takes_the_others_from_their_ends()
    {
        using var pool = new WorkerPool(2);
        int* order = stackalloc int[16];
        int* hits = stackalloc int[16];
        int[] expected = [0, 1, 2, 3, 4, 5, 6, 7, 15, 14, 13, 12, 11, 10, 9];
        for (int job = 0; job < 20; job++)
        {
            new Span<int>(hits, 16).Clear();
            var state = new SlowWorker { Hits = hits, CallerOrder = order, WorkerChunk = -1 };
            pool.RunChunks(&SlowOnWorkers, &state, 16);
            Assert.True(state.TimedOut == 0, "a chunk waited 10 s: the worker never claimed one, or it held more than its own");
            Assert.Equal(1, state.WorkerChunks);
            Assert.Equal(8, state.WorkerChunk);
            Assert.Equal(expected, new Span<int>(order, state.CallerRan).ToArray());
            Assert.Equal(Enumerable.Repeat(1, 16), new Span<int>(hits, 16).ToArray());
        }
    }

    private static void FailChunk(void* state, int chunk, int chunks, int thread)
    {
        if (chunk == 5) throw new InvalidOperationException("chunk 5 failed");
        Interlocked.Increment(ref *(int*)state);
    }

    // On a pool of threads and on the caller alone (a 1-thread pool): every other chunk still runs, the failure
    // comes back as an AggregateException, and the pool then runs fixed-part and chunked jobs as before.
    [Theory]
    [InlineData(2)]
    [InlineData(1)]
    public void A_failing_chunk_is_reported_after_the_others_ran_and_the_pool_keeps_working(int threads)
    {
        using var pool = new WorkerPool(threads);
        int* done = stackalloc int[1];
        *done = 0;
        var e = Assert.Throws<AggregateException>(() => pool.RunChunks(&FailChunk, done, 8));
        Assert.Equal("chunk 5 failed", e.InnerException!.Message);
        Assert.Equal(7, *done);
        Assert.Throws<ArgumentOutOfRangeException>(() => pool.RunChunks(&FailChunk, done, 0));
        int* parts = stackalloc int[2];
        parts[0] = parts[1] = 0;
        if (threads == 2)
        {
            pool.Run(&CountTwoParts, parts);
            Assert.Equal(new[] { 1, 1 }, new[] { parts[0], parts[1] });
        }

        int* hits = stackalloc int[4];
        int* byThread = stackalloc int[threads];
        int* busy = stackalloc int[threads];
        new Span<int>(hits, 4).Clear();
        new Span<int>(byThread, threads).Clear();
        new Span<int>(busy, threads).Clear();
        var state = new ChunkJob { Chunks = 4, Pool = threads, Hits = hits, ByThread = byThread, Busy = busy };
        pool.RunChunks(&CountChunk, &state, 4);
        Assert.Equal(0, state.Mismatch);
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

    [Theory]
    [InlineData(2, 1)]
    [InlineData(3, 1)]
    [InlineData(2, 3)]
    public void A_strided_convolution_on_the_image_phases_splits_with_the_same_bits(int threads, int n) =>
        // ResNet's downsampling conv: forward runs on the padded image's phases, so a batch smaller than the pool
        // splits by output channels (whole register tiles) and a larger one by samples, both equal to the serial pass.
        AssertParallelConvolutionEqualsSerial(new ConvGeometry(16, 32, 28, 28, 3, 3, 2, 2, 1, 1, 1, 1, 1), n, threads, sameWeightGradientBits: n == 1);

    private static void AssertParallelConvolutionEqualsSerial(ConvGeometry g, int n, int threads, bool sameWeightGradientBits)
    {
        var x = Random(n * g.InputLength, 1);
        var w = Random(g.WeightLength, 2);
        var b = Random(g.OutChannels, 3);
        var dy = Random(n * g.OutputLength, 4);
        var pool = WorkerPool.Shared(threads);
        var scratch = new float[threads * ConvGemm.ParallelScratchLength(g)];

        var y1 = new float[n * g.OutputLength];
        var y2 = new float[y1.Length];
        ConvGemm.Forward(x, w, b, y1, n, g);
        ConvGemm.Forward(x, w, b, y2, n, g, scratch, pool);
        Assert.Equal(y1, y2);

        var dx1 = new float[x.Length];
        var dx2 = new float[x.Length];
        ConvGemm.BackwardInput(dy, w, dx1, n, g);
        ConvGemm.BackwardInput(dy, w, dx2, n, g, scratch, pool);
        Assert.Equal(dx1, dx2);

        var dw1 = Random(w.Length, 5);
        var dw2 = (float[])dw1.Clone();
        var db1 = Random(b.Length, 6);
        var db2 = (float[])db1.Clone();
        ConvGemm.BackwardWeight(dy, x, dw1, db1, n, g);
        ConvGemm.BackwardWeight(dy, x, dw2, db2, n, g, scratch, pool);
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
    [InlineData(2, 8, 784, 512)]   // MlpBn's first layer at batch 8: chunks in whole blocks
    [InlineData(2, 8, 5000, 7)]    // a weight gradient of 7 rows: split row by row, not in 8-row blocks
    [InlineData(3, 130, 200, 150)] // the GEMM forward (from 128 samples), chunks in 16-column panels
    [InlineData(2, 130, 512, 10)]  // 10 outputs: the small kernels at any batch, the forward split by 8-sample blocks
    [InlineData(2, 200, 300, 24)]  // 24 outputs: the small kernels at any batch, split by outputs
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
