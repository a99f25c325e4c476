// Fully connected layer kernels: y = x·Wᵀ + b and its gradients.
using System.ComponentModel;
using System.Diagnostics;
using System.Runtime.Intrinsics;

namespace Dsl.Runtime.Kernels;

/// <summary>Fully connected layer with PyTorch's <c>nn.Linear</c> layout: weight <c>[outFeatures, inFeatures]</c>.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static unsafe class Linear
{
    /// <summary>Computes <c>y[i, o] = bias[o] + Σ_k x[i, k]·w[o, k]</c>.</summary>
    /// <param name="x">Input <c>[n, inFeatures]</c>.</param>
    /// <param name="w">Weight <c>[outFeatures, inFeatures]</c>.</param>
    /// <param name="bias">Bias <c>[outFeatures]</c>, or empty for no bias.</param>
    /// <param name="y">Output <c>[n, outFeatures]</c>; overwritten.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="inFeatures">Input features.</param>
    /// <param name="outFeatures">Output features.</param>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y, int n, int inFeatures, int outFeatures) =>
        Forward(x, w, bias, y, n, inFeatures, outFeatures, Workspace.Get(Gemm.ScratchLength));

    /// <summary>Computes <c>y = x·Wᵀ + bias</c> with caller-provided scratch.</summary>
    /// <param name="x">Input <c>[n, inFeatures]</c>.</param>
    /// <param name="w">Weight <c>[outFeatures, inFeatures]</c>.</param>
    /// <param name="bias">Bias <c>[outFeatures]</c>, or empty.</param>
    /// <param name="y">Output <c>[n, outFeatures]</c>; overwritten.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="inFeatures">Input features.</param>
    /// <param name="outFeatures">Output features.</param>
    /// <param name="scratch">At least <see cref="Gemm.ScratchLength"/> floats.</param>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y, int n, int inFeatures, int outFeatures, Span<float> scratch)
    {
        Debug.Assert(x.Length >= n * inFeatures, "x too short");
        Debug.Assert(w.Length >= outFeatures * inFeatures, "w too short");
        Debug.Assert(bias.IsEmpty || bias.Length >= outFeatures, "bias too short");
        Debug.Assert(y.Length >= n * outFeatures, "y too short");

        if (LinearSmall.TakesForward(n, outFeatures))
        {
            fixed (float* px = x, pw = w, pb = bias, py = y)
                LinearSmall.Forward(px, pw, bias.IsEmpty ? null : pb, py, n, inFeatures, outFeatures, 0, outFeatures);
            return;
        }

        // y[n × out] = x[n × in] · Wᵀ[in × out] (+ bias, preloaded into y)
        for (int i = 0; i < n; i++)
        {
            var row = y.Slice(i * outFeatures, outFeatures);
            if (bias.IsEmpty) row.Clear();
            else bias.Slice(0, outFeatures).CopyTo(row);
        }

        Gemm.Multiply(n, outFeatures, inFeatures, x, inFeatures, 1, w, 1, inFeatures, y, outFeatures, accumulate: true, scratch);
    }

    /// <summary>Floats of a weight packed by <see cref="PackWeight"/>.</summary>
    /// <param name="inFeatures">Input features.</param>
    /// <param name="outFeatures">Output features.</param>
    /// <returns>The packed length.</returns>
    public static int PackedWeightLength(int inFeatures, int outFeatures) => Dsl.Contract.PackedLengths.LinearWeight(inFeatures, outFeatures);

    /// <summary>
    /// Packs <c>Wᵀ</c> once as the GEMM's B operand (what <see cref="Forward(ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, int, int, int, Span{float})"/>
    /// does per call from batch 128), for an inference whose weights only change when the model refolds.
    /// </summary>
    /// <param name="w">Weight <c>[outFeatures, inFeatures]</c>.</param>
    /// <param name="packed">At least <see cref="PackedWeightLength"/> floats.</param>
    /// <param name="inFeatures">Input features.</param>
    /// <param name="outFeatures">Output features.</param>
    public static void PackWeight(ReadOnlySpan<float> w, Span<float> packed, int inFeatures, int outFeatures) =>
        Gemm.PackB(w, 1, inFeatures, inFeatures, outFeatures, packed);

    /// <summary>
    /// The smallest batch that may take the packed weight in <see cref="ForwardPacked(ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, int, int, int, Span{float}, WorkerPool?, bool)"/>
    /// (a model packs its weights when its largest batch reaches it): 7 samples where AVX-512 is present
    /// (<see cref="PackedBatch"/>), 16 without; smaller batches take the dot products.
    /// </summary>
    /// <remarks>
    /// With AVX-512, 7 or 8 samples run in one pass over the packed weight (<c>Gemm.KernelTallWide</c>). One thread on
    /// the reference machine, µs per call, dot products against packed: 784 → 512 at 8 samples 43.1 / 34.8, 9: 64.6 /
    /// 41.1, 12: 84.3 / 51.6, 15: 113.6 / 70.4; 512 → 512 at 8: 26.9 / 23.8; 3136 → 128 at 8: 52.2 / 42.9. Below 7
    /// the packed weight wins on some layers (784 → 512 at 4 samples: 38.8 / 23.4) and loses on others (3136 → 128 at
    /// 1 and 2 samples: 20.7 / 25.1 and 25.7 / 27.3; on two threads 11.4 / 18.4 and 13.8 / 23.2), so those stay on the
    /// dot products. Without AVX-512 (not measured since the narrow kernels were tuned) the limit stays 16.
    /// </remarks>
    public const int PackedBatchLimit = 7;

    /// <summary>Whether an inference forward of <paramref name="n"/> samples takes the packed weight (given more than 32 outputs, or no AVX-512).</summary>
    /// <param name="n">Batch size.</param>
    /// <returns>True from <see cref="PackedBatchLimit"/> samples with AVX-512, from 16 without.</returns>
    internal static bool PackedBatch(int n) => n >= (Gemm.Wide ? PackedBatchLimit : 16);

    /// <summary>
    /// <see cref="ForwardPacked(ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, int, int, int, Span{float}, WorkerPool?, bool)"/>
    /// with <paramref name="activation"/> applied over the output right after the kernel has written it.
    /// </summary>
    /// <param name="x">Input.</param><param name="w">Weight.</param><param name="packed">The same weight, packed.</param><param name="bias">Bias, or empty.</param>
    /// <param name="y">Output; overwritten.</param><param name="n">Batch size.</param><param name="inFeatures">Input features.</param><param name="outFeatures">Output features.</param>
    /// <param name="scratch">Per-thread regions of equal length (at least <see cref="Gemm.ScratchLength"/> each), one per pool thread.</param>
    /// <param name="pool">The pool, or null.</param>
    /// <param name="activation">The activation the layer's output goes through.</param>
    public static void ForwardPacked(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> packed, ReadOnlySpan<float> bias, Span<float> y, int n, int inFeatures, int outFeatures,
        Span<float> scratch, WorkerPool? pool, FusedActivation activation)
    {
        ForwardPacked(x, w, packed, bias, y, n, inFeatures, outFeatures, scratch, pool, relu: activation == FusedActivation.Relu);
        if (activation is not (FusedActivation.None or FusedActivation.Relu)) Activations.Apply(activation, y.Slice(0, n * outFeatures));
    }

    /// <summary>
    /// Inference forward with a graph's residual add and the activation after it: <c>y = act(x·Wᵀ + bias + residual)</c>,
    /// in the one pass over the output that the packed path makes for its activation anyway (a linear layer's
    /// output is one short row per sample), instead of an add pass and an activation pass.
    /// </summary>
    /// <param name="x">Input.</param><param name="w">Weight.</param><param name="packed">The same weight, packed.</param><param name="bias">Bias, or empty.</param>
    /// <param name="y">Output; overwritten.</param><param name="n">Batch size.</param><param name="inFeatures">Input features.</param><param name="outFeatures">Output features.</param>
    /// <param name="scratch">Per-thread regions of equal length (at least <see cref="Gemm.ScratchLength"/> each), one per pool thread.</param>
    /// <param name="pool">The pool, or null.</param>
    /// <param name="activation">The activation after the add.</param>
    /// <param name="residual">The add's other input, <c>[n, outFeatures]</c>.</param>
    public static void ForwardPacked(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> packed, ReadOnlySpan<float> bias, Span<float> y, int n, int inFeatures, int outFeatures,
        Span<float> scratch, WorkerPool? pool, FusedActivation activation, ReadOnlySpan<float> residual)
    {
        ResidualEpilogue.Check(residual, n, outFeatures);
        ForwardPacked(x, w, packed, bias, y, n, inFeatures, outFeatures, scratch, pool, relu: false);
        ResidualEpilogue.Apply(y.Slice(0, n * outFeatures), residual.Slice(0, n * outFeatures), activation);
    }

    /// <summary>
    /// Inference forward with the weight also packed beforehand (<see cref="PackWeight"/>): from
    /// <see cref="PackedBatchLimit"/> samples (<see cref="PackedBatch"/>) the GEMM reads the packed weight and packs only x; below it, and
    /// for a layer of at most 32 outputs where AVX-512 is present (the last layer of a classifier), the dot
    /// products read <paramref name="w"/> in place. The packed GEMM splits the samples across <paramref name="pool"/>,
    /// the dot products the output features (a layer of at most 16 outputs: samples); ReLU applied when
    /// <paramref name="relu"/>, on each thread over its own part.
    /// </summary>
    /// <param name="x">Input.</param><param name="w">Weight.</param><param name="packed">The same weight, packed.</param><param name="bias">Bias, or empty.</param>
    /// <param name="y">Output; overwritten.</param><param name="n">Batch size.</param><param name="inFeatures">Input features.</param><param name="outFeatures">Output features.</param>
    /// <param name="scratch">Per-thread regions of equal length (at least <see cref="Gemm.ScratchLength"/> each), one per pool thread.</param>
    /// <param name="pool">The pool, or null.</param>
    /// <param name="relu">Apply ReLU to the output.</param>
    public static void ForwardPacked(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> packed, ReadOnlySpan<float> bias, Span<float> y, int n, int inFeatures, int outFeatures,
        Span<float> scratch, WorkerPool? pool, bool relu = false)
    {
        if (!PackedBatch(n) || outFeatures <= LinearSmall.NarrowOutputs)
        {
            Forward(x, w, bias, y, n, inFeatures, outFeatures, scratch, pool, relu);
            return;
        }

        Debug.Assert(packed.Length >= PackedWeightLength(inFeatures, outFeatures), "packed too short");
        fixed (float* px = x, pp = packed, pb = bias, py = y, ps = scratch)
        {
            var job = new Job { A = px, W = pp, Bias = pb, BiasLength = bias.Length, C = py, Scratch = ps, N = n, In = inFeatures, Out = outFeatures, ScratchStride = scratch.Length / (pool?.Threads ?? 1), Relu = relu };
            if (!Parallel(pool, n, inFeatures, outFeatures, splitPanels: n / 2 /* pairs of samples */)) PackedPart(&job, 0, 1, 0);
            else pool!.RunChunks(&PackedPart, &job, Chunks(pool));
        }
    }

    // A chunk is a range of samples (rows of x and y), each against all of the packed weight, with the bias before
    // and the ReLU after the product on the same thread. Splitting the output features instead (the first way)
    // had every thread pack all of x and leave its half of the ReLU pass to the caller: two threads, alternating
    // builds, MlpBn 476–484 → 448–452 µs at batch 128, 110–112 → 103–105 µs at batch 16; FmnistBn's 3136 → 128
    // layer too (batch 32 912–947 → 874–898 µs). Rows go in whole 6-row micro-tiles where each thread gets at least
    // four of them, in pairs below that (16 samples: 8 and 8, not 12 and 4): the edge-row kernels give the same bits.
    private static void PackedPart(void* state, int chunk, int chunks, int thread)
    {
        var job = (Job*)state;
        int n = job->N, outF = job->Out;
        var (r0, r1) = Range(n, n >= 4 * Gemm.MR * chunks ? Gemm.MR : 2, chunk, chunks);
        if (r0 == r1) return;
        var rows = new Span<float>(job->C + (long)r0 * outF, (r1 - r0) * outF);
        if (job->BiasLength == 0) rows.Clear();
        else
        {
            var bias = new ReadOnlySpan<float>(job->Bias, outF);
            for (int i = 0; i < r1 - r0; i++) bias.CopyTo(rows.Slice(i * outF, outF));
        }

        Gemm.MultiplyPacked(r1 - r0, outF, 0, outF, job->In, job->A + (long)r0 * job->In, job->In, 1, job->W, job->C + (long)r0 * outF, outF, accumulate: true, job->Scratch + (long)thread * job->ScratchStride);
        if (job->Relu) Activations.ReluForward(rows, rows);
    }

    /// <summary>Gradient with respect to the input: <c>dx = dy·W</c>.</summary>
    /// <param name="dy">Output gradient <c>[n, outFeatures]</c>.</param>
    /// <param name="w">Weight <c>[outFeatures, inFeatures]</c>.</param>
    /// <param name="dx">Input gradient <c>[n, inFeatures]</c>; overwritten.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="inFeatures">Input features.</param>
    /// <param name="outFeatures">Output features.</param>
    public static void BackwardInput(ReadOnlySpan<float> dy, ReadOnlySpan<float> w, Span<float> dx, int n, int inFeatures, int outFeatures) =>
        BackwardInput(dy, w, dx, n, inFeatures, outFeatures, Workspace.Get(Gemm.ScratchLength));

    /// <summary>Input gradient <c>dx = dy·W</c> with caller-provided scratch; <paramref name="dx"/> is overwritten.</summary>
    /// <param name="dy">Output gradient <c>[n, outFeatures]</c>.</param>
    /// <param name="w">Weight <c>[outFeatures, inFeatures]</c>.</param>
    /// <param name="dx">Input gradient <c>[n, inFeatures]</c>; overwritten.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="inFeatures">Input features.</param>
    /// <param name="outFeatures">Output features.</param>
    /// <param name="scratch">At least <see cref="Gemm.ScratchLength"/> floats.</param>
    public static void BackwardInput(ReadOnlySpan<float> dy, ReadOnlySpan<float> w, Span<float> dx, int n, int inFeatures, int outFeatures, Span<float> scratch)
    {
        Debug.Assert(dy.Length >= n * outFeatures, "dy too short");
        Debug.Assert(w.Length >= outFeatures * inFeatures, "w too short");
        Debug.Assert(dx.Length >= n * inFeatures, "dx too short");

        if (LinearSmall.TakesBackwardInput(n, outFeatures))
        {
            fixed (float* pdy = dy, pw = w, pdx = dx)
                LinearSmall.BackwardInput(pdy, pw, pdx, n, inFeatures, outFeatures, 0, inFeatures);
            return;
        }

        // dx[n × in] = dy[n × out] · W[out × in]
        Gemm.Multiply(n, inFeatures, outFeatures, dy, outFeatures, 1, w, inFeatures, 1, dx, inFeatures, accumulate: false, scratch);
    }

    /// <summary>Gradients with respect to weight and bias, accumulated: <c>dw += dyᵀ·x</c>, <c>dbias += Σ_i dy[i]</c>.</summary>
    /// <param name="dy">Output gradient <c>[n, outFeatures]</c>.</param>
    /// <param name="x">Forward input <c>[n, inFeatures]</c>.</param>
    /// <param name="dw">Weight gradient <c>[outFeatures, inFeatures]</c>; accumulated into.</param>
    /// <param name="dbias">Bias gradient <c>[outFeatures]</c>, accumulated into; empty when the layer has no bias.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="inFeatures">Input features.</param>
    /// <param name="outFeatures">Output features.</param>
    public static void BackwardWeight(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dw, Span<float> dbias, int n, int inFeatures, int outFeatures) =>
        BackwardWeight(dy, x, dw, dbias, n, inFeatures, outFeatures, Workspace.Get(Gemm.ScratchLength));

    /// <summary>Weight and bias gradients with caller-provided scratch: <c>dw += dyᵀ·x</c>, <c>dbias += Σ dy</c>.</summary>
    /// <param name="dy">Output gradient <c>[n, outFeatures]</c>.</param>
    /// <param name="x">Forward input <c>[n, inFeatures]</c>.</param>
    /// <param name="dw">Weight gradient; accumulated.</param>
    /// <param name="dbias">Bias gradient, or empty; accumulated.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="inFeatures">Input features.</param>
    /// <param name="outFeatures">Output features.</param>
    /// <param name="scratch">At least <see cref="Gemm.ScratchLength"/> floats.</param>
    /// <param name="accumulate">Add to <paramref name="dw"/> and <paramref name="dbias"/>; false writes them (their old values are not read), with the bits of adding to zeros.</param>
    public static void BackwardWeight(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dw, Span<float> dbias, int n, int inFeatures, int outFeatures, Span<float> scratch, bool accumulate = true)
    {
        Debug.Assert(dy.Length >= n * outFeatures, "dy too short");
        Debug.Assert(x.Length >= n * inFeatures, "x too short");
        Debug.Assert(dw.Length >= outFeatures * inFeatures, "dw too short");
        Debug.Assert(dbias.IsEmpty || dbias.Length >= outFeatures, "dbias too short");

        if (n < LinearSmall.WeightGradientBatchLimit)
        {
            fixed (float* pdy = dy, px = x, pdw = dw)
                LinearSmall.BackwardWeight(pdy, px, pdw, n, inFeatures, outFeatures, 0, outFeatures, accumulate);
        }
        else
        {
            // dW[out × in] += dyᵀ[out × n] · x[n × in]
            Gemm.Multiply(outFeatures, inFeatures, n, dy, 1, outFeatures, x, inFeatures, 1, dw, inFeatures, accumulate, scratch);
        }

        BiasGradient(dy, dbias, n, outFeatures, accumulate);
    }

    // dbias[o] (+)= Σ_i dy[i, o], summed over the samples in order. 32 columns at a time down the rows, in
    // four vectors: each column is still one chain of additions in sample order (the bits of the scalar loop),
    // but 32 chains run side by side. One column at a time, down a strided column, was 125 µs for MlpBn's
    // 128 × 512 (a 128-addition latency chain per column); this is a few µs.
    private static void BiasGradient(ReadOnlySpan<float> dy, Span<float> dbias, int n, int outFeatures, bool accumulate)
    {
        if (dbias.IsEmpty) return;
        Debug.Assert(dbias.Length >= outFeatures, "dbias too short");
        fixed (float* pdy = dy, pdb = dbias)
        {
            int o = 0;
            for (; o + 32 <= outFeatures; o += 32)
            {
                Vector256<float> s0 = default, s1 = default, s2 = default, s3 = default;
                float* row = pdy + o;
                for (int i = 0; i < n; i++, row += outFeatures)
                {
                    s0 += Vector256.Load(row);
                    s1 += Vector256.Load(row + 8);
                    s2 += Vector256.Load(row + 16);
                    s3 += Vector256.Load(row + 24);
                }

                if (accumulate)
                {
                    s0 = Vector256.Load(pdb + o) + s0;
                    s1 = Vector256.Load(pdb + o + 8) + s1;
                    s2 = Vector256.Load(pdb + o + 16) + s2;
                    s3 = Vector256.Load(pdb + o + 24) + s3;
                }

                Vector256.Store(s0, pdb + o);
                Vector256.Store(s1, pdb + o + 8);
                Vector256.Store(s2, pdb + o + 16);
                Vector256.Store(s3, pdb + o + 24);
            }

            for (; o + 8 <= outFeatures; o += 8)
            {
                Vector256<float> s0 = default;
                float* row = pdy + o;
                for (int i = 0; i < n; i++, row += outFeatures) s0 += Vector256.Load(row);
                if (accumulate) s0 = Vector256.Load(pdb + o) + s0;
                Vector256.Store(s0, pdb + o);
            }

            for (; o < outFeatures; o++)
            {
                float sum = 0f;
                for (int i = 0; i < n; i++) sum += pdy[(long)i * outFeatures + o];
                pdb[o] = accumulate ? pdb[o] + sum : sum;
            }
        }
    }

    // Below this many multiply-adds a pass stays on the caller: waking workers costs microseconds. A single
    // sample's 784 → 512 layer (2^18.6) already halves on two cores: the weight streams from two caches.
    private const long ParallelThreshold = 1L << 18;

    // Parallel when the pool has threads, the pass has the work, and the split dimension (columns of the output
    // or of the input gradient, in whole 16-column panels; rows of the weight gradient) gives every part a share.
    private static bool Parallel(WorkerPool? pool, int n, int inFeatures, int outFeatures, int splitPanels) =>
        pool is { Threads: > 1 } && (long)n * inFeatures * outFeatures >= ParallelThreshold && splitPanels >= 2;

    private static int Panels(int columns) => (columns + Gemm.NR - 1) / Gemm.NR;

    // A parallel pass runs as one chunk per thread handed to whichever thread claims it (WorkerPool.RunChunks):
    // a worker that is late to start (asleep, or its core taken) leaves its chunk to the caller instead of holding
    // the caller up. Two to four chunks per thread, in rounds of halving size, measured no faster on MlpBn at
    // batches 8 to 128 on average and 5–8% slower in quiet moments: each chunk reads (the GEMM: packs) x again.
    private static int Chunks(WorkerPool pool) => pool.Threads;

    // Columns (or rows) per unit of a split: whole blocks of the small-batch kernels (3 outputs for the forward,
    // 8 features for the input gradient, 8 rows for the weight gradient: 784 features split 392/392, not 384/400 as
    // in 24-feature blocks), the GEMM's 16-column panels and 6-row micro-tiles.
    private const int SmallForwardUnit = 3, SmallInputUnit = 8, SmallWeightUnit = 8;

    // Samples per unit when a narrow forward splits the batch: the small kernels' 8-sample blocks.
    private const int SampleUnit = 8;

    // A chunk's columns: whole units, the last one cut at `count`; they depend only on the chunk, never on the
    // thread that runs it.
    private static (int Lo, int Hi) Range(int count, int unit, int chunk, int chunks)
    {
        var (lo, hi) = WorkerPool.Share((count + unit - 1) / unit, chunk, chunks);
        return (Math.Min(lo * unit, count), Math.Min(hi * unit, count));
    }

    private struct Job
    {
        public float* A, W, Bias, C, Scratch;
        public int BiasLength, N, In, Out, ScratchStride;
        public bool Accumulate, Relu;
    }

    /// <summary>Forward with the output features split across <paramref name="pool"/> (no reduction needed).</summary>
    /// <param name="x">Input.</param><param name="w">Weight.</param><param name="bias">Bias, or empty.</param><param name="y">Output; overwritten.</param>
    /// <param name="n">Batch size.</param><param name="inFeatures">Input features.</param><param name="outFeatures">Output features.</param>
    /// <param name="scratch">Per-thread regions of equal length (at least <see cref="Gemm.ScratchLength"/> each), one per pool thread.</param>
    /// <param name="pool">The pool, or null.</param>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y, int n, int inFeatures, int outFeatures, Span<float> scratch, WorkerPool? pool) =>
        Forward(x, w, bias, y, n, inFeatures, outFeatures, scratch, pool, relu: false);

    /// <summary>Forward across <paramref name="pool"/>, then ReLU when <paramref name="relu"/> (an inference ReLU fused into the layer: no separate layer pass).</summary>
    /// <param name="x">Input.</param><param name="w">Weight.</param><param name="bias">Bias, or empty.</param><param name="y">Output; overwritten.</param>
    /// <param name="n">Batch size.</param><param name="inFeatures">Input features.</param><param name="outFeatures">Output features.</param>
    /// <param name="scratch">Per-thread regions of equal length (at least <see cref="Gemm.ScratchLength"/> each), one per pool thread.</param>
    /// <param name="pool">The pool, or null.</param>
    /// <param name="relu">Apply ReLU to the output.</param>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y, int n, int inFeatures, int outFeatures, Span<float> scratch, WorkerPool? pool, bool relu)
    {
        // Too few outputs for two 16-column panels: split the samples instead, in blocks of 8 (the small kernels'
        // blocks, so the bits do not change), when the batch has two.
        bool bySamples = Panels(outFeatures) < 2 && LinearSmall.TakesForward(n, outFeatures);
        if (!Parallel(pool, n, inFeatures, outFeatures, bySamples ? (n + SampleUnit - 1) / SampleUnit : Panels(outFeatures)))
        {
            Forward(x, w, bias, y, n, inFeatures, outFeatures, scratch.Slice(0, scratch.Length / (pool?.Threads ?? 1)));
        }
        else
        {
            fixed (float* px = x, pw = w, pb = bias, py = y, ps = scratch)
            {
                var job = new Job { A = px, W = pw, Bias = pb, BiasLength = bias.Length, C = py, Scratch = ps, N = n, In = inFeatures, Out = outFeatures, ScratchStride = scratch.Length / pool!.Threads };
                if (bySamples) pool.RunChunks(&ForwardSamples, &job, Chunks(pool));
                else pool.RunChunks(&ForwardPart, &job, Chunks(pool));
            }
        }

        if (relu)
        {
            var output = y.Slice(0, n * outFeatures);
            Activations.ReluForward(output, output);
        }
    }

    private static void ForwardSamples(void* state, int chunk, int chunks, int thread)
    {
        var job = (Job*)state;
        int inF = job->In, outF = job->Out;
        var (lo, hi) = Range(job->N, SampleUnit, chunk, chunks);
        if (lo < hi) LinearSmall.Forward(job->A + (long)lo * inF, job->W, job->BiasLength == 0 ? null : job->Bias, job->C + (long)lo * outF, hi - lo, inF, outF, 0, outF);
    }

    private static void ForwardPart(void* state, int chunk, int chunks, int thread)
    {
        var job = (Job*)state;
        int n = job->N, inF = job->In, outF = job->Out;
        if (LinearSmall.TakesForward(n, outF))
        {
            var (from, to) = Range(outF, SmallForwardUnit, chunk, chunks);
            if (from < to) LinearSmall.Forward(job->A, job->W, job->BiasLength == 0 ? null : job->Bias, job->C, n, inF, outF, from, to);
            return;
        }

        // Whole 16-column panels per chunk, so no two chunks write the same GEMM tile.
        var (lo, hi) = Range(outF, Gemm.NR, chunk, chunks);
        if (lo == hi) return;
        int width = hi - lo;

        var y = new Span<float>(job->C, n * outF);
        for (int i = 0; i < n; i++)
        {
            var row = y.Slice(i * outF + lo, width);
            if (job->BiasLength == 0) row.Clear();
            else new ReadOnlySpan<float>(job->Bias + lo, width).CopyTo(row);
        }

        Gemm.Multiply(n, width, inF, new ReadOnlySpan<float>(job->A, n * inF), inF, 1, new ReadOnlySpan<float>(job->W + (long)lo * inF, width * inF), 1, inF,
            y.Slice(lo), outF, accumulate: true, new Span<float>(job->Scratch + (long)thread * job->ScratchStride, Gemm.ScratchLength));
    }

    /// <summary>Input gradient with the input features split across <paramref name="pool"/>.</summary>
    /// <param name="dy">Output gradient.</param><param name="w">Weight.</param><param name="dx">Input gradient; overwritten.</param>
    /// <param name="n">Batch size.</param><param name="inFeatures">Input features.</param><param name="outFeatures">Output features.</param>
    /// <param name="scratch">Per-thread regions, one per pool thread.</param><param name="pool">The pool, or null.</param>
    public static void BackwardInput(ReadOnlySpan<float> dy, ReadOnlySpan<float> w, Span<float> dx, int n, int inFeatures, int outFeatures, Span<float> scratch, WorkerPool? pool)
    {
        if (!Parallel(pool, n, inFeatures, outFeatures, Panels(inFeatures)))
        {
            BackwardInput(dy, w, dx, n, inFeatures, outFeatures, scratch.Slice(0, scratch.Length / (pool?.Threads ?? 1)));
            return;
        }

        fixed (float* pdy = dy, pw = w, pdx = dx, ps = scratch)
        {
            var job = new Job { A = pdy, W = pw, C = pdx, Scratch = ps, N = n, In = inFeatures, Out = outFeatures, ScratchStride = scratch.Length / pool!.Threads };
            pool.RunChunks(&BackwardInputPart, &job, Chunks(pool));
        }
    }

    private static void BackwardInputPart(void* state, int chunk, int chunks, int thread)
    {
        var job = (Job*)state;
        int n = job->N, inF = job->In, outF = job->Out;
        bool small = LinearSmall.TakesBackwardInput(n, outF);
        var (lo, hi) = Range(inF, small ? SmallInputUnit : Gemm.NR, chunk, chunks);
        if (lo == hi) return;
        if (small)
        {
            LinearSmall.BackwardInput(job->A, job->W, job->C, n, inF, outF, lo, hi);
            return;
        }

        // dx[:, lo:hi] = dy · W[:, lo:hi]
        Gemm.Multiply(n, hi - lo, outF, new ReadOnlySpan<float>(job->A, n * outF), outF, 1, new ReadOnlySpan<float>(job->W + lo, outF * inF - lo), inF, 1,
            new Span<float>(job->C + lo, n * inF - lo), inF, accumulate: false, new Span<float>(job->Scratch + (long)thread * job->ScratchStride, Gemm.ScratchLength));
    }

    /// <summary>Weight and bias gradients with the output features (rows of dW) split across <paramref name="pool"/>.</summary>
    /// <param name="dy">Output gradient.</param><param name="x">Forward input.</param><param name="dw">Weight gradient; accumulated.</param>
    /// <param name="dbias">Bias gradient, or empty; accumulated.</param><param name="n">Batch size.</param>
    /// <param name="inFeatures">Input features.</param><param name="outFeatures">Output features.</param>
    /// <param name="scratch">Per-thread regions, one per pool thread.</param><param name="pool">The pool, or null.</param>
    /// <param name="accumulate">Add to the gradients; false writes them (after <see cref="CompiledModel.ZeroGrad"/>: no pass clears them first).</param>
    public static void BackwardWeight(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dw, Span<float> dbias, int n, int inFeatures, int outFeatures, Span<float> scratch, WorkerPool? pool,
        bool accumulate = true)
    {
        if (!Parallel(pool, n, inFeatures, outFeatures, outFeatures))
        {
            BackwardWeight(dy, x, dw, dbias, n, inFeatures, outFeatures, scratch.Slice(0, scratch.Length / (pool?.Threads ?? 1)), accumulate);
            return;
        }

        fixed (float* pdy = dy, px = x, pdw = dw, ps = scratch)
        {
            var job = new Job { A = pdy, W = px, C = pdw, Scratch = ps, N = n, In = inFeatures, Out = outFeatures, ScratchStride = scratch.Length / pool!.Threads, Accumulate = accumulate };
            pool.RunChunks(&BackwardWeightPart, &job, Chunks(pool));
        }

        BiasGradient(dy, dbias, n, outFeatures, accumulate);
    }

    private static void BackwardWeightPart(void* state, int chunk, int chunks, int thread)
    {
        var job = (Job*)state;
        int n = job->N, inF = job->In, outF = job->Out;
        bool small = n < LinearSmall.WeightGradientBatchLimit;
        // Rows in whole blocks when there are enough for every chunk; a layer with few outputs splits them singly.
        int unit = small ? SmallWeightUnit : Gemm.MR;
        var (lo, hi) = Range(outF, outF >= unit * chunks ? unit : 1, chunk, chunks);
        if (lo == hi) return;
        if (small)
        {
            LinearSmall.BackwardWeight(job->A, job->W, job->C, n, inF, outF, lo, hi, job->Accumulate);
            return;
        }

        // dW[lo:hi, :] += dy[:, lo:hi]ᵀ · x
        Gemm.Multiply(hi - lo, inF, n, new ReadOnlySpan<float>(job->A + lo, n * outF - lo), 1, outF, new ReadOnlySpan<float>(job->W, n * inF), inF, 1,
            new Span<float>(job->C + (long)lo * inF, (hi - lo) * inF), inF, job->Accumulate, new Span<float>(job->Scratch + (long)thread * job->ScratchStride, Gemm.ScratchLength));
    }
}
