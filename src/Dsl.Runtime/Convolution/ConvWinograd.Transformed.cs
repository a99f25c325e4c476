// Winograd F(2×2, 3×3) on weights transformed once: inference, where the (folded) weights stay constant between calls.
using System.Diagnostics;
using Dsl.Contract;

namespace Dsl.Runtime.Kernels;

public static unsafe partial class ConvWinograd
{
    /// <summary>
    /// Floats of the transformed weights of <paramref name="g"/>: sixteen <c>U_ξ</c> of <c>[OutChannels × InChannels]</c>
    /// (output channels rounded up to the micro-kernel's 6 rows), each followed by 8 floats of slack for the tail of a
    /// vector store. The shared contract's length, which generated code reserves in its folded storage.
    /// </summary>
    /// <param name="g">Convolution geometry; <see cref="Suits"/> must hold.</param>
    /// <returns>The length <see cref="TransformWeights(ReadOnlySpan{float}, Span{float}, in ConvGeometry)"/> writes and <c>ForwardTransformed</c> reads.</returns>
    public static int TransformedWeightLength(in ConvGeometry g)
    {
        RequireSuits(g);
        int length = PackedLengths.WinogradWeight(g.InChannels, g.OutChannels);
        Debug.Assert(length == Plan.Of(g).ULength, "the contract's length is the plan's");
        return length;
    }

    /// <summary>
    /// Transforms <paramref name="w"/> once: <c>U = G·g·Gᵀ</c> of every kernel, packed as the micro-kernel's A panels,
    /// the same bits <c>Forward</c> computes into its scratch on every call. For weights that stay constant between
    /// calls (a generated model's inference, which transforms its folded weights when it folds them), read by
    /// <c>ForwardTransformed</c>.
    /// </summary>
    /// <param name="w">Weight <c>[OutChannels, InChannels, 3, 3]</c>.</param>
    /// <param name="transformed">At least <see cref="TransformedWeightLength"/> floats; overwritten (the slack after each <c>U_ξ</c> is never read).</param>
    /// <param name="g">Convolution geometry; <see cref="Suits"/> must hold.</param>
    public static void TransformWeights(ReadOnlySpan<float> w, Span<float> transformed, in ConvGeometry g)
    {
        RequireSuits(g);
        var plan = Plan.Of(g);
        if (w.Length < g.WeightLength) throw new ArgumentException($"The weight has {w.Length} floats; the layer has {g.WeightLength}.", nameof(w));
        CheckTransformed(transformed.Length, plan, nameof(transformed));
        fixed (float* pw = w, pu = transformed) TransformWeights(pw, pu, plan, flipped: false);
    }

    /// <summary>Computes <c>y = conv(x, w) + bias</c> on the caller's thread from the transformed weights.</summary>
    /// <param name="x">Input <c>[n, InChannels, InH, InW]</c>.</param>
    /// <param name="transformed">The weights after <see cref="TransformWeights(ReadOnlySpan{float}, Span{float}, in ConvGeometry)"/>.</param>
    /// <param name="bias">Bias <c>[OutChannels]</c>, or empty.</param>
    /// <param name="y">Output <c>[n, OutChannels, OutH, OutW]</c>; overwritten.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="g">Convolution geometry; <see cref="Suits"/> must hold.</param>
    /// <param name="scratch">At least <see cref="ScratchLength"/> floats.</param>
    public static void ForwardTransformed(ReadOnlySpan<float> x, ReadOnlySpan<float> transformed, ReadOnlySpan<float> bias, Span<float> y, int n, in ConvGeometry g, Span<float> scratch) =>
        ForwardTransformed(x, transformed, bias, y, n, g, scratch, relu: false);

    /// <summary>Computes <c>y = conv(x, w) + bias</c>, ReLU'd when <paramref name="relu"/>, on the caller's thread from the transformed weights.</summary>
    /// <param name="x">Input <c>[n, InChannels, InH, InW]</c>.</param>
    /// <param name="transformed">The weights after <see cref="TransformWeights(ReadOnlySpan{float}, Span{float}, in ConvGeometry)"/>.</param>
    /// <param name="bias">Bias <c>[OutChannels]</c>, or empty.</param>
    /// <param name="y">Output <c>[n, OutChannels, OutH, OutW]</c>; overwritten.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="g">Convolution geometry; <see cref="Suits"/> must hold.</param>
    /// <param name="scratch">At least <see cref="ScratchLength"/> floats.</param>
    /// <param name="relu">Apply ReLU to the output as it is written.</param>
    public static void ForwardTransformed(ReadOnlySpan<float> x, ReadOnlySpan<float> transformed, ReadOnlySpan<float> bias, Span<float> y, int n, in ConvGeometry g, Span<float> scratch, bool relu) =>
        ForwardTransformed(x, transformed, bias, y, n, g, scratch, relu, maxPool: false);

    /// <summary>
    /// Computes <c>y = conv(x, w) + bias</c>, ReLU'd when <paramref name="relu"/>, on the caller's thread from the transformed
    /// weights, and with <paramref name="maxPool"/> the 2×2, stride-2 max pooling of that (see
    /// <see cref="Forward(ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, int, in ConvGeometry, Span{float}, bool, bool)"/>).
    /// </summary>
    /// <param name="x">Input <c>[n, InChannels, InH, InW]</c>.</param>
    /// <param name="transformed">The weights after <see cref="TransformWeights(ReadOnlySpan{float}, Span{float}, in ConvGeometry)"/>.</param>
    /// <param name="bias">Bias <c>[OutChannels]</c>, or empty.</param>
    /// <param name="y">Output <c>[n, OutChannels, OutH, OutW]</c>, or <c>[n, OutChannels, OutH/2, OutW/2]</c> pooled; overwritten.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="g">Convolution geometry; <see cref="Suits"/> must hold.</param>
    /// <param name="scratch">At least <see cref="ScratchLength"/> floats.</param>
    /// <param name="relu">Apply ReLU to the output as it is written.</param>
    /// <param name="maxPool">Write the 2×2 max pooling of the output instead of the output.</param>
    public static void ForwardTransformed(ReadOnlySpan<float> x, ReadOnlySpan<float> transformed, ReadOnlySpan<float> bias, Span<float> y, int n, in ConvGeometry g, Span<float> scratch,
        bool relu, bool maxPool)
    {
        RequireSuits(g);
        Debug.Assert(x.Length >= n * g.InputLength && y.Length >= n * OutputLength(g, maxPool), "buffer too short");
        Debug.Assert(bias.IsEmpty || bias.Length >= g.OutChannels, "bias too short");
        var plan = Plan.Of(g);
        CheckTransformed(transformed.Length, plan, nameof(transformed));
        Debug.Assert(scratch.Length >= plan.ScratchLength, "scratch too short");
        fixed (float* px = x, pu = transformed, pb = bias, py = y, ps = scratch)
        {
            Run(px, pu, bias.IsEmpty ? null : pb, py, plan, ps + plan.ULength, 0, plan.Items(n), relu, maxPool);
        }
    }

    /// <summary>
    /// Computes <c>y = act(conv(x, w) + bias + residual)</c> on the caller's thread from the transformed weights: a graph's
    /// residual add (and the activation after it) done on each block of tile rows as the output transform writes it.
    /// </summary>
    /// <param name="x">Input <c>[n, InChannels, InH, InW]</c>.</param>
    /// <param name="transformed">The weights after <see cref="TransformWeights(ReadOnlySpan{float}, Span{float}, in ConvGeometry)"/>.</param>
    /// <param name="bias">Bias <c>[OutChannels]</c>, or empty.</param>
    /// <param name="y">Output <c>[n, OutChannels, OutH, OutW]</c>; overwritten.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="g">Convolution geometry; <see cref="Suits"/> must hold.</param>
    /// <param name="scratch">At least <see cref="ScratchLength"/> floats.</param>
    /// <param name="activation">The activation after the add.</param>
    /// <param name="residual">The add's other input, laid out like <paramref name="y"/>.</param>
    public static void ForwardTransformed(ReadOnlySpan<float> x, ReadOnlySpan<float> transformed, ReadOnlySpan<float> bias, Span<float> y, int n, in ConvGeometry g, Span<float> scratch,
        FusedActivation activation, ReadOnlySpan<float> residual)
    {
        RequireSuits(g);
        ResidualEpilogue.Check(residual, n, g.OutputLength);
        Debug.Assert(x.Length >= n * g.InputLength && y.Length >= n * g.OutputLength, "buffer too short");
        var plan = Plan.Of(g);
        CheckTransformed(transformed.Length, plan, nameof(transformed));
        Debug.Assert(scratch.Length >= plan.ScratchLength, "scratch too short");
        fixed (float* px = x, pu = transformed, pb = bias, py = y, ps = scratch, pr = residual)
        {
            Run(px, pu, bias.IsEmpty ? null : pb, py, plan, ps + plan.ULength, 0, plan.Items(n), relu: false, maxPool: false, pr, activation);
        }
    }

    /// <summary>Forward from the transformed weights with its work items (blocks of tile rows, or tile rows) split across <paramref name="pool"/>.</summary>
    /// <param name="x">Input.</param><param name="transformed">The weights after <see cref="TransformWeights(ReadOnlySpan{float}, Span{float}, in ConvGeometry)"/>.</param>
    /// <param name="bias">Bias, or empty.</param><param name="y">Output; overwritten.</param>
    /// <param name="n">Batch size.</param><param name="g">Convolution geometry; <see cref="Suits"/> must hold.</param>
    /// <param name="scratch">Per-thread regions of equal length (at least <see cref="ParallelScratchLength"/> each), one per pool thread.</param>
    /// <param name="pool">The pool, or null to run on the caller.</param>
    public static void ForwardTransformed(ReadOnlySpan<float> x, ReadOnlySpan<float> transformed, ReadOnlySpan<float> bias, Span<float> y, int n, in ConvGeometry g, Span<float> scratch,
        WorkerPool? pool) =>
        ForwardTransformed(x, transformed, bias, y, n, g, scratch, pool, relu: false);

    /// <summary>Forward from the transformed weights across <paramref name="pool"/>, ReLU applied as it writes when <paramref name="relu"/>.</summary>
    /// <param name="x">Input.</param><param name="transformed">The weights after <see cref="TransformWeights(ReadOnlySpan{float}, Span{float}, in ConvGeometry)"/>.</param>
    /// <param name="bias">Bias, or empty.</param><param name="y">Output; overwritten.</param>
    /// <param name="n">Batch size.</param><param name="g">Convolution geometry; <see cref="Suits"/> must hold.</param>
    /// <param name="scratch">Per-thread regions of equal length (at least <see cref="ParallelScratchLength"/> each), one per pool thread.</param>
    /// <param name="pool">The pool, or null to run on the caller.</param>
    /// <param name="relu">Apply ReLU to the output as it is written.</param>
    public static void ForwardTransformed(ReadOnlySpan<float> x, ReadOnlySpan<float> transformed, ReadOnlySpan<float> bias, Span<float> y, int n, in ConvGeometry g, Span<float> scratch,
        WorkerPool? pool, bool relu) =>
        ForwardTransformed(x, transformed, bias, y, n, g, scratch, pool, relu, maxPool: false);

    /// <summary>
    /// Forward from the transformed weights across <paramref name="pool"/> with <paramref name="activation"/> applied by this
    /// call: ReLU as the kernel writes, SiLU and GELU over the output right after (see
    /// <see cref="Forward(ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, int, in ConvGeometry, Span{float}, WorkerPool?, FusedActivation, bool)"/>).
    /// </summary>
    /// <param name="x">Input.</param><param name="transformed">The weights after <see cref="TransformWeights(ReadOnlySpan{float}, Span{float}, in ConvGeometry)"/>.</param>
    /// <param name="bias">Bias, or empty.</param><param name="y">Output; overwritten.</param>
    /// <param name="n">Batch size.</param><param name="g">Convolution geometry; <see cref="Suits"/> must hold.</param>
    /// <param name="scratch">Per-thread regions of equal length (at least <see cref="ParallelScratchLength"/> each), one per pool thread.</param>
    /// <param name="pool">The pool, or null to run on the caller.</param>
    /// <param name="activation">The activation the layer's output goes through.</param>
    /// <param name="maxPool">Write the 2×2 max pooling of the (activated) output instead; only with no activation or ReLU, which commute with the maximum.</param>
    public static void ForwardTransformed(ReadOnlySpan<float> x, ReadOnlySpan<float> transformed, ReadOnlySpan<float> bias, Span<float> y, int n, in ConvGeometry g, Span<float> scratch,
        WorkerPool? pool, FusedActivation activation, bool maxPool = false)
    {
        bool applied = activation is FusedActivation.None or FusedActivation.Relu;
        if (maxPool && !applied)
            throw new ArgumentException($"{activation} does not commute with max pooling (it is not monotonic): pool after it, not in the output transform.", nameof(activation));
        ForwardTransformed(x, transformed, bias, y, n, g, scratch, pool, relu: activation == FusedActivation.Relu, maxPool);
        if (!applied) Activations.Apply(activation, y.Slice(0, n * g.OutputLength));
    }

    /// <summary>Forward from the transformed weights across <paramref name="pool"/>, ReLU'd when <paramref name="relu"/>, 2×2 max pooled when <paramref name="maxPool"/>.</summary>
    /// <param name="x">Input.</param><param name="transformed">The weights after <see cref="TransformWeights(ReadOnlySpan{float}, Span{float}, in ConvGeometry)"/>.</param>
    /// <param name="bias">Bias, or empty.</param><param name="y">Output, or its 2×2 max pooling; overwritten.</param>
    /// <param name="n">Batch size.</param><param name="g">Convolution geometry; <see cref="Suits"/> must hold.</param>
    /// <param name="scratch">Per-thread regions of equal length (at least <see cref="ParallelScratchLength"/> each), one per pool thread.</param>
    /// <param name="pool">The pool, or null to run on the caller.</param>
    /// <param name="relu">Apply ReLU to the output as it is written.</param>
    /// <param name="maxPool">Write the 2×2 max pooling of the output instead of the output.</param>
    public static void ForwardTransformed(ReadOnlySpan<float> x, ReadOnlySpan<float> transformed, ReadOnlySpan<float> bias, Span<float> y, int n, in ConvGeometry g, Span<float> scratch,
        WorkerPool? pool, bool relu, bool maxPool)
    {
        RequireSuits(g);
        if (!Parallel(pool, n, g))
        {
            ForwardTransformed(x, transformed, bias, y, n, g, scratch.Slice(0, scratch.Length / (pool?.Threads ?? 1)), relu, maxPool);
            return;
        }

        var plan = Plan.Of(g);
        CheckTransformed(transformed.Length, plan, nameof(transformed));
        fixed (float* px = x, pu = transformed, pb = bias, py = y, ps = scratch)
        {
            var job = new Job { X = px, U = pu, Bias = bias.IsEmpty ? null : pb, Y = py, Scratch = ps, ScratchStride = scratch.Length / pool!.Threads, Items = plan.Items(n), Plan = plan, Relu = relu, MaxPool = maxPool };
            RunJob(pool, &job);
        }
    }

    /// <summary>
    /// Forward from the transformed weights across <paramref name="pool"/> with a graph's residual add and the activation
    /// after it applied to each block of tile rows as the output transform writes it: <c>y = act(conv(x, w) + bias + residual)</c>.
    /// </summary>
    /// <param name="x">Input.</param><param name="transformed">The weights after <see cref="TransformWeights(ReadOnlySpan{float}, Span{float}, in ConvGeometry)"/>.</param>
    /// <param name="bias">Bias, or empty.</param><param name="y">Output; overwritten.</param>
    /// <param name="n">Batch size.</param><param name="g">Convolution geometry; <see cref="Suits"/> must hold.</param>
    /// <param name="scratch">Per-thread regions of equal length (at least <see cref="ParallelScratchLength"/> each), one per pool thread.</param>
    /// <param name="pool">The pool, or null to run on the caller.</param>
    /// <param name="activation">The activation after the add.</param>
    /// <param name="residual">The add's other input, laid out like <paramref name="y"/>.</param>
    public static void ForwardTransformed(ReadOnlySpan<float> x, ReadOnlySpan<float> transformed, ReadOnlySpan<float> bias, Span<float> y, int n, in ConvGeometry g, Span<float> scratch,
        WorkerPool? pool, FusedActivation activation, ReadOnlySpan<float> residual)
    {
        ResidualEpilogue.Check(residual, n, g.OutputLength);
        ForwardTransformed(x, transformed, bias, y, n, g, scratch, pool, activation, residual, g.OutputLength);
    }

    /// <summary>
    /// Forward from the transformed weights across <paramref name="pool"/> into samples <paramref name="outputStride"/> floats
    /// apart: a slice of a concatenation's output, written in place, with the activation and an optional residual applied
    /// to each block of tile rows as the output transform writes it.
    /// </summary>
    /// <param name="x">Input.</param><param name="transformed">The weights after <see cref="TransformWeights(ReadOnlySpan{float}, Span{float}, in ConvGeometry)"/>.</param>
    /// <param name="bias">Bias, or empty.</param>
    /// <param name="y">Output: sample s at s·<paramref name="outputStride"/>; the floats between samples are left as they are.</param>
    /// <param name="n">Batch size.</param><param name="g">Convolution geometry; <see cref="Suits"/> must hold.</param>
    /// <param name="scratch">Per-thread regions of equal length (at least <see cref="ParallelScratchLength"/> each), one per pool thread.</param>
    /// <param name="pool">The pool, or null to run on the caller.</param>
    /// <param name="activation">The activation the output goes through (after the residual add, if any).</param>
    /// <param name="residual">The add's other input, laid out like <paramref name="y"/>, or empty for none.</param>
    /// <param name="outputStride">Floats between the starts of consecutive samples of <paramref name="y"/>, at least the output length.</param>
    public static void ForwardTransformed(ReadOnlySpan<float> x, ReadOnlySpan<float> transformed, ReadOnlySpan<float> bias, Span<float> y, int n, in ConvGeometry g, Span<float> scratch,
        WorkerPool? pool, FusedActivation activation, ReadOnlySpan<float> residual, int outputStride)
    {
        RequireSuits(g);
        ResidualEpilogue.Extent(y, residual, n, g.OutputLength, outputStride);
        bool relu = residual.IsEmpty && activation == FusedActivation.Relu; // in the output transform
        var after = relu ? FusedActivation.None : activation;
        var plan = Plan.Of(g);
        CheckTransformed(transformed.Length, plan, nameof(transformed));
        bool parallel = Parallel(pool, n, g);
        var mine = parallel ? scratch : scratch.Slice(0, scratch.Length / (pool?.Threads ?? 1));
        Debug.Assert(mine.Length >= plan.ScratchLength, "scratch too short");
        fixed (float* px = x, pu = transformed, pb = bias, py = y, ps = mine, pr = residual)
        {
            float* r = residual.IsEmpty ? null : pr;
            if (!parallel)
            {
                Run(px, pu, bias.IsEmpty ? null : pb, py, plan, ps + plan.ULength, 0, plan.Items(n), relu, maxPool: false, r, after, outputStride);
                return;
            }

            var job = new Job { X = px, U = pu, Bias = bias.IsEmpty ? null : pb, Y = py, Scratch = ps, ScratchStride = scratch.Length / pool!.Threads, Items = plan.Items(n), Plan = plan,
                Relu = relu, Residual = r, Activation = after, YStride = outputStride };
            RunJob(pool, &job);
        }
    }

    // Transformed weights exist only for a geometry this kernel computes; the caller (generated code: the compiler applies
    // the same rule) runs ConvGemm.Forward with the weight itself for any other.
    private static void RequireSuits(in ConvGeometry g)
    {
        if (!Suits(g))
            throw new ArgumentException("Transformed weights need a geometry that suits Winograd (ConvWinograd.Suits); run Forward with the weight for any other.", nameof(g));
    }

    // A span too short for U would be read past its end by the products: checked always (once per call), not only in Debug.
    private static void CheckTransformed(int length, in Plan plan, string name)
    {
        if (length < plan.ULength)
            throw new ArgumentException($"The transformed weights have {length} floats; the layer needs {plan.ULength} (ConvWinograd.TransformedWeightLength).", name);
    }
}
