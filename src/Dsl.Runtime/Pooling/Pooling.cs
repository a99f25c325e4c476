// Max, average and global-average pooling kernels, forward and backward, with PyTorch's window and divisor rules.
using System.ComponentModel;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Dsl.Runtime.Kernels;

/// <summary>Pooling over row-major <c>[n, channels, H, W]</c> float32 data with PyTorch semantics.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static class Pooling
{
    /// <summary>
    /// Max pooling that also records, per output element, the flat index (within its <c>H*W</c> plane) of the maximum.
    /// Padding counts as -inf; ties keep the first maximum in row-major window order; NaN propagates.
    /// </summary>
    /// <param name="x">Input <c>[n, Channels, InH, InW]</c>.</param>
    /// <param name="y">Output <c>[n, Channels, OutH, OutW]</c>; overwritten.</param>
    /// <param name="indices">Receives the arg-max index per output element (same shape as <paramref name="y"/>).</param>
    /// <param name="n">Batch size.</param>
    /// <param name="g">Pooling geometry.</param>
    /// <param name="pool">Splits the planes across its threads when the input is large enough (<see cref="ParallelElements"/>); null stays on the caller.</param>
    public static void MaxForward(ReadOnlySpan<float> x, Span<float> y, Span<int> indices, int n, in PoolGeometry g, WorkerPool? pool = null)
    {
        Debug.Assert(indices.Length >= n * g.OutputLength, "indices too short");
        MaxPlanes(x, y, indices, n, g, default, default, pool);
    }

    /// <summary>Max pooling for inference (no indices recorded).</summary>
    /// <param name="x">Input <c>[n, Channels, InH, InW]</c>.</param>
    /// <param name="y">Output <c>[n, Channels, OutH, OutW]</c>; overwritten.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="g">Pooling geometry.</param>
    /// <param name="pool">Splits the planes across its threads when the input is large enough; null stays on the caller.</param>
    public static void MaxForward(ReadOnlySpan<float> x, Span<float> y, int n, in PoolGeometry g, WorkerPool? pool = null) => MaxPlanes(x, y, Span<int>.Empty, n, g, default, default, pool);

    /// <summary>
    /// Max pooling for inference with an inference batch norm fused into its output:
    /// <c>y = max(window)·scale[c] + shift[c]</c>, written once.
    /// </summary>
    /// <param name="x">Input <c>[n, Channels, InH, InW]</c>.</param>
    /// <param name="y">Output <c>[n, Channels, OutH, OutW]</c>; overwritten.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="g">Pooling geometry.</param>
    /// <param name="scale">Per-channel scale (see <see cref="BatchNorm.ScaleShift"/>).</param>
    /// <param name="shift">Per-channel shift.</param>
    /// <param name="pool">Splits the planes across its threads when the input is large enough; null stays on the caller.</param>
    public static void MaxForward(ReadOnlySpan<float> x, Span<float> y, int n, in PoolGeometry g, ReadOnlySpan<float> scale, ReadOnlySpan<float> shift, WorkerPool? pool = null) =>
        MaxPlanes(x, y, Span<int>.Empty, n, g, scale, shift, pool);

    /// <summary>Max pooling backward: routes each output gradient to its recorded arg-max (gradients add where windows overlap).</summary>
    /// <param name="dy">Output gradient <c>[n, Channels, OutH, OutW]</c>.</param>
    /// <param name="indices">Indices from <see cref="MaxForward(ReadOnlySpan{float}, Span{float}, Span{int}, int, in PoolGeometry, WorkerPool?)"/>.</param>
    /// <param name="dx">Input gradient <c>[n, Channels, InH, InW]</c>; overwritten.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="g">Pooling geometry.</param>
    /// <param name="pool">Splits the planes across its threads when the input is large enough (<see cref="ParallelElements"/>); null stays on the caller.</param>
    public static unsafe void MaxBackward(ReadOnlySpan<float> dy, ReadOnlySpan<int> indices, Span<float> dx, int n, in PoolGeometry g, WorkerPool? pool = null)
    {
        Debug.Assert(dy.Length >= n * g.OutputLength && indices.Length >= n * g.OutputLength, "dy or indices too short");
        Debug.Assert(dx.Length >= n * g.InputLength, "dx too short");

        int planes = n * g.Channels;
        if (SplitsPlanes(pool, n, g))
        {
            fixed (float* pdy = dy, pdx = dx)
            fixed (int* pi = indices)
            {
                var job = new Job { X = pdy, Y = pdx, Indices = pi, N = n, Geometry = g };
                pool!.RunChunks(&MaxBackwardChunk, &job, pool.Threads);
            }

            return;
        }

        MaxBackwardPlanes(dy, indices, dx, g, 0, planes);
    }

    private static unsafe void MaxBackwardChunk(void* state, int chunk, int chunks, int thread)
    {
        var j = (Job*)state;
        ref readonly var g = ref j->Geometry;
        var (lo, hi) = WorkerPool.Share(j->N * g.Channels, chunk, chunks);
        int outLength = j->N * g.OutputLength;
        MaxBackwardPlanes(new ReadOnlySpan<float>(j->X, outLength), new ReadOnlySpan<int>(j->Indices, outLength), new Span<float>(j->Y, j->N * g.InputLength), g, lo, hi);
    }

    // Planes [lo, hi): each cleared, then its output gradients added at their arg-max.
    private static void MaxBackwardPlanes(ReadOnlySpan<float> dy, ReadOnlySpan<int> indices, Span<float> dx, in PoolGeometry g, int lo, int hi)
    {
        int inPlane = g.InH * g.InW, outPlane = g.OutH * g.OutW;
        for (int p = lo; p < hi; p++)
        {
            Span<float> dxPlane = dx.Slice(p * inPlane, inPlane);
            dxPlane.Clear();
            int outStart = p * outPlane;
            for (int i = outStart; i < outStart + outPlane; i++) dxPlane[indices[i]] += dy[i];
        }
    }

    /// <summary>
    /// Inputs of at least this many values (<c>n · Channels · InH · InW</c>) split their planes across a pool's threads in
    /// max pooling's passes: below it, waking a worker costs more than the half pass it would take.
    /// </summary>
    public const int ParallelElements = 1 << 15;

    private static bool SplitsPlanes(WorkerPool? pool, int n, in PoolGeometry g) =>
        pool is { Threads: > 1 } && n * g.Channels >= 2 && (long)n * g.InputLength >= ParallelElements;

    // A parallel pass's arguments, pinned by the caller for the duration of the job; a null pointer is an empty span.
    private unsafe struct Job
    {
        public float* X, Y, Scale, Shift;
        public int* Indices;
        public int N;
        public PoolGeometry Geometry;
    }

    // Max pooling over every plane, split across the pool when it is worth it; a plane's outputs are the same bits either way.
    private static unsafe void MaxPlanes(ReadOnlySpan<float> x, Span<float> y, Span<int> indices, int n, in PoolGeometry g,
        ReadOnlySpan<float> scale, ReadOnlySpan<float> shift, WorkerPool? pool)
    {
        Debug.Assert(x.Length >= n * g.InputLength && y.Length >= n * g.OutputLength, "buffer too short");
        if (SplitsPlanes(pool, n, g))
        {
            fixed (float* px = x, py = y, psc = scale, psh = shift)
            fixed (int* pi = indices)
            {
                var job = new Job { X = px, Y = py, Scale = psc, Shift = psh, Indices = pi, N = n, Geometry = g };
                pool!.RunChunks(&MaxForwardChunk, &job, pool.Threads);
            }

            return;
        }

        MaxCore(x, y, indices, n, g, scale, shift, 0, n * g.Channels);
    }

    private static unsafe void MaxForwardChunk(void* state, int chunk, int chunks, int thread)
    {
        var j = (Job*)state;
        ref readonly var g = ref j->Geometry;
        var (lo, hi) = WorkerPool.Share(j->N * g.Channels, chunk, chunks);
        int outLength = j->N * g.OutputLength;
        MaxCore(new ReadOnlySpan<float>(j->X, j->N * g.InputLength), new Span<float>(j->Y, outLength), j->Indices == null ? default : new Span<int>(j->Indices, outLength), j->N, g,
            j->Scale == null ? default : new ReadOnlySpan<float>(j->Scale, g.Channels), j->Shift == null ? default : new ReadOnlySpan<float>(j->Shift, g.Channels), lo, hi);
    }

    /// <summary>
    /// Average pooling with PyTorch's divisor rules: with <paramref name="countIncludePad"/> the divisor is the window size
    /// clipped to the padded input (a ceil-mode window that runs past the right/bottom padding is shortened);
    /// without it, the number of real input elements in the window. Dilation must be 1.
    /// </summary>
    /// <param name="x">Input <c>[n, Channels, InH, InW]</c>.</param>
    /// <param name="y">Output <c>[n, Channels, OutH, OutW]</c>; overwritten.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="g">Pooling geometry (dilation 1).</param>
    /// <param name="countIncludePad">Whether padded zeros count in the divisor (PyTorch default true).</param>
    /// <exception cref="ArgumentException">The geometry has a dilation other than 1.</exception>
    public static void AvgForward(ReadOnlySpan<float> x, Span<float> y, int n, in PoolGeometry g, bool countIncludePad) =>
        AvgCore(x, y, n, g, countIncludePad, default, default);

    /// <summary>Average pooling for inference with an inference batch norm fused into its output: <c>y = mean(window)·scale[c] + shift[c]</c>.</summary>
    /// <param name="x">Input <c>[n, Channels, InH, InW]</c>.</param>
    /// <param name="y">Output <c>[n, Channels, OutH, OutW]</c>; overwritten.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="g">Pooling geometry (dilation 1).</param>
    /// <param name="countIncludePad">Whether padded zeros count in the divisor.</param>
    /// <param name="scale">Per-channel scale.</param>
    /// <param name="shift">Per-channel shift.</param>
    public static void AvgForward(ReadOnlySpan<float> x, Span<float> y, int n, in PoolGeometry g, bool countIncludePad, ReadOnlySpan<float> scale, ReadOnlySpan<float> shift) =>
        AvgCore(x, y, n, g, countIncludePad, scale, shift);

    private static void AvgCore(ReadOnlySpan<float> x, Span<float> y, int n, in PoolGeometry g, bool countIncludePad, ReadOnlySpan<float> scale, ReadOnlySpan<float> shift)
    {
        RequireNoDilation(g);
        Debug.Assert(x.Length >= n * g.InputLength && y.Length >= n * g.OutputLength, "buffer too short");

        int inPlane = g.InH * g.InW, outPlane = g.OutH * g.OutW, planes = n * g.Channels;
        bool affine = !scale.IsEmpty;
        for (int p = 0; p < planes; p++)
        {
            ReadOnlySpan<float> xPlane = x.Slice(p * inPlane, inPlane);
            Span<float> yPlane = y.Slice(p * outPlane, outPlane);
            float sc = affine ? scale[p % g.Channels] : 1f, sh = affine ? shift[p % g.Channels] : 0f;
            for (int oh = 0; oh < g.OutH; oh++)
            {
                for (int ow = 0; ow < g.OutW; ow++)
                {
                    var w = AvgWindow(g, oh, ow, countIncludePad);
                    if (w.Divisor == 0)
                    {
                        yPlane[oh * g.OutW + ow] = affine ? sh : 0f;
                        continue;
                    }
                    float sum = 0f;
                    for (int ih = w.H0; ih < w.H1; ih++)
                    {
                        for (int iw = w.W0; iw < w.W1; iw++) sum += xPlane[ih * g.InW + iw];
                    }
                    float mean = sum / w.Divisor;
                    yPlane[oh * g.OutW + ow] = affine ? mean * sc + sh : mean;
                }
            }
        }
    }

    /// <summary>Average pooling backward: spreads each output gradient divided by its window's divisor over the window.</summary>
    /// <param name="dy">Output gradient <c>[n, Channels, OutH, OutW]</c>.</param>
    /// <param name="dx">Input gradient <c>[n, Channels, InH, InW]</c>; overwritten.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="g">Pooling geometry (dilation 1).</param>
    /// <param name="countIncludePad">Must match the forward call.</param>
    /// <exception cref="ArgumentException">The geometry has a dilation other than 1.</exception>
    public static void AvgBackward(ReadOnlySpan<float> dy, Span<float> dx, int n, in PoolGeometry g, bool countIncludePad)
    {
        RequireNoDilation(g);
        Debug.Assert(dy.Length >= n * g.OutputLength && dx.Length >= n * g.InputLength, "buffer too short");

        int inPlane = g.InH * g.InW, outPlane = g.OutH * g.OutW, planes = n * g.Channels;
        dx.Slice(0, planes * inPlane).Clear();
        for (int p = 0; p < planes; p++)
        {
            ReadOnlySpan<float> dyPlane = dy.Slice(p * outPlane, outPlane);
            Span<float> dxPlane = dx.Slice(p * inPlane, inPlane);
            for (int oh = 0; oh < g.OutH; oh++)
            {
                for (int ow = 0; ow < g.OutW; ow++)
                {
                    var w = AvgWindow(g, oh, ow, countIncludePad);
                    if (w.Divisor == 0) continue;
                    float share = dyPlane[oh * g.OutW + ow] / w.Divisor;
                    for (int ih = w.H0; ih < w.H1; ih++)
                    {
                        for (int iw = w.W0; iw < w.W1; iw++) dxPlane[ih * g.InW + iw] += share;
                    }
                }
            }
        }
    }

    /// <summary>Global average pooling <c>[n, channels, spatial] → [n, channels]</c> (PyTorch's <c>AdaptiveAvgPool2d(1)</c> + flatten).</summary>
    /// <param name="x">Input <c>[n, channels, spatial]</c>.</param>
    /// <param name="y">Output <c>[n, channels]</c>; overwritten.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="channels">Channels.</param>
    /// <param name="spatial">Values per channel.</param>
    public static void GlobalAvgForward(ReadOnlySpan<float> x, Span<float> y, int n, int channels, int spatial) =>
        GlobalAvgForward(x, y, n, channels, spatial, default, default);

    /// <summary>Global average pooling with an inference batch norm over its <c>[channels]</c> output fused in: <c>y = mean·scale[c] + shift[c]</c>.</summary>
    /// <param name="x">Input <c>[n, channels, spatial]</c>.</param>
    /// <param name="y">Output <c>[n, channels]</c>; overwritten.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="channels">Channels.</param>
    /// <param name="spatial">Values per channel.</param>
    /// <param name="scale">Per-channel scale, or empty for none.</param>
    /// <param name="shift">Per-channel shift, or empty for none.</param>
    public static void GlobalAvgForward(ReadOnlySpan<float> x, Span<float> y, int n, int channels, int spatial, ReadOnlySpan<float> scale, ReadOnlySpan<float> shift)
    {
        Debug.Assert(x.Length >= n * channels * spatial && y.Length >= n * channels, "buffer too short");
        bool affine = !scale.IsEmpty;
        for (int p = 0; p < n * channels; p++)
        {
            float sum = 0f;
            int start = p * spatial;
            for (int i = start; i < start + spatial; i++) sum += x[i];
            float mean = sum / spatial;
            y[p] = affine ? mean * scale[p % channels] + shift[p % channels] : mean;
        }
    }

    /// <summary>Global average pooling backward: <c>dx[n, c, s] = dy[n, c] / spatial</c>.</summary>
    /// <param name="dy">Output gradient <c>[n, channels]</c>.</param>
    /// <param name="dx">Input gradient <c>[n, channels, spatial]</c>; overwritten.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="channels">Channels.</param>
    /// <param name="spatial">Values per channel.</param>
    public static void GlobalAvgBackward(ReadOnlySpan<float> dy, Span<float> dx, int n, int channels, int spatial)
    {
        Debug.Assert(dy.Length >= n * channels && dx.Length >= n * channels * spatial, "buffer too short");
        for (int p = 0; p < n * channels; p++)
        {
            dx.Slice(p * spatial, spatial).Fill(dy[p] / spatial);
        }
    }

    // Planes [lo, hi) of the n · Channels.
    private static void MaxCore(ReadOnlySpan<float> x, Span<float> y, Span<int> indices, int n, in PoolGeometry g,
        ReadOnlySpan<float> scale, ReadOnlySpan<float> shift, int lo, int hi)
    {
        Debug.Assert(x.Length >= n * g.InputLength && y.Length >= n * g.OutputLength, "buffer too short");

        int inPlane = g.InH * g.InW, outPlane = g.OutH * g.OutW;
        bool record = !indices.IsEmpty;
        bool affine = !scale.IsEmpty;
        if (g.KernelH == 2 && g.KernelW == 2 && g.StrideH == 2 && g.StrideW == 2 && g.PadH == 0 && g.PadW == 0
            && g.DilationH == 1 && g.DilationW == 1 && 2 * g.OutH <= g.InH && 2 * g.OutW <= g.InW)
        {
            MaxCore2x2(x, y, indices, g, scale, shift, lo, hi);
            return;
        }

        for (int p = lo; p < hi; p++)
        {
            ReadOnlySpan<float> xPlane = x.Slice(p * inPlane, inPlane);
            int outStart = p * outPlane;
            float sc = affine ? scale[p % g.Channels] : 1f, sh = affine ? shift[p % g.Channels] : 0f;
            for (int oh = 0; oh < g.OutH; oh++)
            {
                // Same window walk as PyTorch's CPU kernel: skip the taps that fall in the top/left padding,
                // stop at the end of the input.
                int h0 = oh * g.StrideH - g.PadH;
                int h1 = Math.Min(h0 + (g.KernelH - 1) * g.DilationH + 1, g.InH);
                while (h0 < 0) h0 += g.DilationH;
                for (int ow = 0; ow < g.OutW; ow++)
                {
                    int w0 = ow * g.StrideW - g.PadW;
                    int w1 = Math.Min(w0 + (g.KernelW - 1) * g.DilationW + 1, g.InW);
                    while (w0 < 0) w0 += g.DilationW;

                    float max = float.NegativeInfinity;
                    int maxIndex = h0 * g.InW + w0;
                    for (int ih = h0; ih < h1; ih += g.DilationH)
                    {
                        for (int iw = w0; iw < w1; iw += g.DilationW)
                        {
                            int index = ih * g.InW + iw;
                            float v = xPlane[index];
                            if (v > max || float.IsNaN(v))
                            {
                                max = v;
                                maxIndex = index;
                            }
                        }
                    }
                    int o = outStart + oh * g.OutW + ow;
                    y[o] = affine ? max * sc + sh : max;
                    if (record) indices[o] = maxIndex;
                }
            }
        }
    }

    // The common 2×2, stride-2 window with every tap inside the input: four compares per output, no bounds.
    private static void MaxCore2x2(ReadOnlySpan<float> x, Span<float> y, Span<int> indices, in PoolGeometry g,
        ReadOnlySpan<float> scale, ReadOnlySpan<float> shift, int lo, int hi)
    {
        int inPlane = g.InH * g.InW, outPlane = g.OutH * g.OutW, w = g.InW;
        bool record = !indices.IsEmpty, affine = !scale.IsEmpty;
        for (int p = lo; p < hi; p++)
        {
            var xPlane = x.Slice(p * inPlane, inPlane);
            int outStart = p * outPlane;
            float sc = affine ? scale[p % g.Channels] : 1f, sh = affine ? shift[p % g.Channels] : 0f;
            for (int oh = 0; oh < g.OutH; oh++)
            {
                int top = 2 * oh * w;
                int ow = Max2x2Vector(xPlane, y.Slice(outStart + oh * g.OutW, g.OutW), record ? indices.Slice(outStart + oh * g.OutW, g.OutW) : Span<int>.Empty,
                    top, w, affine, sc, sh);
                for (; ow < g.OutW; ow++)
                {
                    int i0 = top + 2 * ow;
                    // Row-major window order, first maximum wins, NaN propagates: as PyTorch's kernel.
                    int best = i0;
                    float max = xPlane[i0];
                    float v = xPlane[i0 + 1];
                    if (v > max || float.IsNaN(v)) { max = v; best = i0 + 1; }
                    v = xPlane[i0 + w];
                    if (v > max || float.IsNaN(v)) { max = v; best = i0 + w; }
                    v = xPlane[i0 + w + 1];
                    if (v > max || float.IsNaN(v)) { max = v; best = i0 + w + 1; }
                    int o = outStart + oh * g.OutW + ow;
                    y[o] = affine ? max * sc + sh : max;
                    if (record) indices[o] = best;
                }
            }
        }
    }

    /// <summary>
    /// Eight 2×2 windows at a time, branch-free: random data makes every comparison a coin flip, and
    /// mispredicted branches cost more than the arithmetic. Same order and NaN rule as the scalar loop.
    /// Returns the first output column it did not handle.
    /// </summary>
    private static int Max2x2Vector(ReadOnlySpan<float> plane, Span<float> yRow, Span<int> indexRow, int top, int w, bool affine, float sc, float sh)
    {
        int outW = yRow.Length;
        if (outW < 8) return outW >= 4 && Avx2.IsSupported ? Max2x2Vector4(plane, yRow, indexRow, top, w, affine, sc, sh) : 0;
        ref float r0 = ref Unsafe.Add(ref MemoryMarshal.GetReference(plane), top);
        ref float r1 = ref Unsafe.Add(ref r0, w);
        var even = Vector256.Create(0, 2, 4, 6, 0, 0, 0, 0);
        var odd = Vector256.Create(1, 3, 5, 7, 0, 0, 0, 0);
        var lanes = Vector256.Create(0, 2, 4, 6, 8, 10, 12, 14);
        var scale = Vector256.Create(sc);
        var shift = Vector256.Create(sh);
        bool record = !indexRow.IsEmpty;
        int ow = 0;
        while (ow < outW)
        {
            // The tail is one more block ending at the last column; the outputs it repeats come out the same.
            if (ow > outW - 8) ow = outW - 8;
            var a0 = Vector256.LoadUnsafe(ref r0, (nuint)(2 * ow));
            var a1 = Vector256.LoadUnsafe(ref r0, (nuint)(2 * ow + 8));
            var b0 = Vector256.LoadUnsafe(ref r1, (nuint)(2 * ow));
            var b1 = Vector256.LoadUnsafe(ref r1, (nuint)(2 * ow + 8));
            var topLeft = Deinterleave(a0, a1, even);
            var topRight = Deinterleave(a0, a1, odd);
            var bottomLeft = Deinterleave(b0, b1, even);
            var bottomRight = Deinterleave(b0, b1, odd);

            var first = Vector256.Create(top + 2 * ow) + lanes;
            var max = topLeft;
            var best = first;
            var take = Vector256.GreaterThan(topRight, max) | ~Vector256.Equals(topRight, topRight);
            max = Vector256.ConditionalSelect(take, topRight, max);
            best = Vector256.ConditionalSelect(take.AsInt32(), first + Vector256<int>.One, best);
            take = Vector256.GreaterThan(bottomLeft, max) | ~Vector256.Equals(bottomLeft, bottomLeft);
            max = Vector256.ConditionalSelect(take, bottomLeft, max);
            best = Vector256.ConditionalSelect(take.AsInt32(), first + Vector256.Create(w), best);
            take = Vector256.GreaterThan(bottomRight, max) | ~Vector256.Equals(bottomRight, bottomRight);
            max = Vector256.ConditionalSelect(take, bottomRight, max);
            best = Vector256.ConditionalSelect(take.AsInt32(), first + Vector256.Create(w + 1), best);

            if (affine) max = max * scale + shift;
            max.StoreUnsafe(ref MemoryMarshal.GetReference(yRow), (nuint)ow);
            if (record) best.StoreUnsafe(ref MemoryMarshal.GetReference(indexRow), (nuint)ow);
            ow += 8;
        }

        return outW;
    }

    /// <summary>
    /// <see cref="Max2x2Vector"/> four windows at a time, for rows of 4 to 7 outputs (a 14×14 map pooled to 7×7).
    /// The last block ends at the row's end; the outputs it repeats come out the same.
    /// </summary>
    private static int Max2x2Vector4(ReadOnlySpan<float> plane, Span<float> yRow, Span<int> indexRow, int top, int w, bool affine, float sc, float sh)
    {
        int outW = yRow.Length;
        ref float r0 = ref Unsafe.Add(ref MemoryMarshal.GetReference(plane), top);
        ref float r1 = ref Unsafe.Add(ref r0, w);
        var even = Vector256.Create(0, 2, 4, 6, 0, 0, 0, 0);
        var odd = Vector256.Create(1, 3, 5, 7, 0, 0, 0, 0);
        var lanes = Vector128.Create(0, 2, 4, 6);
        var scale = Vector128.Create(sc);
        var shift = Vector128.Create(sh);
        bool record = !indexRow.IsEmpty;
        for (int ow = 0; ow < outW; ow += 4)
        {
            if (ow > outW - 4) ow = outW - 4;
            var a = Vector256.LoadUnsafe(ref r0, (nuint)(2 * ow));
            var b = Vector256.LoadUnsafe(ref r1, (nuint)(2 * ow));
            var topLeft = Avx2.PermuteVar8x32(a, even).GetLower();
            var topRight = Avx2.PermuteVar8x32(a, odd).GetLower();
            var bottomLeft = Avx2.PermuteVar8x32(b, even).GetLower();
            var bottomRight = Avx2.PermuteVar8x32(b, odd).GetLower();

            var first = Vector128.Create(top + 2 * ow) + lanes;
            var max = topLeft;
            var best = first;
            var take = Vector128.GreaterThan(topRight, max) | ~Vector128.Equals(topRight, topRight);
            max = Vector128.ConditionalSelect(take, topRight, max);
            best = Vector128.ConditionalSelect(take.AsInt32(), first + Vector128<int>.One, best);
            take = Vector128.GreaterThan(bottomLeft, max) | ~Vector128.Equals(bottomLeft, bottomLeft);
            max = Vector128.ConditionalSelect(take, bottomLeft, max);
            best = Vector128.ConditionalSelect(take.AsInt32(), first + Vector128.Create(w), best);
            take = Vector128.GreaterThan(bottomRight, max) | ~Vector128.Equals(bottomRight, bottomRight);
            max = Vector128.ConditionalSelect(take, bottomRight, max);
            best = Vector128.ConditionalSelect(take.AsInt32(), first + Vector128.Create(w + 1), best);

            if (affine) max = max * scale + shift;
            max.StoreUnsafe(ref MemoryMarshal.GetReference(yRow), (nuint)ow);
            if (record) best.StoreUnsafe(ref MemoryMarshal.GetReference(indexRow), (nuint)ow);
        }

        return outW;
    }

    // The even (or odd) lanes of a, then those of b: one vpermps per half where AVX2 has it (a generic
    // Vector256.Shuffle with indices held in a variable is not always compiled to it).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Deinterleave(Vector256<float> a, Vector256<float> b, Vector256<int> indices) =>
        Avx2.IsSupported
            ? Vector256.Create(Avx2.PermuteVar8x32(a, indices).GetLower(), Avx2.PermuteVar8x32(b, indices).GetLower())
            : Vector256.Create(Vector256.Shuffle(a, indices).GetLower(), Vector256.Shuffle(b, indices).GetLower());

    private readonly record struct Window(int H0, int H1, int W0, int W1, int Divisor);

    // PyTorch's avg_pool2d window: the divisor (count_include_pad) uses the window clipped to the padded input,
    // the summation range is then clipped to the real input.
    private static Window AvgWindow(in PoolGeometry g, int oh, int ow, bool countIncludePad)
    {
        int h0 = oh * g.StrideH - g.PadH, w0 = ow * g.StrideW - g.PadW;
        int h1 = Math.Min(h0 + g.KernelH, g.InH + g.PadH), w1 = Math.Min(w0 + g.KernelW, g.InW + g.PadW);
        int poolSize = (h1 - h0) * (w1 - w0);
        h0 = Math.Max(h0, 0);
        w0 = Math.Max(w0, 0);
        h1 = Math.Min(h1, g.InH);
        w1 = Math.Min(w1, g.InW);
        if (h0 >= h1 || w0 >= w1) return new Window(h0, h0, w0, w0, 0);
        int divisor = countIncludePad ? poolSize : (h1 - h0) * (w1 - w0);
        return new Window(h0, h1, w0, w1, divisor);
    }

    private static void RequireNoDilation(in PoolGeometry g)
    {
        if (g.DilationH != 1 || g.DilationW != 1)
        {
            throw new ArgumentException($"average pooling does not support dilation (got {g.DilationH}x{g.DilationW}).", nameof(g));
        }
    }
}
