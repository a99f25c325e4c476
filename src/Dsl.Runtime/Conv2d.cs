// 2-d convolution forward and backward as im2col + packed GEMM; 1-d convolutions are the H = 1 case.
using System.Diagnostics;
using System.Numerics.Tensors;

namespace Dsl.Runtime;

/// <summary>
/// 2-d convolution with PyTorch semantics (cross-correlation, zero padding, stride, dilation, groups) on
/// row-major NCHW float32 data. Per sample and group, the input is unfolded into a column matrix
/// (im2col: one row per (input channel, kernel tap), one column per output pixel) and the three passes
/// become matrix products through <see cref="Gemm"/>:
/// forward <c>Y = W·col</c>; input gradient <c>dcol = Wᵀ·dY</c>, folded back with col2im;
/// weight gradient <c>dW += dY·colᵀ</c>. A 1×1 kernel with stride 1 and no padding skips the unfolding.
/// </summary>
public static class Conv2d
{
    /// <summary>Floats of scratch the overloads taking a scratch span need for geometry <paramref name="g"/>.</summary>
    /// <param name="g">Convolution geometry.</param>
    /// <returns>The scratch length.</returns>
    public static int ScratchLength(in ConvGeometry g) => Gemm.ScratchLength + ColumnLength(g);

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
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y, int n, in ConvGeometry g, Span<float> scratch)
    {
        Debug.Assert(x.Length >= n * g.InputLength && w.Length >= g.WeightLength && y.Length >= n * g.OutputLength, "buffer too short");
        Debug.Assert(bias.IsEmpty || bias.Length >= g.OutChannels, "bias too short");
        Debug.Assert(scratch.Length >= ScratchLength(g), "scratch too short");

        int outPlane = g.OutH * g.OutW, inPlane = g.InH * g.InW;
        int rows = g.InPerGroup * g.KernelH * g.KernelW;
        var gemmScratch = scratch.Slice(0, Gemm.ScratchLength);
        var column = scratch.Slice(Gemm.ScratchLength, ColumnLength(g));
        bool pointwise = IsPointwise(g);
        for (int s = 0; s < n; s++)
        {
            var xs = x.Slice(s * g.InputLength, g.InputLength);
            var ys = y.Slice(s * g.OutputLength, g.OutputLength);
            for (int group = 0; group < g.Groups; group++)
            {
                var xg = xs.Slice(group * g.InPerGroup * inPlane, g.InPerGroup * inPlane);
                ReadOnlySpan<float> b = pointwise ? xg : column;
                if (!pointwise) Im2Col(xg, column, g);
                var yg = ys.Slice(group * g.OutPerGroup * outPlane, g.OutPerGroup * outPlane);
                if (!bias.IsEmpty)
                {
                    for (int o = 0; o < g.OutPerGroup; o++) yg.Slice(o * outPlane, outPlane).Fill(bias[group * g.OutPerGroup + o]);
                }

                var wg = w.Slice(group * g.OutPerGroup * rows, g.OutPerGroup * rows);
                Gemm.Multiply(g.OutPerGroup, outPlane, rows, wg, rows, 1, b, outPlane, 1, yg, outPlane, accumulate: !bias.IsEmpty, gemmScratch);
            }
        }
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

        int outPlane = g.OutH * g.OutW, inPlane = g.InH * g.InW;
        int rows = g.InPerGroup * g.KernelH * g.KernelW;
        var gemmScratch = scratch.Slice(0, Gemm.ScratchLength);
        var column = scratch.Slice(Gemm.ScratchLength, ColumnLength(g));
        bool pointwise = IsPointwise(g);
        for (int s = 0; s < n; s++)
        {
            var dys = dy.Slice(s * g.OutputLength, g.OutputLength);
            var xs = x.Slice(s * g.InputLength, g.InputLength);
            for (int group = 0; group < g.Groups; group++)
            {
                var dyg = dys.Slice(group * g.OutPerGroup * outPlane, g.OutPerGroup * outPlane);
                var xg = xs.Slice(group * g.InPerGroup * inPlane, g.InPerGroup * inPlane);
                ReadOnlySpan<float> col = pointwise ? xg : column;
                if (!pointwise) Im2Col(xg, column, g);
                // dW[out × rows] += dY[out × pixels] · colᵀ[pixels × rows]
                var dwg = dw.Slice(group * g.OutPerGroup * rows, g.OutPerGroup * rows);
                Gemm.Multiply(g.OutPerGroup, rows, outPlane, dyg, outPlane, 1, col, 1, outPlane, dwg, rows, accumulate: true, gemmScratch);
            }

            if (!dbias.IsEmpty)
            {
                for (int o = 0; o < g.OutChannels; o++) dbias[o] += TensorPrimitives.Sum(dys.Slice(o * outPlane, outPlane));
            }
        }
    }

    /// <summary>Unfolds one group of one sample: <c>col[(c·KH + kh)·KW + kw, oh·OutW + ow] = x[c, oh·sH + kh·dH − pH, ow·sW + kw·dW − pW]</c>, zero outside.</summary>
    private static void Im2Col(ReadOnlySpan<float> x, Span<float> col, in ConvGeometry g)
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
                    var dest = col.Slice(row * outPlane, outPlane);
                    for (int oh = 0; oh < g.OutH; oh++)
                    {
                        var destRow = dest.Slice(oh * g.OutW, g.OutW);
                        int ih = oh * g.StrideH + offH;
                        if ((uint)ih >= (uint)g.InH || owLo >= owHi)
                        {
                            destRow.Clear();
                            continue;
                        }

                        destRow.Slice(0, owLo).Clear();
                        destRow.Slice(owHi).Clear();
                        var source = plane.Slice(ih * g.InW, g.InW);
                        int iw = owLo * g.StrideW + offW;
                        if (g.StrideW == 1)
                        {
                            source.Slice(iw, owHi - owLo).CopyTo(destRow.Slice(owLo, owHi - owLo));
                        }
                        else
                        {
                            for (int ow = owLo; ow < owHi; ow++, iw += g.StrideW) destRow[ow] = source[iw];
                        }
                    }
                }
            }
        }
    }

    /// <summary>The adjoint of <see cref="Im2Col"/>: adds every column entry back onto the input pixel it came from.</summary>
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
