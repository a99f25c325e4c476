// Linear layers at small batch sizes: the weight streamed straight from its PyTorch layout, no packing.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Dsl.Runtime;

/// <summary>
/// The three linear passes for a batch of a few samples. There a GEMM spends more time packing the
/// weight (read once, written once, per call) and padding its 6-row tiles than multiplying, while each
/// weight element is used only n times. These kernels read the weight where it lies, once per call:
/// <list type="bullet">
/// <item>forward, <c>y[i,o] = x[i,:]·W[o,:]</c>: dot products of 2 samples × 4 outputs at a time (eight
/// vector accumulators), summed across lanes at the end;</item>
/// <item>input gradient, <c>dx[i,:] = Σ_o dy[i,o]·W[o,:]</c>: 4 samples × 16 input features in registers
/// while the rows of W stream past;</item>
/// <item>weight gradient, <c>dW[o,:] += Σ_i dy[i,o]·x[i,:]</c>: 4 rows × 16 columns of dW loaded, updated
/// with every sample, and stored once.</item>
/// </list>
/// Each works on a range of outputs (forward, weight gradient) or input features (input gradient), so the
/// parallel overloads split the same work across the worker pool. Every element is summed in one fixed
/// order, whichever register block computes it, so results do not depend on the split or the batch size.
/// </summary>
internal static unsafe class LinearSmall
{
    // Batches below these take these kernels; from them up, the packed GEMM is as fast or faster
    // (784 → 512 on the reference machine: the forward dot products hold about 80 GFLOP/s at any batch,
    // the input gradient about 60, the weight gradient about 80 up to 16 samples).

    /// <summary>Forward passes of fewer samples than this take <see cref="Forward"/>.</summary>
    public const int ForwardBatchLimit = 128;

    /// <summary>Input gradients of fewer samples than this take <see cref="BackwardInput"/>.</summary>
    public const int InputGradientBatchLimit = 16;

    /// <summary>Weight gradients of fewer samples than this take <see cref="BackwardWeight"/>.</summary>
    public const int WeightGradientBatchLimit = 32;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Fmadd(Vector256<float> a, Vector256<float> b, Vector256<float> c) =>
        Fma.IsSupported ? Fma.MultiplyAdd(a, b, c) : a * b + c;

    /// <summary><c>y[i, o] = bias[o] + x[i,:]·W[o,:]</c> for outputs <paramref name="lo"/> ≤ o &lt; <paramref name="hi"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Forward(float* x, float* w, float* bias, float* y, int n, int inF, int outF, int lo, int hi)
    {
        int k8 = inF & ~7;
        int o = lo;
        for (; o + 4 <= hi; o += 4)
        {
            float* w0 = w + (long)o * inF, w1 = w0 + inF, w2 = w1 + inF, w3 = w2 + inF;
            int i = 0;
            for (; i + 2 <= n; i += 2)
            {
                float* x0 = x + (long)i * inF, x1 = x0 + inF;
                Vector256<float> a00 = default, a01 = default, a02 = default, a03 = default;
                Vector256<float> a10 = default, a11 = default, a12 = default, a13 = default;
                for (int k = 0; k < k8; k += 8)
                {
                    var v0 = Vector256.Load(w0 + k);
                    var v1 = Vector256.Load(w1 + k);
                    var v2 = Vector256.Load(w2 + k);
                    var v3 = Vector256.Load(w3 + k);
                    var u = Vector256.Load(x0 + k);
                    a00 = Fmadd(u, v0, a00);
                    a01 = Fmadd(u, v1, a01);
                    a02 = Fmadd(u, v2, a02);
                    a03 = Fmadd(u, v3, a03);
                    u = Vector256.Load(x1 + k);
                    a10 = Fmadd(u, v0, a10);
                    a11 = Fmadd(u, v1, a11);
                    a12 = Fmadd(u, v2, a12);
                    a13 = Fmadd(u, v3, a13);
                }

                float* y0 = y + (long)i * outF + o, y1 = y0 + outF;
                y0[0] = Vector256.Sum(a00) + Tail(x0, w0, k8, inF);
                y0[1] = Vector256.Sum(a01) + Tail(x0, w1, k8, inF);
                y0[2] = Vector256.Sum(a02) + Tail(x0, w2, k8, inF);
                y0[3] = Vector256.Sum(a03) + Tail(x0, w3, k8, inF);
                y1[0] = Vector256.Sum(a10) + Tail(x1, w0, k8, inF);
                y1[1] = Vector256.Sum(a11) + Tail(x1, w1, k8, inF);
                y1[2] = Vector256.Sum(a12) + Tail(x1, w2, k8, inF);
                y1[3] = Vector256.Sum(a13) + Tail(x1, w3, k8, inF);
            }

            if (i < n)
            {
                float* xi = x + (long)i * inF;
                Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
                for (int k = 0; k < k8; k += 8)
                {
                    var u = Vector256.Load(xi + k);
                    a0 = Fmadd(u, Vector256.Load(w0 + k), a0);
                    a1 = Fmadd(u, Vector256.Load(w1 + k), a1);
                    a2 = Fmadd(u, Vector256.Load(w2 + k), a2);
                    a3 = Fmadd(u, Vector256.Load(w3 + k), a3);
                }

                float* yi = y + (long)i * outF + o;
                yi[0] = Vector256.Sum(a0) + Tail(xi, w0, k8, inF);
                yi[1] = Vector256.Sum(a1) + Tail(xi, w1, k8, inF);
                yi[2] = Vector256.Sum(a2) + Tail(xi, w2, k8, inF);
                yi[3] = Vector256.Sum(a3) + Tail(xi, w3, k8, inF);
            }
        }

        for (; o < hi; o++)
        {
            float* wo = w + (long)o * inF;
            for (int i = 0; i < n; i++)
            {
                float* xi = x + (long)i * inF;
                Vector256<float> a = default;
                for (int k = 0; k < k8; k += 8) a = Fmadd(Vector256.Load(xi + k), Vector256.Load(wo + k), a);
                y[(long)i * outF + o] = Vector256.Sum(a) + Tail(xi, wo, k8, inF);
            }
        }

        if (bias != null)
        {
            for (int i = 0; i < n; i++)
            {
                float* yi = y + (long)i * outF;
                for (int j = lo; j < hi; j++) yi[j] += bias[j];
            }
        }
    }

    // Every output, whichever block computes it, sums in the same order: one vector accumulator over the
    // whole multiple of 8, its lanes, then the scalar tail. So results do not depend on how the outputs
    // are split across threads, nor on the batch size.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Tail(float* a, float* b, int from, int length)
    {
        float s = 0f;
        for (int k = from; k < length; k++) s = Fmadd(a[k], b[k], s);
        return s;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Fmadd(float a, float b, float c) => Fma.IsSupported ? MathF.FusedMultiplyAdd(a, b, c) : a * b + c;

    /// <summary><c>dx[i, k] = Σ_o dy[i,o]·W[o,k]</c> for input features <paramref name="lo"/> ≤ k &lt; <paramref name="hi"/>; dx is overwritten there.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void BackwardInput(float* dy, float* w, float* dx, int n, int inF, int outF, int lo, int hi)
    {
        int i = 0;
        for (; i + 4 <= n; i += 4)
        {
            float* d0 = dy + (long)i * outF, d1 = d0 + outF, d2 = d1 + outF, d3 = d2 + outF;
            float* x0 = dx + (long)i * inF, x1 = x0 + inF, x2 = x1 + inF, x3 = x2 + inF;
            int k = lo;
            for (; k + 16 <= hi; k += 16)
            {
                Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default;
                Vector256<float> c20 = default, c21 = default, c30 = default, c31 = default;
                float* wk = w + k;
                for (int o = 0; o < outF; o++, wk += inF)
                {
                    var v0 = Vector256.Load(wk);
                    var v1 = Vector256.Load(wk + 8);
                    var s = Vector256.Create(d0[o]);
                    c00 = Fmadd(s, v0, c00);
                    c01 = Fmadd(s, v1, c01);
                    s = Vector256.Create(d1[o]);
                    c10 = Fmadd(s, v0, c10);
                    c11 = Fmadd(s, v1, c11);
                    s = Vector256.Create(d2[o]);
                    c20 = Fmadd(s, v0, c20);
                    c21 = Fmadd(s, v1, c21);
                    s = Vector256.Create(d3[o]);
                    c30 = Fmadd(s, v0, c30);
                    c31 = Fmadd(s, v1, c31);
                }

                Vector256.Store(c00, x0 + k); Vector256.Store(c01, x0 + k + 8);
                Vector256.Store(c10, x1 + k); Vector256.Store(c11, x1 + k + 8);
                Vector256.Store(c20, x2 + k); Vector256.Store(c21, x2 + k + 8);
                Vector256.Store(c30, x3 + k); Vector256.Store(c31, x3 + k + 8);
            }

            for (int r = 0; r < 4; r++) BackwardInputColumns(dy + (long)(i + r) * outF, w, dx + (long)(i + r) * inF, inF, outF, k, hi);
        }

        for (; i + 2 <= n; i += 2)
        {
            float* d0 = dy + (long)i * outF, d1 = d0 + outF;
            float* x0 = dx + (long)i * inF, x1 = x0 + inF;
            int k = lo;
            for (; k + 32 <= hi; k += 32)
            {
                Vector256<float> c00 = default, c01 = default, c02 = default, c03 = default;
                Vector256<float> c10 = default, c11 = default, c12 = default, c13 = default;
                float* wk = w + k;
                for (int o = 0; o < outF; o++, wk += inF)
                {
                    var v0 = Vector256.Load(wk);
                    var v1 = Vector256.Load(wk + 8);
                    var v2 = Vector256.Load(wk + 16);
                    var v3 = Vector256.Load(wk + 24);
                    var s = Vector256.Create(d0[o]);
                    c00 = Fmadd(s, v0, c00);
                    c01 = Fmadd(s, v1, c01);
                    c02 = Fmadd(s, v2, c02);
                    c03 = Fmadd(s, v3, c03);
                    s = Vector256.Create(d1[o]);
                    c10 = Fmadd(s, v0, c10);
                    c11 = Fmadd(s, v1, c11);
                    c12 = Fmadd(s, v2, c12);
                    c13 = Fmadd(s, v3, c13);
                }

                Vector256.Store(c00, x0 + k); Vector256.Store(c01, x0 + k + 8); Vector256.Store(c02, x0 + k + 16); Vector256.Store(c03, x0 + k + 24);
                Vector256.Store(c10, x1 + k); Vector256.Store(c11, x1 + k + 8); Vector256.Store(c12, x1 + k + 16); Vector256.Store(c13, x1 + k + 24);
            }

            BackwardInputColumns(d0, w, x0, inF, outF, k, hi);
            BackwardInputColumns(d1, w, x1, inF, outF, k, hi);
        }

        if (i < n) BackwardInputColumns(dy + (long)i * outF, w, dx + (long)i * inF, inF, outF, lo, hi);
    }

    // One sample's dx[lo:hi] = Σ_o dy[o]·W[o, lo:hi]: 32 columns at a time, then 8, then one by one.
    private static void BackwardInputColumns(float* dy, float* w, float* dx, int inF, int outF, int lo, int hi)
    {
        int k = lo;
        for (; k + 32 <= hi; k += 32)
        {
            Vector256<float> c0 = default, c1 = default, c2 = default, c3 = default;
            float* wk = w + k;
            for (int o = 0; o < outF; o++, wk += inF)
            {
                var s = Vector256.Create(dy[o]);
                c0 = Fmadd(s, Vector256.Load(wk), c0);
                c1 = Fmadd(s, Vector256.Load(wk + 8), c1);
                c2 = Fmadd(s, Vector256.Load(wk + 16), c2);
                c3 = Fmadd(s, Vector256.Load(wk + 24), c3);
            }

            Vector256.Store(c0, dx + k); Vector256.Store(c1, dx + k + 8); Vector256.Store(c2, dx + k + 16); Vector256.Store(c3, dx + k + 24);
        }

        for (; k + 8 <= hi; k += 8)
        {
            Vector256<float> c = default;
            float* wk = w + k;
            for (int o = 0; o < outF; o++, wk += inF) c = Fmadd(Vector256.Create(dy[o]), Vector256.Load(wk), c);
            Vector256.Store(c, dx + k);
        }

        for (; k < hi; k++)
        {
            float s = 0f;
            for (int o = 0; o < outF; o++) s = Fmadd(dy[o], w[(long)o * inF + k], s);
            dx[k] = s;
        }
    }

    /// <summary><c>dW[o,:] += Σ_i dy[i,o]·x[i,:]</c> for rows <paramref name="lo"/> ≤ o &lt; <paramref name="hi"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void BackwardWeight(float* dy, float* x, float* dw, int n, int inF, int outF, int lo, int hi)
    {
        int k16 = inF & ~15;
        int o = lo;
        for (; o + 4 <= hi; o += 4)
        {
            float* r0 = dw + (long)o * inF, r1 = r0 + inF, r2 = r1 + inF, r3 = r2 + inF;
            for (int k = 0; k < k16; k += 16)
            {
                var c00 = Vector256.Load(r0 + k); var c01 = Vector256.Load(r0 + k + 8);
                var c10 = Vector256.Load(r1 + k); var c11 = Vector256.Load(r1 + k + 8);
                var c20 = Vector256.Load(r2 + k); var c21 = Vector256.Load(r2 + k + 8);
                var c30 = Vector256.Load(r3 + k); var c31 = Vector256.Load(r3 + k + 8);
                float* d = dy + o;
                float* xk = x + k;
                for (int i = 0; i < n; i++, d += outF, xk += inF)
                {
                    var v0 = Vector256.Load(xk);
                    var v1 = Vector256.Load(xk + 8);
                    var s = Vector256.Create(d[0]);
                    c00 = Fmadd(s, v0, c00);
                    c01 = Fmadd(s, v1, c01);
                    s = Vector256.Create(d[1]);
                    c10 = Fmadd(s, v0, c10);
                    c11 = Fmadd(s, v1, c11);
                    s = Vector256.Create(d[2]);
                    c20 = Fmadd(s, v0, c20);
                    c21 = Fmadd(s, v1, c21);
                    s = Vector256.Create(d[3]);
                    c30 = Fmadd(s, v0, c30);
                    c31 = Fmadd(s, v1, c31);
                }

                Vector256.Store(c00, r0 + k); Vector256.Store(c01, r0 + k + 8);
                Vector256.Store(c10, r1 + k); Vector256.Store(c11, r1 + k + 8);
                Vector256.Store(c20, r2 + k); Vector256.Store(c21, r2 + k + 8);
                Vector256.Store(c30, r3 + k); Vector256.Store(c31, r3 + k + 8);
            }

            for (int r = 0; r < 4; r++) BackwardWeightRow(dy + o + r, x, dw + (long)(o + r) * inF, n, inF, outF, k16);
        }

        for (; o < hi; o++) BackwardWeightRow(dy + o, x, dw + (long)o * inF, n, inF, outF, 0);
    }

    // One row dW[o, from:] += Σ_i dy[i,o]·x[i, from:], 8 columns at a time, then one by one.
    private static void BackwardWeightRow(float* dyColumn, float* x, float* row, int n, int inF, int outF, int from)
    {
        int k = from;
        for (; k + 8 <= inF; k += 8)
        {
            var c = Vector256.Load(row + k);
            for (int i = 0; i < n; i++) c = Fmadd(Vector256.Create(dyColumn[(long)i * outF]), Vector256.Load(x + (long)i * inF + k), c);
            Vector256.Store(c, row + k);
        }

        for (; k < inF; k++)
        {
            float s = row[k];
            for (int i = 0; i < n; i++) s = Fmadd(dyColumn[(long)i * outF], x[(long)i * inF + k], s);
            row[k] = s;
        }
    }
}
