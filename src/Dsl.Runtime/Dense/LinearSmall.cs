// Linear layers at small batch sizes: the weight streamed straight from its PyTorch layout, no packing.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Dsl.Runtime.Kernels;

/// <summary>
/// The three linear passes for a batch of a few samples. There a GEMM spends more time packing the
/// weight (read once, written once, per call) and padding its 6-row tiles than multiplying, while each
/// weight element is used only n times. These kernels read the weight where it lies, once per call:
/// <list type="bullet">
/// <item>forward, <c>y[i,o] = x[i,:]·W[o,:]</c>: dot products of 8 samples × 3 outputs at a time (below 16
/// samples) or 4 samples × 6 outputs (24 accumulators of 16 lanes), summed across lanes at the end;</item>
/// <item>input gradient, <c>dx[i,:] = Σ_o dy[i,o]·W[o,:]</c>: 8 samples × 24 input features in registers
/// while the rows of W stream past;</item>
/// <item>weight gradient, <c>dW[o,:] += Σ_i dy[i,o]·x[i,:]</c>: 8 rows × 24 columns of dW loaded, updated
/// with every sample, and stored once.</item>
/// </list>
/// Those blocks need the 32 vector registers that AVX-512 brings (<see cref="Wide"/>); without them, and for
/// the edges, narrower blocks of 8 accumulators do the same sums (2 samples × 4 outputs, 4 samples × 16
/// features, 4 rows × 16 columns).
/// Each works on a range of outputs (forward, weight gradient) or input features (input gradient), so the
/// parallel overloads split the same work across the worker pool. Every element is summed in one fixed
/// order, whichever register block computes it, so results do not depend on the split or the batch size.
/// </summary>
internal static unsafe class LinearSmall
{
    /// <summary>
    /// Whether the 24-accumulator kernels run: they need the 32 vector registers of AVX-512's encoding (with 16
    /// they would spill). Every output element sums in the same order in either set, so the bits match.
    /// </summary>
    internal static readonly bool Wide = Fma.IsSupported && Avx512F.VL.IsSupported;

    // Batches below these take these kernels; from them up, the packed GEMM is as fast or faster. On the
    // reference machine (784 → 512 and 512 → 512, one thread) the wide blocks hold 85–105 GFLOP/s: the
    // forward about even with the GEMM's 90–100 at any batch; the input gradient ahead of it through 32
    // samples (90 against 55–80), even at 64, behind at 128; the weight gradient ahead up to 16 samples and
    // about even at 32 (the narrow blocks: about 80, 60 and 80).

    /// <summary>Forward passes of fewer samples than this take <see cref="Forward"/>.</summary>
    public const int ForwardBatchLimit = 128;

    /// <summary>Input gradients of fewer samples than this take <see cref="BackwardInput"/>.</summary>
    public static readonly int InputGradientBatchLimit = Wide ? 64 : 16;

    /// <summary>Weight gradients of fewer samples than this take <see cref="BackwardWeight"/>.</summary>
    public const int WeightGradientBatchLimit = 32;

    /// <summary>
    /// Layers with at most this many outputs take <see cref="Forward"/> and <see cref="BackwardInput"/> at any batch:
    /// the GEMM's 16-column panels leave 6 of 16 lanes idle at 10 outputs. Measured with the wide blocks at
    /// 128 samples (512 → 10: forward 72 against 25–30 GFLOP/s, input gradient 88–94 against 59–75; 1350 → 10:
    /// 60–70 against 30; 512 → 16: 79 against 54; 512 → 32: 79 against 72; even from 48); 0 where the
    /// blocks are narrow (not measured there).
    /// </summary>
    public static readonly int NarrowOutputs = Wide ? 32 : 0;

    /// <summary>Whether a forward pass of <paramref name="n"/> samples and <paramref name="outF"/> outputs takes <see cref="Forward"/>.</summary>
    public static bool TakesForward(int n, int outF) => n < ForwardBatchLimit || outF <= NarrowOutputs;

    /// <summary>Whether an input gradient of <paramref name="n"/> samples and <paramref name="outF"/> outputs takes <see cref="BackwardInput"/>.</summary>
    public static bool TakesBackwardInput(int n, int outF) => n < InputGradientBatchLimit || outF <= NarrowOutputs;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Fmadd(Vector256<float> a, Vector256<float> b, Vector256<float> c) =>
        Fma.IsSupported ? Fma.MultiplyAdd(a, b, c) : a * b + c;

    /// <summary><c>y[i, o] = bias[o] + x[i,:]·W[o,:]</c> for outputs <paramref name="lo"/> ≤ o &lt; <paramref name="hi"/>.</summary>
    public static void Forward(float* x, float* w, float* bias, float* y, int n, int inF, int outF, int lo, int hi)
    {
        if (Wide) ForwardWide(x, w, y, n, inF, outF, lo, hi);
        else ForwardNarrow(x, w, y, n, inF, outF, lo, hi);
        if (bias != null)
        {
            for (int i = 0; i < n; i++)
            {
                float* yi = y + (long)i * outF;
                for (int j = lo; j < hi; j++) yi[j] += bias[j];
            }
        }
    }

    // With AVX-512: blocks of 24 accumulators of 16 lanes, each row of W read once per block of samples. Below
    // 16 samples, 8 samples × 3 outputs (11 loads per 24 multiply-adds; at 8 samples the weight streams from
    // L3 once per call); from 16, 4 samples × 6 outputs (10 loads), whose 4 sample rows stay in L1 while the
    // blocks of outputs pass (8 sample rows of 784 or more features spill to L2). Measured on the reference
    // machine, one thread, 784 → 512: 8 samples 100 → 168 GFLOP/s against the 256-bit 8 × 3 block, 32 samples
    // 102 → 159 (8 × 3 at 512 bits: 124). Edges take the narrow blocks at the same width: the same bits.
    private static void ForwardWide(float* x, float* w, float* y, int n, int inF, int outF, int lo, int hi)
    {
        int rows = n < 16 ? 8 : 4, columns = rows == 8 ? 3 : 6;
        int nBlocks = n / rows * rows, oBlocks = lo + (hi - lo) / columns * columns;
        if (nBlocks > 0)
        {
            for (int o = lo; o < oBlocks; o += columns)
            {
                for (int i = 0; i < nBlocks; i += rows)
                {
                    float* xi = x + (long)i * inF, wo = w + (long)o * inF, yi = y + (long)i * outF + o;
                    if (rows == 8) Block8x3(xi, wo, yi, inF, outF);
                    else Block4x6(xi, wo, yi, inF, outF);
                }
            }

            if (oBlocks < hi) ForwardNarrow(x, w, y, nBlocks, inF, outF, oBlocks, hi);
        }

        if (nBlocks < n) ForwardNarrow(x + (long)nBlocks * inF, w, y + (long)nBlocks * outF, n - nBlocks, inF, outF, lo, hi);
    }

    // y[0..8, 0..3] = x[0..8, :]·W[0..3, :]ᵀ: each of the three weight rows loaded serves 8 samples and each
    // sample's load 3 rows.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Block8x3(float* x, float* w0, float* y, int inF, int outF)
    {
        int k16 = inF & ~15;
        long s = inF;
        float* w1 = w0 + s, w2 = w1 + s;
        Vector512<float> a00 = default, a01 = default, a02 = default, a10 = default, a11 = default, a12 = default;
        Vector512<float> a20 = default, a21 = default, a22 = default, a30 = default, a31 = default, a32 = default;
        Vector512<float> a40 = default, a41 = default, a42 = default, a50 = default, a51 = default, a52 = default;
        Vector512<float> a60 = default, a61 = default, a62 = default, a70 = default, a71 = default, a72 = default;
        for (int k = 0; k < k16; k += 16)
        {
            var v0 = Vector512.Load(w0 + k);
            var v1 = Vector512.Load(w1 + k);
            var v2 = Vector512.Load(w2 + k);
            float* xk = x + k;
            var u = Vector512.Load(xk);
            a00 = Fmadd(u, v0, a00); a01 = Fmadd(u, v1, a01); a02 = Fmadd(u, v2, a02);
            u = Vector512.Load(xk + s);
            a10 = Fmadd(u, v0, a10); a11 = Fmadd(u, v1, a11); a12 = Fmadd(u, v2, a12);
            u = Vector512.Load(xk + 2 * s);
            a20 = Fmadd(u, v0, a20); a21 = Fmadd(u, v1, a21); a22 = Fmadd(u, v2, a22);
            u = Vector512.Load(xk + 3 * s);
            a30 = Fmadd(u, v0, a30); a31 = Fmadd(u, v1, a31); a32 = Fmadd(u, v2, a32);
            u = Vector512.Load(xk + 4 * s);
            a40 = Fmadd(u, v0, a40); a41 = Fmadd(u, v1, a41); a42 = Fmadd(u, v2, a42);
            u = Vector512.Load(xk + 5 * s);
            a50 = Fmadd(u, v0, a50); a51 = Fmadd(u, v1, a51); a52 = Fmadd(u, v2, a52);
            u = Vector512.Load(xk + 6 * s);
            a60 = Fmadd(u, v0, a60); a61 = Fmadd(u, v1, a61); a62 = Fmadd(u, v2, a62);
            u = Vector512.Load(xk + 7 * s);
            a70 = Fmadd(u, v0, a70); a71 = Fmadd(u, v1, a71); a72 = Fmadd(u, v2, a72);
        }

        // The 24 lane sums, sample by sample, in a few shuffles (LaneSums: Vector512.Sum's order, so the same bits).
        float* sums = stackalloc float[24];
        Vector512.Store(LaneSums.Sum16(a00, a01, a02, a10, a11, a12, a20, a21, a22, a30, a31, a32, a40, a41, a42, a50), sums);
        Vector256.Store(LaneSums.Sum8(a51, a52, a60, a61, a62, a70, a71, a72), sums + 16);
        Write(sums, 8, 3, x, w0, y, k16, inF, outF);
    }

    // y[0..4, 0..6] = x[0..4, :]·W[0..6, :]ᵀ: six weight rows against four samples.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Block4x6(float* x, float* w0, float* y, int inF, int outF)
    {
        int k16 = inF & ~15;
        long s = inF;
        float* x1 = x + s, x2 = x1 + s, x3 = x2 + s;
        Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default, a04 = default, a05 = default;
        Vector512<float> a10 = default, a11 = default, a12 = default, a13 = default, a14 = default, a15 = default;
        Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default, a24 = default, a25 = default;
        Vector512<float> a30 = default, a31 = default, a32 = default, a33 = default, a34 = default, a35 = default;
        for (int k = 0; k < k16; k += 16)
        {
            var u0 = Vector512.Load(x + k);
            var u1 = Vector512.Load(x1 + k);
            var u2 = Vector512.Load(x2 + k);
            var u3 = Vector512.Load(x3 + k);
            float* wk = w0 + k;
            var v = Vector512.Load(wk);
            a00 = Fmadd(u0, v, a00); a10 = Fmadd(u1, v, a10); a20 = Fmadd(u2, v, a20); a30 = Fmadd(u3, v, a30);
            v = Vector512.Load(wk + s);
            a01 = Fmadd(u0, v, a01); a11 = Fmadd(u1, v, a11); a21 = Fmadd(u2, v, a21); a31 = Fmadd(u3, v, a31);
            v = Vector512.Load(wk + 2 * s);
            a02 = Fmadd(u0, v, a02); a12 = Fmadd(u1, v, a12); a22 = Fmadd(u2, v, a22); a32 = Fmadd(u3, v, a32);
            v = Vector512.Load(wk + 3 * s);
            a03 = Fmadd(u0, v, a03); a13 = Fmadd(u1, v, a13); a23 = Fmadd(u2, v, a23); a33 = Fmadd(u3, v, a33);
            v = Vector512.Load(wk + 4 * s);
            a04 = Fmadd(u0, v, a04); a14 = Fmadd(u1, v, a14); a24 = Fmadd(u2, v, a24); a34 = Fmadd(u3, v, a34);
            v = Vector512.Load(wk + 5 * s);
            a05 = Fmadd(u0, v, a05); a15 = Fmadd(u1, v, a15); a25 = Fmadd(u2, v, a25); a35 = Fmadd(u3, v, a35);
        }

        float* sums = stackalloc float[24];
        Vector512.Store(LaneSums.Sum16(a00, a01, a02, a03, a04, a05, a10, a11, a12, a13, a14, a15, a20, a21, a22, a23), sums);
        Vector256.Store(LaneSums.Sum8(a24, a25, a30, a31, a32, a33, a34, a35), sums + 16);
        Write(sums, 4, 6, x, w0, y, k16, inF, outF);
    }

    // A block's outputs y[i, j] (rows × columns, sums row by row) with the scalar tail of each dot product added.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Write(float* sums, int rows, int columns, float* x, float* w0, float* y, int k16, int inF, int outF)
    {
        for (int i = 0; i < rows; i++)
        {
            float* xi = x + (long)i * inF, yi = y + (long)i * outF;
            for (int j = 0; j < columns; j++) yi[j] = sums[i * columns + j] + Tail(xi, w0 + (long)j * inF, k16, inF);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Fmadd(Vector512<float> a, Vector512<float> b, Vector512<float> c) => Avx512F.FusedMultiplyAdd(a, b, c);

    /// <summary>
    /// <c>y[i, o] = x[i,:]·W[o,:]</c> (no bias) with 16 registers, 2 samples × 4 outputs at a time: the edges of
    /// the wide blocks, and every block without AVX-512. With AVX-512 its accumulators have the wide blocks' 16
    /// lanes, so every output has the same bits whichever block computes it.
    /// </summary>
    internal static void ForwardNarrow(float* x, float* w, float* y, int n, int inF, int outF, int lo, int hi) =>
        ForwardNarrow(x, w, y, n, inF, outF, lo, hi, wide: true);

    /// <summary><see cref="ForwardNarrow(float*, float*, float*, int, int, int, int, int)"/> on 8 lanes even where AVX-512 gives 16 (<paramref name="wide"/> false): the tests check both instances.</summary>
    internal static void ForwardNarrow(float* x, float* w, float* y, int n, int inF, int outF, int lo, int hi, bool wide)
    {
        if (wide && Wide) ForwardNarrow<Lanes16, Vector512<float>>(x, w, y, n, inF, outF, lo, hi);
        else ForwardNarrow<Lanes8, Vector256<float>>(x, w, y, n, inF, outF, lo, hi);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ForwardNarrow<TLanes, TVector>(float* x, float* w, float* y, int n, int inF, int outF, int lo, int hi)
        where TLanes : struct, ILanes<TVector>
        where TVector : struct
    {
        int width = TLanes.Count, kv = inF / width * width;
        int o = lo;
        for (; o + 4 <= hi; o += 4)
        {
            float* w0 = w + (long)o * inF, w1 = w0 + inF, w2 = w1 + inF, w3 = w2 + inF;
            int i = 0;
            for (; i + 2 <= n; i += 2)
            {
                float* x0 = x + (long)i * inF, x1 = x0 + inF;
                TVector a00 = default, a01 = default, a02 = default, a03 = default;
                TVector a10 = default, a11 = default, a12 = default, a13 = default;
                for (int k = 0; k < kv; k += width)
                {
                    var v0 = TLanes.Load(w0 + k);
                    var v1 = TLanes.Load(w1 + k);
                    var v2 = TLanes.Load(w2 + k);
                    var v3 = TLanes.Load(w3 + k);
                    var u = TLanes.Load(x0 + k);
                    a00 = TLanes.Fmadd(u, v0, a00);
                    a01 = TLanes.Fmadd(u, v1, a01);
                    a02 = TLanes.Fmadd(u, v2, a02);
                    a03 = TLanes.Fmadd(u, v3, a03);
                    u = TLanes.Load(x1 + k);
                    a10 = TLanes.Fmadd(u, v0, a10);
                    a11 = TLanes.Fmadd(u, v1, a11);
                    a12 = TLanes.Fmadd(u, v2, a12);
                    a13 = TLanes.Fmadd(u, v3, a13);
                }

                float* y0 = y + (long)i * outF + o, y1 = y0 + outF;
                y0[0] = TLanes.Sum(a00) + Tail(x0, w0, kv, inF);
                y0[1] = TLanes.Sum(a01) + Tail(x0, w1, kv, inF);
                y0[2] = TLanes.Sum(a02) + Tail(x0, w2, kv, inF);
                y0[3] = TLanes.Sum(a03) + Tail(x0, w3, kv, inF);
                y1[0] = TLanes.Sum(a10) + Tail(x1, w0, kv, inF);
                y1[1] = TLanes.Sum(a11) + Tail(x1, w1, kv, inF);
                y1[2] = TLanes.Sum(a12) + Tail(x1, w2, kv, inF);
                y1[3] = TLanes.Sum(a13) + Tail(x1, w3, kv, inF);
            }

            if (i < n)
            {
                float* xi = x + (long)i * inF;
                TVector a0 = default, a1 = default, a2 = default, a3 = default;
                for (int k = 0; k < kv; k += width)
                {
                    var u = TLanes.Load(xi + k);
                    a0 = TLanes.Fmadd(u, TLanes.Load(w0 + k), a0);
                    a1 = TLanes.Fmadd(u, TLanes.Load(w1 + k), a1);
                    a2 = TLanes.Fmadd(u, TLanes.Load(w2 + k), a2);
                    a3 = TLanes.Fmadd(u, TLanes.Load(w3 + k), a3);
                }

                float* yi = y + (long)i * outF + o;
                yi[0] = TLanes.Sum(a0) + Tail(xi, w0, kv, inF);
                yi[1] = TLanes.Sum(a1) + Tail(xi, w1, kv, inF);
                yi[2] = TLanes.Sum(a2) + Tail(xi, w2, kv, inF);
                yi[3] = TLanes.Sum(a3) + Tail(xi, w3, kv, inF);
            }
        }

        for (; o < hi; o++)
        {
            float* wo = w + (long)o * inF;
            for (int i = 0; i < n; i++)
            {
                float* xi = x + (long)i * inF;
                TVector a = default;
                for (int k = 0; k < kv; k += width) a = TLanes.Fmadd(TLanes.Load(xi + k), TLanes.Load(wo + k), a);
                y[(long)i * outF + o] = TLanes.Sum(a) + Tail(xi, wo, kv, inF);
            }
        }
    }

    // The forward's accumulator width, a type argument so that one narrow kernel serves both (the JIT compiles
    // each instantiation on its own, the calls inlined).
    private interface ILanes<TVector>
        where TVector : struct
    {
        static abstract int Count { get; }

        static abstract TVector Load(float* p);

        static abstract TVector Fmadd(TVector a, TVector b, TVector c);

        static abstract float Sum(TVector a);
    }

    private readonly struct Lanes8 : ILanes<Vector256<float>>
    {
        public static int Count => 8;

        public static Vector256<float> Load(float* p) => Vector256.Load(p);

        public static Vector256<float> Fmadd(Vector256<float> a, Vector256<float> b, Vector256<float> c) => LinearSmall.Fmadd(a, b, c);

        public static float Sum(Vector256<float> a) => Vector256.Sum(a);
    }

    private readonly struct Lanes16 : ILanes<Vector512<float>>
    {
        public static int Count => 16;

        public static Vector512<float> Load(float* p) => Vector512.Load(p);

        public static Vector512<float> Fmadd(Vector512<float> a, Vector512<float> b, Vector512<float> c) => LinearSmall.Fmadd(a, b, c);

        public static float Sum(Vector512<float> a) => Vector512.Sum(a);
    }

    // Every forward output, whichever block computes it, sums in the same order: one vector accumulator over
    // the whole multiple of the vector width (16 lanes with AVX-512, else 8), its lanes, then the scalar tail.
    // So results do not depend on how the outputs are split across threads, nor on the batch size.
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
        // A strip of 24 columns of W against every block of 8 samples, so the strip is read from memory once.
        int n8 = Wide ? n & ~7 : 0;
        if (n8 > 0)
        {
            int k24 = lo + (hi - lo) / 24 * 24;
            for (int k = lo; k < k24; k += 24)
            {
                for (int i = 0; i < n8; i += 8) Rank1Block(outF, dy + (long)i * outF, 1, outF, w + k, inF, dx + (long)i * inF + k, inF, accumulate: false);
            }

            if (k24 < hi) BackwardInputNarrow(dy, w, dx, n8, inF, outF, k24, hi);
        }

        if (n8 < n) BackwardInputNarrow(dy + (long)n8 * outF, w, dx + (long)n8 * inF, n - n8, inF, outF, lo, hi);
    }

    // C[0..8, 0..24] (+)= Σ_t a[t, 0..8]ᵀ · b[t, 0..24], t = 0 … steps − 1: the 8×24 block of C in 24 vector
    // registers while the steps stream past, each loading three vectors of b and broadcasting eight values of
    // a (element r of step t at a[t·aStep + r·aRow]); C loaded (or zero) and stored once. Each element is summed
    // over t in order, so it has the bits of the narrow kernels. The two wide backward passes:
    //   input gradient  dx[i, k] = Σ_o dy[i, o]·W[o, k]:  steps = outF, a = dy (aStep 1, aRow outF), b = W;
    //   weight gradient dW[o, k] += Σ_i dy[i, o]·x[i, k]: steps = n, a = dy (aStep outF, aRow 1), b = x.
    // Inlined into both, so the weight gradient's constant aRow gives constant offsets (called, it ran ~6% slower).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Rank1Block(int steps, float* a, long aStep, long aRow, float* b, long bStep, float* c, long cRow, bool accumulate)
    {
        float* r = c;
        var a00 = Start(r, accumulate); var a01 = Start(r + 8, accumulate); var a02 = Start(r + 16, accumulate); r += cRow;
        var a10 = Start(r, accumulate); var a11 = Start(r + 8, accumulate); var a12 = Start(r + 16, accumulate); r += cRow;
        var a20 = Start(r, accumulate); var a21 = Start(r + 8, accumulate); var a22 = Start(r + 16, accumulate); r += cRow;
        var a30 = Start(r, accumulate); var a31 = Start(r + 8, accumulate); var a32 = Start(r + 16, accumulate); r += cRow;
        var a40 = Start(r, accumulate); var a41 = Start(r + 8, accumulate); var a42 = Start(r + 16, accumulate); r += cRow;
        var a50 = Start(r, accumulate); var a51 = Start(r + 8, accumulate); var a52 = Start(r + 16, accumulate); r += cRow;
        var a60 = Start(r, accumulate); var a61 = Start(r + 8, accumulate); var a62 = Start(r + 16, accumulate); r += cRow;
        var a70 = Start(r, accumulate); var a71 = Start(r + 8, accumulate); var a72 = Start(r + 16, accumulate);
        for (int t = 0; t < steps; t++, a += aStep, b += bStep)
        {
            var v0 = Vector256.Load(b);
            var v1 = Vector256.Load(b + 8);
            var v2 = Vector256.Load(b + 16);
            var u = Vector256.Create(a[0]);
            a00 = Fmadd(u, v0, a00); a01 = Fmadd(u, v1, a01); a02 = Fmadd(u, v2, a02);
            u = Vector256.Create(a[aRow]);
            a10 = Fmadd(u, v0, a10); a11 = Fmadd(u, v1, a11); a12 = Fmadd(u, v2, a12);
            u = Vector256.Create(a[2 * aRow]);
            a20 = Fmadd(u, v0, a20); a21 = Fmadd(u, v1, a21); a22 = Fmadd(u, v2, a22);
            u = Vector256.Create(a[3 * aRow]);
            a30 = Fmadd(u, v0, a30); a31 = Fmadd(u, v1, a31); a32 = Fmadd(u, v2, a32);
            u = Vector256.Create(a[4 * aRow]);
            a40 = Fmadd(u, v0, a40); a41 = Fmadd(u, v1, a41); a42 = Fmadd(u, v2, a42);
            u = Vector256.Create(a[5 * aRow]);
            a50 = Fmadd(u, v0, a50); a51 = Fmadd(u, v1, a51); a52 = Fmadd(u, v2, a52);
            u = Vector256.Create(a[6 * aRow]);
            a60 = Fmadd(u, v0, a60); a61 = Fmadd(u, v1, a61); a62 = Fmadd(u, v2, a62);
            u = Vector256.Create(a[7 * aRow]);
            a70 = Fmadd(u, v0, a70); a71 = Fmadd(u, v1, a71); a72 = Fmadd(u, v2, a72);
        }

        Store3(c, a00, a01, a02);
        Store3(c + cRow, a10, a11, a12);
        Store3(c + 2 * cRow, a20, a21, a22);
        Store3(c + 3 * cRow, a30, a31, a32);
        Store3(c + 4 * cRow, a40, a41, a42);
        Store3(c + 5 * cRow, a50, a51, a52);
        Store3(c + 6 * cRow, a60, a61, a62);
        Store3(c + 7 * cRow, a70, a71, a72);
    }

    // A block of running sums: what C holds, or zero when the pass writes rather than adds. Either way each
    // element is then summed in order, so writing gives the bits of adding to zeros.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Start(float* p, bool accumulate) => accumulate ? Vector256.Load(p) : Vector256<float>.Zero;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store3(float* p, Vector256<float> a0, Vector256<float> a1, Vector256<float> a2)
    {
        Vector256.Store(a0, p);
        Vector256.Store(a1, p + 8);
        Vector256.Store(a2, p + 16);
    }

    // dx[i, lo:hi] with 16 registers: 4 samples × 16 features, then 2 × 32, then one sample at a time.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void BackwardInputNarrow(float* dy, float* w, float* dx, int n, int inF, int outF, int lo, int hi)
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

    /// <summary><c>dW[o,:] += Σ_i dy[i,o]·x[i,:]</c> for rows <paramref name="lo"/> ≤ o &lt; <paramref name="hi"/>; with <paramref name="accumulate"/> false, <c>dW[o,:] = …</c> (dW is not read).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void BackwardWeight(float* dy, float* x, float* dw, int n, int inF, int outF, int lo, int hi, bool accumulate = true)
    {
        int o = lo;
        if (Wide)
        {
            int k24 = inF / 24 * 24;
            for (; o + 8 <= hi; o += 8)
            {
                float* r = dw + (long)o * inF;
                for (int k = 0; k < k24; k += 24) Rank1Block(n, dy + o, outF, 1, x + k, inF, r + k, inF, accumulate);
                for (int j = 0; j < 8; j++) BackwardWeightRow(dy + o + j, x, r + (long)j * inF, n, inF, outF, k24, accumulate);
            }
        }

        BackwardWeightNarrow(dy, x, dw, n, inF, outF, o, hi, accumulate);
    }

    // dW[lo:hi, :] with 16 registers: 4 rows × 16 columns, then row by row.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void BackwardWeightNarrow(float* dy, float* x, float* dw, int n, int inF, int outF, int lo, int hi, bool accumulate = true)
    {
        int k16 = inF & ~15;
        int o = lo;
        for (; o + 4 <= hi; o += 4)
        {
            float* r0 = dw + (long)o * inF, r1 = r0 + inF, r2 = r1 + inF, r3 = r2 + inF;
            for (int k = 0; k < k16; k += 16)
            {
                var c00 = Start(r0 + k, accumulate); var c01 = Start(r0 + k + 8, accumulate);
                var c10 = Start(r1 + k, accumulate); var c11 = Start(r1 + k + 8, accumulate);
                var c20 = Start(r2 + k, accumulate); var c21 = Start(r2 + k + 8, accumulate);
                var c30 = Start(r3 + k, accumulate); var c31 = Start(r3 + k + 8, accumulate);
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

            for (int r = 0; r < 4; r++) BackwardWeightRow(dy + o + r, x, dw + (long)(o + r) * inF, n, inF, outF, k16, accumulate);
        }

        for (; o < hi; o++) BackwardWeightRow(dy + o, x, dw + (long)o * inF, n, inF, outF, 0, accumulate);
    }

    // One row dW[o, from:] += Σ_i dy[i,o]·x[i, from:], 8 columns at a time, then one by one.
    private static void BackwardWeightRow(float* dyColumn, float* x, float* row, int n, int inF, int outF, int from, bool accumulate)
    {
        int k = from;
        for (; k + 8 <= inF; k += 8)
        {
            var c = Start(row + k, accumulate);
            for (int i = 0; i < n; i++) c = Fmadd(Vector256.Create(dyColumn[(long)i * outF]), Vector256.Load(x + (long)i * inF + k), c);
            Vector256.Store(c, row + k);
        }

        for (; k < inF; k++)
        {
            float s = accumulate ? row[k] : 0f;
            for (int i = 0; i < n; i++) s = Fmadd(dyColumn[(long)i * outF], x[(long)i * inF + k], s);
            row[k] = s;
        }
    }
}
