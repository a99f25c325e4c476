// Direct convolution for layers with few input channels (the first layer of an image network).
using System.ComponentModel;
using System.Diagnostics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Dsl.Runtime.Kernels;

/// <summary>
/// Stride-1 2-d convolution computed directly from a zero-padded copy of each image, for layers whose
/// reduction (input channels × kernel taps) is short: <c>conv(1, 6, 5)</c> sums 25 products per output,
/// <c>conv(1, 32, 3, padding: 1)</c> only 9. A GEMM over such a short K spends its time packing the image
/// and loading and storing tiles of C; here 4 output channels × 16 output columns (× 32 with AVX-512) stay in
/// registers while every tap adds one shifted row of the image, and the weight gradient keeps 2 channels × a
/// kernel row of taps in registers while the rows of dY stream past. At inference a 2×2 max pooling after the
/// layer is taken in the tiles (two output rows at a time), so the full output is never written.
/// </summary>
/// <remarks>
/// The generator picks this path at compile time for the layers <see cref="Suits"/> accepts (the compiler
/// applies the same rule to the layer's constant shape). The input gradient stays on <see cref="ConvGemm"/>:
/// a first layer needs none, and a short reduction is long again in the transposed direction.
/// Any geometry is accepted; one this kernel does not suit is passed to <see cref="ConvGemm"/>, except by the
/// forward with a fused max pooling, which needs this kernel and says so with an <see cref="ArgumentException"/>.
/// </remarks>
[EditorBrowsable(EditorBrowsableState.Never)]
public static unsafe class ConvDirect
{
    /// <summary>Longest reduction (input channels × kernel taps) the direct path takes.</summary>
    public const int MaxTaps = Dsl.Contract.ConvolutionRules.DirectMaxTaps;

    /// <summary>Widest kernel row the weight-gradient registers hold.</summary>
    public const int MaxKernelW = Dsl.Contract.ConvolutionRules.DirectMaxKernelW;

    /// <summary>Narrowest output row: one register tile is 16 columns.</summary>
    public const int MinOutW = Dsl.Contract.ConvolutionRules.DirectMinOutW;

    /// <summary>Whether the direct path computes <paramref name="g"/>: no groups, stride and dilation 1, a reduction of at most <see cref="MaxTaps"/>, kernel rows of at most <see cref="MaxKernelW"/>, output rows of at least <see cref="MinOutW"/>.</summary>
    /// <param name="g">Convolution geometry.</param>
    /// <returns>True when <see cref="Forward(ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, int, in ConvGeometry, Span{float})"/> and <see cref="BackwardWeight(ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, Span{float}, int, in ConvGeometry, Span{float})"/> run directly.</returns>
    public static bool Suits(in ConvGeometry g) =>
        Dsl.Contract.ConvolutionRules.Direct(g.InChannels, g.KernelH, g.KernelW, g.StrideH, g.StrideW, g.DilationH, g.DilationW, g.Groups, g.OutW);

    private static int PaddedH(in ConvGeometry g) => g.InH + 2 * g.PadH;

    private static int PaddedW(in ConvGeometry g) => g.InW + 2 * g.PadW;

    private static int PaddedLength(in ConvGeometry g) => g.PadH == 0 && g.PadW == 0 ? 0 : g.InChannels * PaddedH(g) * PaddedW(g);

    /// <summary>Floats of scratch the serial overloads need for <paramref name="g"/>.</summary>
    /// <param name="g">Convolution geometry.</param>
    /// <returns>The scratch length.</returns>
    public static int ScratchLength(in ConvGeometry g) => Suits(g) ? PaddedLength(g) : ConvGemm.ScratchLength(g);

    /// <summary>
    /// Floats of scratch per pool thread for the layer: the parallel overloads' image copy and private weight
    /// gradient, and enough for <see cref="ConvGemm"/>'s input gradient of the same layer, which shares it.
    /// </summary>
    /// <param name="g">Convolution geometry.</param>
    /// <returns>The per-thread scratch length.</returns>
    public static int ParallelScratchLength(in ConvGeometry g) =>
        Suits(g) ? Math.Max(PaddedLength(g) + g.WeightLength + g.OutChannels, ConvGemm.ParallelScratchLength(g)) : ConvGemm.ParallelScratchLength(g);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Fmadd(Vector256<float> a, Vector256<float> b, Vector256<float> c) =>
        Fma.IsSupported ? Fma.MultiplyAdd(a, b, c) : a * b + c;

    // The image of one sample with its zero border, or the sample itself when there is no padding.
    private static float* Padded(float* x, in ConvGeometry g, float* scratch)
    {
        if (g.PadH == 0 && g.PadW == 0) return x;
        ImplicitGemm.CopyBordered(x, g, g.InChannels, scratch);
        return scratch;
    }

    /// <summary>Computes <c>y = conv(x, w) + bias</c>.</summary>
    /// <param name="x">Input <c>[n, InChannels, InH, InW]</c>.</param>
    /// <param name="w">Weight <c>[OutChannels, InChannels, KernelH, KernelW]</c>.</param>
    /// <param name="bias">Bias <c>[OutChannels]</c>, or empty for no bias.</param>
    /// <param name="y">Output <c>[n, OutChannels, OutH, OutW]</c>; overwritten.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="g">Convolution geometry.</param>
    /// <param name="scratch">At least <see cref="ScratchLength"/> floats.</param>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y, int n, in ConvGeometry g, Span<float> scratch) =>
        Forward(x, w, bias, y, n, g, scratch, relu: false);

    /// <summary>Computes <c>y = conv(x, w) + bias</c>, or its ReLU when <paramref name="relu"/> (an inference ReLU fused into the layer).</summary>
    /// <param name="x">Input <c>[n, InChannels, InH, InW]</c>.</param>
    /// <param name="w">Weight <c>[OutChannels, InChannels, KernelH, KernelW]</c>.</param>
    /// <param name="bias">Bias <c>[OutChannels]</c>, or empty for no bias.</param>
    /// <param name="y">Output <c>[n, OutChannels, OutH, OutW]</c>; overwritten.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="g">Convolution geometry.</param>
    /// <param name="scratch">At least <see cref="ScratchLength"/> floats.</param>
    /// <param name="relu">Apply ReLU to the output as it is written.</param>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y, int n, in ConvGeometry g, Span<float> scratch, bool relu)
    {
        if (!Suits(g))
        {
            ConvGemm.Forward(x, w, bias, y, n, g, scratch, relu);
            return;
        }

        Run(x, w, bias, y, n, g, scratch, relu, null, FusedActivation.None);
    }

    /// <summary>
    /// Computes <c>y = act(conv(x, w) + bias + residual)</c>: a graph's residual add (and the activation after it)
    /// done as each sample's output is written, while it is in cache.
    /// </summary>
    /// <param name="x">Input <c>[n, InChannels, InH, InW]</c>.</param>
    /// <param name="w">Weight <c>[OutChannels, InChannels, KernelH, KernelW]</c>.</param>
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
        if (!Suits(g))
        {
            ConvGemm.Forward(x, w, bias, y, n, g, scratch, activation, residual);
            return;
        }

        ResidualEpilogue.Check(residual, n, g.OutputLength);
        fixed (float* pr = residual)
            Run(x, w, bias, y, n, g, scratch, relu: false, pr, activation);
    }

    // The direct kernel; with a residual (or an activation not applied in the tiles), each sample's output gets it once
    // written. Sample s of y (and of the residual) starts at s·yStride (0: the output length, or the pooled output's
    // with maxPool, which writes the 2×2 max pooling of the output and takes no residual).
    private static void Run(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y, int n, in ConvGeometry g, Span<float> scratch,
        bool relu, float* residual, FusedActivation activation, long yStride = 0, bool maxPool = false, bool wide = true)
    {
        wide &= Wide;
        Debug.Assert(!maxPool || (residual == null && activation == FusedActivation.None), "the pooled kernel takes no residual");
        int outLength = maxPool ? PooledLength(g) : g.OutputLength, plane = maxPool ? PooledLength(g) / g.OutChannels : g.OutH * g.OutW;
        long stride = yStride == 0 ? outLength : yStride;
        Debug.Assert(x.Length >= n * g.InputLength && w.Length >= g.WeightLength && (n == 0 || y.Length >= (n - 1) * stride + outLength), "buffer too short");
        Debug.Assert(bias.IsEmpty || bias.Length >= g.OutChannels, "bias too short");
        Debug.Assert(scratch.Length >= ScratchLength(g), "scratch too short");
        int taps = g.InChannels * g.KernelH * g.KernelW, wp = PaddedW(g);
        int* offsets = stackalloc int[MaxTaps];
        ImplicitGemm.TapOffsets(g, offsets); // no groups, dilation 1 (Suits)

        fixed (float* px = x, pw = w, pb = bias, py = y, ps = scratch)
        {
            for (int s = 0; s < n; s++)
            {
                float* image = Padded(px + (long)s * g.InputLength, g, ps);
                float* ys = py + s * stride;
                int o = 0;
                for (; o + 4 <= g.OutChannels; o += 4)
                {
                    float* wo = pw + (long)o * taps, bo = bias.IsEmpty ? null : pb + o, yo = ys + (long)o * plane;
                    if (wide && maxPool) ForwardChannels4PooledWide(image, wo, bo, yo, offsets, taps, wp, g.OutH, g.OutW, relu);
                    else if (wide) ForwardChannels4Wide(image, wo, bo, yo, offsets, taps, wp, g.OutH, g.OutW, relu);
                    else if (maxPool) ForwardChannels4Pooled(image, wo, bo, yo, offsets, taps, wp, g.OutH, g.OutW, relu);
                    else ForwardChannels4(image, wo, bo, yo, offsets, taps, wp, g.OutH, g.OutW, relu);
                }

                for (; o < g.OutChannels; o++)
                {
                    if (maxPool) ForwardChannelPooled(image, pw + (long)o * taps, bias.IsEmpty ? 0f : pb[o], ys + (long)o * plane, offsets, taps, wp, g.OutH, g.OutW, relu);
                    else ForwardChannel(image, pw + (long)o * taps, bias.IsEmpty ? 0f : pb[o], ys + (long)o * plane, offsets, taps, wp, g.OutH, g.OutW, relu);
                }

                if (residual != null || activation != FusedActivation.None) ResidualEpilogue.Apply(ys, residual == null ? null : residual + s * stride, g.OutputLength, activation);
            }
        }
    }

    /// <summary>The serial forward on the 256-bit tiles (<paramref name="wide"/> false) or, with AVX-512, the 512-bit ones: the tests compare their bits.</summary>
    internal static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y, int n, in ConvGeometry g, Span<float> scratch, bool relu, bool maxPool, bool wide) =>
        Run(x, w, bias, y, n, g, scratch, relu, null, FusedActivation.None, maxPool: maxPool, wide: wide);

    // Floats of one sample's output after 2×2, stride-2 max pooling (floor).
    private static int PooledLength(in ConvGeometry g) => g.OutChannels * (g.OutH / 2) * (g.OutW / 2);

    // Four output planes: 4 channels × 16 columns in eight registers per tile. The last tile of a row is
    // moved back to end at the row's end; the columns it recomputes get the same values.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ForwardChannels4(float* image, float* w, float* bias, float* y, int* offsets, int taps, int wp, int outH, int outW, bool relu)
    {
        int plane = outH * outW;
        for (int oh = 0; oh < outH; oh++)
        {
            float* row = image + (long)oh * wp;
            for (int ow = 0; ; ow += 16)
            {
                if (ow > outW - 16) ow = outW - 16;
                Tile4(row + ow, w, bias, offsets, taps, relu, out var c00, out var c01, out var c10, out var c11, out var c20, out var c21, out var c30, out var c31);
                float* out0 = y + (long)oh * outW + ow;
                Vector256.Store(c00, out0); Vector256.Store(c01, out0 + 8);
                Vector256.Store(c10, out0 + plane); Vector256.Store(c11, out0 + plane + 8);
                Vector256.Store(c20, out0 + 2 * plane); Vector256.Store(c21, out0 + 2 * plane + 8);
                Vector256.Store(c30, out0 + 3 * plane); Vector256.Store(c31, out0 + 3 * plane + 8);
                if (ow == outW - 16) break;
            }
        }
    }

    // ForwardChannels4 followed by 2×2, stride-2 max pooling (an inference maxpool(2) fused into the layer): output rows
    // 2i and 2i + 1 as two tiles, each window's maximum taken in PyTorch's order (top-left, top-right, bottom-left,
    // bottom-right; the first maximum kept, NaN propagated), 8 pooled columns stored per channel. A last odd row or
    // column is dropped, as floor pooling does; the last tile of a row starts at the last even column that leaves 16.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ForwardChannels4Pooled(float* image, float* w, float* bias, float* y, int* offsets, int taps, int wp, int outH, int outW, bool relu)
    {
        int pooledW = outW / 2, plane = outH / 2 * pooledW, last = (outW - 16) & ~1;
        for (int i = 0; i < outH / 2; i++)
        {
            float* top = image + 2L * i * wp;
            for (int ow = 0; ; ow += 16)
            {
                if (ow > last) ow = last;
                Tile4(top + ow, w, bias, offsets, taps, relu, out var t00, out var t01, out var t10, out var t11, out var t20, out var t21, out var t30, out var t31);
                var m0 = Across(t00, t01);
                var m1 = Across(t10, t11);
                var m2 = Across(t20, t21);
                var m3 = Across(t30, t31);
                Tile4(top + wp + ow, w, bias, offsets, taps, relu, out t00, out t01, out t10, out t11, out t20, out t21, out t30, out t31);
                float* out0 = y + (long)i * pooledW + ow / 2;
                Vector256.Store(Below(m0, t00, t01), out0);
                Vector256.Store(Below(m1, t10, t11), out0 + plane);
                Vector256.Store(Below(m2, t20, t21), out0 + 2 * plane);
                Vector256.Store(Below(m3, t30, t31), out0 + 3 * plane);
                if (ow == last) break;
            }
        }
    }

    // One tile of ForwardChannels4: 4 channels (w, w + taps, …) × the 16 columns from `at` of one output row, with
    // the bias and, when asked, ReLU.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Tile4(float* at, float* w, float* bias, int* offsets, int taps, bool relu,
        out Vector256<float> c00, out Vector256<float> c01, out Vector256<float> c10, out Vector256<float> c11,
        out Vector256<float> c20, out Vector256<float> c21, out Vector256<float> c30, out Vector256<float> c31)
    {
        float* w0 = w, w1 = w + taps, w2 = w + 2 * taps, w3 = w + 3 * taps;
        c00 = c01 = Vector256.Create(bias == null ? 0f : bias[0]);
        c10 = c11 = Vector256.Create(bias == null ? 0f : bias[1]);
        c20 = c21 = Vector256.Create(bias == null ? 0f : bias[2]);
        c30 = c31 = Vector256.Create(bias == null ? 0f : bias[3]);
        for (int t = 0; t < taps; t++)
        {
            float* p = at + offsets[t];
            var v0 = Vector256.Load(p);
            var v1 = Vector256.Load(p + 8);
            var s = Vector256.Create(w0[t]);
            c00 = Fmadd(s, v0, c00);
            c01 = Fmadd(s, v1, c01);
            s = Vector256.Create(w1[t]);
            c10 = Fmadd(s, v0, c10);
            c11 = Fmadd(s, v1, c11);
            s = Vector256.Create(w2[t]);
            c20 = Fmadd(s, v0, c20);
            c21 = Fmadd(s, v1, c21);
            s = Vector256.Create(w3[t]);
            c30 = Fmadd(s, v0, c30);
            c31 = Fmadd(s, v1, c31);
        }

        if (relu)
        {
            c00 = Activations.Relu(c00); c01 = Activations.Relu(c01); c10 = Activations.Relu(c10); c11 = Activations.Relu(c11);
            c20 = Activations.Relu(c20); c21 = Activations.Relu(c21); c30 = Activations.Relu(c30); c31 = Activations.Relu(c31);
        }
    }

    // The windows' top rows: of 16 columns (a: 0–7, b: 8–15), max(column 2j, column 2j + 1) in lane j.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Across(Vector256<float> a, Vector256<float> b)
    {
        Split(a, b, out var even, out var odd);
        return Take(even, odd);
    }

    // The windows' bottom rows taken into their top rows' maxima, left then right.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Below(Vector256<float> max, Vector256<float> a, Vector256<float> b)
    {
        Split(a, b, out var even, out var odd);
        return Take(Take(max, even), odd);
    }

    // even = columns 0, 2, …, 14 and odd = 1, 3, …, 15 of the 16 in a (0–7) and b (8–15).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Split(Vector256<float> a, Vector256<float> b, out Vector256<float> even, out Vector256<float> odd)
    {
        var order = Vector256.Create(0, 2, 4, 6, 1, 3, 5, 7);
        a = Vector256.Shuffle(a, order);
        b = Vector256.Shuffle(b, order);
        even = Vector256.Create(a.GetLower(), b.GetLower());
        odd = Vector256.Create(a.GetUpper(), b.GetUpper());
    }

    // max(max, v) as PyTorch's max pooling takes it: v when greater or NaN, so the first maximum stays and NaN propagates.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Take(Vector256<float> max, Vector256<float> v) =>
        Vector256.ConditionalSelect(Vector256.GreaterThan(v, max) | ~Vector256.Equals(v, v), v, max);

    /// <summary>
    /// Whether the blocks of four channels run on 512-bit vectors (AVX-512): a tile is 4 channels × two vectors of 16
    /// columns, the same multiply-adds per output in the same order as the 256-bit tiles (bias, then the taps in
    /// order), so the same bits, with half the instructions.
    /// </summary>
    internal static readonly bool Wide = Avx512F.IsSupported && Fma.IsSupported;

    // ForwardChannels4 on 512-bit vectors: per row, tiles of two 16-column vectors at ow and ow + 16, either moved
    // back to end at the row's end (a row of 28 takes one tile, columns 0–15 and 12–27; a row of 16 computes its
    // vector twice); the columns computed twice get the same values.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ForwardChannels4Wide(float* image, float* w, float* bias, float* y, int* offsets, int taps, int wp, int outH, int outW, bool relu)
    {
        int plane = outH * outW, last = outW - 16;
        for (int oh = 0; oh < outH; oh++)
        {
            float* row = image + (long)oh * wp;
            float* yr = y + (long)oh * outW;
            for (int ow = 0; ; ow += 32)
            {
                int c0 = Math.Min(ow, last), c1 = Math.Min(ow + 16, last);
                Tile4Wide(row + c0, row + c1, w, bias, offsets, taps, relu, out var a00, out var a01, out var a10, out var a11, out var a20, out var a21, out var a30, out var a31);
                Vector512.Store(a00, yr + c0); Vector512.Store(a01, yr + c1);
                Vector512.Store(a10, yr + plane + c0); Vector512.Store(a11, yr + plane + c1);
                Vector512.Store(a20, yr + 2 * plane + c0); Vector512.Store(a21, yr + 2 * plane + c1);
                Vector512.Store(a30, yr + 3 * plane + c0); Vector512.Store(a31, yr + 3 * plane + c1);
                if (c1 == last) break;
            }
        }
    }

    // ForwardChannels4Pooled on 512-bit vectors: each 16-column vector of rows 2i and 2i + 1 gives 8 pooled columns;
    // vectors start at even columns (the last at the last even column that leaves 16 inside the row).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ForwardChannels4PooledWide(float* image, float* w, float* bias, float* y, int* offsets, int taps, int wp, int outH, int outW, bool relu)
    {
        int pooledW = outW / 2, plane = outH / 2 * pooledW, last = (outW - 16) & ~1;
        for (int i = 0; i < outH / 2; i++)
        {
            float* top = image + 2L * i * wp;
            float* yr = y + (long)i * pooledW;
            for (int ow = 0; ; ow += 32)
            {
                int c0 = Math.Min(ow, last), c1 = Math.Min(ow + 16, last);
                Tile4Wide(top + c0, top + c1, w, bias, offsets, taps, relu, out var t00, out var t01, out var t10, out var t11, out var t20, out var t21, out var t30, out var t31);
                var m00 = Across(t00); var m01 = Across(t01);
                var m10 = Across(t10); var m11 = Across(t11);
                var m20 = Across(t20); var m21 = Across(t21);
                var m30 = Across(t30); var m31 = Across(t31);
                Tile4Wide(top + wp + c0, top + wp + c1, w, bias, offsets, taps, relu, out t00, out t01, out t10, out t11, out t20, out t21, out t30, out t31);
                int p0 = c0 / 2, p1 = c1 / 2;
                Vector256.Store(Below(m00, t00), yr + p0); Vector256.Store(Below(m01, t01), yr + p1);
                Vector256.Store(Below(m10, t10), yr + plane + p0); Vector256.Store(Below(m11, t11), yr + plane + p1);
                Vector256.Store(Below(m20, t20), yr + 2 * plane + p0); Vector256.Store(Below(m21, t21), yr + 2 * plane + p1);
                Vector256.Store(Below(m30, t30), yr + 3 * plane + p0); Vector256.Store(Below(m31, t31), yr + 3 * plane + p1);
                if (c1 == last) break;
            }
        }
    }

    // One tile of ForwardChannels4Wide: 4 channels × the 16 columns from `at0` and the 16 from `at1` of one output row.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Tile4Wide(float* at0, float* at1, float* w, float* bias, int* offsets, int taps, bool relu,
        out Vector512<float> c00, out Vector512<float> c01, out Vector512<float> c10, out Vector512<float> c11,
        out Vector512<float> c20, out Vector512<float> c21, out Vector512<float> c30, out Vector512<float> c31)
    {
        float* w0 = w, w1 = w + taps, w2 = w + 2 * taps, w3 = w + 3 * taps;
        c00 = c01 = Vector512.Create(bias == null ? 0f : bias[0]);
        c10 = c11 = Vector512.Create(bias == null ? 0f : bias[1]);
        c20 = c21 = Vector512.Create(bias == null ? 0f : bias[2]);
        c30 = c31 = Vector512.Create(bias == null ? 0f : bias[3]);
        for (int t = 0; t < taps; t++)
        {
            var v0 = Vector512.Load(at0 + offsets[t]);
            var v1 = Vector512.Load(at1 + offsets[t]);
            var s = Vector512.Create(w0[t]);
            c00 = Avx512F.FusedMultiplyAdd(s, v0, c00);
            c01 = Avx512F.FusedMultiplyAdd(s, v1, c01);
            s = Vector512.Create(w1[t]);
            c10 = Avx512F.FusedMultiplyAdd(s, v0, c10);
            c11 = Avx512F.FusedMultiplyAdd(s, v1, c11);
            s = Vector512.Create(w2[t]);
            c20 = Avx512F.FusedMultiplyAdd(s, v0, c20);
            c21 = Avx512F.FusedMultiplyAdd(s, v1, c21);
            s = Vector512.Create(w3[t]);
            c30 = Avx512F.FusedMultiplyAdd(s, v0, c30);
            c31 = Avx512F.FusedMultiplyAdd(s, v1, c31);
        }

        if (relu)
        {
            c00 = Relu(c00); c01 = Relu(c01); c10 = Relu(c10); c11 = Relu(c11);
            c20 = Relu(c20); c21 = Relu(c21); c30 = Relu(c30); c31 = Relu(c31);
        }
    }

    // Activations.Relu on 16 lanes: max(v, 0) with NaN propagated, the same bits per lane.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Relu(Vector512<float> v) => v & (Vector512.GreaterThan(v, Vector512<float>.Zero) | ~Vector512.Equals(v, v));

    // The windows' top rows of one 16-column vector: max(column 2j, column 2j + 1) in lane j of 8.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Across(Vector512<float> v)
    {
        v = Vector512.Shuffle(v, Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15));
        return Take(v.GetLower(), v.GetUpper());
    }

    // The windows' bottom rows of one 16-column vector taken into their top rows' maxima, left then right.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Below(Vector256<float> max, Vector512<float> v)
    {
        v = Vector512.Shuffle(v, Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15));
        return Take(Take(max, v.GetLower()), v.GetUpper());
    }

    // One output plane (the channels left after the blocks of four), 16 columns per tile.
    private static void ForwardChannel(float* image, float* w, float bias, float* y, int* offsets, int taps, int wp, int outH, int outW, bool relu)
    {
        for (int oh = 0; oh < outH; oh++)
        {
            float* row = image + (long)oh * wp;
            for (int ow = 0; ; ow += 16)
            {
                if (ow > outW - 16) ow = outW - 16;
                Tile1(row + ow, w, bias, offsets, taps, relu, out var c0, out var c1);
                Vector256.Store(c0, y + (long)oh * outW + ow);
                Vector256.Store(c1, y + (long)oh * outW + ow + 8);
                if (ow == outW - 16) break;
            }
        }
    }

    // ForwardChannel followed by 2×2 max pooling, as ForwardChannels4Pooled.
    private static void ForwardChannelPooled(float* image, float* w, float bias, float* y, int* offsets, int taps, int wp, int outH, int outW, bool relu)
    {
        int pooledW = outW / 2, last = (outW - 16) & ~1;
        for (int i = 0; i < outH / 2; i++)
        {
            float* top = image + 2L * i * wp;
            for (int ow = 0; ; ow += 16)
            {
                if (ow > last) ow = last;
                Tile1(top + ow, w, bias, offsets, taps, relu, out var c0, out var c1);
                var m = Across(c0, c1);
                Tile1(top + wp + ow, w, bias, offsets, taps, relu, out c0, out c1);
                Vector256.Store(Below(m, c0, c1), y + (long)i * pooledW + ow / 2);
                if (ow == last) break;
            }
        }
    }

    // One tile of ForwardChannel: the 16 columns from `at` of one output row.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Tile1(float* at, float* w, float bias, int* offsets, int taps, bool relu, out Vector256<float> c0, out Vector256<float> c1)
    {
        c0 = c1 = Vector256.Create(bias);
        for (int t = 0; t < taps; t++)
        {
            float* p = at + offsets[t];
            var s = Vector256.Create(w[t]);
            c0 = Fmadd(s, Vector256.Load(p), c0);
            c1 = Fmadd(s, Vector256.Load(p + 8), c1);
        }

        if (relu)
        {
            c0 = Activations.Relu(c0);
            c1 = Activations.Relu(c1);
        }
    }

    /// <summary>Weight and bias gradients, accumulated: <c>dW[o, c, kh, kw] += Σ dY[o]·x[c] shifted by the tap</c>, <c>dbias[o] += Σ dY[o]</c>.</summary>
    /// <param name="dy">Output gradient <c>[n, OutChannels, OutH, OutW]</c>.</param>
    /// <param name="x">Forward input <c>[n, InChannels, InH, InW]</c>.</param>
    /// <param name="dw">Weight gradient; accumulated into.</param>
    /// <param name="dbias">Bias gradient, or empty; accumulated into.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="g">Convolution geometry.</param>
    /// <param name="scratch">At least <see cref="ScratchLength"/> floats.</param>
    public static void BackwardWeight(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dw, Span<float> dbias, int n, in ConvGeometry g, Span<float> scratch)
    {
        if (!Suits(g))
        {
            ConvGemm.BackwardWeight(dy, x, dw, dbias, n, g, scratch);
            return;
        }

        Debug.Assert(x.Length >= n * g.InputLength && dw.Length >= g.WeightLength && dy.Length >= n * g.OutputLength, "buffer too short");
        Debug.Assert(dbias.IsEmpty || dbias.Length >= g.OutChannels, "dbias too short");
        Debug.Assert(scratch.Length >= ScratchLength(g), "scratch too short");
        int taps = g.InChannels * g.KernelH * g.KernelW, wp = PaddedW(g), hp = PaddedH(g), plane = g.OutH * g.OutW;
        fixed (float* pdy = dy, px = x, pdw = dw, ps = scratch)
        {
            for (int s = 0; s < n; s++)
            {
                float* image = Padded(px + (long)s * g.InputLength, g, ps);
                float* ds = pdy + (long)s * g.OutputLength;
                int o = 0;
                for (; o < g.OutChannels; o += 2)
                {
                    bool pair = o + 1 < g.OutChannels;
                    for (int c = 0; c < g.InChannels; c++)
                    {
                        for (int kh = 0; kh < g.KernelH; kh++)
                        {
                            float* taps0 = pdw + (long)o * taps + (c * g.KernelH + kh) * g.KernelW;
                            WeightRow(ds + (long)o * plane, pair ? ds + (long)(o + 1) * plane : null, image + ((long)c * hp + kh) * wp,
                                taps0, pair ? taps0 + taps : null, g.KernelW, wp, g.OutH, g.OutW);
                        }
                    }
                }
            }
        }

        if (!dbias.IsEmpty)
        {
            for (int s = 0; s < n; s++)
            {
                for (int o = 0; o < g.OutChannels; o++) dbias[o] += TensorPrimitives.Sum(dy.Slice(s * g.OutputLength + o * plane, plane));
            }
        }
    }

    // One kernel row (kernelW ≤ 5 taps) of one or two output channels: Σ over the plane of dY × the image
    // shifted by each tap, in ten registers. A row's last 8 columns are loaded ending at the row's end, with
    // the lanes the previous chunk already counted masked off.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void WeightRow(float* d0, float* d1, float* image, float* dw0, float* dw1, int kernelW, int wp, int outH, int outW)
    {
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default;
        Vector256<float> b0 = default, b1 = default, b2 = default, b3 = default, b4 = default;
        int full = outW & ~7, rest = outW - full;
        // Lanes ≥ 8 − rest of the last chunk are new columns.
        var tailMask = Vector256.GreaterThanOrEqual(Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7), Vector256.Create(8 - rest)).AsSingle();
        bool two = d1 != null;
        for (int oh = 0; oh < outH; oh++)
        {
            float* r0 = d0 + (long)oh * outW, r1 = two ? d1 + (long)oh * outW : r0;
            float* p = image + (long)oh * wp;
            for (int ow = 0; ow < outW; ow += 8)
            {
                Vector256<float> u, v;
                int at = ow;
                if (ow < full)
                {
                    u = Vector256.Load(r0 + ow);
                    v = Vector256.Load(r1 + ow);
                }
                else
                {
                    at = outW - 8;
                    u = Vector256.Load(r0 + at) & tailMask;
                    v = Vector256.Load(r1 + at) & tailMask;
                }

                float* q = p + at;
                var x0 = Vector256.Load(q);
                a0 = Fmadd(u, x0, a0);
                b0 = Fmadd(v, x0, b0);
                if (kernelW > 1)
                {
                    var x1 = Vector256.Load(q + 1);
                    a1 = Fmadd(u, x1, a1);
                    b1 = Fmadd(v, x1, b1);
                }

                if (kernelW > 2)
                {
                    var x2 = Vector256.Load(q + 2);
                    a2 = Fmadd(u, x2, a2);
                    b2 = Fmadd(v, x2, b2);
                }

                if (kernelW > 3)
                {
                    var x3 = Vector256.Load(q + 3);
                    a3 = Fmadd(u, x3, a3);
                    b3 = Fmadd(v, x3, b3);
                }

                if (kernelW > 4)
                {
                    var x4 = Vector256.Load(q + 4);
                    a4 = Fmadd(u, x4, a4);
                    b4 = Fmadd(v, x4, b4);
                }
            }
        }

        dw0[0] += Vector256.Sum(a0);
        if (kernelW > 1) dw0[1] += Vector256.Sum(a1);
        if (kernelW > 2) dw0[2] += Vector256.Sum(a2);
        if (kernelW > 3) dw0[3] += Vector256.Sum(a3);
        if (kernelW > 4) dw0[4] += Vector256.Sum(a4);
        if (!two) return;
        dw1[0] += Vector256.Sum(b0);
        if (kernelW > 1) dw1[1] += Vector256.Sum(b1);
        if (kernelW > 2) dw1[2] += Vector256.Sum(b2);
        if (kernelW > 3) dw1[3] += Vector256.Sum(b3);
        if (kernelW > 4) dw1[4] += Vector256.Sum(b4);
    }

    // Below this many multiply-adds a pass stays on the caller. It was 2^21 when a pass had one fixed part per
    // thread and a late worker held up half the batch (SeedLenet's conv(1, 6, 5) at batch 8, 1.08M, took 86–97 µs
    // split in the benchmark against 40 µs serial). In chunks of samples that the caller takes over when a worker is
    // late, FmnistBn's conv(1, 32, 3) at batch 8 (1.8M) split saves about 30 µs of 250 on two threads, SeedLenet's
    // training step at batch 8 92–97 → 74–77 µs.
    internal const long ParallelThreshold = 1L << 19;

    // Forward passes go in chunks of samples, up to four per thread: a worker that starts late or loses its core holds up
    // at most a quarter of its share.
    private static int ForwardChunks(int n, WorkerPool pool) => Math.Min(n, 4 * pool.Threads);

    internal static bool Parallel(WorkerPool? pool, int n, in ConvGeometry g) =>
        pool is { Threads: > 1 } && n > 1 && (long)n * g.OutChannels * g.OutH * g.OutW * g.InChannels * g.KernelH * g.KernelW >= ParallelThreshold;

    private struct Job
    {
        public float* X, W, Bias, Y, Scratch;
        public int BiasLength, N, ScratchStride;
        public ConvGeometry G;
        public bool Relu;
        public float* Residual; // null: no residual add
        public FusedActivation Activation; // applied to each sample once written (after the residual add)
        public long YStride; // floats between samples of Y; 0: the output length (the pooled one with MaxPool)
        public bool MaxPool; // Y receives the 2×2 max pooling of the output
    }

    /// <summary>Forward with the batch split across <paramref name="pool"/>.</summary>
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
    /// each sample's output is written: <c>y = act(conv(x, w) + bias + residual)</c>.
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
    /// optional residual applied as each sample's output is written.
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

        ResidualEpilogue.Extent(y, residual, n, g.OutputLength, outputStride);
        bool relu = residual.IsEmpty && activation == FusedActivation.Relu; // in the register tiles
        var after = relu ? FusedActivation.None : activation;
        fixed (float* px = x, pw = w, pb = bias, py = y, ps = scratch, pr = residual)
        {
            float* r = residual.IsEmpty ? null : pr;
            if (!Parallel(pool, n, g))
            {
                Run(x, w, bias, y, n, g, scratch.Slice(0, scratch.Length / (pool?.Threads ?? 1)), relu, r, after, outputStride);
                return;
            }

            var job = new Job { X = px, W = pw, Bias = pb, BiasLength = bias.Length, Y = py, Scratch = ps, N = n, ScratchStride = scratch.Length / pool!.Threads, G = g, Relu = relu,
                Residual = r, Activation = after, YStride = outputStride };
            pool.RunChunks(&ForwardPart, &job, ForwardChunks(n, pool));
        }
    }

    /// <summary>Forward with the batch split across <paramref name="pool"/>, ReLU applied as it writes when <paramref name="relu"/>.</summary>
    /// <param name="x">Input.</param><param name="w">Weight.</param><param name="bias">Bias, or empty.</param><param name="y">Output; overwritten.</param>
    /// <param name="n">Batch size.</param><param name="g">Convolution geometry.</param>
    /// <param name="scratch">Per-thread regions of equal length (at least <see cref="ParallelScratchLength"/> each), one per pool thread.</param>
    /// <param name="pool">The pool, or null to run on the caller.</param>
    /// <param name="relu">Apply ReLU to the output as it is written.</param>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y, int n, in ConvGeometry g, Span<float> scratch, WorkerPool? pool, bool relu) =>
        Forward(x, w, bias, y, n, g, scratch, pool, relu, maxPool: false);

    /// <summary>
    /// Forward with the batch split across <paramref name="pool"/>, ReLU applied as it writes when <paramref name="relu"/>,
    /// and, when <paramref name="maxPool"/>, a 2×2, stride-2 max pooling (floor) of the output: an inference
    /// <c>maxpool(2)</c> fused into the layer, so <paramref name="y"/> receives <c>[n, OutChannels, OutH / 2, OutW / 2]</c>
    /// with the values and NaN propagation of <see cref="Pooling.MaxForward(ReadOnlySpan{float}, Span{float}, int, in PoolGeometry, WorkerPool?)"/>
    /// and the full output is never written.
    /// </summary>
    /// <param name="x">Input.</param><param name="w">Weight.</param><param name="bias">Bias, or empty.</param><param name="y">Output (pooled when <paramref name="maxPool"/>); overwritten.</param>
    /// <param name="n">Batch size.</param><param name="g">Convolution geometry.</param>
    /// <param name="scratch">Per-thread regions of equal length (at least <see cref="ParallelScratchLength"/> each), one per pool thread.</param>
    /// <param name="pool">The pool, or null to run on the caller.</param>
    /// <param name="relu">Apply ReLU to the output as it is written (before the pooling).</param>
    /// <param name="maxPool">Write the 2×2 max pooling of the output instead of the output.</param>
    /// <exception cref="ArgumentException"><paramref name="maxPool"/> for a geometry the direct path does not compute (<see cref="Suits"/>).</exception>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y, int n, in ConvGeometry g, Span<float> scratch, WorkerPool? pool, bool relu, bool maxPool)
    {
        if (!Suits(g))
        {
            if (maxPool) throw new ArgumentException("The max pooling fused into a direct convolution needs a geometry the direct path computes (ConvDirect.Suits); pool separately.", nameof(g));
            ConvGemm.Forward(x, w, bias, y, n, g, scratch, pool, relu);
            return;
        }

        if (!Parallel(pool, n, g))
        {
            Run(x, w, bias, y, n, g, scratch.Slice(0, scratch.Length / (pool?.Threads ?? 1)), relu, null, FusedActivation.None, maxPool: maxPool);
            return;
        }

        fixed (float* px = x, pw = w, pb = bias, py = y, ps = scratch)
        {
            var job = new Job { X = px, W = pw, Bias = pb, BiasLength = bias.Length, Y = py, Scratch = ps, N = n, ScratchStride = scratch.Length / pool!.Threads, G = g, Relu = relu,
                MaxPool = maxPool };
            pool.RunChunks(&ForwardPart, &job, ForwardChunks(n, pool));
        }
    }

    private static void ForwardPart(void* state, int part, int parts, int thread)
    {
        var job = (Job*)state;
        var (lo, hi) = WorkerPool.Share(job->N, part, parts);
        if (lo == hi) return;
        var g = job->G;
        int outLength = job->MaxPool ? PooledLength(g) : g.OutputLength;
        long stride = job->YStride == 0 ? outLength : job->YStride;
        Run(new ReadOnlySpan<float>(job->X + (long)lo * g.InputLength, (hi - lo) * g.InputLength), new ReadOnlySpan<float>(job->W, g.WeightLength),
            new ReadOnlySpan<float>(job->Bias, job->BiasLength), new Span<float>(job->Y + lo * stride, (int)((hi - lo - 1) * stride + outLength)),
            hi - lo, g, new Span<float>(job->Scratch + (long)thread * job->ScratchStride, ScratchLength(g)), job->Relu, job->Residual == null ? null : job->Residual + lo * stride, job->Activation, stride,
            job->MaxPool);
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
        if (!Suits(g))
        {
            ConvGemm.BackwardWeight(dy, x, dw, dbias, n, g, scratch, pool);
            return;
        }

        if (!Parallel(pool, n, g))
        {
            BackwardWeight(dy, x, dw, dbias, n, g, scratch.Slice(0, scratch.Length / (pool?.Threads ?? 1)));
            return;
        }

        int stride = scratch.Length / pool!.Threads;
        fixed (float* pdy = dy, px = x, ps = scratch)
        {
            var job = new Job { X = px, Y = pdy, Scratch = ps, BiasLength = dbias.Length, N = n, ScratchStride = stride, G = g };
            pool.RunChunks(&BackwardWeightPart, &job, pool.Threads);
        }

        ConvGemm.AddPartials(dw, dbias, scratch, stride, ScratchLength(g), pool.Threads, g);
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
}
