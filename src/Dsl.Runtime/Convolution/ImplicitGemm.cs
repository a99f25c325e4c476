// Implicit-GEMM convolution: on the padded grid (B read in place; a strided one on the image's phases), otherwise B panels packed straight from the image.
using System.Runtime.Intrinsics;

namespace Dsl.Runtime.Kernels;

/// <summary>
/// Convolution as <c>Y[out × pixels] = W[out × (c·kh·kw)] · col</c> without materializing col. With stride 1
/// the row of col for a tap is the zero-padded image shifted by a constant, so the micro-kernel reads it in
/// place (the padded grid: forward, the weight gradient, and the input gradient as a flipped convolution); with
/// a stride, forward does the same on the padded image split into its stride phases. Otherwise (and for a
/// strided weight gradient) the packing step that feeds the micro-kernel reads the image directly, one
/// output-row segment at a time. The weights are packed once per call for every sample.
/// </summary>
internal static unsafe class ImplicitGemm
{
    /// <summary>Floats of scratch: packed weights of one group (padded to whole panels) and one B block, or the padded grid's buffers.</summary>
    public static int ScratchLength(in ConvGeometry g)
    {
        int k = g.InPerGroup * g.KernelH * g.KernelW;
        int m = (g.OutPerGroup + Gemm.MR - 1) / Gemm.MR * Gemm.MR;
        return m * k + Math.Max(MaxKC * Gemm.NC, OnPaddedGrid(g) ? GridLength(g) : 0);
    }

    // The padded-grid path: a zero-padded copy of the image (with slack for the last tile's reads) and the
    // output over the padded width, both per group.
    private static int PaddedH(in ConvGeometry g) => g.InH + 2 * g.PadH;

    private static int PaddedW(in ConvGeometry g) => g.InW + 2 * g.PadW;

    // With a stride s > 1 the padded image is stored as its s_h·s_w phases (rows ≡ a, columns ≡ b mod s), each a
    // GridH × GridW plane: output pixel (oh, ow) of tap (kh, kw) reads phase ((kh·d) mod s) at row oh + (kh·d) div s,
    // column ow + (kw·d) div s, so consecutive output pixels read consecutive floats as with stride 1, and the
    // strided convolution runs on the same in-place micro-kernel (output over the grid's width, extra columns
    // dropped). With stride 1 there is one phase and the grid is the padded image.
    private static int GridH(in ConvGeometry g) => (PaddedH(g) + g.StrideH - 1) / g.StrideH;

    private static int GridW(in ConvGeometry g) => (PaddedW(g) + g.StrideW - 1) / g.StrideW;

    private static long ImageLength(in ConvGeometry g) =>
        (long)g.InPerGroup * g.StrideH * g.StrideW * GridH(g) * GridW(g) + (g.KernelW - 1) * g.DilationW / g.StrideW + Gemm.NR;

    private static long GridOutputLength(in ConvGeometry g) => (long)g.OutPerGroup * g.OutH * GridW(g);

    private static int GridLength(in ConvGeometry g) => (int)(ImageLength(g) + GridOutputLength(g));

    // Longest image copy plus grid output the padded-grid path takes (4 MB); larger layers pack as before.
    private const long MaxGridLength = 1L << 20;

    /// <summary>
    /// Whether forward runs on the padded grid: each tap's row of the column matrix is the padded image itself
    /// (with a stride, one of its phases), shifted. The micro-kernel then reads B in place (no packing) and
    /// computes the output over the grid's width, whose extra columns are dropped. A strided 1×1 kernel reads one
    /// phase of s², a copy that costs more than packing its few taps (measured 10–40% slower on ResNet's projection
    /// shortcuts), so it packs.
    /// </summary>
    public static bool OnPaddedGrid(in ConvGeometry g) =>
        (g.StrideH == 1 && g.StrideW == 1 || g.KernelH * g.KernelW > 1)
        && g.InPerGroup * g.KernelH * g.KernelW <= MaxGridTaps && ImageLength(g) + GridOutputLength(g) <= MaxGridLength;

    // The taps' offsets live on the stack.
    private const int MaxGridTaps = 4096;

    // K is cut into equal blocks of at most this depth: 288 stays whole and 576 becomes 2 × 288, where
    // fixed 256-deep blocks would leave a thin remainder (256 + 32, 256 + 256 + 64) and an extra pass over C.
    private const int MaxKC = 384;

    private static int BlockK(int k)
    {
        int blocks = (k + MaxKC - 1) / MaxKC;
        return (k + blocks - 1) / blocks;
    }

    /// <summary>
    /// y (overwritten) = conv(x, w) + bias for n samples, with ReLU applied as it writes when <paramref name="relu"/>;
    /// with a <paramref name="residual"/> (a graph's residual add), <c>act(conv + bias + residual)</c>, each
    /// sample's planes summed and activated once written (then <paramref name="relu"/> must be false); an
    /// <paramref name="activation"/> without a residual is likewise applied to each sample's planes once written.
    /// Sample s of y (and of the residual) starts at s·<paramref name="yStride"/> (0: the output length; more: y is
    /// a slice of a concatenation's output, which this writes in place).
    /// </summary>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y, int n, in ConvGeometry g, Span<float> scratch, bool relu = false,
        float* residual = null, FusedActivation activation = FusedActivation.None, long yStride = 0)
    {
        if (OnPaddedGrid(g))
        {
            ForwardOnPaddedGrid(x, w, bias, y, n, g, scratch, 0, g.OutPerGroup, relu, residual, activation, yStride);
            return;
        }

        ForwardPacked(x, w, bias, y, n, g, scratch, residual, relu ? FusedActivation.Relu : activation, yStride);
    }

    private static void ForwardPacked(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y, int n, in ConvGeometry g, Span<float> scratch,
        float* residual, FusedActivation activation, long yStride)
    {
        long stride = yStride == 0 ? g.OutputLength : yStride;
        int m = g.OutPerGroup;
        int k = g.InPerGroup * g.KernelH * g.KernelW;
        int pixels = g.OutH * g.OutW, inPlane = g.InH * g.InW;
        int mPadded = (m + Gemm.MR - 1) / Gemm.MR * Gemm.MR;
        fixed (float* px = x, pw = w, pb = bias, py = y, ps = scratch)
        {
            float* packedA = ps;
            float* packB = ps + mPadded * k;
            float* edge = stackalloc float[Gemm.MR * Gemm.NR];
            for (int group = 0; group < g.Groups; group++)
            {
                // Weights of this group, packed per K block: [pc block][MR panels], reused by every sample.
                float* wg = pw + (long)group * m * k;
                int blockK = BlockK(k);
                for (int pc = 0; pc < k; pc += blockK)
                {
                    int kc = Math.Min(blockK, k - pc);
                    Gemm.PackA(wg + pc, k, 1, m, kc, packedA + (long)pc * mPadded);
                }

                for (int s = 0; s < n; s++)
                {
                    float* xs = px + (long)s * g.InputLength + (long)group * g.InPerGroup * inPlane;
                    float* ys = py + s * stride + (long)group * m * pixels;
                    if (pb != null)
                    {
                        for (int o = 0; o < m; o++) new Span<float>(ys + (long)o * pixels, pixels).Fill(pb[group * m + o]);
                    }

                    for (int jc = 0; jc < pixels; jc += Gemm.NC)
                    {
                        int nc = Math.Min(Gemm.NC, pixels - jc);
                        for (int pc = 0; pc < k; pc += blockK)
                        {
                            int kc = Math.Min(blockK, k - pc);
                            bool add = pb != null || pc > 0;
                            PackImage(xs, g, pc, kc, jc, nc, packB);
                            float* aBlock = packedA + (long)pc * mPadded;
                            Gemm.PanelProduct(kc, aBlock, m, packB, nc, ys + jc, pixels, add, edge);
                        }
                    }

                    if (residual != null || activation != FusedActivation.None) ResidualEpilogue.Apply(ys, residual == null ? null : residual + (ys - py), (long)m * pixels, activation);
                }
            }
        }
    }

    // K blocks of the padded-grid path: a 16-column B block of 144 taps (up to 18 KB of image rows,
    // unaligned) and a 6-row A panel (3.5 KB) stay in L1 while the 6-row tiles of C pass over them.
    private const int GridKC = 144;

    /// <summary>
    /// Whether a batch smaller than the thread count can split forward by output channels instead: one
    /// group, on the padded grid.
    /// </summary>
    public static bool CanSplitForward(in ConvGeometry g) => g.Groups == 1 && OnPaddedGrid(g);

    /// <summary>Whether the input gradient can split by input channels (a stride-1 convolution whose transposed convolution runs on the padded grid).</summary>
    public static bool CanSplitBackwardInput(in ConvGeometry g) => g.Groups == 1 && CanTransposeAsConvolution(g) && OnPaddedGrid(Transposed(g));

    /// <summary>Whether the weight gradient can split by output channels (one group, on the padded grid).</summary>
    public static bool CanSplitBackwardWeight(in ConvGeometry g) => g.Groups == 1 && WeightOnPaddedGrid(g);

    /// <summary>Forward on the padded grid for output channels [<paramref name="oLo"/>, <paramref name="oHi"/>) of one group (oLo a multiple of 6).</summary>
    public static void ForwardChannels(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y, int n, in ConvGeometry g, Span<float> scratch, int oLo, int oHi, bool relu,
        float* residual = null, FusedActivation activation = FusedActivation.None, long yStride = 0) =>
        ForwardOnPaddedGrid(x, w, bias, y, n, g, scratch, oLo, oHi, relu, residual, activation, yStride);

    /// <summary>Input gradient (stride 1) for input channels [<paramref name="cLo"/>, <paramref name="cHi"/>) of one group (cLo a multiple of 6).</summary>
    public static void BackwardInputChannels(ReadOnlySpan<float> dy, ReadOnlySpan<float> w, Span<float> dx, int n, in ConvGeometry g, Span<float> scratch, int cLo, int cHi)
    {
        var flipped = Flip(w, g, scratch);
        ForwardOnPaddedGrid(dy, flipped, ReadOnlySpan<float>.Empty, dx, n, Transposed(g), scratch.Slice(g.WeightLength), cLo, cHi, relu: false);
    }

    /// <summary>Weight and bias gradients on the padded grid for output channels [<paramref name="oLo"/>, <paramref name="oHi"/>) (oLo a multiple of 16): rows of dW no other part writes.</summary>
    public static void BackwardWeightChannels(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dw, Span<float> dbias, int n, in ConvGeometry g, Span<float> scratch, int oLo, int oHi) =>
        BackwardWeightOnPaddedGrid(dy, x, dw, dbias, n, g, scratch, oLo, oHi);

    // Forward on the padded grid (stride 1): per sample and group, copy the image into a zero border, then for
    // each block of K, each 16-column tile of output and each 6-row tile of weights, the micro-kernel reads
    // tap p's image row at offsets[p] past the tile's start. Output channels [oLo, oHi) of each group; the
    // tiles are those of the whole layer, so a split by channels computes the same bits as one pass.
    // With a residual (or an activation not applied in the tiles), each sample's planes [oLo, oHi) get it once written;
    // sample s of y starts at s·yStride (0: the output length).
    private static void ForwardOnPaddedGrid(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y, int n, in ConvGeometry g, Span<float> scratch, int oLo, int oHi, bool relu,
        float* residual = null, FusedActivation activation = FusedActivation.None, long yStride = 0)
    {
        long stride = yStride == 0 ? g.OutputLength : yStride;
        int m = g.OutPerGroup, cg = g.InPerGroup, mine = oHi - oLo;
        int k = cg * g.KernelH * g.KernelW;
        int wp = GridW(g), pixels = g.OutH * g.OutW, inPlane = g.InH * g.InW;
        int gridPixels = g.OutH * wp;
        int mPadded = (mine + Gemm.MR - 1) / Gemm.MR * Gemm.MR;
        int blocks = (k + GridKC - 1) / GridKC, blockK = (k + blocks - 1) / blocks;
        fixed (float* px = x, pw = w, pb = bias, py = y, ps = scratch)
        {
            float* packedA = ps;
            float* image = ps + (long)mPadded * k;
            float* grid = image + ImageLength(g);
            float* edge = stackalloc float[Gemm.MR * Gemm.NR];
            int* offsets = stackalloc int[k];
            TapOffsets(g, offsets);

            for (int group = 0; group < g.Groups; group++)
            {
                float* wg = pw + ((long)group * m + oLo) * k;
                for (int pc = 0; pc < k; pc += blockK) Gemm.PackA(wg + pc, k, 1, mine, Math.Min(blockK, k - pc), packedA + (long)pc * mPadded);

                for (int s = 0; s < n; s++)
                {
                    CopyPadded(px + (long)s * g.InputLength + (long)group * cg * inPlane, g, image);
                    if (g.OutW % Gemm.NR == 0)
                    {
                        // Rows of whole 16-column tiles: each tile reads its image row in place and is stored
                        // straight into y, the bias as the accumulators' start and the ReLU in the last store.
                        float* yg = py + s * stride + ((long)group * m + oLo) * pixels;
                        float* bg = pb != null ? pb + group * m + oLo : null;
                        for (int pc = 0; pc < k; pc += blockK)
                        {
                            int kc = Math.Min(blockK, k - pc);
                            bool first = pc == 0, last = pc + kc == k;
                            float* aBlock = packedA + (long)pc * mPadded;
                            for (int oh = 0; oh < g.OutH; oh++)
                            {
                                for (int ow = 0; ow < g.OutW; ow += 2 * Gemm.NR)
                                {
                                    float* bRow = image + (long)oh * wp + ow;
                                    int nr = Math.Min(2 * Gemm.NR, g.OutW - ow);
                                    for (int ir = 0; ir < mine; ir += Gemm.MR)
                                    {
                                        int mr = Math.Min(Gemm.MR, mine - ir);
                                        GridTiles(kc, aBlock + (long)ir * kc, bRow, offsets + pc, yg + (long)ir * pixels + (long)oh * g.OutW + ow, pixels, mr, nr,
                                            accumulate: !first, edge, first && bg != null ? bg + ir : null, relu && last);
                                    }
                                }
                            }
                        }

                        if (residual != null || activation != FusedActivation.None) ResidualEpilogue.Apply(yg, residual == null ? null : residual + (yg - py), (long)mine * pixels, activation);
                        continue;
                    }

                    for (int pc = 0; pc < k; pc += blockK)
                    {
                        int kc = Math.Min(blockK, k - pc);
                        bool add = pc > 0;
                        float* aBlock = packedA + (long)pc * mPadded;
                        for (int jr = 0; jr < gridPixels; jr += 2 * Gemm.NR)
                        {
                            int nr = Math.Min(2 * Gemm.NR, gridPixels - jr);
                            for (int ir = 0; ir < mine; ir += Gemm.MR)
                            {
                                int mr = Math.Min(Gemm.MR, mine - ir);
                                GridTiles(kc, aBlock + (long)ir * kc, image + jr, offsets + pc, grid + (long)ir * gridPixels + jr, gridPixels, mr, nr, add, edge);
                            }
                        }
                    }

                    // Drop the padded columns; add the bias (and apply ReLU) as it writes.
                    float* ys = py + s * stride + ((long)group * m + oLo) * pixels;
                    for (int o = 0; o < mine; o++)
                    {
                        float b = pb != null ? pb[group * m + oLo + o] : 0f;
                        for (int oh = 0; oh < g.OutH; oh++)
                            WriteRow(grid + (long)o * gridPixels + (long)oh * wp, ys + (long)o * pixels + (long)oh * g.OutW, g.OutW, b, relu);
                    }

                    if (residual != null || activation != FusedActivation.None) ResidualEpilogue.Apply(ys, residual == null ? null : residual + (ys - py), (long)mine * pixels, activation);
                }
            }
        }
    }

    // The tiles of rows [0, mr) × columns [0, nr) (nr up to 32) at one place on the grid: whole 6×32 blocks on the
    // pair kernel, the rows past the last whole panel (16 output channels: 6 + 6 + 4) on the edge-row kernel for their
    // whole tiles (with AVX-512), the rest 16 columns at a time; every element the same chain as on the single tiles.
    private static void GridTiles(int kc, float* aPanel, float* b, int* offsets, float* c, int ldc, int mr, int nr, bool accumulate, float* edge,
        float* rowBias = null, bool relu = false)
    {
        if (mr == Gemm.MR && nr == 2 * Gemm.NR)
        {
            Gemm.KernelOffsetsPair(kc, aPanel, b, offsets, c, ldc, accumulate, rowBias, relu);
            return;
        }

        int whole = 0;
        if (mr < Gemm.MR && Gemm.Wide && nr >= Gemm.NR)
        {
            whole = nr / Gemm.NR;
            Gemm.EdgeRowsOffsetsWide(kc, aPanel, mr, b, offsets, c, ldc, whole, accumulate, rowBias, relu);
            whole *= Gemm.NR;
        }

        for (int j = whole; j < nr; j += Gemm.NR) Gemm.TileOffsets(kc, aPanel, b + j, offsets, c + j, ldc, mr, Math.Min(Gemm.NR, nr - j), accumulate, edge, rowBias, relu);
    }

    // to[i] = from[i] + bias, or ReLU of it.
    private static void WriteRow(float* from, float* to, int length, float bias, bool relu)
    {
        var b = Vector256.Create(bias);
        int i = 0;
        for (; i + 8 <= length; i += 8)
        {
            var v = Vector256.Load(from + i) + b;
            Vector256.Store(relu ? Activations.Relu(v) : v, to + i);
        }

        if (i < length)
        {
            // The last 1–7 as one vector: the lanes past the row neither read nor written.
            var v = PartialVector.Load(from + i, length - i) + b;
            PartialVector.Store(to + i, relu ? Activations.Relu(v) : v, length - i);
        }
    }

    // One group's channels of a sample into the zero-bordered image (with a stride, its phases), and the zero
    // slack after it.
    private static void CopyPadded(float* xs, in ConvGeometry g, float* image)
    {
        if (g.StrideH == 1 && g.StrideW == 1) CopyBordered(xs, g, g.InPerGroup, image);
        else CopyPhases(xs, g, image);
        long padded = (long)g.InPerGroup * g.StrideH * g.StrideW * GridH(g) * GridW(g);
        new Span<float>(image + padded, (int)(ImageLength(g) - padded)).Clear();
    }

    /// <summary>
    /// Copies a group's <see cref="ConvGeometry.InPerGroup"/> planes into their zero-bordered phases: channel c's
    /// phase (a, b) is the plane <c>image + ((c·s_h + a)·s_w + b)·GridH·GridW</c> whose row i, column j is the padded
    /// image's row i·s_h + a, column j·s_w + b (zero past the padded image). Row phases no tap reads are skipped
    /// (a 1×1 kernel of stride 2 reads one of four phases). A stride of 2 across splits each row with Winograd's
    /// even/odd split (masked loads for the border).
    /// </summary>
    private static void CopyPhases(float* xs, in ConvGeometry g, float* image)
    {
        int sh = g.StrideH, sw = g.StrideW, gh = GridH(g), gw = GridW(g), inPlane = g.InH * g.InW;
        long plane = (long)gh * gw;
        int rowPhases = 0;
        for (int kh = 0; kh < g.KernelH; kh++) rowPhases |= 1 << (kh * g.DilationH % sh);
        for (int c = 0; c < g.InPerGroup; c++)
        {
            for (int r = 0; r < gh * sh; r++)
            {
                if ((rowPhases & (1 << (r % sh))) == 0) continue;
                int ih = r - g.PadH;
                // Phase (r mod s_h, b), row r div s_h, for b = 0 … s_w − 1, plane apart.
                float* dest = image + ((long)(c * sh + r % sh) * sw * gh + r / sh) * gw;
                if ((uint)ih >= (uint)g.InH)
                {
                    for (int b = 0; b < sw; b++) new Span<float>(dest + b * plane, gw).Clear();
                    continue;
                }

                float* row = xs + (long)c * inPlane + (long)ih * g.InW;
                if (sw == 2)
                {
                    ConvWinograd.Split(row, g.InW, g.PadW, dest, dest + plane, gw);
                    continue;
                }

                for (int b = 0; b < sw; b++)
                {
                    float* to = dest + b * plane;
                    for (int j = 0, iw = b - g.PadW; j < gw; j++, iw += sw) to[j] = (uint)iw < (uint)g.InW ? row[iw] : 0f;
                }
            }
        }
    }

    /// <summary>
    /// Copies <paramref name="channels"/> planes of an image into <paramref name="image"/> with a zero border of the
    /// geometry's padding. Only the border is cleared: the copy overwrites the rest.
    /// </summary>
    internal static void CopyBordered(float* xs, in ConvGeometry g, int channels, float* image)
    {
        int hp = PaddedH(g), wp = PaddedW(g), inPlane = g.InH * g.InW;
        for (int c = 0; c < channels; c++)
        {
            float* plane = image + (long)c * hp * wp;
            new Span<float>(plane, g.PadH * wp).Clear();
            new Span<float>(plane + (long)(g.PadH + g.InH) * wp, g.PadH * wp).Clear();
            for (int h = 0; h < g.InH; h++)
            {
                float* row = plane + (long)(h + g.PadH) * wp;
                if (g.PadW > 0)
                {
                    new Span<float>(row, g.PadW).Clear();
                    new Span<float>(row + g.PadW + g.InW, g.PadW).Clear();
                }

                new ReadOnlySpan<float>(xs + (long)c * inPlane + (long)h * g.InW, g.InW).CopyTo(new Span<float>(row + g.PadW, g.InW));
            }
        }
    }

    /// <summary>
    /// Where each tap (channel, kh, kw) of one group reads in the zero-bordered image (with a stride, in its
    /// phases: <see cref="CopyPhases"/>): offsets[t] past an output position's place on the grid.
    /// <paramref name="offsets"/> holds InPerGroup·KernelH·KernelW entries.
    /// </summary>
    internal static void TapOffsets(in ConvGeometry g, int* offsets)
    {
        int sh = g.StrideH, sw = g.StrideW, gh = GridH(g), gw = GridW(g);
        for (int c = 0, t = 0; c < g.InPerGroup; c++)
        {
            for (int kh = 0; kh < g.KernelH; kh++)
            {
                int dh = kh * g.DilationH;
                for (int kw = 0; kw < g.KernelW; kw++)
                {
                    // Phase (dh mod s_h, dw mod s_w) of channel c, shifted by (dh div s_h, dw div s_w); with
                    // stride 1, (c·Hp + dh)·Wp + dw.
                    int dw = kw * g.DilationW;
                    offsets[t++] = (((c * sh + dh % sh) * sw + dw % sw) * gh + dh / sh) * gw + dw / sw;
                }
            }
        }
    }

    /// <summary>
    /// Packs rows [p0, p0+kc) × output pixels [j0, j0+nc) of the (virtual) column matrix into NR-wide panels
    /// (panel[p·NR + j]): row p is (channel, kh, kw), column j the output pixel; zero outside the image.
    /// </summary>
    private static void PackImage(float* x, in ConvGeometry g, int p0, int kc, int j0, int nc, float* dest)
    {
        int taps = g.KernelH * g.KernelW, inPlane = g.InH * g.InW;
        for (int jr = 0; jr < nc; jr += Gemm.NR)
        {
            int nr = Math.Min(Gemm.NR, nc - jr);
            float* panel = dest + (long)jr * kc;
            int first = j0 + jr;
            for (int p = 0; p < kc; p++)
            {
                int row = p0 + p;
                int c = row / taps, tap = row - c * taps;
                int kh = tap / g.KernelW, kw = tap - kh * g.KernelW;
                float* plane = x + (long)c * inPlane;
                float* target = panel + p * Gemm.NR;
                int offH = kh * g.DilationH - g.PadH, offW = kw * g.DilationW - g.PadW;
                // Walk the panel's pixels one output-row segment at a time.
                int j = 0;
                while (j < nr)
                {
                    int pixel = first + j;
                    int oh = pixel / g.OutW, ow = pixel - oh * g.OutW;
                    int length = Math.Min(nr - j, g.OutW - ow);
                    int ih = oh * g.StrideH + offH;
                    if ((uint)ih >= (uint)g.InH)
                    {
                        for (int t = 0; t < length; t++) target[j + t] = 0f;
                    }
                    else
                    {
                        float* source = plane + (long)ih * g.InW;
                        int iw = ow * g.StrideW + offW;
                        if (g.StrideW == 1 && iw >= 0 && iw + length <= g.InW)
                        {
                            float* from = source + iw, to = target + j;
                            int t = 0;
                            if (length >= 8)
                            {
                                Vector256.Store(Vector256.Load(from), to);
                                t = 8;
                            }

                            for (; t < length; t++) to[t] = from[t];
                        }
                        else
                        {
                            for (int t = 0; t < length; t++, iw += g.StrideW) target[j + t] = (uint)iw < (uint)g.InW ? source[iw] : 0f;
                        }
                    }

                    j += length;
                }

                for (; j < Gemm.NR; j++) target[j] = 0f;
            }
        }
    }

    /// <summary>
    /// Whether the input gradient is itself a stride-1 convolution of dY (flipped kernels, in/out channels
    /// swapped, padding d·(k−1) − p), so it can reuse <see cref="Forward"/> instead of col2im.
    /// </summary>
    public static bool CanTransposeAsConvolution(in ConvGeometry g) =>
        g.StrideH == 1 && g.StrideW == 1 && g.PadH <= g.DilationH * (g.KernelH - 1) && g.PadW <= g.DilationW * (g.KernelW - 1);

    /// <summary>The geometry of that convolution: dY [OutChannels, OutH, OutW] in, dX [InChannels, InH, InW] out.</summary>
    public static ConvGeometry Transposed(in ConvGeometry g) => new(
        g.OutChannels, g.InChannels, g.OutH, g.OutW, g.KernelH, g.KernelW, 1, 1,
        g.DilationH * (g.KernelH - 1) - g.PadH, g.DilationW * (g.KernelW - 1) - g.PadW, g.DilationH, g.DilationW, g.Groups);

    /// <summary>dx (overwritten) for a stride-1 convolution: W′[c, o, kh, kw] = W[o, c, KH−1−kh, KW−1−kw], then <see cref="Forward"/>.</summary>
    public static void BackwardInput(ReadOnlySpan<float> dy, ReadOnlySpan<float> w, Span<float> dx, int n, in ConvGeometry g, Span<float> scratch)
    {
        var flipped = Flip(w, g, scratch);
        Forward(dy, flipped, ReadOnlySpan<float>.Empty, dx, n, Transposed(g), scratch.Slice(g.WeightLength));
    }

    // W′[c, o, kh, kw] = W[o, c, KH−1−kh, KW−1−kw], into the start of scratch.
    private static ReadOnlySpan<float> Flip(ReadOnlySpan<float> w, in ConvGeometry g, Span<float> scratch)
    {
        int taps = g.KernelH * g.KernelW, inPer = g.InPerGroup, outPer = g.OutPerGroup;
        var flipped = scratch.Slice(0, g.WeightLength);
        for (int group = 0; group < g.Groups; group++)
        {
            for (int o = 0; o < outPer; o++)
            {
                for (int c = 0; c < inPer; c++)
                {
                    int source = ((group * outPer + o) * inPer + c) * taps;
                    int target = ((group * inPer + c) * outPer + o) * taps;
                    for (int t = 0; t < taps; t++) flipped[target + taps - 1 - t] = w[source + t];
                }
            }
        }

        return flipped;
    }

    /// <summary>Floats of scratch <see cref="BackwardWeight"/> needs: one packed dY block and one packed colᵀ block, or the padded grid's buffers.</summary>
    public static int WeightScratchLength(in ConvGeometry g) => Math.Max(Gemm.MC * Gemm.KC + Gemm.KC * Gemm.NC, WeightOnPaddedGrid(g) ? (int)WeightGridLength(g) : 0);

    // The weight gradient on the padded grid: the padded image, dY over the padded width packed in panels of
    // 16 channels, and dWᵀ (taps × channels, rounded up to whole tiles) accumulated over the batch.
    private static int ChannelsPadded(in ConvGeometry g) => (g.OutPerGroup + Gemm.NR - 1) / Gemm.NR * Gemm.NR;

    private static int TapsPadded(in ConvGeometry g) => (g.InPerGroup * g.KernelH * g.KernelW + Gemm.MR - 1) / Gemm.MR * Gemm.MR;

    private static long WeightGridLength(in ConvGeometry g) =>
        ImageLength(g) + (long)ChannelsPadded(g) * g.OutH * PaddedW(g) + (long)TapsPadded(g) * ChannelsPadded(g);

    /// <summary>
    /// Whether the weight gradient runs on the padded grid (stride 1): <c>dWᵀ[tap, o] = Σ_j image[offset(tap) + j]·dY[o, j]</c>
    /// over the padded-width grid, where dY is zero in the extra columns. The micro-kernel reads the six taps'
    /// image rows in place and only dY (small) is packed.
    /// </summary>
    public static bool WeightOnPaddedGrid(in ConvGeometry g) =>
        g.StrideH == 1 && g.StrideW == 1 && g.InPerGroup * g.KernelH * g.KernelW <= MaxGridTaps && WeightGridLength(g) <= MaxGridLength;

    // Reduction blocks of the weight gradient on the grid: a 16-channel dY panel of this many grid pixels
    // (16 KB) stays in L1 while the tap tiles pass over it.
    private const int GridJC = 256;

    /// <summary>dw += dY·colᵀ and dbias += Σ dY, per sample and group, colᵀ packed straight from the image.</summary>
    public static void BackwardWeight(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dw, Span<float> dbias, int n, in ConvGeometry g, Span<float> scratch)
    {
        if (WeightOnPaddedGrid(g))
        {
            BackwardWeightOnPaddedGrid(dy, x, dw, dbias, n, g, scratch, 0, g.OutPerGroup);
            return;
        }

        int m = g.OutPerGroup;
        int k = g.InPerGroup * g.KernelH * g.KernelW;
        int pixels = g.OutH * g.OutW, inPlane = g.InH * g.InW;
        fixed (float* pdy = dy, px = x, pdw = dw, ps = scratch)
        {
            float* packA = ps;
            float* packB = ps + Gemm.MC * Gemm.KC;
            float* edge = stackalloc float[Gemm.MR * Gemm.NR];
            for (int s = 0; s < n; s++)
            {
                for (int group = 0; group < g.Groups; group++)
                {
                    float* dys = pdy + (long)s * g.OutputLength + (long)group * m * pixels;
                    float* xs = px + (long)s * g.InputLength + (long)group * g.InPerGroup * inPlane;
                    float* dwg = pdw + (long)group * m * k;
                    for (int pc = 0; pc < pixels; pc += Gemm.KC)
                    {
                        int kc = Math.Min(Gemm.KC, pixels - pc);
                        for (int jc = 0; jc < k; jc += Gemm.NC)
                        {
                            int nc = Math.Min(Gemm.NC, k - jc);
                            PackImageTransposed(xs, g, pc, kc, jc, nc, packB);
                            for (int ic = 0; ic < m; ic += Gemm.MC)
                            {
                                int mc = Math.Min(Gemm.MC, m - ic);
                                Gemm.PackA(dys + (long)ic * pixels + pc, pixels, 1, mc, kc, packA);
                                Gemm.PanelProduct(kc, packA, mc, packB, nc, dwg + (long)ic * k + jc, k, accumulate: true, edge);
                            }
                        }
                    }
                }

                if (!dbias.IsEmpty)
                {
                    for (int o = 0; o < g.OutChannels; o++)
                        dbias[o] += System.Numerics.Tensors.TensorPrimitives.Sum(new ReadOnlySpan<float>(pdy + (long)s * g.OutputLength + (long)o * pixels, pixels));
                }
            }
        }
    }

    // Output channels [oLo, oHi) of each group (oLo a multiple of 16): the same tiles as one pass, so a split
    // by channels computes the same bits.
    private static void BackwardWeightOnPaddedGrid(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dw, Span<float> dbias, int n, in ConvGeometry g, Span<float> scratch, int oLo, int oHi)
    {
        int m = g.OutPerGroup, cg = g.InPerGroup, mine = oHi - oLo;
        int k = cg * g.KernelH * g.KernelW, kPadded = TapsPadded(g), mPadded = (mine + Gemm.NR - 1) / Gemm.NR * Gemm.NR;
        int wp = PaddedW(g), pixels = g.OutH * g.OutW, inPlane = g.InH * g.InW;
        int gridPixels = g.OutH * wp;
        long imageLength = ImageLength(g);
        fixed (float* pdy = dy, px = x, pdw = dw, ps = scratch)
        {
            float* image = ps;
            float* panels = image + imageLength;
            float* dwT = panels + (long)mPadded * gridPixels;
            // Tap rows as offsets into the padded image; the rows that round K up to a whole tile repeat tap 0
            // and are never added to dW.
            int* offsets = stackalloc int[kPadded];
            TapOffsets(g, offsets);

            for (int t = k; t < kPadded; t++) offsets[t] = 0;

            for (int group = 0; group < g.Groups; group++)
            {
                new Span<float>(dwT, kPadded * mPadded).Clear();
                for (int s = 0; s < n; s++)
                {
                    CopyPadded(px + (long)s * g.InputLength + (long)group * cg * inPlane, g, image);

                    // dY on the padded-width grid, 16 channels per panel, pixel-major: panel[j·16 + o]; zero in the
                    // extra columns and the channels past this part's.
                    float* dys = pdy + (long)s * g.OutputLength + ((long)group * m + oLo) * pixels;
                    new Span<float>(panels, mPadded * gridPixels).Clear();
                    for (int o = 0; o < mine; o++)
                    {
                        float* panel = panels + (long)(o / Gemm.NR) * Gemm.NR * gridPixels + o % Gemm.NR;
                        float* source = dys + (long)o * pixels;
                        for (int oh = 0; oh < g.OutH; oh++)
                        {
                            float* row = panel + (long)oh * wp * Gemm.NR;
                            for (int ow = 0; ow < g.OutW; ow++) row[ow * Gemm.NR] = source[oh * g.OutW + ow];
                        }
                    }

                    for (int jc = 0; jc < gridPixels; jc += GridJC)
                    {
                        int kc = Math.Min(GridJC, gridPixels - jc);
                        for (int q = 0; q < mPadded; q += 2 * Gemm.NR)
                        {
                            // 32 channels at a time (two dY panels) where there are, else the last 16.
                            float* bPanel = panels + (long)q * gridPixels + (long)jc * Gemm.NR;
                            bool pair = q + 2 * Gemm.NR <= mPadded;
                            for (int t = 0; t < kPadded; t += Gemm.MR)
                            {
                                if (pair) Gemm.KernelRowsPair(kc, image + jc, offsets + t, bPanel, bPanel + (long)Gemm.NR * gridPixels, dwT + (long)t * mPadded + q, mPadded, accumulate: true);
                                else Gemm.KernelRows(kc, image + jc, offsets + t, bPanel, dwT + (long)t * mPadded + q, mPadded, accumulate: true);
                            }
                        }
                    }

                    if (!dbias.IsEmpty)
                    {
                        for (int o = 0; o < mine; o++)
                            dbias[group * m + oLo + o] += System.Numerics.Tensors.TensorPrimitives.Sum(new ReadOnlySpan<float>(dys + (long)o * pixels, pixels));
                    }
                }

                // dW[o, tap] += dWᵀ[tap, o]
                float* dwg = pdw + ((long)group * m + oLo) * k;
                for (int o = 0; o < mine; o++)
                {
                    for (int t = 0; t < k; t++) dwg[(long)o * k + t] += dwT[(long)t * mPadded + o];
                }
            }
        }
    }

    /// <summary>
    /// Packs colᵀ: pixels [p0, p0+kc) × column-matrix rows [j0, j0+nc) into NR-wide panels (panel[p·NR + j]),
    /// reading each row (channel, kh, kw) along consecutive pixels, contiguous in the image where it can.
    /// </summary>
    private static void PackImageTransposed(float* x, in ConvGeometry g, int p0, int kc, int j0, int nc, float* dest)
    {
        int taps = g.KernelH * g.KernelW, inPlane = g.InH * g.InW;
        for (int jr = 0; jr < nc; jr += Gemm.NR)
        {
            int nr = Math.Min(Gemm.NR, nc - jr);
            float* panel = dest + (long)jr * kc;
            for (int j = 0; j < Gemm.NR; j++)
            {
                if (j >= nr)
                {
                    for (int q = 0; q < kc; q++) panel[q * Gemm.NR + j] = 0f;
                    continue;
                }

                int row = j0 + jr + j;
                int c = row / taps, tap = row - c * taps;
                int kh = tap / g.KernelW, kw = tap - kh * g.KernelW;
                float* plane = x + (long)c * inPlane;
                int offH = kh * g.DilationH - g.PadH, offW = kw * g.DilationW - g.PadW;
                int p = 0;
                while (p < kc)
                {
                    int pixel = p0 + p;
                    int oh = pixel / g.OutW, ow = pixel - oh * g.OutW;
                    int length = Math.Min(kc - p, g.OutW - ow);
                    int ih = oh * g.StrideH + offH;
                    float* target = panel + p * Gemm.NR + j;
                    if ((uint)ih >= (uint)g.InH)
                    {
                        for (int t = 0; t < length; t++) target[t * Gemm.NR] = 0f;
                    }
                    else
                    {
                        float* source = plane + (long)ih * g.InW;
                        int iw = ow * g.StrideW + offW;
                        for (int t = 0; t < length; t++, iw += g.StrideW) target[t * Gemm.NR] = (uint)iw < (uint)g.InW ? source[iw] : 0f;
                    }

                    p += length;
                }
            }
        }
    }
}
