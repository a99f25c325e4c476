// Direct 2-d convolution, loops over channels and taps: the reference the runtime's kernels (ConvGemm, ConvDirect, ConvWinograd) are tested against.
using System.Diagnostics;
using System.Numerics.Tensors;

namespace Dsl.Runtime.Tests;

/// <summary>
/// 2-d convolution with PyTorch semantics (cross-correlation, zero padding, stride, dilation, groups) on row-major NCHW float32 data.
/// </summary>
/// <remarks>
/// The loops run over (output channel, input channel, kernel tap) and apply each weight to a whole output row at once.
/// Per tap, the range of output columns whose input column falls inside the image is computed up front,
/// so the innermost loop has no padding branches and, for stride 1, is a contiguous SIMD multiply-add.
/// </remarks>
internal static class ConvReference
{
    /// <summary>Computes <c>y = conv(x, w) + bias</c>.</summary>
    /// <param name="x">Input <c>[n, InChannels, InH, InW]</c>.</param>
    /// <param name="w">Weight <c>[OutChannels, InChannels/Groups, KernelH, KernelW]</c>.</param>
    /// <param name="bias">Bias <c>[OutChannels]</c>, or empty for no bias.</param>
    /// <param name="y">Output <c>[n, OutChannels, OutH, OutW]</c>; overwritten.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="g">Convolution geometry.</param>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y, int n, in ConvGeometry g)
    {
        Debug.Assert(x.Length >= n * g.InputLength, "x too short");
        Debug.Assert(w.Length >= g.WeightLength, "w too short");
        Debug.Assert(bias.IsEmpty || bias.Length >= g.OutChannels, "bias too short");
        Debug.Assert(y.Length >= n * g.OutputLength, "y too short");

        int inPlane = g.InH * g.InW, outPlane = g.OutH * g.OutW;
        int inPerGroup = g.InPerGroup, outPerGroup = g.OutPerGroup;
        for (int s = 0; s < n; s++)
        {
            ReadOnlySpan<float> xs = x.Slice(s * g.InputLength, g.InputLength);
            Span<float> ys = y.Slice(s * g.OutputLength, g.OutputLength);
            for (int o = 0; o < g.OutChannels; o++)
            {
                int firstIn = o / outPerGroup * inPerGroup;
                Span<float> yPlane = ys.Slice(o * outPlane, outPlane);
                yPlane.Fill(bias.IsEmpty ? 0f : bias[o]);
                for (int ci = 0; ci < inPerGroup; ci++)
                {
                    ReadOnlySpan<float> xPlane = xs.Slice((firstIn + ci) * inPlane, inPlane);
                    int wBase = (o * inPerGroup + ci) * g.KernelH * g.KernelW;
                    for (int kh = 0; kh < g.KernelH; kh++)
                    {
                        int offH = kh * g.DilationH - g.PadH;
                        var (ohLo, ohHi) = ValidRange(g.OutH, g.InH, g.StrideH, offH);
                        for (int kw = 0; kw < g.KernelW; kw++)
                        {
                            int offW = kw * g.DilationW - g.PadW;
                            var (owLo, owHi) = ValidRange(g.OutW, g.InW, g.StrideW, offW);
                            int count = owHi - owLo;
                            if (count <= 0) continue;
                            float wv = w[wBase + kh * g.KernelW + kw];
                            for (int oh = ohLo; oh < ohHi; oh++)
                            {
                                int ih = oh * g.StrideH + offH;
                                int iw = owLo * g.StrideW + offW;
                                AddScaledGather(xPlane, ih * g.InW + iw, g.StrideW, wv, yPlane.Slice(oh * g.OutW + owLo, count));
                            }
                        }
                    }
                }
            }
        }
    }

    /// <summary>Gradient with respect to the input: <c>dx = conv_transpose(dy, w)</c>.</summary>
    /// <param name="dy">Output gradient <c>[n, OutChannels, OutH, OutW]</c>.</param>
    /// <param name="w">Weight <c>[OutChannels, InChannels/Groups, KernelH, KernelW]</c>.</param>
    /// <param name="dx">Input gradient <c>[n, InChannels, InH, InW]</c>; overwritten.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="g">Convolution geometry.</param>
    public static void BackwardInput(ReadOnlySpan<float> dy, ReadOnlySpan<float> w, Span<float> dx, int n, in ConvGeometry g)
    {
        Debug.Assert(dy.Length >= n * g.OutputLength, "dy too short");
        Debug.Assert(w.Length >= g.WeightLength, "w too short");
        Debug.Assert(dx.Length >= n * g.InputLength, "dx too short");

        int inPlane = g.InH * g.InW, outPlane = g.OutH * g.OutW;
        int inPerGroup = g.InPerGroup, outPerGroup = g.OutPerGroup;
        dx.Slice(0, n * g.InputLength).Clear();
        for (int s = 0; s < n; s++)
        {
            ReadOnlySpan<float> dys = dy.Slice(s * g.OutputLength, g.OutputLength);
            Span<float> dxs = dx.Slice(s * g.InputLength, g.InputLength);
            for (int o = 0; o < g.OutChannels; o++)
            {
                int firstIn = o / outPerGroup * inPerGroup;
                ReadOnlySpan<float> dyPlane = dys.Slice(o * outPlane, outPlane);
                for (int ci = 0; ci < inPerGroup; ci++)
                {
                    Span<float> dxPlane = dxs.Slice((firstIn + ci) * inPlane, inPlane);
                    int wBase = (o * inPerGroup + ci) * g.KernelH * g.KernelW;
                    for (int kh = 0; kh < g.KernelH; kh++)
                    {
                        int offH = kh * g.DilationH - g.PadH;
                        var (ohLo, ohHi) = ValidRange(g.OutH, g.InH, g.StrideH, offH);
                        for (int kw = 0; kw < g.KernelW; kw++)
                        {
                            int offW = kw * g.DilationW - g.PadW;
                            var (owLo, owHi) = ValidRange(g.OutW, g.InW, g.StrideW, offW);
                            int count = owHi - owLo;
                            if (count <= 0) continue;
                            float wv = w[wBase + kh * g.KernelW + kw];
                            for (int oh = ohLo; oh < ohHi; oh++)
                            {
                                int ih = oh * g.StrideH + offH;
                                int iw = owLo * g.StrideW + offW;
                                AddScaledScatter(dyPlane.Slice(oh * g.OutW + owLo, count), wv, dxPlane, ih * g.InW + iw, g.StrideW);
                            }
                        }
                    }
                }
            }
        }
    }

    /// <summary>Gradients with respect to weight and bias, accumulated: <c>dw += corr(x, dy)</c>, <c>dbias += sum(dy)</c>.</summary>
    /// <param name="dy">Output gradient <c>[n, OutChannels, OutH, OutW]</c>.</param>
    /// <param name="x">Forward input <c>[n, InChannels, InH, InW]</c>.</param>
    /// <param name="dw">Weight gradient <c>[OutChannels, InChannels/Groups, KernelH, KernelW]</c>; accumulated into.</param>
    /// <param name="dbias">Bias gradient <c>[OutChannels]</c>, accumulated into; empty when the layer has no bias.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="g">Convolution geometry.</param>
    public static void BackwardWeight(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dw, Span<float> dbias, int n, in ConvGeometry g)
    {
        Debug.Assert(dy.Length >= n * g.OutputLength, "dy too short");
        Debug.Assert(x.Length >= n * g.InputLength, "x too short");
        Debug.Assert(dw.Length >= g.WeightLength, "dw too short");
        Debug.Assert(dbias.IsEmpty || dbias.Length >= g.OutChannels, "dbias too short");

        int inPlane = g.InH * g.InW, outPlane = g.OutH * g.OutW;
        int inPerGroup = g.InPerGroup, outPerGroup = g.OutPerGroup;
        for (int o = 0; o < g.OutChannels; o++)
        {
            int firstIn = o / outPerGroup * inPerGroup;
            if (!dbias.IsEmpty)
            {
                float sum = 0f;
                for (int s = 0; s < n; s++)
                {
                    sum += TensorPrimitives.Sum(dy.Slice(s * g.OutputLength + o * outPlane, outPlane));
                }
                dbias[o] += sum;
            }

            for (int ci = 0; ci < inPerGroup; ci++)
            {
                int wBase = (o * inPerGroup + ci) * g.KernelH * g.KernelW;
                for (int kh = 0; kh < g.KernelH; kh++)
                {
                    int offH = kh * g.DilationH - g.PadH;
                    var (ohLo, ohHi) = ValidRange(g.OutH, g.InH, g.StrideH, offH);
                    for (int kw = 0; kw < g.KernelW; kw++)
                    {
                        int offW = kw * g.DilationW - g.PadW;
                        var (owLo, owHi) = ValidRange(g.OutW, g.InW, g.StrideW, offW);
                        int count = owHi - owLo;
                        if (count <= 0) continue;
                        float sum = 0f;
                        for (int s = 0; s < n; s++)
                        {
                            ReadOnlySpan<float> dyPlane = dy.Slice(s * g.OutputLength + o * outPlane, outPlane);
                            ReadOnlySpan<float> xPlane = x.Slice(s * g.InputLength + (firstIn + ci) * inPlane, inPlane);
                            for (int oh = ohLo; oh < ohHi; oh++)
                            {
                                int ih = oh * g.StrideH + offH;
                                int iw = owLo * g.StrideW + offW;
                                sum += DotGather(xPlane, ih * g.InW + iw, g.StrideW, dyPlane.Slice(oh * g.OutW + owLo, count));
                            }
                        }
                        dw[wBase + kh * g.KernelW + kw] += sum;
                    }
                }
            }
        }
    }

    /// <summary>
    /// Output positions [lo, hi) for which <c>o*stride + offset</c> lies in [0, inSize);
    /// <paramref name="offset"/> is the tap position minus the padding.
    /// </summary>
    internal static (int Lo, int Hi) ValidRange(int outSize, int inSize, int stride, int offset)
    {
        // o >= ceil(-offset / stride) and o <= floor((inSize - 1 - offset) / stride).
        int lo = Math.Max(0, CeilDiv(-offset, stride));
        int hiInclusive = FloorDiv(inSize - 1 - offset, stride);
        int hi = Math.Min(outSize, hiInclusive + 1);
        return (lo, Math.Max(lo, hi));
    }

    private static int FloorDiv(int a, int b) => a >= 0 ? a / b : -((-a + b - 1) / b);

    private static int CeilDiv(int a, int b) => a >= 0 ? (a + b - 1) / b : -(-a / b);

    // dst[i] += a * src[start + i*stride]
    private static void AddScaledGather(ReadOnlySpan<float> src, int start, int stride, float a, Span<float> dst)
    {
        if (stride == 1)
        {
            TensorPrimitives.MultiplyAdd(src.Slice(start, dst.Length), a, dst, dst);
            return;
        }
        for (int i = 0; i < dst.Length; i++) dst[i] += a * src[start + i * stride];
    }

    // dst[start + i*stride] += a * src[i]
    private static void AddScaledScatter(ReadOnlySpan<float> src, float a, Span<float> dst, int start, int stride)
    {
        if (stride == 1)
        {
            Span<float> d = dst.Slice(start, src.Length);
            TensorPrimitives.MultiplyAdd(src, a, d, d);
            return;
        }
        for (int i = 0; i < src.Length; i++) dst[start + i * stride] += a * src[i];
    }

    // sum_i a[start + i*stride] * b[i]
    private static float DotGather(ReadOnlySpan<float> a, int start, int stride, ReadOnlySpan<float> b)
    {
        if (stride == 1) return TensorPrimitives.Dot(a.Slice(start, b.Length), b);
        float sum = 0f;
        for (int i = 0; i < b.Length; i++) sum += a[start + i * stride] * b[i];
        return sum;
    }
}
