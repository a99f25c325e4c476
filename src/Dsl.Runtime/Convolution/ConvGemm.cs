// 2-d convolution forward and backward on the packed GEMM; 1-d convolutions are the H = 1 case.
using System.ComponentModel;
using System.Diagnostics;
using System.Numerics.Tensors;

namespace Dsl.Runtime.Kernels;

/// <summary>
/// 2-d convolution with PyTorch semantics (cross-correlation, zero padding, stride, dilation, groups) on
/// row-major NCHW float32 data, as matrix products on <see cref="Gemm"/>'s micro-kernel with the column
/// matrix (one row per input channel and kernel tap, one column per output pixel) never materialized:
/// forward <c>Y = W·col</c> packs col straight from the image (<see cref="ImplicitGemm"/>); the input gradient
/// of a stride-1 convolution is a convolution of dY with flipped kernels, and otherwise <c>Wᵀ·dY</c> folded
/// back with col2im; the weight gradient is <c>dW += dY·colᵀ</c>, colᵀ again packed from the image.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static unsafe class ConvGemm
{
    /// <summary>Floats of scratch the overloads taking a scratch span need for geometry <paramref name="g"/>.</summary>
    /// <param name="g">Convolution geometry.</param>
    /// <returns>The scratch length.</returns>
    public static int ScratchLength(in ConvGeometry g)
    {
        int length = Math.Max(Gemm.ScratchLength + ColumnLength(g), Math.Max(ImplicitGemm.ScratchLength(g), ImplicitGemm.WeightScratchLength(g)));
        if (ImplicitGemm.CanTransposeAsConvolution(g)) length = Math.Max(length, g.WeightLength + ImplicitGemm.ScratchLength(ImplicitGemm.Transposed(g)));
        return length;
    }

    private static int ColumnLength(in ConvGeometry g) => IsPointwise(g) ? 0 : g.InPerGroup * g.KernelH * g.KernelW * g.OutH * g.OutW;

    private static bool IsPointwise(in ConvGeometry g) =>
        g.KernelH == 1 && g.KernelW == 1 && g.StrideH == 1 && g.StrideW == 1 && g.PadH == 0 && g.PadW == 0;

    /// <summary>Computes <c>y = conv(x, w) + bias</c>, with per-thread scratch.</summary>
    /// <param name="x">Input <c>[n, InChannels, InH, InW]</c>.</param>
    /// <param name="w">Weight <c>[OutChannels, InChannels/Groups, KernelH, KernelW]</c>.</param>
    /// <param name="bias">Bias <c>[OutChannels]</c>, or empty for no bias.</param>
    /// <param name="y">Output <c>[n, OutChannels, OutH, OutW]</c>; overwritten.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="g">Convolution geometry.</param>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y, int n, in ConvGeometry g) =>
        Forward(x, w, bias, y, n, g, Workspace.Get(ScratchLength(g)));

    /// <summary>Computes <c>y = conv(x, w) + bias</c>.</summary>
    /// <param name="x">Input <c>[n, InChannels, InH, InW]</c>.</param>
    /// <param name="w">Weight <c>[OutChannels, InChannels/Groups, KernelH, KernelW]</c>.</param>
    /// <param name="bias">Bias <c>[OutChannels]</c>, or empty for no bias.</param>
    /// <param name="y">Output <c>[n, OutChannels, OutH, OutW]</c>; overwritten.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="g">Convolution geometry.</param>
    /// <param name="scratch">At least <see cref="ScratchLength"/> floats.</param>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y, int n, in ConvGeometry g, Span<float> scratch) =>
        Forward(x, w, bias, y, n, g, scratch, relu: false);

    /// <summary>Computes <c>y = conv(x, w) + bias</c>, or its ReLU when <paramref name="relu"/> (an inference ReLU fused into the layer).</summary>
    /// <param name="x">Input <c>[n, InChannels, InH, InW]</c>.</param>
    /// <param name="w">Weight <c>[OutChannels, InChannels/Groups, KernelH, KernelW]</c>.</param>
    /// <param name="bias">Bias <c>[OutChannels]</c>, or empty for no bias.</param>
    /// <param name="y">Output <c>[n, OutChannels, OutH, OutW]</c>; overwritten.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="g">Convolution geometry.</param>
    /// <param name="scratch">At least <see cref="ScratchLength"/> floats.</param>
    /// <param name="relu">Apply ReLU to the output as it is written.</param>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y, int n, in ConvGeometry g, Span<float> scratch, bool relu)
    {
        Debug.Assert(x.Length >= n * g.InputLength && w.Length >= g.WeightLength && y.Length >= n * g.OutputLength, "buffer too short");
        Debug.Assert(bias.IsEmpty || bias.Length >= g.OutChannels, "bias too short");
        Debug.Assert(scratch.Length >= ScratchLength(g), "scratch too short");
        ImplicitGemm.Forward(x, w, bias, y, n, g, scratch, relu);
    }

    /// <summary>
    /// Computes <c>y = act(conv(x, w) + bias + residual)</c>: a graph's residual add (and the activation after it)
    /// done as each sample's output is written, while it is in cache.
    /// </summary>
    /// <param name="x">Input <c>[n, InChannels, InH, InW]</c>.</param>
    /// <param name="w">Weight <c>[OutChannels, InChannels/Groups, KernelH, KernelW]</c>.</param>
    /// <param name="bias">Bias <c>[OutChannels]</c>, or empty for no bias.</param>
    /// <param name="y">Output <c>[n, OutChannels, OutH, OutW]</c>; overwritten.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="g">Convolution geometry.</param>
    /// <param name="scratch">At least <see cref="ScratchLength"/> floats.</param>
    /// <param name="activation">The activation after the add.</param>
    /// <param name="residual">The add's other input, laid out like <paramref name="y"/>.</param>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y, int n, in ConvGeometry g, Span<float> scratch,
        FusedActivation activation, ReadOnlySpan<float> residual)
    {
        Debug.Assert(x.Length >= n * g.InputLength && w.Length >= g.WeightLength && y.Length >= n * g.OutputLength, "buffer too short");
        Debug.Assert(scratch.Length >= ScratchLength(g), "scratch too short");
        ResidualEpilogue.Check(residual, n, g.OutputLength);
        fixed (float* pr = residual)
            ImplicitGemm.Forward(x, w, bias, y, n, g, scratch, relu: false, pr, activation);
    }

    /// <summary>Input gradient <c>dx = conv_transpose(dy, w)</c>, with per-thread scratch; <paramref name="dx"/> is overwritten.</summary>
    /// <param name="dy">Output gradient <c>[n, OutChannels, OutH, OutW]</c>.</param>
    /// <param name="w">Weight.</param>
    /// <param name="dx">Input gradient <c>[n, InChannels, InH, InW]</c>; overwritten.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="g">Convolution geometry.</param>
    public static void BackwardInput(ReadOnlySpan<float> dy, ReadOnlySpan<float> w, Span<float> dx, int n, in ConvGeometry g) =>
        BackwardInput(dy, w, dx, n, g, Workspace.Get(ScratchLength(g)));

    /// <summary>Input gradient <c>dx = conv_transpose(dy, w)</c>; <paramref name="dx"/> is overwritten.</summary>
    /// <param name="dy">Output gradient <c>[n, OutChannels, OutH, OutW]</c>.</param>
    /// <param name="w">Weight.</param>
    /// <param name="dx">Input gradient <c>[n, InChannels, InH, InW]</c>; overwritten.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="g">Convolution geometry.</param>
    /// <param name="scratch">At least <see cref="ScratchLength"/> floats.</param>
    public static void BackwardInput(ReadOnlySpan<float> dy, ReadOnlySpan<float> w, Span<float> dx, int n, in ConvGeometry g, Span<float> scratch)
    {
        Debug.Assert(dy.Length >= n * g.OutputLength && w.Length >= g.WeightLength && dx.Length >= n * g.InputLength, "buffer too short");
        Debug.Assert(scratch.Length >= ScratchLength(g), "scratch too short");
        if (ImplicitGemm.CanTransposeAsConvolution(g))
        {
            ImplicitGemm.BackwardInput(dy, w, dx, n, g, scratch);
            return;
        }

        int outPlane = g.OutH * g.OutW, inPlane = g.InH * g.InW;
        int rows = g.InPerGroup * g.KernelH * g.KernelW;
        var gemmScratch = scratch.Slice(0, Gemm.ScratchLength);
        var column = scratch.Slice(Gemm.ScratchLength, ColumnLength(g));
        bool pointwise = IsPointwise(g);
        for (int s = 0; s < n; s++)
        {
            var dys = dy.Slice(s * g.OutputLength, g.OutputLength);
            var dxs = dx.Slice(s * g.InputLength, g.InputLength);
            for (int group = 0; group < g.Groups; group++)
            {
                var dyg = dys.Slice(group * g.OutPerGroup * outPlane, g.OutPerGroup * outPlane);
                var dxg = dxs.Slice(group * g.InPerGroup * inPlane, g.InPerGroup * inPlane);
                var wg = w.Slice(group * g.OutPerGroup * rows, g.OutPerGroup * rows);
                // dcol[rows × pixels] = Wᵀ[rows × out] · dY[out × pixels]
                var target = pointwise ? dxg : column;
                Gemm.Multiply(rows, outPlane, g.OutPerGroup, wg, 1, rows, dyg, outPlane, 1, target, outPlane, accumulate: false, gemmScratch);
                if (!pointwise)
                {
                    dxg.Clear();
                    Col2ImAdd(column, dxg, g);
                }
            }
        }
    }

    /// <summary>Weight and bias gradients, with per-thread scratch: <c>dw += dy·colᵀ</c>, <c>dbias += Σ dy</c> (accumulated).</summary>
    /// <param name="dy">Output gradient.</param>
    /// <param name="x">Forward input.</param>
    /// <param name="dw">Weight gradient; accumulated.</param>
    /// <param name="dbias">Bias gradient, or empty; accumulated.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="g">Convolution geometry.</param>
    public static void BackwardWeight(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dw, Span<float> dbias, int n, in ConvGeometry g) =>
        BackwardWeight(dy, x, dw, dbias, n, g, Workspace.Get(ScratchLength(g)));

    /// <summary>Weight and bias gradients: <c>dw += dy·colᵀ</c>, <c>dbias += Σ dy</c> (accumulated).</summary>
    /// <param name="dy">Output gradient <c>[n, OutChannels, OutH, OutW]</c>.</param>
    /// <param name="x">Forward input <c>[n, InChannels, InH, InW]</c>.</param>
    /// <param name="dw">Weight gradient; accumulated.</param>
    /// <param name="dbias">Bias gradient, or empty; accumulated.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="g">Convolution geometry.</param>
    /// <param name="scratch">At least <see cref="ScratchLength"/> floats.</param>
    public static void BackwardWeight(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dw, Span<float> dbias, int n, in ConvGeometry g, Span<float> scratch)
    {
        Debug.Assert(dy.Length >= n * g.OutputLength && x.Length >= n * g.InputLength && dw.Length >= g.WeightLength, "buffer too short");
        Debug.Assert(dbias.IsEmpty || dbias.Length >= g.OutChannels, "dbias too short");
        Debug.Assert(scratch.Length >= ScratchLength(g), "scratch too short");
        ImplicitGemm.BackwardWeight(dy, x, dw, dbias, n, g, scratch);
    }

    /// <summary>
    /// Floats of scratch one thread needs for any pass of geometry <paramref name="g"/> on a <see cref="WorkerPool"/>:
    /// GEMM panels and columns, plus a private weight and bias gradient for the weight pass.
    /// </summary>
    /// <param name="g">Convolution geometry.</param>
    /// <returns>The per-thread scratch length.</returns>
    public static int ParallelScratchLength(in ConvGeometry g) => ScratchLength(g) + g.WeightLength + g.OutChannels;

    // Below this many multiply-adds a pass stays on the caller: waking workers costs microseconds. 2^19 (from 2^20)
    // splits ResNet-20's 1×1 downsampling shortcuts at batch 8 (0.8M): inference on two threads 1.81–1.83 →
    // 1.67–1.70 ms.
    private const long ParallelThreshold = 1L << 19;

    // A pass over one sample splits (by output channels or blocks of pixels) only from this many multiply-adds, for
    // this kernel and ConvWinograd alike: below it the split lost more than it gained (each thread copies and
    // transforms the whole input, the halves of the output the next layer reads were written by different cores, and
    // the worker starts a microsecond late, about 40 times a call). ResNet-20 on two threads, every pass of 0.9–1.8M
    // split before, all on the caller now: inference batch 1 412–422 → 356–364 µs (one thread 355–368), a training
    // step 2.51–2.99 → 1.92–2.41 ms (one thread 1.98–2.45). Resblock64's 29M-multiply-add layers still split
    // (batch-1 inference 257–266 µs on two threads, 409–428 on one). 2^21 rather than 2^22: FmnistBn's second
    // convolution (32 → 64 at 14×14 with its max pooling, 3.6M, split by blocks of tile rows) gains on two threads,
    // batch-1 inference 47.6–60.5 → 41.8–51.1 µs; ResNet-20's 1.8M passes stay below it.
    internal const long SingleSampleThreshold = 1L << 21;

    private static bool Parallel(WorkerPool? pool, int n, in ConvGeometry g) =>
        pool is { Threads: > 1 } && (long)n * g.OutChannels * g.OutH * g.OutW * g.InPerGroup * g.KernelH * g.KernelW >= (n > 1 ? ParallelThreshold : SingleSampleThreshold);

    // A batch of fewer samples than threads splits by channels where the layer allows it (then every part
    // computes whole register tiles of the same single pass: the same bits as serial); otherwise by samples.
    private static bool ByChannels(WorkerPool pool, int n, bool splittable) => n < pool.Threads && splittable;

    // A part's share of count channels, in whole blocks of `block` (register tiles).
    private static (int Lo, int Hi) Channels(int count, int block, int part, int parts)
    {
        var (lo, hi) = WorkerPool.Share((count + block - 1) / block, part, parts);
        return (Math.Min(lo * block, count), Math.Min(hi * block, count));
    }

    private struct Job
    {
        public float* X, W, Bias, Y, Scratch;
        public int BiasLength, N, ScratchStride;
        public ConvGeometry G;
        public bool Relu;
        public float* Residual; // null: no residual add
        public FusedActivation Activation; // applied to each part's output once written (after the residual add)
        public long YStride; // floats between samples of Y; 0: the output length
    }

    /// <summary><see cref="Forward(ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, int, in ConvGeometry, Span{float})"/> with the batch split across <paramref name="pool"/>.</summary>
    /// <param name="x">Input.</param><param name="w">Weight.</param><param name="bias">Bias, or empty.</param><param name="y">Output; overwritten.</param>
    /// <param name="n">Batch size.</param><param name="g">Convolution geometry.</param>
    /// <param name="scratch">Per-thread regions of equal length (at least <see cref="ParallelScratchLength"/> each), one per pool thread.</param>
    /// <param name="pool">The pool, or null to run on the caller.</param>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y, int n, in ConvGeometry g, Span<float> scratch, WorkerPool? pool) =>
        Forward(x, w, bias, y, n, g, scratch, pool, relu: false);

    /// <summary>
    /// Forward across <paramref name="pool"/> with <paramref name="activation"/> applied by this call: ReLU as the kernel
    /// writes (in its register tiles), SiLU and GELU over the output right after the kernel has written it (no layer of
    /// their own, no buffer of their own).
    /// </summary>
    /// <param name="x">Input.</param><param name="w">Weight.</param><param name="bias">Bias, or empty.</param><param name="y">Output; overwritten.</param>
    /// <param name="n">Batch size.</param><param name="g">Convolution geometry.</param>
    /// <param name="scratch">Per-thread regions of equal length (at least <see cref="ParallelScratchLength"/> each), one per pool thread.</param>
    /// <param name="pool">The pool, or null to run on the caller.</param>
    /// <param name="activation">The activation the layer's output goes through.</param>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y, int n, in ConvGeometry g, Span<float> scratch, WorkerPool? pool, FusedActivation activation)
    {
        Forward(x, w, bias, y, n, g, scratch, pool, relu: activation == FusedActivation.Relu);
        if (activation is not (FusedActivation.None or FusedActivation.Relu)) Activations.Apply(activation, y.Slice(0, n * g.OutputLength));
    }

    /// <summary>
    /// Forward across <paramref name="pool"/> with a graph's residual add and the activation after it applied as
    /// each part's output is written: <c>y = act(conv(x, w) + bias + residual)</c>.
    /// </summary>
    /// <param name="x">Input.</param><param name="w">Weight.</param><param name="bias">Bias, or empty.</param><param name="y">Output; overwritten.</param>
    /// <param name="n">Batch size.</param><param name="g">Convolution geometry.</param>
    /// <param name="scratch">Per-thread regions of equal length (at least <see cref="ParallelScratchLength"/> each), one per pool thread.</param>
    /// <param name="pool">The pool, or null to run on the caller.</param>
    /// <param name="activation">The activation after the add.</param>
    /// <param name="residual">The add's other input, laid out like <paramref name="y"/>.</param>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y, int n, in ConvGeometry g, Span<float> scratch, WorkerPool? pool,
        FusedActivation activation, ReadOnlySpan<float> residual)
    {
        ResidualEpilogue.Check(residual, n, g.OutputLength);
        Forward(x, w, bias, y, n, g, scratch, pool, activation, residual, g.OutputLength);
    }

    /// <summary>
    /// Forward across <paramref name="pool"/> into samples <paramref name="outputStride"/> floats apart: a slice of a
    /// concatenation's output, written in place (each sample's channels at their offset), with the activation and an
    /// optional residual applied as each part's output is written.
    /// </summary>
    /// <param name="x">Input.</param><param name="w">Weight.</param><param name="bias">Bias, or empty.</param>
    /// <param name="y">Output: sample s at s·<paramref name="outputStride"/>; the floats between samples are left as they are.</param>
    /// <param name="n">Batch size.</param><param name="g">Convolution geometry.</param>
    /// <param name="scratch">Per-thread regions of equal length (at least <see cref="ParallelScratchLength"/> each), one per pool thread.</param>
    /// <param name="pool">The pool, or null to run on the caller.</param>
    /// <param name="activation">The activation the output goes through (after the residual add, if any).</param>
    /// <param name="residual">The add's other input, laid out like <paramref name="y"/>, or empty for none.</param>
    /// <param name="outputStride">Floats between the starts of consecutive samples of <paramref name="y"/>, at least the output length.</param>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y, int n, in ConvGeometry g, Span<float> scratch, WorkerPool? pool,
        FusedActivation activation, ReadOnlySpan<float> residual, int outputStride)
    {
        ResidualEpilogue.Extent(y, residual, n, g.OutputLength, outputStride);
        bool relu = residual.IsEmpty && activation == FusedActivation.Relu; // in the register tiles where the path has them
        var after = relu ? FusedActivation.None : activation;
        fixed (float* px = x, pw = w, pb = bias, py = y, ps = scratch, pr = residual)
        {
            if (!Parallel(pool, n, g) || (n == 1 && !ImplicitGemm.CanSplitForward(g)))
            {
                ImplicitGemm.Forward(x, w, bias, y, n, g, scratch.Slice(0, scratch.Length / (pool?.Threads ?? 1)), relu, residual.IsEmpty ? null : pr, after, outputStride);
                return;
            }

            var job = new Job { X = px, W = pw, Bias = pb, BiasLength = bias.Length, Y = py, Scratch = ps, N = n, ScratchStride = scratch.Length / pool!.Threads, G = g, Relu = relu,
                Residual = residual.IsEmpty ? null : pr, Activation = after, YStride = outputStride };
            pool.RunChunks(ByChannels(pool, n, ImplicitGemm.CanSplitForward(g)) ? &ForwardChannelsPart : &ForwardPart, &job, pool.Threads);
        }
    }

    /// <summary>Forward with the batch (or, for fewer samples than threads, the output channels) split across <paramref name="pool"/>, ReLU applied as it writes when <paramref name="relu"/>.</summary>
    /// <param name="x">Input.</param><param name="w">Weight.</param><param name="bias">Bias, or empty.</param><param name="y">Output; overwritten.</param>
    /// <param name="n">Batch size.</param><param name="g">Convolution geometry.</param>
    /// <param name="scratch">Per-thread regions of equal length (at least <see cref="ParallelScratchLength"/> each), one per pool thread.</param>
    /// <param name="pool">The pool, or null to run on the caller.</param>
    /// <param name="relu">Apply ReLU to the output as it is written.</param>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y, int n, in ConvGeometry g, Span<float> scratch, WorkerPool? pool, bool relu)
    {
        if (!Parallel(pool, n, g) || (n == 1 && !ImplicitGemm.CanSplitForward(g)))
        {
            Forward(x, w, bias, y, n, g, scratch.Slice(0, scratch.Length / (pool?.Threads ?? 1)), relu);
            return;
        }

        fixed (float* px = x, pw = w, pb = bias, py = y, ps = scratch)
        {
            var job = new Job { X = px, W = pw, Bias = pb, BiasLength = bias.Length, Y = py, Scratch = ps, N = n, ScratchStride = scratch.Length / pool!.Threads, G = g, Relu = relu };
            pool.RunChunks(ByChannels(pool, n, ImplicitGemm.CanSplitForward(g)) ? &ForwardChannelsPart : &ForwardPart, &job, pool.Threads);
        }
    }

    private static void ForwardChannelsPart(void* state, int part, int parts, int thread)
    {
        var job = (Job*)state;
        var g = job->G;
        var (lo, hi) = Channels(g.OutChannels, Gemm.MR, part, parts);
        if (lo == hi) return;
        long stride = job->YStride == 0 ? g.OutputLength : job->YStride;
        ImplicitGemm.ForwardChannels(new ReadOnlySpan<float>(job->X, job->N * g.InputLength), new ReadOnlySpan<float>(job->W, g.WeightLength),
            new ReadOnlySpan<float>(job->Bias, job->BiasLength), new Span<float>(job->Y, (int)((job->N - 1) * stride + g.OutputLength)), job->N, g,
            new Span<float>(job->Scratch + (long)part * job->ScratchStride, ScratchLength(g)), lo, hi, job->Relu, job->Residual, job->Activation, stride);
    }

    private static void ForwardPart(void* state, int part, int parts, int thread)
    {
        var job = (Job*)state;
        var (lo, hi) = WorkerPool.Share(job->N, part, parts);
        if (lo == hi) return;
        var g = job->G;
        long stride = job->YStride == 0 ? g.OutputLength : job->YStride;
        ImplicitGemm.Forward(new ReadOnlySpan<float>(job->X + (long)lo * g.InputLength, (hi - lo) * g.InputLength), new ReadOnlySpan<float>(job->W, g.WeightLength),
            new ReadOnlySpan<float>(job->Bias, job->BiasLength), new Span<float>(job->Y + lo * stride, (int)((hi - lo - 1) * stride + g.OutputLength)),
            hi - lo, g, new Span<float>(job->Scratch + (long)part * job->ScratchStride, ScratchLength(g)), job->Relu,
            job->Residual == null ? null : job->Residual + lo * stride, job->Activation, stride);
    }

    /// <summary>Input gradient with the batch split across <paramref name="pool"/>.</summary>
    /// <param name="dy">Output gradient.</param><param name="w">Weight.</param><param name="dx">Input gradient; overwritten.</param>
    /// <param name="n">Batch size.</param><param name="g">Convolution geometry.</param>
    /// <param name="scratch">Per-thread regions, one per pool thread.</param><param name="pool">The pool, or null.</param>
    public static void BackwardInput(ReadOnlySpan<float> dy, ReadOnlySpan<float> w, Span<float> dx, int n, in ConvGeometry g, Span<float> scratch, WorkerPool? pool)
    {
        if (!Parallel(pool, n, g) || (n == 1 && !ImplicitGemm.CanSplitBackwardInput(g)))
        {
            BackwardInput(dy, w, dx, n, g, scratch.Slice(0, scratch.Length / (pool?.Threads ?? 1)));
            return;
        }

        fixed (float* pdy = dy, pw = w, pdx = dx, ps = scratch)
        {
            var job = new Job { X = pdy, W = pw, Y = pdx, Scratch = ps, N = n, ScratchStride = scratch.Length / pool!.Threads, G = g };
            pool.RunChunks(ByChannels(pool, n, ImplicitGemm.CanSplitBackwardInput(g)) ? &BackwardInputChannelsPart : &BackwardInputPart, &job, pool.Threads);
        }
    }

    private static void BackwardInputChannelsPart(void* state, int part, int parts, int thread)
    {
        var job = (Job*)state;
        var g = job->G;
        var (lo, hi) = Channels(g.InChannels, Gemm.MR, part, parts);
        if (lo == hi) return;
        ImplicitGemm.BackwardInputChannels(new ReadOnlySpan<float>(job->X, job->N * g.OutputLength), new ReadOnlySpan<float>(job->W, g.WeightLength),
            new Span<float>(job->Y, job->N * g.InputLength), job->N, g, new Span<float>(job->Scratch + (long)part * job->ScratchStride, ScratchLength(g)), lo, hi);
    }

    private static void BackwardInputPart(void* state, int part, int parts, int thread)
    {
        var job = (Job*)state;
        var (lo, hi) = WorkerPool.Share(job->N, part, parts);
        if (lo == hi) return;
        var g = job->G;
        BackwardInput(new ReadOnlySpan<float>(job->X + (long)lo * g.OutputLength, (hi - lo) * g.OutputLength), new ReadOnlySpan<float>(job->W, g.WeightLength),
            new Span<float>(job->Y + (long)lo * g.InputLength, (hi - lo) * g.InputLength), hi - lo, g,
            new Span<float>(job->Scratch + (long)part * job->ScratchStride, ScratchLength(g)));
    }

    /// <summary>
    /// Weight and bias gradients with the batch split across <paramref name="pool"/>: each part accumulates into a
    /// private gradient, and the caller adds them up in part order, so results are the same on every run.
    /// </summary>
    /// <param name="dy">Output gradient.</param><param name="x">Forward input.</param><param name="dw">Weight gradient; accumulated.</param>
    /// <param name="dbias">Bias gradient, or empty; accumulated.</param><param name="n">Batch size.</param><param name="g">Convolution geometry.</param>
    /// <param name="scratch">Per-thread regions (at least <see cref="ParallelScratchLength"/> each), one per pool thread.</param><param name="pool">The pool, or null.</param>
    public static void BackwardWeight(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dw, Span<float> dbias, int n, in ConvGeometry g, Span<float> scratch, WorkerPool? pool)
    {
        if (!Parallel(pool, n, g) || (n == 1 && !ImplicitGemm.CanSplitBackwardWeight(g)))
        {
            BackwardWeight(dy, x, dw, dbias, n, g, scratch.Slice(0, scratch.Length / (pool?.Threads ?? 1)));
            return;
        }

        if (ByChannels(pool!, n, ImplicitGemm.CanSplitBackwardWeight(g)))
        {
            // Disjoint rows of dW per part: no private sums to add.
            fixed (float* pdy = dy, px = x, pdw = dw, pdb = dbias, ps = scratch)
            {
                var job = new Job { X = px, Y = pdy, W = pdw, Bias = pdb, BiasLength = dbias.Length, Scratch = ps, N = n, ScratchStride = scratch.Length / pool!.Threads, G = g };
                pool.RunChunks(&BackwardWeightChannelsPart, &job, pool.Threads);
            }

            return;
        }

        int stride = scratch.Length / pool!.Threads;
        fixed (float* pdy = dy, px = x, ps = scratch)
        {
            var job = new Job { X = px, Y = pdy, Scratch = ps, BiasLength = dbias.Length, N = n, ScratchStride = stride, G = g };
            pool.RunChunks(&BackwardWeightPart, &job, pool.Threads);
        }

        AddPartials(dw, dbias, scratch, stride, ScratchLength(g), pool.Threads, g);
    }

    /// <summary>Adds the per-thread weight and bias gradients (at <paramref name="own"/> in each thread's scratch region) to dw and dbias, in part order.</summary>
    internal static void AddPartials(Span<float> dw, Span<float> dbias, Span<float> scratch, int stride, int own, int threads, in ConvGeometry g)
    {
        for (int part = 0; part < threads; part++)
        {
            var partial = scratch.Slice(part * stride + own, g.WeightLength + g.OutChannels);
            TensorPrimitives.Add(dw.Slice(0, g.WeightLength), partial.Slice(0, g.WeightLength), dw.Slice(0, g.WeightLength));
            if (!dbias.IsEmpty) TensorPrimitives.Add(dbias.Slice(0, g.OutChannels), partial.Slice(g.WeightLength, g.OutChannels), dbias.Slice(0, g.OutChannels));
        }
    }

    private static void BackwardWeightChannelsPart(void* state, int part, int parts, int thread)
    {
        var job = (Job*)state;
        var g = job->G;
        var (lo, hi) = Channels(g.OutChannels, Gemm.NR, part, parts);
        if (lo == hi) return;
        ImplicitGemm.BackwardWeightChannels(new ReadOnlySpan<float>(job->Y, job->N * g.OutputLength), new ReadOnlySpan<float>(job->X, job->N * g.InputLength),
            new Span<float>(job->W, g.WeightLength), job->BiasLength == 0 ? Span<float>.Empty : new Span<float>(job->Bias, g.OutChannels), job->N, g,
            new Span<float>(job->Scratch + (long)part * job->ScratchStride, ScratchLength(g)), lo, hi);
    }

    private static void BackwardWeightPart(void* state, int part, int parts, int thread)
    {
        var job = (Job*)state;
        var g = job->G;
        float* region = job->Scratch + (long)part * job->ScratchStride;
        var partial = new Span<float>(region + ScratchLength(g), g.WeightLength + g.OutChannels);
        partial.Clear();
        var (lo, hi) = WorkerPool.Share(job->N, part, parts);
        if (lo == hi) return;
        BackwardWeight(new ReadOnlySpan<float>(job->Y + (long)lo * g.OutputLength, (hi - lo) * g.OutputLength),
            new ReadOnlySpan<float>(job->X + (long)lo * g.InputLength, (hi - lo) * g.InputLength),
            partial.Slice(0, g.WeightLength), job->BiasLength == 0 ? Span<float>.Empty : partial.Slice(g.WeightLength, g.OutChannels),
            hi - lo, g, new Span<float>(region, ScratchLength(g)));
    }

    /// <summary>The adjoint of im2col: adds every column-matrix entry back onto the input pixel it came from.</summary>
    private static void Col2ImAdd(ReadOnlySpan<float> col, Span<float> x, in ConvGeometry g)
    {
        int outPlane = g.OutH * g.OutW, inPlane = g.InH * g.InW;
        int row = 0;
        for (int c = 0; c < g.InPerGroup; c++)
        {
            var plane = x.Slice(c * inPlane, inPlane);
            for (int kh = 0; kh < g.KernelH; kh++)
            {
                int offH = kh * g.DilationH - g.PadH;
                for (int kw = 0; kw < g.KernelW; kw++, row++)
                {
                    int offW = kw * g.DilationW - g.PadW;
                    var (owLo, owHi) = ValidRange(g.OutW, g.InW, g.StrideW, offW);
                    if (owLo >= owHi) continue;
                    var source = col.Slice(row * outPlane, outPlane);
                    for (int oh = 0; oh < g.OutH; oh++)
                    {
                        int ih = oh * g.StrideH + offH;
                        if ((uint)ih >= (uint)g.InH) continue;
                        var target = plane.Slice(ih * g.InW, g.InW);
                        var sourceRow = source.Slice(oh * g.OutW, g.OutW);
                        int iw = owLo * g.StrideW + offW;
                        if (g.StrideW == 1)
                        {
                            var t = target.Slice(iw, owHi - owLo);
                            TensorPrimitives.Add(t, sourceRow.Slice(owLo, owHi - owLo), t);
                        }
                        else
                        {
                            for (int ow = owLo; ow < owHi; ow++, iw += g.StrideW) target[iw] += sourceRow[ow];
                        }
                    }
                }
            }
        }
    }

    /// <summary>Output positions <c>[lo, hi)</c> whose input coordinate <c>o·stride + offset</c> lies in <c>[0, size)</c>.</summary>
    private static (int Lo, int Hi) ValidRange(int outSize, int inSize, int stride, int offset)
    {
        int lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
        int hi = inSize - offset <= 0 ? 0 : (inSize - offset - 1) / stride + 1;
        return (Math.Min(lo, outSize), Math.Min(Math.Max(hi, 0), outSize));
    }
}
