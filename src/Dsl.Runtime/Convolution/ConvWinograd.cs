// Winograd F(2×2, 3×3) convolution: 3×3, stride-1 layers with many channels in 16 small GEMMs.
using System.ComponentModel;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Dsl.Runtime.Kernels;

/// <summary>
/// A 3×3, stride-1 convolution by Winograd's minimal filtering F(2×2, 3×3) (Lavin and Gray, 2016): each
/// 2×2 block of output comes from a 4×4 patch of input, and in the transformed domain the 9·4 = 36
/// multiplies of a block become 16, a 2.25-fold saving in the part that dominates.
/// <list type="bullet">
/// <item>weights: <c>U = G·g·Gᵀ</c> per (out, in) channel pair, sixteen <c>[out × in]</c> matrices;</item>
/// <item>input: <c>V = Bᵀ·d·B</c> per input channel and 4×4 patch (patches overlap by 2), sixteen <c>[in × tiles]</c> matrices;</item>
/// <item>sixteen products <c>M_ξ = U_ξ·V_ξ</c> on <see cref="Gemm"/>'s 6×16 micro-kernel;</item>
/// <item>output: <c>Y = Aᵀ·M·A</c> per out channel and tile, plus the bias, ReLU'd when fused.</item>
/// </list>
/// The input is split into the even and odd columns of a zero-bordered copy, so a transform reads 8
/// tiles' patches with contiguous loads; tiles are processed a few tile rows at a time so that V and M
/// stay in L2. Where a tile row is not a whole number of vectors and that wastes more than 1/8 of the products
/// (a 14×14 output has 7 tiles a row), the forward pass and the input gradient number the tiles across row ends
/// and samples, so the products compute whole 16-column panels of tiles that exist (a batch of eight 14×14
/// images: 400 columns for 392 tiles, not 512); the weight gradient keeps blocks per image. The transforms only
/// add, subtract and halve, so results differ from the direct sum by rounding alone (about 1e-6 relative, well inside PyTorch parity; tested against <see cref="ImplicitGemm"/>).
/// Every output element is computed the same way whichever thread or batch it is in.
/// <c>Forward</c> transforms the weights on every call; where they stay constant between calls (inference, the folded
/// weights), <see cref="TransformWeights(ReadOnlySpan{float}, Span{float}, in ConvGeometry)"/> does it once and
/// <c>ForwardTransformed</c> reads the result, with the same bits out.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static unsafe partial class ConvWinograd
{
    private const int Xi = 16; // 4×4 transformed positions

    // Most tiles in a compact block (Plan.Compact): V and M of 128 tiles at 32 input and 64 output channels are 0.8 MB, in L2.
    private const int MaxCompactTiles = 128;

    /// <summary>
    /// Whether geometry <paramref name="g"/> takes this kernel: 3×3, stride 1, no dilation, one group, and at
    /// least <see cref="MinChannels"/> input and output channels, an output of at least 2×2. The compiler applies the same
    /// rule to the constant shapes (ModelPlan's WinogradConvolution), and a test holds the two equal.
    /// </summary>
    /// <param name="g">Convolution geometry.</param>
    /// <returns>True when the layer is computed here.</returns>
    public static bool Suits(in ConvGeometry g) =>
        Dsl.Contract.ConvolutionRules.Winograd(g.InChannels, g.OutChannels, g.KernelH, g.KernelW, g.StrideH, g.StrideW, g.DilationH, g.DilationW, g.Groups, g.OutH, g.OutW);

    /// <summary>Fewest input and output channels for which the transforms cost less than the multiplies they save.</summary>
    public const int MinChannels = Dsl.Contract.ConvolutionRules.WinogradMinChannels;

    /// <summary>
    /// Whether the weight gradient of <paramref name="g"/> runs here too: when at least 7/8 of the tiles computed lie
    /// on the output. Its transforms cost more than the forward pass's, and a small image (Fashion-MNIST's 14×14:
    /// 49 tiles computed as 64) gains nothing over <see cref="ConvGemm"/>'s, which then takes it. A 7×7 output
    /// (ResNet's last stage) computes its 16 tiles only, rows of 4 tiles paired in a vector, and runs here: 1.9 ms
    /// against ConvGemm's 2.25 for 64 channels, batch 128, 2 threads.
    /// </summary>
    /// <param name="g">Convolution geometry.</param>
    /// <returns>True when <see cref="BackwardWeight(ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, Span{float}, int, in ConvGeometry, Span{float})"/> runs here.</returns>
    public static bool SuitsWeightGradient(in ConvGeometry g)
    {
        if (!Suits(g)) return false;
        var p = Plan.Of(g);
        long used = (long)((g.OutH + 1) / 2) * ((g.OutW + 1) / 2), computed = (long)p.Blocks * p.BlockTiles;
        return 8 * used >= 7 * computed;
    }

    /// <summary>
    /// Tiles the products of a forward pass over <paramref name="n"/> samples compute on one thread, those past the
    /// output included: the tiles of whole 16-column panels (with tiles across row ends and samples where that is
    /// the plan), else of the per-image blocks.
    /// </summary>
    /// <param name="g">Convolution geometry; <see cref="Suits"/> must hold.</param>
    /// <param name="n">Batch size.</param>
    /// <returns>The number of tile columns multiplied.</returns>
    internal static long ForwardTiles(in ConvGeometry g, int n)
    {
        var p = Plan.Of(g);
        if (!p.Compact) return (long)n * p.Blocks * p.BlockTiles;
        int rows = n * p.TileRows;
        return (long)(rows / p.CompactRows) * p.CompactTiles + p.CompactColumns(rows % p.CompactRows);
    }

    /// <summary>Whether the input gradient of <paramref name="g"/> (a stride-1 convolution of dY with flipped kernels) takes this kernel.</summary>
    /// <param name="g">Convolution geometry of the forward layer.</param>
    /// <returns>True when <see cref="BackwardInput(ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, int, in ConvGeometry, Span{float})"/> runs here.</returns>
    public static bool SuitsBackwardInput(in ConvGeometry g) => ImplicitGemm.CanTransposeAsConvolution(g) && Suits(ImplicitGemm.Transposed(g));

    /// <summary>Floats of scratch one thread needs for every pass of <paramref name="g"/>, here or, where a pass does not suit, on <see cref="ConvGemm"/>.</summary>
    /// <param name="g">Convolution geometry.</param>
    /// <returns>The scratch length.</returns>
    public static int ScratchLength(in ConvGeometry g) => Math.Max(
        Math.Max(Suits(g) ? (int)Math.Max(Plan.Of(g).ScratchLength, Plan.Of(g).WeightScratchLength) : 0,
            SuitsBackwardInput(g) ? (int)Plan.Of(ImplicitGemm.Transposed(g)).ScratchLength : 0),
        ConvGemm.ScratchLength(g)); // a pass that does not suit runs on ConvGemm, in the same scratch

    /// <summary>How a geometry is tiled, and where its buffers lie in a thread's scratch.</summary>
    private readonly struct Plan
    {
        public readonly int Cin, Cout, CoutPad, InH, InW, OutH, OutW, PadH, PadW;
        public readonly int TileCols;   // tiles per tile row, rounded up to 8 (one vector); 4 when a row has at most 4 (Half)
        public readonly bool Half;      // 4 tiles per tile row: a vector of 8 tiles spans two tile rows (a 7×7 output computes 16 tiles, not 32)
        public readonly int BlockRows;  // tile rows per block
        public readonly int BlockTiles; // BlockRows · TileCols, a multiple of 16 (one micro-kernel panel)
        public readonly int Blocks;     // blocks per image
        public readonly int RowLength;  // floats per even (or odd) row of the bordered copy
        public readonly int Rows;       // rows of the bordered copy
        public readonly long ULength, CopyLength, VLength, MLength;
        public readonly long UStride;   // floats between U_ξ and U_ξ+1: 8 more than their size, room for a vector store's tail (the contract's WinogradSlack)
        public readonly long VStride;   // floats between V_ξ and V_ξ+1: a cache line more than their size, so the 16 stores of a transform do not share cache sets

        // Forward and input gradient where a tile row is not a whole number of vectors and the rounding wastes more than
        // 1/8 of the products (14×14: rows of 7 tiles), with AVX-512's masked stores: the tiles are numbered across row
        // ends and across samples, and a block is CompactRows consecutive tile rows of the batch (TileRows per sample),
        // its CompactRows·Tc tiles back to back in V's panels and M's rows. Nothing is computed for the tiles a row rounded up to 8 or 16 would add,
        // nor for a block's last rows past an image's end (a 14×14 image was 64 tiles for 49).
        public readonly bool Compact;
        public readonly int Tc;           // tiles per tile row, (OutW + 1) / 2
        public readonly int TileRows;     // tile rows per image, (OutH + 1) / 2
        public readonly int CompactRows;  // tile rows per compact block
        public readonly int CompactTiles; // CompactRows·Tc rounded up to 16: the columns of the block's products
        public readonly long CVStride;    // floats between V_ξ and V_ξ+1 of a compact block

        private Plan(in ConvGeometry g)
        {
            Cin = g.InChannels; Cout = g.OutChannels; CoutPad = (Cout + Gemm.MR - 1) / Gemm.MR * Gemm.MR;
            InH = g.InH; InW = g.InW; OutH = g.OutH; OutW = g.OutW; PadH = g.PadH; PadW = g.PadW;
            int tileRows = (OutH + 1) / 2;
            Half = (OutW + 1) / 2 <= 4;
            TileCols = Half ? 4 : ((OutW + 1) / 2 + 7) & ~7;
            // About 32 tiles per block: V and M for all 16 positions then take 16·(Cin + Cout)·32 floats. Half rows come
            // four to a block, one micro-kernel panel of 16 tiles (a 7×7 output's whole 4×4 grid of tiles).
            BlockRows = Half ? 4 : TileCols % Gemm.NR == 0 ? Math.Max(1, 32 / TileCols) : Math.Max(2, (32 / TileCols) & ~1);
            BlockTiles = BlockRows * TileCols;
            Blocks = (tileRows + BlockRows - 1) / BlockRows;
            RowLength = TileCols + 1;
            Rows = 2 * Blocks * BlockRows + 2;
            UStride = (long)CoutPad * Cin + Dsl.Contract.PackedLengths.WinogradSlack;
            ULength = Xi * UStride;
            CopyLength = (long)Cin * Rows * 2 * RowLength;
            VStride = (long)Cin * BlockTiles + 16;
            VLength = Xi * VStride;
            MLength = (long)Xi * CoutPad * BlockTiles;

            Tc = (OutW + 1) / 2;
            TileRows = tileRows;
            // Where less than 7/8 of the per-image blocks' tiles lie on the output (SuitsWeightGradient's rule): 14×14's 49
            // of 64, not 28×28's 196 of 224, whose 16-channel layers gained nothing (a row of 14 tiles crosses a panel
            // at almost every row, and the stores that split it cost what the products save).
            Compact = !Half && 8L * tileRows * Tc < 7L * Blocks * BlockTiles && Gemm.Wide && Avx512F.VL.IsSupported;
            if (Compact)
            {
                // The number of rows, at most MaxCompactTiles tiles, whose tiles cost the least each (the fewest rows
                // among equals, the least of L2): a block's cost is its 16-column panels, which the products take two at
                // a time, a last odd one alone at about 3/4 of the speed. Rows of 7 tiles: 9 rows, 63 tiles in 4 panels
                // (18 rows, 126 in 8, cost the same and measured 1–3% slower); rows of 10: 3 rows, 30 tiles in 2.
                CompactRows = 1;
                for (int k = 2; k * Tc <= MaxCompactTiles; k++)
                {
                    if ((long)k * Tc * Cost(CompactRows * Tc) > (long)CompactRows * Tc * Cost(k * Tc)) CompactRows = k;
                }

                CompactTiles = Panels(CompactRows * Tc) * 16;
                CVStride = (long)Cin * CompactTiles + 16;
                VLength = Math.Max(VLength, Xi * CVStride);
                // An output transform reads a row's last vector whole, up to 15 floats past the block's tiles.
                MLength = Math.Max(MLength, (long)Xi * CoutPad * CompactTiles + 16);
            }

            static int Panels(int tiles) => (tiles + 15) / 16;

            static int Cost(int tiles) => 3 * Panels(tiles) + (Panels(tiles) & 1); // in thirds of a panel
        }

        /// <summary>Work items of a forward pass (or input gradient) over n samples: tile rows when compact, else (sample, block) pairs.</summary>
        public int Items(int n) => Compact ? n * TileRows : n * Blocks;

        /// <summary>Columns of a compact block's products for <paramref name="rows"/> tile rows: their tiles rounded up to whole panels.</summary>
        public int CompactColumns(int rows) => (rows * Tc + Gemm.NR - 1) / Gemm.NR * Gemm.NR;

        public static Plan Of(in ConvGeometry g) => new(g);

        // The weight gradient: dUᵀ_ξ [CinPad × Cout16] accumulated per thread, and dY's transform packed as
        // 16-column panels of output channels, DM + ξ·DMStride + (o/16)·BlockTiles·16 + tile·16 + o%16.
        public int CinPad => (Cin + Gemm.MR - 1) / Gemm.MR * Gemm.MR;

        public int Cout16 => (Cout + Gemm.NR - 1) / Gemm.NR * Gemm.NR;

        public long DULength => (long)Xi * CinPad * Cout16;

        public long DMStride => (long)Cout16 * BlockTiles + 16;

        public long WeightScratchLength => DULength + CopyLength + VLength + 2 * Xi * DMStride;

        public long ScratchLength => ULength + CopyLength + VLength + MLength;
    }

    /// <summary>
    /// Floats of scratch per pool thread for the layer: this kernel's buffers (thread 0's region also holds the
    /// transformed weights), and enough for <see cref="ConvGemm"/>'s weight gradient of the same layer, which shares it.
    /// </summary>
    /// <param name="g">Convolution geometry.</param>
    /// <returns>The per-thread scratch length.</returns>
    public static int ParallelScratchLength(in ConvGeometry g) => Math.Max(ScratchLength(g), ConvGemm.ParallelScratchLength(g));

    /// <summary>Computes <c>y = conv(x, w) + bias</c> on the caller's thread.</summary>
    /// <param name="x">Input <c>[n, InChannels, InH, InW]</c>.</param>
    /// <param name="w">Weight <c>[OutChannels, InChannels, 3, 3]</c>.</param>
    /// <param name="bias">Bias <c>[OutChannels]</c>, or empty.</param>
    /// <param name="y">Output <c>[n, OutChannels, OutH, OutW]</c>; overwritten.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="g">Convolution geometry; <see cref="Suits"/> must hold.</param>
    /// <param name="scratch">At least <see cref="ScratchLength"/> floats.</param>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y, int n, in ConvGeometry g, Span<float> scratch) =>
        Forward(x, w, bias, y, n, g, scratch, relu: false);

    /// <summary>Computes <c>y = conv(x, w) + bias</c>, ReLU'd when <paramref name="relu"/>, on the caller's thread.</summary>
    /// <param name="x">Input <c>[n, InChannels, InH, InW]</c>.</param>
    /// <param name="w">Weight <c>[OutChannels, InChannels, 3, 3]</c>.</param>
    /// <param name="bias">Bias <c>[OutChannels]</c>, or empty.</param>
    /// <param name="y">Output <c>[n, OutChannels, OutH, OutW]</c>; overwritten.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="g">Convolution geometry; <see cref="Suits"/> must hold.</param>
    /// <param name="scratch">At least <see cref="ScratchLength"/> floats.</param>
    /// <param name="relu">Apply ReLU to the output as it is written.</param>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y, int n, in ConvGeometry g, Span<float> scratch, bool relu) =>
        Forward(x, w, bias, y, n, g, scratch, relu, maxPool: false);

    /// <summary>
    /// Computes <c>y = conv(x, w) + bias</c>, ReLU'd when <paramref name="relu"/>, and with <paramref name="maxPool"/> the
    /// 2×2, stride-2 max pooling of that (an inference <c>maxpool(2)</c> fused into the layer: a 2×2 tile of
    /// output is exactly one pooling window, so the unpooled output is never written). Pooling takes the first
    /// maximum in row-major order and propagates NaN, as <see cref="Pooling"/> and PyTorch do.
    /// </summary>
    /// <param name="x">Input <c>[n, InChannels, InH, InW]</c>.</param>
    /// <param name="w">Weight <c>[OutChannels, InChannels, 3, 3]</c>.</param>
    /// <param name="bias">Bias <c>[OutChannels]</c>, or empty.</param>
    /// <param name="y">Output <c>[n, OutChannels, OutH, OutW]</c>, or <c>[n, OutChannels, OutH/2, OutW/2]</c> pooled; overwritten.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="g">Convolution geometry; <see cref="Suits"/> must hold.</param>
    /// <param name="scratch">At least <see cref="ScratchLength"/> floats.</param>
    /// <param name="relu">Apply ReLU to the output as it is written.</param>
    /// <param name="maxPool">Write the 2×2 max pooling of the output instead of the output.</param>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y, int n, in ConvGeometry g, Span<float> scratch, bool relu, bool maxPool)
    {
        if (!Suits(g))
        {
            if (maxPool) throw new ArgumentException("A fused max pooling needs a geometry that suits Winograd (ConvWinograd.Suits).", nameof(maxPool));
            ConvGemm.Forward(x, w, bias, y, n, g, scratch, relu);
            return;
        }

        // U into the start of the scratch, which the transformed path leaves free for it.
        TransformWeights(w, scratch, g);
        ForwardTransformed(x, scratch, bias, y, n, g, scratch, relu, maxPool);
    }

    /// <summary>
    /// Computes <c>y = act(conv(x, w) + bias + residual)</c> on the caller's thread: a graph's residual add (and the
    /// activation after it) done on each block of tile rows as the output transform writes it.
    /// </summary>
    /// <param name="x">Input <c>[n, InChannels, InH, InW]</c>.</param>
    /// <param name="w">Weight <c>[OutChannels, InChannels, 3, 3]</c>.</param>
    /// <param name="bias">Bias <c>[OutChannels]</c>, or empty.</param>
    /// <param name="y">Output <c>[n, OutChannels, OutH, OutW]</c>; overwritten.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="g">Convolution geometry.</param>
    /// <param name="scratch">At least <see cref="ScratchLength"/> floats.</param>
    /// <param name="activation">The activation after the add.</param>
    /// <param name="residual">The add's other input, laid out like <paramref name="y"/>.</param>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y, int n, in ConvGeometry g, Span<float> scratch,
        FusedActivation activation, ReadOnlySpan<float> residual)
    {
        if (!Suits(g))
        {
            ConvGemm.Forward(x, w, bias, y, n, g, scratch, activation, residual);
            return;
        }

        TransformWeights(w, scratch, g);
        ForwardTransformed(x, scratch, bias, y, n, g, scratch, activation, residual);
    }

    /// <summary>
    /// Forward across <paramref name="pool"/> with a graph's residual add and the activation after it applied to each
    /// block of tile rows as the output transform writes it: <c>y = act(conv(x, w) + bias + residual)</c>.
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
    /// optional residual applied to each block of tile rows as the output transform writes it.
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
        if (!Suits(g))
        {
            ConvGemm.Forward(x, w, bias, y, n, g, scratch, pool, activation, residual, outputStride);
            return;
        }

        // U into the start of the scratch (thread 0's region), which the transformed path leaves free for it.
        TransformWeights(w, scratch, g);
        ForwardTransformed(x, scratch, bias, y, n, g, scratch, pool, activation, residual, outputStride);
    }

    // Floats per sample of the forward output, pooled or not.
    private static int OutputLength(in ConvGeometry g, bool maxPool) => maxPool ? g.OutChannels * (g.OutH / 2) * (g.OutW / 2) : g.OutputLength;

    /// <summary>Input gradient <c>dx = conv_transpose(dy, w)</c>: for a stride-1 layer the Winograd convolution of dy with flipped kernels, else <see cref="ConvGemm"/>'s; <paramref name="dx"/> is overwritten.</summary>
    /// <param name="dy">Output gradient <c>[n, OutChannels, OutH, OutW]</c>.</param>
    /// <param name="w">Weight.</param>
    /// <param name="dx">Input gradient <c>[n, InChannels, InH, InW]</c>; overwritten.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="g">Forward geometry.</param>
    /// <param name="scratch">At least <see cref="ScratchLength"/> (and <see cref="ConvGemm.ScratchLength"/>) floats.</param>
    public static void BackwardInput(ReadOnlySpan<float> dy, ReadOnlySpan<float> w, Span<float> dx, int n, in ConvGeometry g, Span<float> scratch)
    {
        if (!SuitsBackwardInput(g))
        {
            ConvGemm.BackwardInput(dy, w, dx, n, g, scratch);
            return;
        }

        Debug.Assert(dy.Length >= n * g.OutputLength && w.Length >= g.WeightLength && dx.Length >= n * g.InputLength, "buffer too short");
        var plan = Plan.Of(ImplicitGemm.Transposed(g));
        Debug.Assert(scratch.Length >= plan.ScratchLength, "scratch too short");
        fixed (float* pdy = dy, pw = w, pdx = dx, ps = scratch)
        {
            TransformWeights(pw, ps, plan, flipped: true);
            Run(pdy, ps, null, pdx, plan, ps + plan.ULength, 0, plan.Items(n), relu: false);
        }
    }

    // Below this many multiply-adds (of the direct sum) a pass stays on the caller, as ConvGemm's do; a pass over one
    // sample below ConvGemm.SingleSampleThreshold (see there).
    private const long ParallelThreshold = 1L << 20;

    private static bool Parallel(WorkerPool? pool, int n, in ConvGeometry g) =>
        pool is { Threads: > 1 } && (long)n * g.OutChannels * g.OutH * g.OutW * g.InChannels * 9 >= (n > 1 ? ParallelThreshold : ConvGemm.SingleSampleThreshold);

    /// <summary>Forward with its work items (blocks of tile rows of each sample, or the batch's tile rows) split across <paramref name="pool"/>.</summary>
    /// <param name="x">Input.</param><param name="w">Weight.</param><param name="bias">Bias, or empty.</param><param name="y">Output; overwritten.</param>
    /// <param name="n">Batch size.</param><param name="g">Convolution geometry.</param>
    /// <param name="scratch">Per-thread regions of equal length (at least <see cref="ParallelScratchLength"/> each), one per pool thread.</param>
    /// <param name="pool">The pool, or null to run on the caller.</param>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y, int n, in ConvGeometry g, Span<float> scratch, WorkerPool? pool) =>
        Forward(x, w, bias, y, n, g, scratch, pool, relu: false);

    /// <summary>
    /// Forward with its work items split across <paramref name="pool"/>, ReLU applied as it writes when
    /// <paramref name="relu"/>. Blocks of tile rows (or tile rows), not samples, are the unit, so one image keeps both cores busy;
    /// each output element is computed the same way as on one thread.
    /// </summary>
    /// <param name="x">Input.</param><param name="w">Weight.</param><param name="bias">Bias, or empty.</param><param name="y">Output; overwritten.</param>
    /// <param name="n">Batch size.</param><param name="g">Convolution geometry.</param>
    /// <param name="scratch">Per-thread regions of equal length (at least <see cref="ParallelScratchLength"/> each), one per pool thread.</param>
    /// <param name="pool">The pool, or null to run on the caller.</param>
    /// <param name="relu">Apply ReLU to the output as it is written.</param>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y, int n, in ConvGeometry g, Span<float> scratch, WorkerPool? pool, bool relu) =>
        Forward(x, w, bias, y, n, g, scratch, pool, relu, maxPool: false);

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
    /// <param name="maxPool">Write the 2×2 max pooling of the (activated) output instead; only with no activation or ReLU, which commute with the maximum.</param>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y, int n, in ConvGeometry g, Span<float> scratch, WorkerPool? pool, FusedActivation activation, bool maxPool = false)
    {
        bool applied = activation is FusedActivation.None or FusedActivation.Relu;
        if (maxPool && !applied)
            throw new ArgumentException($"{activation} does not commute with max pooling (it is not monotonic): pool after it, not in the output transform.", nameof(activation));
        Forward(x, w, bias, y, n, g, scratch, pool, relu: activation == FusedActivation.Relu, maxPool);
        if (!applied) Activations.Apply(activation, y.Slice(0, n * g.OutputLength));
    }

    /// <summary>Forward split across <paramref name="pool"/>, ReLU'd when <paramref name="relu"/>, 2×2 max pooled when <paramref name="maxPool"/> (see the serial overload).</summary>
    /// <param name="x">Input.</param><param name="w">Weight.</param><param name="bias">Bias, or empty.</param>
    /// <param name="y">Output, or its 2×2 max pooling; overwritten.</param>
    /// <param name="n">Batch size.</param><param name="g">Convolution geometry.</param>
    /// <param name="scratch">Per-thread regions of equal length (at least <see cref="ParallelScratchLength"/> each), one per pool thread.</param>
    /// <param name="pool">The pool, or null to run on the caller.</param>
    /// <param name="relu">Apply ReLU to the output as it is written.</param>
    /// <param name="maxPool">Write the 2×2 max pooling of the output instead of the output.</param>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y, int n, in ConvGeometry g, Span<float> scratch, WorkerPool? pool, bool relu, bool maxPool)
    {
        if (!Suits(g))
        {
            if (maxPool) throw new ArgumentException("A fused max pooling needs a geometry that suits Winograd (ConvWinograd.Suits).", nameof(maxPool));
            ConvGemm.Forward(x, w, bias, y, n, g, scratch, pool, relu);
            return;
        }

        // U into the start of the scratch (thread 0's region), which the transformed path leaves free for it.
        TransformWeights(w, scratch, g);
        ForwardTransformed(x, scratch, bias, y, n, g, scratch, pool, relu, maxPool);
    }

    /// <summary>Input gradient with its items split across <paramref name="pool"/>; <paramref name="dx"/> is overwritten.</summary>
    /// <param name="dy">Output gradient.</param><param name="w">Weight.</param><param name="dx">Input gradient; overwritten.</param>
    /// <param name="n">Batch size.</param><param name="g">Forward geometry.</param>
    /// <param name="scratch">Per-thread regions of equal length (at least <see cref="ParallelScratchLength"/> each), one per pool thread.</param>
    /// <param name="pool">The pool, or null to run on the caller.</param>
    public static void BackwardInput(ReadOnlySpan<float> dy, ReadOnlySpan<float> w, Span<float> dx, int n, in ConvGeometry g, Span<float> scratch, WorkerPool? pool)
    {
        if (!SuitsBackwardInput(g))
        {
            ConvGemm.BackwardInput(dy, w, dx, n, g, scratch, pool);
            return;
        }

        if (!Parallel(pool, n, g))
        {
            BackwardInput(dy, w, dx, n, g, scratch.Slice(0, scratch.Length / (pool?.Threads ?? 1)));
            return;
        }

        var plan = Plan.Of(ImplicitGemm.Transposed(g));
        fixed (float* pdy = dy, pw = w, pdx = dx, ps = scratch)
        {
            TransformWeights(pw, ps, plan, flipped: true);
            var job = new Job { X = pdy, U = ps, Bias = null, Y = pdx, Scratch = ps, ScratchStride = scratch.Length / pool!.Threads, Items = plan.Items(n), Plan = plan, Relu = false };
            RunJob(pool, &job);
        }
    }

    /// <summary>
    /// Weight and bias gradients (accumulated) on the caller's thread, by the same transforms run backwards (where
    /// <see cref="SuitsWeightGradient"/> holds; otherwise <see cref="ConvGemm"/>'s):
    /// <c>dW[o, c] += Gᵀ·(Σ_tiles (A·dY·Aᵀ)[o] ⊙ (Bᵀ·d·B)[c])·G</c>, sixteen <c>[Cin × tiles]·[tiles × Cout]</c>
    /// products accumulated over the batch, then one output transform.
    /// </summary>
    /// <param name="dy">Output gradient <c>[n, OutChannels, OutH, OutW]</c>.</param>
    /// <param name="x">Forward input <c>[n, InChannels, InH, InW]</c>.</param>
    /// <param name="dw">Weight gradient; accumulated.</param>
    /// <param name="dbias">Bias gradient, or empty; accumulated.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="g">Convolution geometry.</param>
    /// <param name="scratch">At least <see cref="ScratchLength"/> floats.</param>
    public static void BackwardWeight(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dw, Span<float> dbias, int n, in ConvGeometry g, Span<float> scratch)
    {
        if (SuitsWeightGradient(g)) WeightGradient(dy, x, dw, dbias, n, g, scratch);
        else ConvGemm.BackwardWeight(dy, x, dw, dbias, n, g, scratch);
    }

    // The Winograd weight gradient on the caller's thread, for any geometry Suits accepts (the tests run it on all).
    internal static void WeightGradient(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dw, Span<float> dbias, int n, in ConvGeometry g, Span<float> scratch)
    {
        Debug.Assert(dy.Length >= n * g.OutputLength && x.Length >= n * g.InputLength && dw.Length >= g.WeightLength, "buffer too short");
        var plan = Plan.Of(g);
        Debug.Assert(scratch.Length >= plan.WeightScratchLength, "scratch too short");
        fixed (float* pdy = dy, px = x, pdw = dw, ps = scratch)
        {
            new Span<float>(ps, (int)plan.DULength).Clear();
            RunWeight(px, pdy, plan, ps, ps + plan.DULength, 0, n * plan.Blocks);
            FinishWeight(ps, pdw, plan);
        }

        BiasGradient(dy, dbias, n, g);
    }

    /// <summary>
    /// Weight and bias gradients (accumulated) with (sample, block) items split across <paramref name="pool"/>: each
    /// thread sums its items' products privately, and the caller adds the threads' sums in thread order, so results
    /// are the same on every run.
    /// </summary>
    /// <param name="dy">Output gradient.</param><param name="x">Forward input.</param><param name="dw">Weight gradient; accumulated.</param>
    /// <param name="dbias">Bias gradient, or empty; accumulated.</param><param name="n">Batch size.</param><param name="g">Convolution geometry.</param>
    /// <param name="scratch">Per-thread regions (at least <see cref="ParallelScratchLength"/> each), one per pool thread.</param><param name="pool">The pool, or null.</param>
    public static void BackwardWeight(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dw, Span<float> dbias, int n, in ConvGeometry g, Span<float> scratch, WorkerPool? pool)
    {
        if (!SuitsWeightGradient(g)) ConvGemm.BackwardWeight(dy, x, dw, dbias, n, g, scratch, pool);
        else if (!Parallel(pool, n, g)) WeightGradient(dy, x, dw, dbias, n, g, scratch.Slice(0, scratch.Length / (pool?.Threads ?? 1)));
        else WeightGradient(dy, x, dw, dbias, n, g, scratch, pool!);
    }

    // The Winograd weight gradient split across the pool, for any geometry Suits accepts.
    internal static void WeightGradient(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dw, Span<float> dbias, int n, in ConvGeometry g, Span<float> scratch, WorkerPool pool)
    {
        var plan = Plan.Of(g);
        long stride = scratch.Length / pool.Threads;
        fixed (float* pdy = dy, px = x, pdw = dw, ps = scratch)
        {
            var job = new Job { X = px, Y = pdy, Scratch = ps, ScratchStride = stride, Items = n * plan.Blocks, Plan = plan };
            pool.RunChunks(&WeightPart, &job, pool.Threads);
            // Thread t's sum lies at the start of its region: add them into thread 0's, in order.
            var total = new Span<float>(ps, (int)plan.DULength);
            for (int part = 1; part < pool.Threads; part++)
            {
                System.Numerics.Tensors.TensorPrimitives.Add(total, new ReadOnlySpan<float>(ps + part * stride, (int)plan.DULength), total);
            }

            FinishWeight(ps, pdw, plan);
        }

        BiasGradient(dy, dbias, n, g);
    }

    private static void WeightPart(void* state, int part, int parts, int thread)
    {
        var job = (Job*)state;
        float* region = job->Scratch + part * job->ScratchStride;
        new Span<float>(region, (int)job->Plan.DULength).Clear();
        var (lo, hi) = WorkerPool.Share(job->Items, part, parts);
        if (lo == hi) return;
        RunWeight(job->X, job->Y, job->Plan, region, region + job->Plan.DULength, lo, hi);
    }

    // dbias[o] += Σ dY[s, o, :, :], sample by sample.
    private static void BiasGradient(ReadOnlySpan<float> dy, Span<float> dbias, int n, in ConvGeometry g)
    {
        if (dbias.IsEmpty) return;
        int pixels = g.OutH * g.OutW;
        for (int s = 0; s < n; s++)
        {
            for (int o = 0; o < g.OutChannels; o++)
            {
                dbias[o] += System.Numerics.Tensors.TensorPrimitives.Sum(dy.Slice(s * g.OutputLength + o * pixels, pixels));
            }
        }
    }

    // Items [lo, hi) into du (dUᵀ_ξ[c, o], accumulated). work = this thread's copy, V and DM.
    private static void RunWeight(float* x, float* dy, in Plan p, float* du, float* work, int lo, int hi)
    {
        float* copy = work, v = copy + p.CopyLength, dm = v + p.VLength, rowsOfDm = dm + Xi * p.DMStride;
        long inLength = (long)p.Cin * p.InH * p.InW, outLength = (long)p.Cout * p.OutH * p.OutW;
        int* rows = stackalloc int[Gemm.MR];
        for (int item = lo; item < hi;)
        {
            int sample = item / p.Blocks, first = item % p.Blocks;
            int last = Math.Min(p.Blocks, first + (hi - item));
            Border(x + sample * inLength, copy, p, 2 * p.BlockRows * first, 2 * p.BlockRows * last + 2);
            for (int block = first; block < last; block++)
            {
                TransformInput(copy, v, p, block, rows: true);
                TransformGradient(dy + sample * outLength, rowsOfDm, p, block);
                PackGradient(rowsOfDm, dm, p);
                // dUᵀ_ξ[c, o] += Σ_tile V_ξ[c, tile]·DM_ξ[tile, o]: A rows (input channels) read in place, B packed.
                for (int xi = 0; xi < Xi; xi++)
                {
                    float* vXi = v + xi * p.VStride, dmXi = dm + xi * p.DMStride, duXi = du + (long)xi * p.CinPad * p.Cout16;
                    for (int c0 = 0; c0 < p.CinPad; c0 += Gemm.MR)
                    {
                        // Rows past Cin repeat the last channel; their sums land in dU's padding rows, never read.
                        for (int i = 0; i < Gemm.MR; i++) rows[i] = Math.Min(c0 + i, p.Cin - 1) * p.BlockTiles;
                        int j = 0;
                        for (; j + 2 * Gemm.NR <= p.Cout16; j += 2 * Gemm.NR)
                        {
                            Gemm.KernelRowsPair(p.BlockTiles, vXi, rows, dmXi + (long)j * p.BlockTiles, dmXi + (long)(j + Gemm.NR) * p.BlockTiles,
                                duXi + (long)c0 * p.Cout16 + j, p.Cout16, accumulate: true);
                        }

                        if (j < p.Cout16) Gemm.KernelRows(p.BlockTiles, vXi, rows, dmXi + (long)j * p.BlockTiles, duXi + (long)c0 * p.Cout16 + j, p.Cout16, accumulate: true);
                    }
                }
            }

            item += last - first;
        }
    }

    // (A·dY·Aᵀ)_ξ for the block's tiles, A = [[1, 0], [1, 1], [1, −1], [0, −1]], 8 tiles per vector, row-major:
    // rows + ξ·DMStride + o·BlockTiles + tile. A tile's outputs past the image count as zero, as do tiles past
    // it and output channels past Cout (up to Cout16).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransformGradient(float* dy, float* rows, in Plan p, int block)
    {
        int outW = p.OutW, plane = p.OutH * outW;
        long stride = p.DMStride;
        if (p.Half)
        {
            // Lanes 0–3 from tile row i (output rows 2i, 2i + 1), lanes 4–7 from tile row i + 1 (rows 2i + 2, 2i + 3).
            for (int o = 0; o < p.Cout16; o++)
            {
                float* channel = dy + (long)o * plane;
                for (int i = 0; i < p.BlockRows; i += 2)
                {
                    float* dest = rows + (long)o * p.BlockTiles + i * p.TileCols;
                    int row = 2 * (block * p.BlockRows + i);
                    if (o >= p.Cout || row >= p.OutH)
                    {
                        for (int xi = 0; xi < Xi; xi++) Vector256.Store(Vector256<float>.Zero, dest + xi * stride);
                        continue;
                    }

                    // Rows 2i and 2i + 2, then 2i + 1 and 2i + 3: at most 8 values each (masked loads), zero past the image.
                    Deinterleave(Row(channel, row, p.OutH, outW), Row(channel, row + 2, p.OutH, outW), out var d00, out var d01);
                    Deinterleave(Row(channel, row + 1, p.OutH, outW), Row(channel, row + 3, p.OutH, outW), out var d10, out var d11);
                    Columns(d00, d01, dest, stride);
                    Columns(d00 + d10, d01 + d11, dest + 4 * stride, stride);
                    Columns(d00 - d10, d01 - d11, dest + 8 * stride, stride);
                    Columns(-d10, -d11, dest + 12 * stride, stride);
                }
            }

            return;
        }

        // Row `source` of a channel of dY: its first (at most 8) values, zero past the image.
        static Vector256<float> Row(float* channel, int source, int outH, int outW) =>
            source < outH ? PartialVector.Load(channel + (long)source * outW, Math.Min(8, outW)) : Vector256<float>.Zero;

        for (int o = 0; o < p.Cout16; o++)
        {
            float* plan = dy + (long)o * plane;
            for (int i = 0; i < p.BlockRows; i++)
            {
                int row = 2 * (block * p.BlockRows + i);
                for (int t0 = 0; t0 < p.TileCols; t0 += 8)
                {
                    float* dest = rows + (long)o * p.BlockTiles + i * p.TileCols + t0;
                    int col = 2 * t0;
                    if (o >= p.Cout || row >= p.OutH || col >= outW)
                    {
                        for (int xi = 0; xi < Xi; xi++) Vector256.Store(Vector256<float>.Zero, dest + xi * stride);
                        continue;
                    }

                    // Rows `row` and `row + 1` from column `col`: 16 values each, zero past the image.
                    float* top = plan + (long)row * outW + col, bottom = top + outW;
                    int columns = Math.Min(16, outW - col);
                    bool second = row + 1 < p.OutH;
                    Vector256<float> d00, d01, d10 = default, d11 = default;
                    if (columns == 16)
                    {
                        Deinterleave(top, out d00, out d01);
                        if (second) Deinterleave(bottom, out d10, out d11);
                    }
                    else
                    {
                        // The row's last columns: masked loads, zero past the image (and no second row past the bottom).
                        int low = Math.Min(8, columns);
                        Deinterleave(PartialVector.Load(top, low), PartialVector.Load(top + 8, columns - low), out d00, out d01);
                        if (second) Deinterleave(PartialVector.Load(bottom, low), PartialVector.Load(bottom + 8, columns - low), out d10, out d11);
                    }

                    // Rows (A·dY): P0 = d0, P1 = d0 + d1, P2 = d0 − d1, P3 = −d1; then columns the same way.
                    Columns(d00, d01, dest, stride);
                    Columns(d00 + d10, d01 + d11, dest + 4 * stride, stride);
                    Columns(d00 - d10, d01 - d11, dest + 8 * stride, stride);
                    Columns(-d10, -d11, dest + 12 * stride, stride);
                }
            }
        }

        static void Columns(Vector256<float> a, Vector256<float> b, float* dest, long stride)
        {
            Vector256.Store(a, dest);
            Vector256.Store(a + b, dest + stride);
            Vector256.Store(a - b, dest + 2 * stride);
            Vector256.Store(-b, dest + 3 * stride);
        }
    }

    // The 8 even and 8 odd values of 16 consecutive ones.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Deinterleave(float* s, out Vector256<float> even, out Vector256<float> odd)
    {
        if (Avx2.IsSupported)
        {
            Deinterleave(Avx.LoadVector256(s), Avx.LoadVector256(s + 8), out even, out odd);
            return;
        }

        even = Vector256.Create(s[0], s[2], s[4], s[6], s[8], s[10], s[12], s[14]);
        odd = Vector256.Create(s[1], s[3], s[5], s[7], s[9], s[11], s[13], s[15]);
    }

    // The 8 even and 8 odd values of a followed by b.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Deinterleave(Vector256<float> a, Vector256<float> b, out Vector256<float> even, out Vector256<float> odd)
    {
        if (Avx2.IsSupported)
        {
            // a0 a2 b0 b2 | a4 a6 b4 b6, then the middle 64-bit halves swapped.
            even = Avx2.Permute4x64(Avx.Shuffle(a, b, 0b10_00_10_00).AsDouble(), 0b11_01_10_00).AsSingle();
            odd = Avx2.Permute4x64(Avx.Shuffle(a, b, 0b11_01_11_01).AsDouble(), 0b11_01_10_00).AsSingle();
            return;
        }

        even = Vector256.Create(a[0], a[2], a[4], a[6], b[0], b[2], b[4], b[6]);
        odd = Vector256.Create(a[1], a[3], a[5], a[7], b[1], b[3], b[5], b[7]);
    }

    // DM_ξ[tile, o] packed as the micro-kernel's B panels of 16 output channels, by 8×8 transposes of the row-major transform.
    private static void PackGradient(float* rows, float* dm, in Plan p)
    {
        int tiles = p.BlockTiles;
        for (int xi = 0; xi < Xi; xi++)
        {
            float* source = rows + xi * p.DMStride, dest = dm + xi * p.DMStride;
            for (int o0 = 0; o0 < p.Cout16; o0 += 8)
            {
                float* panel = dest + (long)(o0 / Gemm.NR) * tiles * Gemm.NR + o0 % Gemm.NR;
                for (int t0 = 0; t0 < tiles; t0 += 8)
                {
                    if (Avx.IsSupported)
                    {
                        Gemm.Transpose8x8(source + (long)o0 * tiles + t0, tiles, panel + t0 * Gemm.NR, Gemm.NR);
                        continue;
                    }

                    for (int r = 0; r < 8; r++)
                    {
                        for (int c = 0; c < 8; c++) panel[(t0 + c) * Gemm.NR + r] = source[(long)(o0 + r) * tiles + t0 + c];
                    }
                }
            }
        }
    }

    // dW[o, c] += (Gᵀ·dU·G) with Gᵀ = [[1, ½, ½, 0], [0, ½, −½, 0], [0, ½, ½, 1]], dU_ξ[o, c] = du[ξ][c, o]:
    // 8 output channels per vector (contiguous in du), the nine results of each lane added to its own kernel.
    private static void FinishWeight(float* du, float* dw, in Plan p)
    {
        long xiStride = (long)p.CinPad * p.Cout16;
        var half = Vector256.Create(0.5f);
        float* k9 = stackalloc float[9 * 8];
        for (int c = 0; c < p.Cin; c++)
        {
            for (int o0 = 0; o0 < p.Cout; o0 += 8)
            {
                float* m = du + (long)c * p.Cout16 + o0;
                var m0 = Vector256.Load(m); var m1 = Vector256.Load(m + xiStride); var m2 = Vector256.Load(m + 2 * xiStride); var m3 = Vector256.Load(m + 3 * xiStride);
                var m4 = Vector256.Load(m + 4 * xiStride); var m5 = Vector256.Load(m + 5 * xiStride); var m6 = Vector256.Load(m + 6 * xiStride); var m7 = Vector256.Load(m + 7 * xiStride);
                var m8 = Vector256.Load(m + 8 * xiStride); var m9 = Vector256.Load(m + 9 * xiStride); var m10 = Vector256.Load(m + 10 * xiStride); var m11 = Vector256.Load(m + 11 * xiStride);
                var m12 = Vector256.Load(m + 12 * xiStride); var m13 = Vector256.Load(m + 13 * xiStride); var m14 = Vector256.Load(m + 14 * xiStride); var m15 = Vector256.Load(m + 15 * xiStride);
                // Rows: R[i, k] = Σ_a Gᵀ[i, a]·dU[a, k].
                var s0 = half * (m4 + m8); var s1 = half * (m5 + m9); var s2 = half * (m6 + m10); var s3 = half * (m7 + m11);
                Columns(m0 + s0, m1 + s1, m2 + s2, m3 + s3, k9, half);
                Columns(half * (m4 - m8), half * (m5 - m9), half * (m6 - m10), half * (m7 - m11), k9 + 24, half);
                Columns(s0 + m12, s1 + m13, s2 + m14, s3 + m15, k9 + 48, half);
                int lanes = Math.Min(8, p.Cout - o0);
                for (int l = 0; l < lanes; l++)
                {
                    float* k = dw + ((long)(o0 + l) * p.Cin + c) * 9;
                    for (int t = 0; t < 9; t++) k[t] += k9[(t / 3) * 24 + (t % 3) * 8 + l];
                }
            }
        }

        // Columns of one row: (a + ½(b + c), ½(b − c), ½(b + c) + d), each 8 lanes, at dest, dest + 8, dest + 16.
        static void Columns(Vector256<float> a, Vector256<float> b, Vector256<float> c, Vector256<float> d, float* dest, Vector256<float> half)
        {
            var bc = half * (b + c);
            Vector256.Store(a + bc, dest);
            Vector256.Store(half * (b - c), dest + 8);
            Vector256.Store(bc + d, dest + 16);
        }
    }

    private struct Job
    {
        public float* X, U, Bias, Y, Scratch;
        public long ScratchStride;
        public int Items;
        public Plan Plan;
        public bool Relu, MaxPool;
        public float* Residual; // null: no residual add
        public FusedActivation Activation; // applied to each block once transformed (after the residual add)
        public long YStride; // floats between samples of Y; 0: the output length
    }

    // Chunk `part`'s share of the items (one chunk per thread, each thread's own first); the transformed weights at U (the start
    // of region 0, or the caller's), each region's work after its first ULength floats.
    private static void Part(void* state, int part, int parts, int thread)
    {
        var job = (Job*)state;
        var (lo, hi) = WorkerPool.Share(job->Items, part, parts);
        if (lo == hi) return;
        Run(job->X, job->U, job->Bias, job->Y, job->Plan, job->Scratch + part * job->ScratchStride + job->Plan.ULength, lo, hi, job->Relu, job->MaxPool, job->Residual, job->Activation, job->YStride);
    }

    // Runs a forward job across the pool: its items ((sample, block) pairs, or a compact plan's tile rows) split between
    // the threads, or, when there is only one (a batch of one image whose output is a single block: 7×7, 8×8; or a
    // compact plan's single tile row, an output at most 2 high, then computed as its one per-image block), that item
    // split by output channels, whole
    // panels of U per thread, each thread copying and transforming the input itself: the input transform is a small
    // part of the work next to the products, and every channel is computed as on one thread (the same bits).
    private static void RunJob(WorkerPool pool, Job* job)
    {
        if (job->Items == 1 && !job->MaxPool && job->Plan.CoutPad / Gemm.MR >= pool.Threads) pool.RunChunks(&ChannelPart, job, pool.Threads);
        else pool.RunChunks(&Part, job, pool.Threads);
    }

    // Chunk `part`'s output channels of the job's one item: panels Share(CoutPad / MR, part, parts) of U.
    private static void ChannelPart(void* state, int part, int parts, int thread)
    {
        var job = (Job*)state;
        ref readonly Plan p = ref job->Plan;
        var (first, last) = WorkerPool.Share(p.CoutPad / Gemm.MR, part, parts);
        int oLo = first * Gemm.MR, oHi = Math.Min(last * Gemm.MR, p.Cout);
        if (oLo >= oHi) return;
        float* copy = job->Scratch + part * job->ScratchStride + p.ULength, v = copy + p.CopyLength, m = v + p.VLength;
        Border(job->X, copy, p, 0, 2 * p.BlockRows + 2);
        TransformInput(copy, v, p, 0);
        int rows = ProductRows(p, oLo, last * Gemm.MR);
        for (int xi = 0; xi < Xi; xi++)
        {
            Gemm.PanelProduct(p.Cin, job->U + xi * p.UStride + (long)oLo * p.Cin, rows, v + xi * p.VStride, p.BlockTiles,
                m + ((long)xi * p.CoutPad + oLo) * p.BlockTiles, p.BlockTiles, accumulate: false, edge: null);
        }

        TransformOutput(m, job->Bias, job->Y, p, 0, job->Relu, oLo, oHi);
        if (job->Residual != null || job->Activation != FusedActivation.None)
        {
            long plane = (long)p.OutH * p.OutW;
            ResidualEpilogue.ApplyRows(job->Y + oLo * plane, job->Residual == null ? null : job->Residual + oLo * plane, oHi - oLo, p.OutH, p.OutW,
                0, Math.Min(p.OutH, 2 * p.BlockRows), job->Activation);
        }
    }

    // Items [lo, hi): item i is block i % Blocks of sample i / Blocks (a compact plan's are tile rows: RunCompact).
    // work = this thread's copy, V and M.
    // With a residual or an activation (never with maxPool), each block's rows of every channel get it once transformed.
    // Sample s of y (and of the residual) starts at s·yStride (0: the output length).
    private static void Run(float* x, float* u, float* bias, float* y, in Plan p, float* work, int lo, int hi, bool relu, bool maxPool = false,
        float* residual = null, FusedActivation activation = FusedActivation.None, long yStride = 0)
    {
        float* copy = work, v = copy + p.CopyLength, m = v + p.VLength;
        long inLength = (long)p.Cin * p.InH * p.InW, outLength = maxPool ? (long)p.Cout * (p.OutH / 2) * (p.OutW / 2) : (long)p.Cout * p.OutH * p.OutW;
        if (yStride != 0) outLength = yStride;
        if (p.Compact)
        {
            RunCompact(x, u, bias, y, p, copy, v, m, inLength, outLength, lo, hi, relu, maxPool, residual, activation);
            return;
        }

        for (int item = lo; item < hi;)
        {
            int sample = item / p.Blocks, first = item % p.Blocks;
            int last = Math.Min(p.Blocks, first + (hi - item)); // blocks [first, last) of this sample
            // Input rows 2·R·first … 2·R·last + 1 of the bordered image serve these blocks.
            Border(x + sample * inLength, copy, p, 2 * p.BlockRows * first, 2 * p.BlockRows * last + 2);
            for (int block = first; block < last; block++)
            {
                TransformInput(copy, v, p, block);
                Multiply(u, v, m, p);
                if (maxPool) TransformOutputPooled(m, bias, y + sample * outLength, p, block, relu);
                else TransformOutput(m, bias, y + sample * outLength, p, block, relu);
                if (residual != null || activation != FusedActivation.None)
                {
                    ResidualEpilogue.ApplyRows(y + sample * outLength, residual == null ? null : residual + sample * outLength, p.Cout, p.OutH, p.OutW,
                        2 * p.BlockRows * block, Math.Min(p.OutH, 2 * p.BlockRows * (block + 1)), activation);
                }
            }

            item += last - first;
        }
    }

    // Run on a compact plan: tile rows [lo, hi) of the batch (row r is tile row r % TileRows of sample r / TileRows),
    // CompactRows at a time. Each block's rows are transformed sample by sample into one V, multiplied once, and
    // written back sample by sample; a tile's arithmetic is the per-image blocks' own, so the bits are the same.
    private static void RunCompact(float* x, float* u, float* bias, float* y, in Plan p, float* copy, float* v, float* m, long inLength, long outLength,
        int lo, int hi, bool relu, bool maxPool, float* residual, FusedActivation activation)
    {
        int rows = ProductRows(p, 0, p.CoutPad);
        int copied = -1; // the tile row whose input rows the bordered copy already holds up to (of the sample of tile row `copied`)
        for (int r0 = lo; r0 < hi; r0 += p.CompactRows)
        {
            int r1 = Math.Min(hi, r0 + p.CompactRows);
            for (int r = r0; r < r1;)
            {
                int sample = r / p.TileRows, i0 = r % p.TileRows, i1 = Math.Min(p.TileRows, i0 + r1 - r);
                // Input rows 2·i0 … 2·i1 + 1 of the bordered image serve tile rows i0 … i1 − 1; where the previous
                // block ended on this sample's tile row i0, its last two rows (2·i0, 2·i0 + 1) are already there.
                Border(x + sample * inLength, copy, p, r == copied ? 2 * i0 + 2 : 2 * i0, 2 * i1 + 2);
                TransformInputCompact(copy, v, p, i0, i1, (r - r0) * p.Tc);
                r += i1 - i0;
                copied = i1 < p.TileRows ? r : -1;
            }

            int columns = p.CompactColumns(r1 - r0);
            for (int xi = 0; xi < Xi; xi++)
            {
                Gemm.PanelProduct(p.Cin, u + xi * p.UStride, rows, v + xi * p.CVStride, columns, m + (long)xi * p.CoutPad * p.CompactTiles, p.CompactTiles,
                    accumulate: false, edge: null);
            }

            for (int r = r0; r < r1;)
            {
                int sample = r / p.TileRows, i0 = r % p.TileRows, i1 = Math.Min(p.TileRows, i0 + r1 - r), q0 = (r - r0) * p.Tc;
                float* ys = y + sample * outLength;
                if (maxPool) TransformOutputPooled(m, p.CompactTiles, bias, ys, p, i0, i1, q0, p.Tc, relu);
                else TransformOutput(m, p.CompactTiles, bias, ys, p, i0, i1, q0, p.Tc, relu, 0, p.Cout);
                if (residual != null || activation != FusedActivation.None)
                {
                    ResidualEpilogue.ApplyRows(ys, residual == null ? null : residual + sample * outLength, p.Cout, p.OutH, p.OutW,
                        2 * i0, Math.Min(p.OutH, 2 * i1), activation);
                }

                r += i1 - i0;
            }
        }
    }

    // U_ξ[o, c] = (G·g·Gᵀ)_ξ for g = w[o, c] (or, flipped, g = w[c, o] rotated by 180°: the input
    // gradient's kernels), stored as Gemm's packed A panels: U + ξ·CoutPad·Cin + (o/6)·6·Cin + c·6 + o%6.
    private static void TransformWeights(float* w, float* u, in Plan p, bool flipped)
    {
        if (Avx2.IsSupported)
        {
            TransformWeightsAvx2(w, u, p, flipped);
            return;
        }

        int cin = p.Cin, cout = p.Cout;
        long xiStride = p.UStride;
        float* t = stackalloc float[Xi];
        for (int o = 0; o < p.CoutPad; o++)
        {
            for (int c = 0; c < cin; c++)
            {
                float* panel = u + (long)(o / Gemm.MR) * Gemm.MR * cin + c * Gemm.MR + o % Gemm.MR;
                if (o >= cout)
                {
                    for (int xi = 0; xi < Xi; xi++) panel[xi * xiStride] = 0f;
                    continue;
                }

                // Forward: w[o, c]. Flipped: the forward layer had cin outputs and cout inputs, its kernel [c, o] rotated by 180°.
                float* k = flipped ? w + ((long)c * cout + o) * 9 : w + ((long)o * cin + c) * 9;
                if (!flipped) Filter(k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7], k[8], t);
                else Filter(k[8], k[7], k[6], k[5], k[4], k[3], k[2], k[1], k[0], t);
                for (int xi = 0; xi < Xi; xi++) panel[xi * xiStride] = t[xi];
            }
        }
    }

    // The same, one panel row of 6 output channels per vector (lanes 6 and 7 spill into the next
    // input channel's slot, rewritten next, or into the 8 floats of slack after U_ξ): 9 gathers, then
    // the transform on whole vectors and 16 stores.
    private static void TransformWeightsAvx2(float* w, float* u, in Plan p, bool flipped)
    {
        int cin = p.Cin, cout = p.Cout;
        long xiStride = p.UStride;
        // Lane l reads output channel o + l: 9·cin floats apart in w[o, c], 9 apart in w[c, o].
        int laneStride = flipped ? 9 : 9 * cin;
        var half = Vector256.Create(0.5f);
        for (int o = 0; o < p.CoutPad; o += Gemm.MR)
        {
            int lanes = Math.Min(Gemm.MR, cout - o);
            var index = Vector256.Create(0, laneStride, 2 * laneStride, 3 * laneStride, 4 * laneStride, 5 * laneStride, 0, 0);
            var valid = Vector256.Create(0 < lanes ? -1 : 0, 1 < lanes ? -1 : 0, 2 < lanes ? -1 : 0, 3 < lanes ? -1 : 0, 4 < lanes ? -1 : 0, 5 < lanes ? -1 : 0, 0, 0).AsSingle();
            index &= valid.AsInt32(); // lanes past cout read lane 0's kernel, then are zeroed
            for (int c = 0; c < cin; c++)
            {
                float* k = flipped ? w + ((long)c * cout + o) * 9 : w + ((long)o * cin + c) * 9;
                Vector256<float> g0, g1, g2, g3, g4, g5, g6, g7, g8;
                if (!flipped)
                {
                    g0 = Avx2.GatherVector256(k, index, 4); g1 = Avx2.GatherVector256(k + 1, index, 4); g2 = Avx2.GatherVector256(k + 2, index, 4);
                    g3 = Avx2.GatherVector256(k + 3, index, 4); g4 = Avx2.GatherVector256(k + 4, index, 4); g5 = Avx2.GatherVector256(k + 5, index, 4);
                    g6 = Avx2.GatherVector256(k + 6, index, 4); g7 = Avx2.GatherVector256(k + 7, index, 4); g8 = Avx2.GatherVector256(k + 8, index, 4);
                }
                else
                {
                    g0 = Avx2.GatherVector256(k + 8, index, 4); g1 = Avx2.GatherVector256(k + 7, index, 4); g2 = Avx2.GatherVector256(k + 6, index, 4);
                    g3 = Avx2.GatherVector256(k + 5, index, 4); g4 = Avx2.GatherVector256(k + 4, index, 4); g5 = Avx2.GatherVector256(k + 3, index, 4);
                    g6 = Avx2.GatherVector256(k + 2, index, 4); g7 = Avx2.GatherVector256(k + 1, index, 4); g8 = Avx2.GatherVector256(k, index, 4);
                }

                // Rows (G·g), then each row's columns, exactly as Filter does per lane.
                var r10 = half * (g0 + g3 + g6); var r11 = half * (g1 + g4 + g7); var r12 = half * (g2 + g5 + g8);
                var r20 = half * (g0 - g3 + g6); var r21 = half * (g1 - g4 + g7); var r22 = half * (g2 - g5 + g8);
                float* dest = u + (long)o * cin + c * Gemm.MR;
                Row(g0, g1, g2, dest, xiStride, half, valid);
                Row(r10, r11, r12, dest + 4 * xiStride, xiStride, half, valid);
                Row(r20, r21, r22, dest + 8 * xiStride, xiStride, half, valid);
                Row(g6, g7, g8, dest + 12 * xiStride, xiStride, half, valid);
            }
        }

        static void Row(Vector256<float> a, Vector256<float> b, Vector256<float> c, float* dest, long stride, Vector256<float> half, Vector256<float> valid)
        {
            Vector256.Store(a & valid, dest);
            Vector256.Store((half * (a + b + c)) & valid, dest + stride);
            Vector256.Store((half * (a - b + c)) & valid, dest + 2 * stride);
            Vector256.Store(c & valid, dest + 3 * stride);
        }
    }

    // G·g·Gᵀ with G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]], into t[4·a + k].
    private static void Filter(float g0, float g1, float g2, float g3, float g4, float g5, float g6, float g7, float g8, float* t)
    {
        // Rows: (G·g)[a, j].
        float r00 = g0, r01 = g1, r02 = g2;
        float r10 = 0.5f * (g0 + g3 + g6), r11 = 0.5f * (g1 + g4 + g7), r12 = 0.5f * (g2 + g5 + g8);
        float r20 = 0.5f * (g0 - g3 + g6), r21 = 0.5f * (g1 - g4 + g7), r22 = 0.5f * (g2 - g5 + g8);
        float r30 = g6, r31 = g7, r32 = g8;
        Row(r00, r01, r02, t);
        Row(r10, r11, r12, t + 4);
        Row(r20, r21, r22, t + 8);
        Row(r30, r31, r32, t + 12);

        static void Row(float a, float b, float c, float* t)
        {
            t[0] = a;
            t[1] = 0.5f * (a + b + c);
            t[2] = 0.5f * (a - b + c);
            t[3] = c;
        }
    }

    // Rows [rowLo, rowHi) of the zero-bordered image, each split into its even and odd columns:
    // row r of channel c is at copy + (c·Rows + r)·2·RowLength (even columns), then the odd ones.
    private static void Border(float* x, float* copy, in Plan p, int rowLo, int rowHi)
    {
        int len = p.RowLength, inW = p.InW, pad = p.PadW;
        // With AVX-512, Split's masks are computed once for every row of the call (they depend only on the column).
        bool wide = Avx512F.VL.IsSupported;
        var masks = stackalloc Vector256<float>[wide ? SplitMaskCount(len) : 0];
        if (wide) SplitMasks(inW, pad, len, masks);

        for (int c = 0; c < p.Cin; c++)
        {
            float* plane = x + (long)c * p.InH * inW;
            for (int r = rowLo; r < rowHi; r++)
            {
                float* even = copy + ((long)c * p.Rows + r) * 2 * len, odd = even + len;
                int source = r - p.PadH;
                if ((uint)source >= (uint)p.InH)
                {
                    new Span<float>(even, 2 * len).Clear();
                    continue;
                }

                if (Sse.IsSupported && c + 1 < p.Cin)
                {
                    // The same row of the next channel, one plane on: in training the input comes back from the
                    // forward pass out of cache, and a block's rows of one channel are too short a stream for the
                    // hardware's prefetch (ResNet-20's batch-128 step: this copy 11% → 6.6% of the time).
                    float* next = plane + (long)p.InH * inW + (long)source * inW;
                    Sse.Prefetch0(next);
                    Sse.Prefetch0(next + inW - 1);
                }

                if (wide) SplitMasked(plane + (long)source * inW - pad, masks, even, odd, len);
                else Split(plane + (long)source * inW, inW, pad, even, odd, len);
            }
        }
    }

    // Masks of Split's loads for rows `width` wide, split from column −pad into `len` even and `len` odd values:
    // masks[2s] for the 8 columns from 16s − pad, masks[2s + 1] for the next 8, set on the lanes inside the row.
    private static int SplitMaskCount(int len) => 2 * ((len + 7) / 8);

    private static void SplitMasks(int width, int pad, int len, Vector256<float>* masks)
    {
        var lane = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7);
        var limit = Vector256.Create(width);
        for (int step = 0; step < (len + 7) / 8; step++)
        {
            var column = lane + Vector256.Create(16 * step - pad);
            masks[2 * step] = (Vector256.GreaterThanOrEqual(column, Vector256<int>.Zero) & Vector256.LessThan(column, limit)).AsSingle();
            column += Vector256.Create(8);
            masks[2 * step + 1] = (Vector256.GreaterThanOrEqual(column, Vector256<int>.Zero) & Vector256.LessThan(column, limit)).AsSingle();
        }
    }

    // Split with AVX-512 and its masks (SplitMasks): 16 columns from 16s − pad at a time, at start + 16s, the lanes
    // outside the row masked off (not read, loaded as zero: the border), split into 8 even and 8 odd; the last even
    // and odd values stored masked.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void SplitMasked(float* start, Vector256<float>* masks, float* even, float* odd, int len)
    {
        int full = len / 8;
        for (int step = 0; step < full; step++)
        {
            var a = Avx512F.VL.MaskLoad(start + 16 * step, masks[2 * step], Vector256<float>.Zero);
            var b = Avx512F.VL.MaskLoad(start + 16 * step + 8, masks[2 * step + 1], Vector256<float>.Zero);
            Deinterleave(a, b, out var e, out var o);
            Vector256.Store(e, even + 8 * step);
            Vector256.Store(o, odd + 8 * step);
        }

        if (len > 8 * full)
        {
            var a = Avx512F.VL.MaskLoad(start + 16 * full, masks[2 * full], Vector256<float>.Zero);
            var b = Avx512F.VL.MaskLoad(start + 16 * full + 8, masks[2 * full + 1], Vector256<float>.Zero);
            Deinterleave(a, b, out var e, out var o);
            PartialVector.Store(even + 8 * full, e, len - 8 * full);
            PartialVector.Store(odd + 8 * full, o, len - 8 * full);
        }
    }

    // even[t] = row[2t − pad], odd[t] = row[2t + 1 − pad], zero outside [0, width); also the phase split of a
    // stride-2 convolution's rows (ImplicitGemm.CopyPhases).
    internal static void Split(float* row, int width, int pad, float* even, float* odd, int len)
    {
        if (Avx512F.VL.IsSupported)
        {
            var masks = stackalloc Vector256<float>[SplitMaskCount(len)];
            SplitMasks(width, pad, len, masks);
            SplitMasked(row - pad, masks, even, odd, len);
            return;
        }

        int t = 0;
        // Columns below 0: scalar until both 2t − pad and 2t + 1 − pad are inside.
        for (; t < len && 2 * t - pad < 0; t++)
        {
            int c0 = 2 * t - pad, c1 = c0 + 1;
            even[t] = (uint)c0 < (uint)width ? row[c0] : 0f;
            odd[t] = (uint)c1 < (uint)width ? row[c1] : 0f;
        }

        // 8 even and 8 odd columns from 16 consecutive ones.
        for (; t + 8 <= len && 2 * t - pad + 16 <= width; t += 8)
        {
            Deinterleave(row + 2 * t - pad, out var e, out var o);
            Vector256.Store(e, even + t);
            Vector256.Store(o, odd + t);
        }

        for (; t < len; t++)
        {
            int c0 = 2 * t - pad, c1 = c0 + 1;
            even[t] = (uint)c0 < (uint)width ? row[c0] : 0f;
            odd[t] = (uint)c1 < (uint)width ? row[c1] : 0f;
        }
    }

    // V_ξ[c, tile] = (Bᵀ·d·B)_ξ for the block's tiles, 8 tiles at a time, stored as Gemm's packed B panels:
    // V + ((ξ·Q + tile/16)·Cin + c)·16 + tile%16, with Q = BlockTiles/16.
    // Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]].
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    // With rows (the weight gradient's layout), V_ξ is row-major instead: V + ξ·VStride + c·BlockTiles + tile.
    private static void TransformInput(float* copy, float* v, in Plan p, int block, bool rows = false)
    {
        if (p.Half)
        {
            TransformInputHalf(copy, v, p, block, rows);
            return;
        }

        if (Gemm.Wide && p.TileCols % 16 == 0)
        {
            TransformInputWide(copy, v, p, block, rows);
            return;
        }

        int len = p.RowLength, cin = p.Cin;
        long xiStride = p.VStride;
        for (int c = 0; c < cin; c++)
        {
            for (int i = 0; i < p.BlockRows; i++)
            {
                int r = 2 * (block * p.BlockRows + i);
                float* row0 = copy + ((long)c * p.Rows + r) * 2 * len;
                float* row1 = row0 + 2 * len, row2 = row1 + 2 * len, row3 = row2 + 2 * len;
                for (int t0 = 0; t0 < p.TileCols; t0 += 8)
                {
                    int local = i * p.TileCols + t0;
                    float* dest = rows ? v + (long)c * p.BlockTiles + local : v + ((long)(local / Gemm.NR) * cin + c) * Gemm.NR + local % Gemm.NR;
                    // Columns of each row (d·B): k0 = d0 − d2, k1 = d1 + d2, k2 = d2 − d1, k3 = d1 − d3.
                    ColumnPass(row0 + t0, len, out var a0, out var a1, out var a2, out var a3);
                    ColumnPass(row1 + t0, len, out var b0, out var b1, out var b2, out var b3);
                    ColumnPass(row2 + t0, len, out var c0, out var c1, out var c2, out var c3);
                    ColumnPass(row3 + t0, len, out var d0, out var d1, out var d2, out var d3);
                    RowPass(a0, a1, a2, a3, b0, b1, b2, b3, c0, c1, c2, c3, d0, d1, d2, d3, dest, xiStride);
                }
            }
        }
    }

    // TransformInput on 512-bit vectors, 16 tiles at a time, where TileCols is a multiple of 16 (a 28- or 32-wide output):
    // half the instructions of the 8-tile vectors, lane for lane the same arithmetic, so the same bits. A vector of 16
    // tiles is exactly one micro-kernel panel row of V.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransformInputWide(float* copy, float* v, in Plan p, int block, bool rows)
    {
        int len = p.RowLength, cin = p.Cin;
        long xiStride = p.VStride;
        for (int c = 0; c < cin; c++)
        {
            for (int i = 0; i < p.BlockRows; i++)
            {
                int r = 2 * (block * p.BlockRows + i);
                float* row0 = copy + ((long)c * p.Rows + r) * 2 * len;
                float* row1 = row0 + 2 * len, row2 = row1 + 2 * len, row3 = row2 + 2 * len;
                for (int t0 = 0; t0 < p.TileCols; t0 += 16)
                {
                    int local = i * p.TileCols + t0;
                    float* dest = rows ? v + (long)c * p.BlockTiles + local : v + ((long)(local / Gemm.NR) * cin + c) * Gemm.NR;
                    ColumnPassWide(row0 + t0, len, out var a0, out var a1, out var a2, out var a3);
                    ColumnPassWide(row1 + t0, len, out var b0, out var b1, out var b2, out var b3);
                    ColumnPassWide(row2 + t0, len, out var c0, out var c1, out var c2, out var c3);
                    ColumnPassWide(row3 + t0, len, out var d0, out var d1, out var d2, out var d3);
                    Vector512.Store(a0 - c0, dest);
                    Vector512.Store(a1 - c1, dest + xiStride);
                    Vector512.Store(a2 - c2, dest + 2 * xiStride);
                    Vector512.Store(a3 - c3, dest + 3 * xiStride);
                    Vector512.Store(b0 + c0, dest + 4 * xiStride);
                    Vector512.Store(b1 + c1, dest + 5 * xiStride);
                    Vector512.Store(b2 + c2, dest + 6 * xiStride);
                    Vector512.Store(b3 + c3, dest + 7 * xiStride);
                    Vector512.Store(c0 - b0, dest + 8 * xiStride);
                    Vector512.Store(c1 - b1, dest + 9 * xiStride);
                    Vector512.Store(c2 - b2, dest + 10 * xiStride);
                    Vector512.Store(c3 - b3, dest + 11 * xiStride);
                    Vector512.Store(b0 - d0, dest + 12 * xiStride);
                    Vector512.Store(b1 - d1, dest + 13 * xiStride);
                    Vector512.Store(b2 - d2, dest + 14 * xiStride);
                    Vector512.Store(b3 - d3, dest + 15 * xiStride);
                }
            }
        }
    }

    // ColumnPass on 16 tiles.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ColumnPassWide(float* even, int len, out Vector512<float> k0, out Vector512<float> k1, out Vector512<float> k2, out Vector512<float> k3)
    {
        var e0 = Vector512.Load(even);
        var e1 = Vector512.Load(even + 1);
        var o0 = Vector512.Load(even + len);
        var o1 = Vector512.Load(even + len + 1);
        k0 = e0 - e1;
        k1 = o0 + e1;
        k2 = e1 - o0;
        k3 = o0 - o1;
    }

    // TransformInput for rows of 4 tiles (Plan.Half): each vector holds tile rows i (lanes 0–3) and i + 1 (lanes 4–7),
    // so tile t of the block is still local index t = i·4 + column and the stores are TransformInput's.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransformInputHalf(float* copy, float* v, in Plan p, int block, bool rows)
    {
        int len = p.RowLength, cin = p.Cin;
        long xiStride = p.VStride, rowStride = 2L * len;
        for (int c = 0; c < cin; c++)
        {
            for (int i = 0; i < p.BlockRows; i += 2)
            {
                int r = 2 * (block * p.BlockRows + i);
                // Bordered rows r … r + 3 serve tile row i, rows r + 2 … r + 5 tile row i + 1.
                float* row0 = copy + ((long)c * p.Rows + r) * rowStride;
                float* row1 = row0 + rowStride, row2 = row1 + rowStride, row3 = row2 + rowStride, row4 = row3 + rowStride, row5 = row4 + rowStride;
                int local = i * p.TileCols;
                float* dest = rows ? v + (long)c * p.BlockTiles + local : v + ((long)(local / Gemm.NR) * cin + c) * Gemm.NR + local % Gemm.NR;
                ColumnPassHalf(row0, row2, len, out var a0, out var a1, out var a2, out var a3);
                ColumnPassHalf(row1, row3, len, out var b0, out var b1, out var b2, out var b3);
                ColumnPassHalf(row2, row4, len, out var c0, out var c1, out var c2, out var c3);
                ColumnPassHalf(row3, row5, len, out var d0, out var d1, out var d2, out var d3);
                RowPass(a0, a1, a2, a3, b0, b1, b2, b3, c0, c1, c2, c3, d0, d1, d2, d3, dest, xiStride);
            }
        }
    }

    // The rows (Bᵀ·) of the four column passes a, b, c, d (bordered rows r … r + 3): a·k = r0 − r2, b·k = r1 + r2,
    // c·k = r2 − r1, d·k = r1 − r3, stored as V_ξ for ξ = 4·row + k at dest + ξ·xiStride.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void RowPass(Vector256<float> a0, Vector256<float> a1, Vector256<float> a2, Vector256<float> a3,
        Vector256<float> b0, Vector256<float> b1, Vector256<float> b2, Vector256<float> b3,
        Vector256<float> c0, Vector256<float> c1, Vector256<float> c2, Vector256<float> c3,
        Vector256<float> d0, Vector256<float> d1, Vector256<float> d2, Vector256<float> d3, float* dest, long xiStride)
    {
        Vector256.Store(a0 - c0, dest);
        Vector256.Store(a1 - c1, dest + xiStride);
        Vector256.Store(a2 - c2, dest + 2 * xiStride);
        Vector256.Store(a3 - c3, dest + 3 * xiStride);
        Vector256.Store(b0 + c0, dest + 4 * xiStride);
        Vector256.Store(b1 + c1, dest + 5 * xiStride);
        Vector256.Store(b2 + c2, dest + 6 * xiStride);
        Vector256.Store(b3 + c3, dest + 7 * xiStride);
        Vector256.Store(c0 - b0, dest + 8 * xiStride);
        Vector256.Store(c1 - b1, dest + 9 * xiStride);
        Vector256.Store(c2 - b2, dest + 10 * xiStride);
        Vector256.Store(c3 - b3, dest + 11 * xiStride);
        Vector256.Store(b0 - d0, dest + 12 * xiStride);
        Vector256.Store(b1 - d1, dest + 13 * xiStride);
        Vector256.Store(b2 - d2, dest + 14 * xiStride);
        Vector256.Store(b3 - d3, dest + 15 * xiStride);
    }

    // ColumnPass for 4 tiles of each of two bordered rows: lanes 0–3 from `upper`, lanes 4–7 from `lower`.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ColumnPassHalf(float* upper, float* lower, int len, out Vector256<float> k0, out Vector256<float> k1, out Vector256<float> k2, out Vector256<float> k3)
    {
        var e0 = Vector256.Create(Vector128.Load(upper), Vector128.Load(lower));
        var e1 = Vector256.Create(Vector128.Load(upper + 1), Vector128.Load(lower + 1));
        var o0 = Vector256.Create(Vector128.Load(upper + len), Vector128.Load(lower + len));
        var o1 = Vector256.Create(Vector128.Load(upper + len + 1), Vector128.Load(lower + len + 1));
        k0 = e0 - e1;
        k1 = o0 + e1;
        k2 = e1 - o0;
        k3 = o0 - o1;
    }

    // One bordered row's 4-column patches for 8 tiles: d0 = even[t], d1 = odd[t], d2 = even[t+1], d3 = odd[t+1].
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ColumnPass(float* even, int len, out Vector256<float> k0, out Vector256<float> k1, out Vector256<float> k2, out Vector256<float> k3)
    {
        var e0 = Vector256.Load(even);
        var e1 = Vector256.Load(even + 1);
        var o0 = Vector256.Load(even + len);
        var o1 = Vector256.Load(even + len + 1);
        k0 = e0 - e1;
        k1 = o0 + e1;
        k2 = e1 - o0;
        k3 = o0 - o1;
    }

    // TransformInput for a compact plan: tile rows [i0, i1) of the bordered image in `copy`, row i's Tc tiles at the
    // block's positions q0 + (i − i0)·Tc, …, stored as Gemm's packed B panels, V + ξ·CVStride + ((q/16)·Cin + c)·16 + q%16.
    // The same arithmetic as TransformInput (16 tiles a vector where the bordered row has them, else 8), lane for
    // lane; only where a vector lands differs (Slot). Rows go in order, every channel of a row before the next row.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransformInputCompact(float* copy, float* v, in Plan p, int i0, int i1, int q0)
    {
        int len = p.RowLength, cin = p.Cin, tc = p.Tc;
        long xiStride = p.CVStride, channelStride = (long)p.Rows * 2 * len;
        for (int i = i0; i < i1; i++)
        {
            int q = q0 + (i - i0) * tc, t0 = 0;
            for (; t0 < tc && t0 + 16 <= p.TileCols; t0 += 16)
            {
                var slot = new Slot(q + t0, Math.Min(16, tc - t0), 16, cin);
                float* row0 = copy + (long)2 * i * 2 * len + t0;
                for (int c = 0; c < cin; c++, row0 += channelStride)
                {
                    float* row1 = row0 + 2 * len, row2 = row1 + 2 * len, row3 = row2 + 2 * len;
                    ColumnPassWide(row0, len, out var a0, out var a1, out var a2, out var a3);
                    ColumnPassWide(row1, len, out var b0, out var b1, out var b2, out var b3);
                    ColumnPassWide(row2, len, out var c0, out var c1, out var c2, out var c3);
                    ColumnPassWide(row3, len, out var d0, out var d1, out var d2, out var d3);
                    float* vc = v + c * Gemm.NR;
                    slot.Put(vc, a0 - c0);
                    slot.Put(vc + xiStride, a1 - c1);
                    slot.Put(vc + 2 * xiStride, a2 - c2);
                    slot.Put(vc + 3 * xiStride, a3 - c3);
                    slot.Put(vc + 4 * xiStride, b0 + c0);
                    slot.Put(vc + 5 * xiStride, b1 + c1);
                    slot.Put(vc + 6 * xiStride, b2 + c2);
                    slot.Put(vc + 7 * xiStride, b3 + c3);
                    slot.Put(vc + 8 * xiStride, c0 - b0);
                    slot.Put(vc + 9 * xiStride, c1 - b1);
                    slot.Put(vc + 10 * xiStride, c2 - b2);
                    slot.Put(vc + 11 * xiStride, c3 - b3);
                    slot.Put(vc + 12 * xiStride, b0 - d0);
                    slot.Put(vc + 13 * xiStride, b1 - d1);
                    slot.Put(vc + 14 * xiStride, b2 - d2);
                    slot.Put(vc + 15 * xiStride, b3 - d3);
                }
            }

            for (; t0 < tc; t0 += 8)
            {
                var slot = new Slot(q + t0, Math.Min(8, tc - t0), 8, cin);
                float* row0 = copy + (long)2 * i * 2 * len + t0;
                for (int c = 0; c < cin; c++, row0 += channelStride)
                {
                    float* row1 = row0 + 2 * len, row2 = row1 + 2 * len, row3 = row2 + 2 * len;
                    ColumnPass(row0, len, out var a0, out var a1, out var a2, out var a3);
                    ColumnPass(row1, len, out var b0, out var b1, out var b2, out var b3);
                    ColumnPass(row2, len, out var c0, out var c1, out var c2, out var c3);
                    ColumnPass(row3, len, out var d0, out var d1, out var d2, out var d3);
                    float* vc = v + c * Gemm.NR;
                    slot.Put(vc, a0 - c0);
                    slot.Put(vc + xiStride, a1 - c1);
                    slot.Put(vc + 2 * xiStride, a2 - c2);
                    slot.Put(vc + 3 * xiStride, a3 - c3);
                    slot.Put(vc + 4 * xiStride, b0 + c0);
                    slot.Put(vc + 5 * xiStride, b1 + c1);
                    slot.Put(vc + 6 * xiStride, b2 + c2);
                    slot.Put(vc + 7 * xiStride, b3 + c3);
                    slot.Put(vc + 8 * xiStride, c0 - b0);
                    slot.Put(vc + 9 * xiStride, c1 - b1);
                    slot.Put(vc + 10 * xiStride, c2 - b2);
                    slot.Put(vc + 11 * xiStride, c3 - b3);
                    slot.Put(vc + 12 * xiStride, b0 - d0);
                    slot.Put(vc + 13 * xiStride, b1 - d1);
                    slot.Put(vc + 14 * xiStride, b2 - d2);
                    slot.Put(vc + 15 * xiStride, b3 - d3);
                }
            }
        }
    }

    // Where a vector of `count` tiles (of `width` lanes) at compact position `pos` goes in a V_ξ of packed 16-column
    // panels, as offsets from input channel c's row (add c·16): its lanes up to the panel's end at pos's place in panel
    // pos/16, the rest at the start of the next panel's row. Whatever lands past `count` belongs to later tiles, whose
    // rows are transformed after this one and overwrite it, or to columns past the block's tiles, computed and never
    // read. A vector that stays in its panel row is stored whole. One that runs into the next panel is stored as its
    // lanes up to the panel's end, masked (the lanes past it would fall on row c + 1, which holds earlier tiles), and
    // its other lanes moved down to the next panel's row start and stored whole.
    private readonly struct Slot
    {
        private readonly long first, second;
        private readonly Vector512<float> low;
        private readonly Vector512<int> shift;
        private readonly bool whole, split;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Slot(int pos, int count, int width, int cin)
        {
            int lane = pos & (Gemm.NR - 1), room = Gemm.NR - lane;
            first = (long)(pos / Gemm.NR) * cin * Gemm.NR + lane;
            second = first - lane + (long)cin * Gemm.NR;
            whole = width <= room;
            split = count > room;
            var index = Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
            low = Vector512.LessThan(index, Vector512.Create(room)).AsSingle();
            // Lane k of the moved vector is lane k + room (Vector256: the low 3 bits of the index, lanes past 7 unused).
            shift = index + Vector512.Create(room);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Put(float* v, Vector256<float> value)
        {
            if (whole)
            {
                Vector256.Store(value, v + first);
                return;
            }

            Avx512F.VL.MaskStore(v + first, low.GetLower(), value);
            if (split) Vector256.Store(Avx2.PermuteVar8x32(value, shift.GetLower()), v + second);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Put(float* v, Vector512<float> value)
        {
            if (whole)
            {
                Vector512.Store(value, v + first);
                return;
            }

            Avx512F.MaskStore(v + first, low, value);
            if (split) Vector512.Store(Avx512F.PermuteVar16x32(value, shift), v + second);
        }
    }

    // M_ξ[o, tile] = Σ_c U_ξ[o, c]·V_ξ[c, tile] for the block: 16 products of [Cout × Cin]·[Cin × BlockTiles], U as Gemm's
    // packed A panels and V as its B panels, so each is Gemm.PanelProduct (BlockTiles is a multiple of NR: no partial B
    // panel, no edge buffer).
    private static void Multiply(float* u, float* v, float* m, in Plan p)
    {
        int rows = ProductRows(p, 0, p.CoutPad);
        for (int xi = 0; xi < Xi; xi++)
        {
            Gemm.PanelProduct(p.Cin, u + xi * p.UStride, rows, v + xi * p.VStride, p.BlockTiles, m + (long)xi * p.CoutPad * p.BlockTiles, p.BlockTiles,
                accumulate: false, edge: null);
        }
    }

    // Rows of M to compute for U's output channels [oLo, oHi) (whole panels): with the 512-bit kernels only those below
    // Cout, the last panel's real rows through the edge-row kernels (16 or 32 channels are 18 or 36 rows in 6-row
    // panels: 11% of the products were zero rows nobody reads); the 256-bit ones need whole panels (no edge buffer here).
    private static int ProductRows(in Plan p, int oLo, int oHi) => (Gemm.Wide ? Math.Min(oHi, p.Cout) : oHi) - oLo;

    // y[o, 2i + r, 2t + s] = (Aᵀ·M·A)[r, s] + bias[o], Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]], 8 tiles at a time.
    private static void TransformOutput(float* m, float* bias, float* y, in Plan p, int block, bool relu) => TransformOutput(m, bias, y, p, block, relu, 0, p.Cout);

    // The same for output channels [oLo, oHi) only.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransformOutput(float* m, float* bias, float* y, in Plan p, int block, bool relu, int oLo, int oHi)
    {
        if (!p.Half)
        {
            int first = block * p.BlockRows;
            TransformOutput(m, p.BlockTiles, bias, y, p, first, Math.Min(p.TileRows, first + p.BlockRows), 0, p.TileCols, relu, oLo, oHi);
            return;
        }

        long xiStride = (long)p.CoutPad * p.BlockTiles;
        int outW = p.OutW, plane = p.OutH * outW;
        float* edge = stackalloc float[16];
        for (int o = oLo; o < oHi; o++)
        {
            var b = Vector256.Create(bias == null ? 0f : bias[o]);
            float* mo = m + (long)o * p.BlockTiles;
            float* yo = y + (long)o * plane;
            // Lanes 0–3 are tile row i (output rows 2i, 2i + 1), lanes 4–7 tile row i + 1 (rows 2i + 2, 2i + 3).
            int columns = Math.Min(8, outW);
            for (int i = 0; i < p.BlockRows; i += 2)
            {
                int row = 2 * (block * p.BlockRows + i);
                if (row >= p.OutH) break;
                Tile(mo + i * p.TileCols, xiStride, b, relu, out var y00, out var y01, out var y10, out var y11);
                float* top = yo + (long)row * outW;
                InterleaveRows(y00, y01, top, row + 2 < p.OutH ? top + 2 * outW : null, columns, edge);
                if (row + 1 < p.OutH) InterleaveRows(y10, y11, top + outW, row + 3 < p.OutH ? top + 3 * outW : null, columns, edge);
            }
        }
    }

    // Tile rows [iLo, iHi) of an image (output rows 2·iLo …) for output channels [oLo, oHi), 8 tiles at a time (16 with
    // AVX-512 where rows are whole 16-tile vectors): M_ξ[o] is the row of `ldm` tiles at m + (ξ·CoutPad + o)·ldm, and
    // tile row i's tiles start at its column q0 + (i − iLo)·tileStride (a block's TileCols, or a compact block's Tc: a
    // vector then reads the next row's first tiles too, whose lanes are not written).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransformOutput(float* m, int ldm, float* bias, float* y, in Plan p, int iLo, int iHi, int q0, int tileStride, bool relu, int oLo, int oHi)
    {
        long xiStride = (long)p.CoutPad * ldm;
        int outW = p.OutW, plane = p.OutH * outW;
        bool wide = Gemm.Wide && p.TileCols % 16 == 0;
        float* edge = stackalloc float[16];
        for (int o = oLo; o < oHi; o++)
        {
            float* mo = m + (long)o * ldm + q0;
            float* yo = y + (long)o * plane;
            if (wide)
            {
                TransformOutputWide(mo, xiStride, bias == null ? 0f : bias[o], yo, p, iLo, iHi, tileStride, relu);
                continue;
            }

            var b = Vector256.Create(bias == null ? 0f : bias[o]);
            for (int i = iLo; i < iHi; i++)
            {
                int row = 2 * i;
                float* mi = mo + (i - iLo) * tileStride;
                for (int t0 = 0; t0 < p.TileCols && 2 * t0 < outW; t0 += 8)
                {
                    Tile(mi + t0, xiStride, b, relu, out var y00, out var y01, out var y10, out var y11);
                    int columns = Math.Min(16, outW - 2 * t0);
                    Interleave(y00, y01, yo + (long)row * outW + 2 * t0, columns, edge);
                    if (row + 1 < p.OutH) Interleave(y10, y11, yo + (long)(row + 1) * outW + 2 * t0, columns, edge);
                }
            }
        }
    }

    // One output channel's tile rows [iLo, iHi) on 512-bit vectors, 16 tiles (32 output columns) at a time, where TileCols
    // is a multiple of 16 (a compact plan's rows of 9–15 or 25–31 tiles then read the next row's first tiles too, whose
    // columns are not written): Tile's arithmetic lane for lane (the same bits), the row's last columns stored masked.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransformOutputWide(float* mo, long xiStride, float bias, float* yo, in Plan p, int iLo, int iHi, int tileStride, bool relu)
    {
        int outW = p.OutW;
        var b = Vector512.Create(bias);
        var first = Vector512.Create(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        var second = Vector512.Create(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
        for (int i = iLo; i < iHi; i++)
        {
            int row = 2 * i;
            for (int t0 = 0; t0 < p.TileCols && 2 * t0 < outW; t0 += 16)
            {
                float* s = mo + (i - iLo) * tileStride + t0;
                ReduceWide(s, xiStride, 0, out var t00, out var t01);
                ReduceWide(s, xiStride, 4, out var t10, out var t11);
                ReduceWide(s, xiStride, 8, out var t20, out var t21);
                ReduceWide(s, xiStride, 12, out var t30, out var t31);
                var y00 = t00 + t10 + t20 + b;
                var y01 = t01 + t11 + t21 + b;
                var y10 = t10 - t20 - t30 + b;
                var y11 = t11 - t21 - t31 + b;
                if (relu)
                {
                    y00 = ReluWide(y00); y01 = ReluWide(y01);
                    y10 = ReluWide(y10); y11 = ReluWide(y11);
                }

                int columns = Math.Min(32, outW - 2 * t0);
                float* top = yo + (long)row * outW + 2 * t0;
                InterleaveWide(y00, y01, top, columns, first, second);
                if (row + 1 < p.OutH) InterleaveWide(y10, y11, top + outW, columns, first, second);
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static void ReduceWide(float* s, long xiStride, int a, out Vector512<float> t0, out Vector512<float> t1)
        {
            var m0 = Vector512.Load(s + a * xiStride);
            var m1 = Vector512.Load(s + (a + 1) * xiStride);
            var m2 = Vector512.Load(s + (a + 2) * xiStride);
            var m3 = Vector512.Load(s + (a + 3) * xiStride);
            t0 = m0 + m1 + m2;
            t1 = m1 - m2 - m3;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static Vector512<float> ReluWide(Vector512<float> v) => v & (Vector512.GreaterThan(v, Vector512<float>.Zero) | ~Vector512.Equals(v, v));

        // e0 o0 e1 o1 … e15 o15 (the first `columns`) to dest: two lane permutes, the second vector masked at a row's end.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static void InterleaveWide(Vector512<float> even, Vector512<float> odd, float* dest, int columns, Vector512<int> first, Vector512<int> second)
        {
            var low = Avx512F.PermuteVar16x32x2(even, first, odd);
            var high = Avx512F.PermuteVar16x32x2(even, second, odd);
            if (columns >= 16)
            {
                Vector512.Store(low, dest);
                if (columns == 32) Vector512.Store(high, dest + 16);
                else if (columns > 16) PartialVector.Store(dest + 16, high, columns - 16);
            }
            else
            {
                PartialVector.Store(dest, low, columns);
            }
        }
    }

    // TransformOutput followed by 2×2, stride-2 max pooling: tile (i, t) is pooling window (i, t), so each tile
    // writes one value, y[o, i, t] = max(Y[0,0], Y[0,1], Y[1,0], Y[1,1]) in that order, the first maximum kept and
    // NaN propagated. Tiles of a last odd row or column are partial windows, which floor pooling drops.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransformOutputPooled(float* m, float* bias, float* y, in Plan p, int block, bool relu)
    {
        if (!p.Half)
        {
            int first = block * p.BlockRows;
            TransformOutputPooled(m, p.BlockTiles, bias, y, p, first, Math.Min(p.TileRows, first + p.BlockRows), 0, p.TileCols, relu);
            return;
        }

        long xiStride = (long)p.CoutPad * p.BlockTiles;
        int pooledH = p.OutH / 2, pooledW = p.OutW / 2, plane = pooledH * pooledW;
        for (int o = 0; o < p.Cout; o++)
        {
            var b = Vector256.Create(bias == null ? 0f : bias[o]);
            float* mo = m + (long)o * p.BlockTiles;
            float* yo = y + (long)o * plane;
            // Lanes 0–3: pooling row `row` (tile row i), lanes 4–7: the next one.
            int count = Math.Min(4, pooledW);
            for (int i = 0; i < p.BlockRows; i += 2)
            {
                int row = block * p.BlockRows + i;
                if (row >= pooledH) break;
                Tile(mo + i * p.TileCols, xiStride, b, relu, out var y00, out var y01, out var y10, out var y11);
                var max = Take(Take(Take(y00, y01), y10), y11);
                float* target = yo + (long)row * pooledW;
                PartialVector.Store(target, max, count);
                if (row + 1 < pooledH) PartialVector.Store(target + pooledW, Vector256.Create(max.GetUpper(), max.GetUpper()), count);
            }
        }
    }

    // The pooled output of tile rows [iLo, iHi), M laid out as in the unpooled TransformOutput's row range.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransformOutputPooled(float* m, int ldm, float* bias, float* y, in Plan p, int iLo, int iHi, int q0, int tileStride, bool relu)
    {
        long xiStride = (long)p.CoutPad * ldm;
        int pooledH = p.OutH / 2, pooledW = p.OutW / 2, plane = pooledH * pooledW;
        iHi = Math.Min(iHi, pooledH);
        for (int o = 0; o < p.Cout; o++)
        {
            var b = Vector256.Create(bias == null ? 0f : bias[o]);
            float* mo = m + (long)o * ldm + q0;
            float* yo = y + (long)o * plane;
            for (int i = iLo; i < iHi; i++)
            {
                float* mi = mo + (i - iLo) * tileStride;
                for (int t0 = 0; t0 < pooledW; t0 += 8)
                {
                    Tile(mi + t0, xiStride, b, relu, out var y00, out var y01, out var y10, out var y11);
                    var max = Take(Take(Take(y00, y01), y10), y11);
                    int count = Math.Min(8, pooledW - t0);
                    float* target = yo + (long)i * pooledW + t0;
                    if (count == 8) Vector256.Store(max, target);
                    else PartialVector.Store(target, max, count);
                }
            }
        }
    }

    // The later value where it is greater or NaN, else the running maximum: Pooling's rule.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Take(Vector256<float> max, Vector256<float> v) =>
        Vector256.ConditionalSelect(Vector256.GreaterThan(v, max) | ~Vector256.Equals(v, v), v, max);

    // One 2×2 output block for 8 tiles: Y = Aᵀ·M·A + bias, ReLU'd when asked. M_ξ of the tiles at s + ξ·xiStride.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Tile(float* s, long xiStride, Vector256<float> bias, bool relu,
        out Vector256<float> y00, out Vector256<float> y01, out Vector256<float> y10, out Vector256<float> y11)
    {
        // Over k within each row a of M: T[a, 0] = M[a,0] + M[a,1] + M[a,2], T[a, 1] = M[a,1] − M[a,2] − M[a,3].
        Reduce(s, xiStride, 0, out var t00, out var t01);
        Reduce(s, xiStride, 4, out var t10, out var t11);
        Reduce(s, xiStride, 8, out var t20, out var t21);
        Reduce(s, xiStride, 12, out var t30, out var t31);
        // Then over a: Y[0, s] = T[0,s] + T[1,s] + T[2,s], Y[1, s] = T[1,s] − T[2,s] − T[3,s].
        y00 = t00 + t10 + t20 + bias;
        y01 = t01 + t11 + t21 + bias;
        y10 = t10 - t20 - t30 + bias;
        y11 = t11 - t21 - t31 + bias;
        if (relu)
        {
            y00 = Activations.Relu(y00); y01 = Activations.Relu(y01);
            y10 = Activations.Relu(y10); y11 = Activations.Relu(y11);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Reduce(float* s, long xiStride, int a, out Vector256<float> t0, out Vector256<float> t1)
    {
        var m0 = Vector256.Load(s + a * xiStride);
        var m1 = Vector256.Load(s + (a + 1) * xiStride);
        var m2 = Vector256.Load(s + (a + 2) * xiStride);
        var m3 = Vector256.Load(s + (a + 3) * xiStride);
        t0 = m0 + m1 + m2;
        t1 = m1 - m2 - m3;
    }

    // Writes e0 o0 … e3 o3 (the first `columns` of them) to upper and e4 o4 … e7 o7 to lower (unless null).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void InterleaveRows(Vector256<float> even, Vector256<float> odd, float* upper, float* lower, int columns, float* edge)
    {
        if (Avx.IsSupported)
        {
            var lo = Avx.UnpackLow(even, odd);  // e0 o0 e1 o1 | e4 o4 e5 o5
            var hi = Avx.UnpackHigh(even, odd); // e2 o2 e3 o3 | e6 o6 e7 o7
            var first = Avx.Permute2x128(lo, hi, 0x20);
            var second = Avx.Permute2x128(lo, hi, 0x31);
            if (columns == 8)
            {
                Avx.Store(upper, first);
                if (lower != null) Avx.Store(lower, second);
                return;
            }

            PartialVector.Store(upper, first, columns);
            if (lower != null) PartialVector.Store(lower, second, columns);
            return;
        }

        Interleave(even, odd, edge, 16, null); // edge: the 8 values of upper, then the 8 of lower
        for (int j = 0; j < columns; j++) upper[j] = edge[j];
        if (lower == null) return;
        for (int j = 0; j < columns; j++) lower[j] = edge[8 + j];
    }

    // Writes e0 o0 e1 o1 … e7 o7 (the first `columns` of them) to dest.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Interleave(Vector256<float> even, Vector256<float> odd, float* dest, int columns, float* edge)
    {
        if (Avx.IsSupported)
        {
            var lo = Avx.UnpackLow(even, odd);  // e0 o0 e1 o1 | e4 o4 e5 o5
            var hi = Avx.UnpackHigh(even, odd); // e2 o2 e3 o3 | e6 o6 e7 o7
            var first = Avx.Permute2x128(lo, hi, 0x20);
            var second = Avx.Permute2x128(lo, hi, 0x31);
            // A row's last columns (a 14-wide row is all last columns) as masked stores, not a copy through edge.
            if (columns >= 8)
            {
                Avx.Store(dest, first);
                if (columns == 16) Avx.Store(dest + 8, second);
                else if (columns > 8) PartialVector.Store(dest + 8, second, columns - 8);
            }
            else
            {
                PartialVector.Store(dest, first, columns);
            }

            return;
        }

        float* target = columns == 16 ? dest : edge;
        for (int j = 0; j < 8; j++)
        {
            target[2 * j] = even[j];
            target[2 * j + 1] = odd[j];
        }

        if (columns < 16)
        {
            for (int j = 0; j < columns; j++) dest[j] = edge[j];
        }
    }
}
