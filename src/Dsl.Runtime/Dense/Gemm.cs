// Packed, cache-blocked single-precision matrix multiply with a 6×16 FMA register micro-kernel (256- or 512-bit registers).
using System.ComponentModel;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Dsl.Runtime.Kernels;

/// <summary>
/// <c>C = A·B</c> (or <c>C += A·B</c>) for float32, the engine under convolution and linear layers.
/// A and B are read through strides, so transposed operands cost nothing extra: packing copies the
/// blocks the micro-kernel needs into contiguous panels (6 rows of A, 16 columns of B), and the
/// micro-kernel keeps a 6×16 block of C in twelve 256-bit registers while it runs down K.
/// Blocking (KC × MC for A, KC × NC for B) keeps a B panel in L1 and the A block in L2, as in BLIS.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static class Gemm
{
    /// <summary>Rows of C per micro-kernel call.</summary>
    public const int MR = 6;

    /// <summary>Columns of C per micro-kernel call (two 8-float vectors).</summary>
    public const int NR = 16;

    /// <summary>
    /// Whether the micro-kernels hold a row of the 6×16 block in one 512-bit register (AVX-512F) instead of two
    /// 256-bit ones. Each element of C is the same chain of fused multiply-adds down K either way, so both give
    /// the same bits; on a core with full-width AVX-512 units (AMD Zen 5, Intel server cores) the wide ones do
    /// twice the multiply-adds per instruction, and <see cref="KernelPair"/> keeps twelve of them in flight.
    /// </summary>
    internal static readonly bool Wide = Avx512F.IsSupported;

    internal const int KC = 256;
    internal const int MC = 96; // multiple of MR
    internal const int NC = 1024; // multiple of NR

    /// <summary>Floats of scratch <see cref="Multiply"/> needs for its packed panels, whatever the sizes.</summary>
    public const int ScratchLength = MC * KC + KC * NC;

    /// <summary>
    /// <c>C[m×n] = A[m×k]·B[k×n]</c>, or <c>C += A·B</c> when <paramref name="accumulate"/>.
    /// Element (i, p) of A is <c>a[i*aRowStride + p*aColStride]</c>; element (p, j) of B is
    /// <c>b[p*bRowStride + j*bColStride]</c>; C is row-major with row stride <paramref name="ldc"/>.
    /// </summary>
    /// <param name="m">Rows of A and C.</param>
    /// <param name="n">Columns of B and C.</param>
    /// <param name="k">Columns of A, rows of B.</param>
    /// <param name="a">A's storage.</param>
    /// <param name="aRowStride">Distance between rows of A.</param>
    /// <param name="aColStride">Distance between columns of A.</param>
    /// <param name="b">B's storage.</param>
    /// <param name="bRowStride">Distance between rows of B.</param>
    /// <param name="bColStride">Distance between columns of B.</param>
    /// <param name="c">C's storage.</param>
    /// <param name="ldc">Row stride of C.</param>
    /// <param name="accumulate">Add to C instead of overwriting it.</param>
    /// <param name="scratch">At least <see cref="ScratchLength"/> floats for packed panels.</param>
    public static unsafe void Multiply(int m, int n, int k,
        ReadOnlySpan<float> a, int aRowStride, int aColStride,
        ReadOnlySpan<float> b, int bRowStride, int bColStride,
        Span<float> c, int ldc, bool accumulate, Span<float> scratch)
    {
        Debug.Assert(scratch.Length >= ScratchLength, "scratch too short");
        if (m <= 0 || n <= 0) return;
        if (k <= 0)
        {
            if (!accumulate)
            {
                for (int i = 0; i < m; i++) c.Slice(i * ldc, n).Clear();
            }

            return;
        }

        fixed (float* pa = a, pb = b, pc = c, ps = scratch)
        {
            float* packA = ps;
            float* packB = ps + MC * KC;
            float* edge = stackalloc float[MR * NR];
            for (int jc = 0; jc < n; jc += NC)
            {
                int nc = Math.Min(NC, n - jc);
                int blockK = BlockK(k);
                for (int pc0 = 0; pc0 < k; pc0 += blockK)
                {
                    int kc = Math.Min(blockK, k - pc0);
                    bool add = accumulate || pc0 > 0;
                    PackB(pb + pc0 * bRowStride + jc * bColStride, bRowStride, bColStride, kc, nc, packB);
                    MultiplyBlock(m, nc, kc, pa + pc0 * aColStride, aRowStride, aColStride, packB, pc + jc, ldc, add, packA, edge);
                }
            }
        }
    }

    // K split into equal blocks of at most KC: 784 = 4 × 196 rather than 3 × 256 + 16, whose last block
    // would load and store every C tile for 16 multiply-adds.
    private static int BlockK(int k)
    {
        int blocks = (k + KC - 1) / KC;
        return (k + blocks - 1) / blocks;
    }

    /// <summary>Floats of a B operand <c>[k × n]</c> packed once by <see cref="PackB(ReadOnlySpan{float}, int, int, int, int, Span{float})"/>.</summary>
    /// <param name="k">Rows of B.</param>
    /// <param name="n">Columns of B.</param>
    /// <returns><c>k · n</c> with n rounded up to whole 16-column panels.</returns>
    public static int PackedBLength(int k, int n) => k * ((n + NR - 1) / NR * NR);

    /// <summary>
    /// Packs all of B <c>[k × n]</c> (element (p, j) at <c>b[p*bRowStride + j*bColStride]</c>) the way
    /// <see cref="Multiply"/> packs it per call: K in blocks of 256 rows, each block as 16-column panels, so a
    /// B that does not change between calls (a layer's weights at inference) is packed once.
    /// </summary>
    /// <param name="b">B's storage.</param>
    /// <param name="bRowStride">Distance between rows of B.</param>
    /// <param name="bColStride">Distance between columns of B.</param>
    /// <param name="k">Rows of B.</param>
    /// <param name="n">Columns of B.</param>
    /// <param name="packed">At least <see cref="PackedBLength"/> floats.</param>
    public static unsafe void PackB(ReadOnlySpan<float> b, int bRowStride, int bColStride, int k, int n, Span<float> packed)
    {
        Debug.Assert(packed.Length >= PackedBLength(k, n), "packed too short");
        int n16 = (n + NR - 1) / NR * NR;
        fixed (float* pb = b, pp = packed)
        {
            int blockK = BlockK(k);
            for (int pc0 = 0; pc0 < k; pc0 += blockK)
            {
                PackB(pb + (long)pc0 * bRowStride, bRowStride, bColStride, Math.Min(blockK, k - pc0), n, pp + (long)pc0 * n16);
            }
        }
    }

    /// <summary>
    /// <c>C[m × (hi − lo)] (+)= A[m×k]·B[k, lo:hi]</c> with B packed beforehand by <see cref="PackB(ReadOnlySpan{float}, int, int, int, int, Span{float})"/>
    /// (all <paramref name="n"/> of its columns; <paramref name="lo"/> a multiple of 16): only A is packed per call.
    /// </summary>
    internal static unsafe void MultiplyPacked(int m, int n, int lo, int hi, int k, float* a, int aRowStride, int aColStride, float* packedB, float* c, int ldc, bool accumulate, float* scratch)
    {
        Debug.Assert(lo % NR == 0, "columns start on a panel");
        if (m <= 0 || hi <= lo || k <= 0) return;
        int n16 = (n + NR - 1) / NR * NR;
        float* packA = scratch;
        float* edge = stackalloc float[MR * NR];
        int blockK = BlockK(k);
        for (int pc0 = 0; pc0 < k; pc0 += blockK)
        {
            int kc = Math.Min(blockK, k - pc0);
            bool add = accumulate || pc0 > 0;
            // This K block's panels for columns lo… start lo·kc floats into the block.
            MultiplyBlock(m, hi - lo, kc, a + (long)pc0 * aColStride, aRowStride, aColStride, packedB + (long)pc0 * n16 + (long)lo * kc, c, ldc, add, packA, edge);
        }
    }

    // C[m × nc] (+)= A[m × kc] · B, B a packed K block (16-column panels of kc rows): A packed MC rows at a
    // time into packA, then every panel of B against every 6-row panel of A.
    private static unsafe void MultiplyBlock(int m, int nc, int kc, float* a, int aRowStride, int aColStride, float* packedB, float* c, int ldc, bool add, float* packA, float* edge)
    {
        for (int ic = 0; ic < m; ic += MC)
        {
            int mc = Math.Min(MC, m - ic);
            PackA(a + (long)ic * aRowStride, aRowStride, aColStride, mc, kc, packA);
            PanelProduct(kc, packA, mc, packedB, nc, c + (long)ic * ldc, ldc, add, edge);
        }
    }

    /// <summary>
    /// C[m × nc] (+)= A · B from packed operands: A as panels of <see cref="MR"/> rows (panel i at
    /// <c>a + i·kc</c>, i a multiple of MR), B as panels of <see cref="NR"/> columns (panel j at <c>b + j·kc</c>),
    /// each kc deep. Every B panel against every A panel, edge tiles through <paramref name="edge"/>; with
    /// <see cref="Wide"/> two B panels at a time (<see cref="KernelPair"/>: the same products, more in flight).
    /// </summary>
    internal static unsafe void PanelProduct(int kc, float* a, int m, float* b, int nc, float* c, int ldc, bool accumulate, float* edge)
    {
        int jr = 0;
        if (Wide)
        {
            // Whole 6-row panels against pairs of whole B panels, then against a last whole one; the rows past the
            // last whole A panel against all the whole B panels, four at a time (EdgeRowsWide), or, where they are
            // 1 or 2 (7, 8, 14 or 32 rows: a small batch, 32 samples, 32 output channels), with the panel before them
            // as 7 or 8 rows, three B panels at a time (KernelTallWide: 2 rows alone load 4 B vectors for 8
            // multiply-adds); then whatever is left (a partial B panel) by tiles.
            int tall = m > MR && m % MR is 1 or 2 ? MR + m % MR : 0;
            int mFull = tall > 0 ? m - tall : m / MR * MR, rows = m - mFull, whole = nc / NR;
            for (; jr + 2 * NR <= nc; jr += 2 * NR)
            {
                float* bPanel = b + (long)jr * kc;
                for (int ir = 0; ir < mFull; ir += MR)
                {
                    KernelPair(kc, a + (long)ir * kc, bPanel, bPanel + kc * NR, c + (long)ir * ldc + jr, ldc, accumulate);
                }
            }

            if (jr < whole * NR)
            {
                float* bPanel = b + (long)jr * kc;
                for (int ir = 0; ir < mFull; ir += MR) KernelWide(kc, a + (long)ir * kc, bPanel, c + (long)ir * ldc + jr, ldc, accumulate);
                jr += NR;
            }

            if (tall == 8) TallRows<Eight>(kc, a + (long)mFull * kc, b, whole, c + (long)mFull * ldc, ldc, accumulate);
            else if (tall == 7) TallRows<Seven>(kc, a + (long)mFull * kc, b, whole, c + (long)mFull * ldc, ldc, accumulate);
            else if (rows > 0 && whole > 0) EdgeRowsWide(kc, a + (long)mFull * kc, rows, b, whole, c + (long)mFull * ldc, ldc, accumulate);
        }

        for (; jr < nc; jr += NR)
        {
            int nr = Math.Min(NR, nc - jr);
            float* bPanel = b + (long)jr * kc;
            for (int ir = 0; ir < m; ir += MR)
            {
                Tile(kc, a + (long)ir * kc, bPanel, c + (long)ir * ldc + jr, ldc, Math.Min(MR, m - ir), nr, accumulate, edge);
            }
        }
    }

    // A block (mc × kc) → panels of MR rows, each stored p-major: panel[p*MR + i]; rows past mc are zero.
    internal static unsafe void PackA(float* a, int rowStride, int colStride, int mc, int kc, float* dest)
    {
        for (int ir = 0; ir < mc; ir += MR)
        {
            int mr = Math.Min(MR, mc - ir);
            float* panel = dest + ir * kc;
            float* rows = a + ir * rowStride;
            if (mr == MR && colStride == 1)
            {
                float* r0 = rows, r1 = rows + rowStride, r2 = rows + 2 * rowStride, r3 = rows + 3 * rowStride, r4 = rows + 4 * rowStride, r5 = rows + 5 * rowStride;
                for (int p = 0; p < kc; p++, panel += MR)
                {
                    panel[0] = r0[p];
                    panel[1] = r1[p];
                    panel[2] = r2[p];
                    panel[3] = r3[p];
                    panel[4] = r4[p];
                    panel[5] = r5[p];
                }

                continue;
            }

            for (int p = 0; p < kc; p++, panel += MR)
            {
                float* column = rows + p * colStride;
                int i = 0;
                for (; i < mr; i++) panel[i] = column[i * rowStride];
                for (; i < MR; i++) panel[i] = 0f;
            }
        }
    }

    // B block (kc × nc) → panels of NR columns, each stored p-major: panel[p*NR + j]; columns past nc are zero.
    private static unsafe void PackB(float* b, int rowStride, int colStride, int kc, int nc, float* dest)
    {
        for (int jr = 0; jr < nc; jr += NR)
        {
            int nr = Math.Min(NR, nc - jr);
            float* panel = dest + jr * kc;
            float* columns = b + jr * colStride;
            if (nr == NR && colStride == 1)
            {
                for (int p = 0; p < kc; p++, panel += NR)
                {
                    float* row = columns + p * rowStride;
                    Vector256.Store(Vector256.Load(row), panel);
                    Vector256.Store(Vector256.Load(row + 8), panel + 8);
                }

                continue;
            }

            if (rowStride == 1 && nr == NR && Avx.IsSupported)
            {
                // A transposed operand (a linear layer's weight): 8 columns × 8 rows at a time, transposed in registers.
                int p = 0;
                for (; p + 8 <= kc; p += 8)
                {
                    Transpose8x8(columns + p, colStride, panel + p * NR, NR);
                    Transpose8x8(columns + 8 * colStride + p, colStride, panel + p * NR + 8, NR);
                }

                for (; p < kc; p++)
                {
                    for (int j = 0; j < NR; j++) panel[p * NR + j] = columns[j * colStride + p];
                }

                continue;
            }

            if (rowStride == 1)
            {
                // A transposed operand: each column is contiguous, so walk columns, not rows.
                for (int j = 0; j < NR; j++)
                {
                    if (j < nr)
                    {
                        float* column = columns + j * colStride;
                        for (int p = 0; p < kc; p++) panel[p * NR + j] = column[p];
                    }
                    else
                    {
                        for (int p = 0; p < kc; p++) panel[p * NR + j] = 0f;
                    }
                }

                continue;
            }

            for (int p = 0; p < kc; p++, panel += NR)
            {
                float* row = columns + p * rowStride;
                int j = 0;
                for (; j < nr; j++) panel[j] = row[j * colStride];
                for (; j < NR; j++) panel[j] = 0f;
            }
        }
    }

    // dest[r·destStride + c] = source[c·sourceStride + r] for an 8×8 block: eight loads, three rounds of
    // shuffles, eight stores.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static unsafe void Transpose8x8(float* source, int sourceStride, float* dest, int destStride)
    {
        var r0 = Avx.LoadVector256(source);
        var r1 = Avx.LoadVector256(source + sourceStride);
        var r2 = Avx.LoadVector256(source + 2 * sourceStride);
        var r3 = Avx.LoadVector256(source + 3 * sourceStride);
        var r4 = Avx.LoadVector256(source + 4 * sourceStride);
        var r5 = Avx.LoadVector256(source + 5 * sourceStride);
        var r6 = Avx.LoadVector256(source + 6 * sourceStride);
        var r7 = Avx.LoadVector256(source + 7 * sourceStride);
        var t0 = Avx.UnpackLow(r0, r1);
        var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3);
        var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5);
        var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7);
        var t7 = Avx.UnpackHigh(r6, r7);
        var u0 = Avx.Shuffle(t0, t2, 0x44);
        var u1 = Avx.Shuffle(t0, t2, 0xEE);
        var u2 = Avx.Shuffle(t1, t3, 0x44);
        var u3 = Avx.Shuffle(t1, t3, 0xEE);
        var u4 = Avx.Shuffle(t4, t6, 0x44);
        var u5 = Avx.Shuffle(t4, t6, 0xEE);
        var u6 = Avx.Shuffle(t5, t7, 0x44);
        var u7 = Avx.Shuffle(t5, t7, 0xEE);
        Avx.Store(dest, Avx.Permute2x128(u0, u4, 0x20));
        Avx.Store(dest + destStride, Avx.Permute2x128(u1, u5, 0x20));
        Avx.Store(dest + 2 * destStride, Avx.Permute2x128(u2, u6, 0x20));
        Avx.Store(dest + 3 * destStride, Avx.Permute2x128(u3, u7, 0x20));
        Avx.Store(dest + 4 * destStride, Avx.Permute2x128(u0, u4, 0x31));
        Avx.Store(dest + 5 * destStride, Avx.Permute2x128(u1, u5, 0x31));
        Avx.Store(dest + 6 * destStride, Avx.Permute2x128(u2, u6, 0x31));
        Avx.Store(dest + 7 * destStride, Avx.Permute2x128(u3, u7, 0x31));
    }

    /// <summary>
    /// One mr × nr tile of C (at most MR × NR) from packed panels; a partial tile is computed whole into
    /// <paramref name="edge"/> (MR·NR floats) and only its valid part is added or copied.
    /// </summary>
    internal static unsafe void Tile(int kc, float* aPanel, float* bPanel, float* c, int ldc, int mr, int nr, bool accumulate, float* edge)
    {
        if (mr == MR && nr == NR)
        {
            Kernel(kc, aPanel, bPanel, c, ldc, accumulate);
            return;
        }

        Kernel(kc, aPanel, bPanel, edge, NR, accumulate: false);
        CopyEdge(edge, c, ldc, mr, nr, accumulate);
    }

    /// <summary>
    /// <see cref="Tile"/> with B read in place: row p of the 16-column B block is the 16 floats at
    /// <c>b + offsets[p]</c> (a convolution's shifted image rows; no packed panel).
    /// </summary>
    /// <remarks>
    /// With <paramref name="rowBias"/> (first K block only, not accumulating) row i starts from rowBias[i]; with
    /// <paramref name="relu"/> (last K block) the stored values are ReLU'd: a convolution's bias and fused ReLU
    /// applied in the store, with no pass of their own.
    /// </remarks>
    internal static unsafe void TileOffsets(int kc, float* aPanel, float* b, int* offsets, float* c, int ldc, int mr, int nr, bool accumulate, float* edge,
        float* rowBias = null, bool relu = false)
    {
        if (mr == MR && nr == NR)
        {
            KernelOffsets(kc, aPanel, b, offsets, c, ldc, accumulate, rowBias, relu);
            return;
        }

        KernelOffsets(kc, aPanel, b, offsets, edge, NR, accumulate: false, null, relu: false);
        for (int i = 0; i < mr; i++)
        {
            for (int j = 0; j < nr; j++)
            {
                float v = accumulate ? c[i * ldc + j] + edge[i * NR + j] : rowBias != null ? edge[i * NR + j] + rowBias[i] : edge[i * NR + j];
                c[i * ldc + j] = relu && !(v > 0f || float.IsNaN(v)) ? 0f : v;
            }
        }
    }

    /// <summary>The 6×16 register block with B rows at <c>b + offsets[p]</c>: C[6×16] (+)= A panel (kc × 6) · B, rows started from rowBias when given, ReLU'd when asked.</summary>
    internal static unsafe void KernelOffsets(int kc, float* a, float* b, int* offsets, float* c, int ldc, bool accumulate, float* rowBias = null, bool relu = false)
    {
        if (Wide) KernelOffsetsWide(kc, a, b, offsets, c, ldc, accumulate, rowBias, relu);
        else KernelOffsetsNarrow(kc, a, b, offsets, c, ldc, accumulate, rowBias, relu);
    }

    /// <summary><see cref="KernelOffsets"/> in twelve 256-bit registers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static unsafe void KernelOffsetsNarrow(int kc, float* a, float* b, int* offsets, float* c, int ldc, bool accumulate, float* rowBias, bool relu)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        if (rowBias != null)
        {
            c00 = c01 = Vector256.Create(rowBias[0]);
            c10 = c11 = Vector256.Create(rowBias[1]);
            c20 = c21 = Vector256.Create(rowBias[2]);
            c30 = c31 = Vector256.Create(rowBias[3]);
            c40 = c41 = Vector256.Create(rowBias[4]);
            c50 = c51 = Vector256.Create(rowBias[5]);
        }

        for (int p = 0; p < kc; p++)
        {
            float* row = b + offsets[p];
            var b0 = Vector256.Load(row);
            var b1 = Vector256.Load(row + 8);
            var a0 = Vector256.Create(a[0]);
            c00 = Fmadd(a0, b0, c00);
            c01 = Fmadd(a0, b1, c01);
            var a1 = Vector256.Create(a[1]);
            c10 = Fmadd(a1, b0, c10);
            c11 = Fmadd(a1, b1, c11);
            var a2 = Vector256.Create(a[2]);
            c20 = Fmadd(a2, b0, c20);
            c21 = Fmadd(a2, b1, c21);
            var a3 = Vector256.Create(a[3]);
            c30 = Fmadd(a3, b0, c30);
            c31 = Fmadd(a3, b1, c31);
            var a4 = Vector256.Create(a[4]);
            c40 = Fmadd(a4, b0, c40);
            c41 = Fmadd(a4, b1, c41);
            var a5 = Vector256.Create(a[5]);
            c50 = Fmadd(a5, b0, c50);
            c51 = Fmadd(a5, b1, c51);
            a += MR;
        }

        StoreBlock(c, ldc, accumulate, c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, relu);
    }

    /// <summary>
    /// The 6×16 register block with A read in place: row i of A is the contiguous run at <c>a + rows[i]</c>
    /// (a convolution's shifted image row), B a packed panel. C[6×16] (+)= A (6 × kc) · B (kc × 16).
    /// </summary>
    internal static unsafe void KernelRows(int kc, float* a, int* rows, float* b, float* c, int ldc, bool accumulate)
    {
        if (Wide) KernelRowsWide(kc, a, rows, b, c, ldc, accumulate);
        else KernelRowsNarrow(kc, a, rows, b, c, ldc, accumulate);
    }

    /// <summary><see cref="KernelRows"/> in twelve 256-bit registers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static unsafe void KernelRowsNarrow(int kc, float* a, int* rows, float* b, float* c, int ldc, bool accumulate)
    {
        float* r0 = a + rows[0], r1 = a + rows[1], r2 = a + rows[2], r3 = a + rows[3], r4 = a + rows[4], r5 = a + rows[5];
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector256.Load(b);
            var b1 = Vector256.Load(b + 8);
            var a0 = Vector256.Create(r0[p]);
            c00 = Fmadd(a0, b0, c00);
            c01 = Fmadd(a0, b1, c01);
            var a1 = Vector256.Create(r1[p]);
            c10 = Fmadd(a1, b0, c10);
            c11 = Fmadd(a1, b1, c11);
            var a2 = Vector256.Create(r2[p]);
            c20 = Fmadd(a2, b0, c20);
            c21 = Fmadd(a2, b1, c21);
            var a3 = Vector256.Create(r3[p]);
            c30 = Fmadd(a3, b0, c30);
            c31 = Fmadd(a3, b1, c31);
            var a4 = Vector256.Create(r4[p]);
            c40 = Fmadd(a4, b0, c40);
            c41 = Fmadd(a4, b1, c41);
            var a5 = Vector256.Create(r5[p]);
            c50 = Fmadd(a5, b0, c50);
            c51 = Fmadd(a5, b1, c51);
            b += NR;
        }

        StoreBlock(c, ldc, accumulate, c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51);
    }

    // The valid mr × nr part of a tile computed whole into edge, added to or copied into C.
    private static unsafe void CopyEdge(float* edge, float* c, int ldc, int mr, int nr, bool accumulate)
    {
        for (int i = 0; i < mr; i++)
        {
            for (int j = 0; j < nr; j++) c[i * ldc + j] = accumulate ? c[i * ldc + j] + edge[i * NR + j] : edge[i * NR + j];
        }
    }

    // A 6×16 register block into C: added to what is there when accumulating, else stored.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void StoreBlock(float* c, int ldc, bool accumulate,
        Vector256<float> c00, Vector256<float> c01, Vector256<float> c10, Vector256<float> c11, Vector256<float> c20, Vector256<float> c21,
        Vector256<float> c30, Vector256<float> c31, Vector256<float> c40, Vector256<float> c41, Vector256<float> c50, Vector256<float> c51, bool relu = false)
    {
        if (accumulate)
        {
            c00 += Vector256.Load(c); c01 += Vector256.Load(c + 8);
            c10 += Vector256.Load(c + ldc); c11 += Vector256.Load(c + ldc + 8);
            c20 += Vector256.Load(c + 2 * ldc); c21 += Vector256.Load(c + 2 * ldc + 8);
            c30 += Vector256.Load(c + 3 * ldc); c31 += Vector256.Load(c + 3 * ldc + 8);
            c40 += Vector256.Load(c + 4 * ldc); c41 += Vector256.Load(c + 4 * ldc + 8);
            c50 += Vector256.Load(c + 5 * ldc); c51 += Vector256.Load(c + 5 * ldc + 8);
        }

        if (relu)
        {
            c00 = Activations.Relu(c00); c01 = Activations.Relu(c01); c10 = Activations.Relu(c10); c11 = Activations.Relu(c11);
            c20 = Activations.Relu(c20); c21 = Activations.Relu(c21); c30 = Activations.Relu(c30); c31 = Activations.Relu(c31);
            c40 = Activations.Relu(c40); c41 = Activations.Relu(c41); c50 = Activations.Relu(c50); c51 = Activations.Relu(c51);
        }

        Vector256.Store(c00, c); Vector256.Store(c01, c + 8);
        Vector256.Store(c10, c + ldc); Vector256.Store(c11, c + ldc + 8);
        Vector256.Store(c20, c + 2 * ldc); Vector256.Store(c21, c + 2 * ldc + 8);
        Vector256.Store(c30, c + 3 * ldc); Vector256.Store(c31, c + 3 * ldc + 8);
        Vector256.Store(c40, c + 4 * ldc); Vector256.Store(c41, c + 4 * ldc + 8);
        Vector256.Store(c50, c + 5 * ldc); Vector256.Store(c51, c + 5 * ldc + 8);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Fmadd(Vector256<float> a, Vector256<float> b, Vector256<float> c) =>
        Fma.IsSupported ? Fma.MultiplyAdd(a, b, c) : a * b + c;

    /// <summary>The 6×16 register block: C[6×16] (+)= A panel (kc × 6) · B panel (kc × 16).</summary>
    internal static unsafe void Kernel(int kc, float* a, float* b, float* c, int ldc, bool accumulate)
    {
        if (Wide) KernelWide(kc, a, b, c, ldc, accumulate);
        else KernelNarrow(kc, a, b, c, ldc, accumulate);
    }

    /// <summary><see cref="Kernel"/> in twelve 256-bit registers (two per row of the block).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static unsafe void KernelNarrow(int kc, float* a, float* b, float* c, int ldc, bool accumulate)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector256.Load(b);
            var b1 = Vector256.Load(b + 8);
            var a0 = Vector256.Create(a[0]);
            c00 = Fmadd(a0, b0, c00);
            c01 = Fmadd(a0, b1, c01);
            var a1 = Vector256.Create(a[1]);
            c10 = Fmadd(a1, b0, c10);
            c11 = Fmadd(a1, b1, c11);
            var a2 = Vector256.Create(a[2]);
            c20 = Fmadd(a2, b0, c20);
            c21 = Fmadd(a2, b1, c21);
            var a3 = Vector256.Create(a[3]);
            c30 = Fmadd(a3, b0, c30);
            c31 = Fmadd(a3, b1, c31);
            var a4 = Vector256.Create(a[4]);
            c40 = Fmadd(a4, b0, c40);
            c41 = Fmadd(a4, b1, c41);
            var a5 = Vector256.Create(a[5]);
            c50 = Fmadd(a5, b0, c50);
            c51 = Fmadd(a5, b1, c51);
            a += MR;
            b += NR;
        }

        StoreBlock(c, ldc, accumulate, c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51);
    }

    /// <summary><see cref="Kernel"/> in six 512-bit registers (one per row of the block); the same bits as <see cref="KernelNarrow"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static unsafe void KernelWide(int kc, float* a, float* b, float* c, int ldc, bool accumulate)
    {
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector512.Load(b);
            c0 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[0]), b0, c0);
            c1 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[1]), b0, c1);
            c2 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[2]), b0, c2);
            c3 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[3]), b0, c3);
            c4 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[4]), b0, c4);
            c5 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[5]), b0, c5);
            a += MR;
            b += NR;
        }

        StoreBlockWide(c, ldc, accumulate, c0, c1, c2, c3, c4, c5);
    }

    /// <summary>
    /// Two 6×16 blocks side by side, C[6×32] (+)= A panel (kc × 6) · [B panel | next B panel], in twelve 512-bit
    /// registers: each A element is read once for both, and twelve independent chains cover the multiply-add
    /// latency that six cannot. The same bits as <see cref="Kernel"/> on each panel.
    /// </summary>
    /// <param name="kc">Depth.</param><param name="a">A panel (kc × 6, p-major).</param>
    /// <param name="b">First B panel (kc × 16, p-major).</param><param name="bNext">Second B panel, for C's columns 16…31.</param>
    /// <param name="c">C's first element.</param><param name="ldc">Row stride of C.</param><param name="accumulate">Add to C instead of overwriting it.</param>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static unsafe void KernelPair(int kc, float* a, float* b, float* bNext, float* c, int ldc, bool accumulate)
    {
        if (!Wide)
        {
            KernelNarrow(kc, a, b, c, ldc, accumulate);
            KernelNarrow(kc, a, bNext, c + NR, ldc, accumulate);
            return;
        }

        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector512<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector512.Load(b);
            var b1 = Vector512.Load(bNext);
            var a0 = Vector512.Create(a[0]);
            c00 = Avx512F.FusedMultiplyAdd(a0, b0, c00);
            c01 = Avx512F.FusedMultiplyAdd(a0, b1, c01);
            var a1 = Vector512.Create(a[1]);
            c10 = Avx512F.FusedMultiplyAdd(a1, b0, c10);
            c11 = Avx512F.FusedMultiplyAdd(a1, b1, c11);
            var a2 = Vector512.Create(a[2]);
            c20 = Avx512F.FusedMultiplyAdd(a2, b0, c20);
            c21 = Avx512F.FusedMultiplyAdd(a2, b1, c21);
            var a3 = Vector512.Create(a[3]);
            c30 = Avx512F.FusedMultiplyAdd(a3, b0, c30);
            c31 = Avx512F.FusedMultiplyAdd(a3, b1, c31);
            var a4 = Vector512.Create(a[4]);
            c40 = Avx512F.FusedMultiplyAdd(a4, b0, c40);
            c41 = Avx512F.FusedMultiplyAdd(a4, b1, c41);
            var a5 = Vector512.Create(a[5]);
            c50 = Avx512F.FusedMultiplyAdd(a5, b0, c50);
            c51 = Avx512F.FusedMultiplyAdd(a5, b1, c51);
            a += MR;
            b += NR;
            bNext += NR;
        }

        StoreBlockWide(c, ldc, accumulate, c00, c10, c20, c30, c40, c50);
        StoreBlockWide(c + NR, ldc, accumulate, c01, c11, c21, c31, c41, c51);
    }

    /// <summary>
    /// The rows of A past the last whole 6-row panel (<typeparamref name="TRows"/>: 1 to 5) against
    /// <typeparamref name="TPanels"/> consecutive whole B panels (1, 2 or 4): C[rows × 16·panels] (+)= A panel's
    /// first rows · B, in rows × panels 512-bit registers. The 6×16 kernels would compute all six rows (the missing
    /// ones are zeros) and copy the valid ones out through the edge buffer; here only the rows that exist are
    /// computed, and with 4 panels even 2 rows keep eight chains in flight. Each element of C is the same chain of
    /// fused multiply-adds down K as in <see cref="KernelWide"/>, then the same add to C: the same bits.
    /// </summary>
    /// <param name="kc">Depth.</param><param name="a">A panel (kc × 6, p-major; only the first rows read).</param>
    /// <param name="b">First B panel (kc × 16, p-major); the next ones follow it, kc × 16 floats apart.</param>
    /// <param name="c">C's first element.</param><param name="ldc">Row stride of C.</param><param name="accumulate">Add to C instead of overwriting it.</param>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static unsafe void KernelEdgeRowsWide<TRows, TPanels>(int kc, float* a, float* b, float* c, int ldc, bool accumulate)
        where TRows : struct, ICount
        where TPanels : struct, ICount
    {
        int r = TRows.Value, q = TPanels.Value;
        long panel = (long)kc * NR;
        float* b1 = b + panel, b2 = b + 2 * panel, b3 = b + 3 * panel;
        Vector512<float> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector512<float> c10 = default, c11 = default, c12 = default, c13 = default;
        Vector512<float> c20 = default, c21 = default, c22 = default, c23 = default;
        Vector512<float> c30 = default, c31 = default, c32 = default, c33 = default;
        Vector512<float> c40 = default, c41 = default, c42 = default, c43 = default;
        for (int p = 0; p < kc; p++)
        {
            var v0 = Vector512.Load(b);
            var v1 = q > 1 ? Vector512.Load(b1) : default;
            var v2 = q > 2 ? Vector512.Load(b2) : default;
            var v3 = q > 2 ? Vector512.Load(b3) : default;
            var a0 = Vector512.Create(a[0]);
            c00 = Avx512F.FusedMultiplyAdd(a0, v0, c00);
            if (q > 1) c01 = Avx512F.FusedMultiplyAdd(a0, v1, c01);
            if (q > 2)
            {
                c02 = Avx512F.FusedMultiplyAdd(a0, v2, c02);
                c03 = Avx512F.FusedMultiplyAdd(a0, v3, c03);
            }

            if (r > 1)
            {
                var a1 = Vector512.Create(a[1]);
                c10 = Avx512F.FusedMultiplyAdd(a1, v0, c10);
                if (q > 1) c11 = Avx512F.FusedMultiplyAdd(a1, v1, c11);
                if (q > 2)
                {
                    c12 = Avx512F.FusedMultiplyAdd(a1, v2, c12);
                    c13 = Avx512F.FusedMultiplyAdd(a1, v3, c13);
                }
            }

            if (r > 2)
            {
                var a2 = Vector512.Create(a[2]);
                c20 = Avx512F.FusedMultiplyAdd(a2, v0, c20);
                if (q > 1) c21 = Avx512F.FusedMultiplyAdd(a2, v1, c21);
                if (q > 2)
                {
                    c22 = Avx512F.FusedMultiplyAdd(a2, v2, c22);
                    c23 = Avx512F.FusedMultiplyAdd(a2, v3, c23);
                }
            }

            if (r > 3)
            {
                var a3 = Vector512.Create(a[3]);
                c30 = Avx512F.FusedMultiplyAdd(a3, v0, c30);
                if (q > 1) c31 = Avx512F.FusedMultiplyAdd(a3, v1, c31);
                if (q > 2)
                {
                    c32 = Avx512F.FusedMultiplyAdd(a3, v2, c32);
                    c33 = Avx512F.FusedMultiplyAdd(a3, v3, c33);
                }
            }

            if (r > 4)
            {
                var a4 = Vector512.Create(a[4]);
                c40 = Avx512F.FusedMultiplyAdd(a4, v0, c40);
                if (q > 1) c41 = Avx512F.FusedMultiplyAdd(a4, v1, c41);
                if (q > 2)
                {
                    c42 = Avx512F.FusedMultiplyAdd(a4, v2, c42);
                    c43 = Avx512F.FusedMultiplyAdd(a4, v3, c43);
                }
            }
            a += MR;
            b += NR;
            b1 += NR;
            b2 += NR;
            b3 += NR;
        }

        StoreRowWide<TPanels>(c + 0 * ldc, accumulate, c00, c01, c02, c03);
        if (r > 1) StoreRowWide<TPanels>(c + 1 * ldc, accumulate, c10, c11, c12, c13);
        if (r > 2) StoreRowWide<TPanels>(c + 2 * ldc, accumulate, c20, c21, c22, c23);
        if (r > 3) StoreRowWide<TPanels>(c + 3 * ldc, accumulate, c30, c31, c32, c33);
        if (r > 4) StoreRowWide<TPanels>(c + 4 * ldc, accumulate, c40, c41, c42, c43);
    }

    // One row of an edge block into C: 1 to 4 vectors of 16, added to what is there when accumulating.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void StoreRowWide<TPanels>(float* c, bool accumulate, Vector512<float> v0, Vector512<float> v1, Vector512<float> v2, Vector512<float> v3)
        where TPanels : struct, ICount
    {
        int q = TPanels.Value;
        if (accumulate)
        {
            v0 += Vector512.Load(c);
            if (q > 1) v1 += Vector512.Load(c + NR);
            if (q > 2) v2 += Vector512.Load(c + 2 * NR);
            if (q > 3) v3 += Vector512.Load(c + 3 * NR);
        }

        Vector512.Store(v0, c);
        if (q > 1) Vector512.Store(v1, c + NR);
        if (q > 2) Vector512.Store(v2, c + 2 * NR);
        if (q > 3) Vector512.Store(v3, c + 3 * NR);
    }

    /// <summary>The edge rows (1 to 5) of an A panel against <paramref name="panels"/> whole B panels, 4, 2 and 1 at a time (<see cref="KernelEdgeRowsWide{TRows, TPanels}"/>).</summary>
    internal static unsafe void EdgeRowsWide(int kc, float* a, int rows, float* b, int panels, float* c, int ldc, bool accumulate)
    {
        Debug.Assert(rows is > 0 and < MR, "edge rows only");
        long panel = (long)kc * NR;
        int j = 0;
        for (; j + 4 <= panels; j += 4) EdgeRows<Four>(kc, a, rows, b + j * panel, c + j * NR, ldc, accumulate);
        for (; j + 2 <= panels; j += 2) EdgeRows<Two>(kc, a, rows, b + j * panel, c + j * NR, ldc, accumulate);
        for (; j < panels; j++) EdgeRows<One>(kc, a, rows, b + j * panel, c + j * NR, ldc, accumulate);
    }

    private static unsafe void TallRows<TRows>(int kc, float* a, float* b, int panels, float* c, int ldc, bool accumulate)
        where TRows : struct, ICount
    {
        long panel = (long)kc * NR;
        int j = 0;
        for (; j + 3 <= panels; j += 3) KernelTallWide<TRows, Three>(kc, a, b + j * panel, c + j * NR, ldc, accumulate);
        if (panels - j == 2) KernelTallWide<TRows, Two>(kc, a, b + j * panel, c + j * NR, ldc, accumulate);
        else if (panels - j == 1) KernelTallWide<TRows, One>(kc, a, b + j * panel, c + j * NR, ldc, accumulate);
    }

    private static unsafe void EdgeRows<TPanels>(int kc, float* a, int rows, float* b, float* c, int ldc, bool accumulate)
        where TPanels : struct, ICount
    {
        switch (rows)
        {
            case 1: KernelEdgeRowsWide<One, TPanels>(kc, a, b, c, ldc, accumulate); break;
            case 2: KernelEdgeRowsWide<Two, TPanels>(kc, a, b, c, ldc, accumulate); break;
            case 3: KernelEdgeRowsWide<Three, TPanels>(kc, a, b, c, ldc, accumulate); break;
            case 4: KernelEdgeRowsWide<Four, TPanels>(kc, a, b, c, ldc, accumulate); break;
            default: KernelEdgeRowsWide<Five, TPanels>(kc, a, b, c, ldc, accumulate); break;
        }
    }

    /// <summary>
    /// Seven or eight rows of A (<typeparamref name="TRows"/>; two 6-row panels: all of the first, the first rows of
    /// the second) against <typeparamref name="TPanels"/> consecutive whole B panels (1 to 3):
    /// C[rows × 16·panels] (+)= A · B, in up to 24 512-bit registers. With 6-row panels alone, 8 rows cost a whole
    /// pass over B for 6 rows and another for 2; here B is read once for all of them, each vector loaded serves 7 or
    /// 8 multiply-adds, and 3 panels keep 21–24 chains in flight. Each element of C is the same chain of fused
    /// multiply-adds down K as in <see cref="KernelWide"/>, then the same add to C: the same bits.
    /// </summary>
    /// <param name="kc">Depth.</param><param name="a">First A panel (kc × 6, p-major); the second follows it, kc × 6 floats on.</param>
    /// <param name="b">First B panel (kc × 16, p-major); the next ones follow it, kc × 16 floats apart.</param>
    /// <param name="c">C's first element.</param><param name="ldc">Row stride of C.</param><param name="accumulate">Add to C instead of overwriting it.</param>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static unsafe void KernelTallWide<TRows, TPanels>(int kc, float* a, float* b, float* c, int ldc, bool accumulate)
        where TRows : struct, ICount
        where TPanels : struct, ICount
    {
        int r = TRows.Value, q = TPanels.Value;
        Debug.Assert(r is 7 or 8, "seven or eight rows");
        long panel = (long)kc * NR;
        float* b1 = b + panel, b2 = b + 2 * panel, a6 = a + (long)kc * MR;
        Vector512<float> c00 = default, c01 = default, c02 = default, c10 = default, c11 = default, c12 = default;
        Vector512<float> c20 = default, c21 = default, c22 = default, c30 = default, c31 = default, c32 = default;
        Vector512<float> c40 = default, c41 = default, c42 = default, c50 = default, c51 = default, c52 = default;
        Vector512<float> c60 = default, c61 = default, c62 = default, c70 = default, c71 = default, c72 = default;
        for (int p = 0; p < kc; p++)
        {
            var v0 = Vector512.Load(b);
            var v1 = q > 1 ? Vector512.Load(b1) : default;
            var v2 = q > 2 ? Vector512.Load(b2) : default;
            var x = Vector512.Create(a[0]);
            c00 = Avx512F.FusedMultiplyAdd(x, v0, c00);
            if (q > 1) c01 = Avx512F.FusedMultiplyAdd(x, v1, c01);
            if (q > 2) c02 = Avx512F.FusedMultiplyAdd(x, v2, c02);
            x = Vector512.Create(a[1]);
            c10 = Avx512F.FusedMultiplyAdd(x, v0, c10);
            if (q > 1) c11 = Avx512F.FusedMultiplyAdd(x, v1, c11);
            if (q > 2) c12 = Avx512F.FusedMultiplyAdd(x, v2, c12);
            x = Vector512.Create(a[2]);
            c20 = Avx512F.FusedMultiplyAdd(x, v0, c20);
            if (q > 1) c21 = Avx512F.FusedMultiplyAdd(x, v1, c21);
            if (q > 2) c22 = Avx512F.FusedMultiplyAdd(x, v2, c22);
            x = Vector512.Create(a[3]);
            c30 = Avx512F.FusedMultiplyAdd(x, v0, c30);
            if (q > 1) c31 = Avx512F.FusedMultiplyAdd(x, v1, c31);
            if (q > 2) c32 = Avx512F.FusedMultiplyAdd(x, v2, c32);
            x = Vector512.Create(a[4]);
            c40 = Avx512F.FusedMultiplyAdd(x, v0, c40);
            if (q > 1) c41 = Avx512F.FusedMultiplyAdd(x, v1, c41);
            if (q > 2) c42 = Avx512F.FusedMultiplyAdd(x, v2, c42);
            x = Vector512.Create(a[5]);
            c50 = Avx512F.FusedMultiplyAdd(x, v0, c50);
            if (q > 1) c51 = Avx512F.FusedMultiplyAdd(x, v1, c51);
            if (q > 2) c52 = Avx512F.FusedMultiplyAdd(x, v2, c52);
            x = Vector512.Create(a6[0]);
            c60 = Avx512F.FusedMultiplyAdd(x, v0, c60);
            if (q > 1) c61 = Avx512F.FusedMultiplyAdd(x, v1, c61);
            if (q > 2) c62 = Avx512F.FusedMultiplyAdd(x, v2, c62);
            if (r > 7)
            {
                x = Vector512.Create(a6[1]);
                c70 = Avx512F.FusedMultiplyAdd(x, v0, c70);
                if (q > 1) c71 = Avx512F.FusedMultiplyAdd(x, v1, c71);
                if (q > 2) c72 = Avx512F.FusedMultiplyAdd(x, v2, c72);
            }
            a += MR;
            a6 += MR;
            b += NR;
            b1 += NR;
            b2 += NR;
        }

        StoreRowWide<TPanels>(c, accumulate, c00, c01, c02, default);
        StoreRowWide<TPanels>(c + ldc, accumulate, c10, c11, c12, default);
        StoreRowWide<TPanels>(c + 2 * ldc, accumulate, c20, c21, c22, default);
        StoreRowWide<TPanels>(c + 3 * ldc, accumulate, c30, c31, c32, default);
        StoreRowWide<TPanels>(c + 4 * ldc, accumulate, c40, c41, c42, default);
        StoreRowWide<TPanels>(c + 5 * ldc, accumulate, c50, c51, c52, default);
        StoreRowWide<TPanels>(c + 6 * ldc, accumulate, c60, c61, c62, default);
        if (r > 7) StoreRowWide<TPanels>(c + 7 * ldc, accumulate, c70, c71, c72, default);
    }

    /// <summary>A count known to the JIT: each kernel instantiated over these compiles without the branches it does not take.</summary>
    internal interface ICount
    {
        /// <summary>The count.</summary>
        static abstract int Value { get; }
    }

    private readonly struct One : ICount { public static int Value => 1; }
    private readonly struct Two : ICount { public static int Value => 2; }
    private readonly struct Three : ICount { public static int Value => 3; }
    private readonly struct Four : ICount { public static int Value => 4; }
    private readonly struct Five : ICount { public static int Value => 5; }
    private readonly struct Seven : ICount { public static int Value => 7; }
    private readonly struct Eight : ICount { public static int Value => 8; }

    /// <summary><see cref="KernelOffsets"/> in six 512-bit registers; the same bits as <see cref="KernelOffsetsNarrow"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static unsafe void KernelOffsetsWide(int kc, float* a, float* b, int* offsets, float* c, int ldc, bool accumulate, float* rowBias, bool relu)
    {
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default;
        if (rowBias != null)
        {
            c0 = Vector512.Create(rowBias[0]);
            c1 = Vector512.Create(rowBias[1]);
            c2 = Vector512.Create(rowBias[2]);
            c3 = Vector512.Create(rowBias[3]);
            c4 = Vector512.Create(rowBias[4]);
            c5 = Vector512.Create(rowBias[5]);
        }

        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector512.Load(b + offsets[p]);
            c0 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[0]), b0, c0);
            c1 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[1]), b0, c1);
            c2 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[2]), b0, c2);
            c3 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[3]), b0, c3);
            c4 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[4]), b0, c4);
            c5 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[5]), b0, c5);
            a += MR;
        }

        StoreBlockWide(c, ldc, accumulate, c0, c1, c2, c3, c4, c5, relu);
    }

    /// <summary>
    /// The rows of an offsets block past the last whole 6-row panel (<paramref name="rows"/>: 1 to 5) against one or
    /// two 16-column tiles (<paramref name="tiles"/>): C[rows × 16·tiles] (+)= A panel's first rows · B, row p of B the
    /// floats at <c>b + offsets[p]</c>, in rows × tiles 512-bit registers. <see cref="TileOffsets"/> computes all six
    /// rows into its edge buffer (the missing ones are zeros), one tile at a time, and copies the valid ones out;
    /// here only the rows that exist are computed, the pair of tiles shares each broadcast, and the rows are stored
    /// as vectors. Each element is the same chain down K from zero, then the same add to C (or bias), then the same
    /// ReLU as in TileOffsets: the same bits.
    /// </summary>
    /// <param name="kc">Depth.</param><param name="a">A panel (kc × 6, p-major; only the first rows read).</param><param name="rows">Rows, 1 to 5.</param>
    /// <param name="b">B's origin.</param><param name="offsets">Row p of B at b + offsets[p].</param>
    /// <param name="c">C's first element.</param><param name="ldc">Row stride of C.</param><param name="tiles">16-column tiles, 1 or 2.</param>
    /// <param name="accumulate">Add to C instead of overwriting it.</param>
    /// <param name="rowBias">Row i gets rowBias[i] added (not with accumulate), or null.</param><param name="relu">ReLU the stored values.</param>
    internal static unsafe void EdgeRowsOffsetsWide(int kc, float* a, int rows, float* b, int* offsets, float* c, int ldc, int tiles, bool accumulate, float* rowBias, bool relu)
    {
        Debug.Assert(Wide && rows is > 0 and < MR && tiles is 1 or 2, "1 to 5 rows, 1 or 2 tiles, 512-bit registers");
        if (tiles == 2) EdgeRowsOffsets<Two>(kc, a, rows, b, offsets, c, ldc, accumulate, rowBias, relu);
        else EdgeRowsOffsets<One>(kc, a, rows, b, offsets, c, ldc, accumulate, rowBias, relu);
    }

    private static unsafe void EdgeRowsOffsets<TTiles>(int kc, float* a, int rows, float* b, int* offsets, float* c, int ldc, bool accumulate, float* rowBias, bool relu)
        where TTiles : struct, ICount
    {
        switch (rows)
        {
            case 1: KernelEdgeRowsOffsetsWide<One, TTiles>(kc, a, b, offsets, c, ldc, accumulate, rowBias, relu); break;
            case 2: KernelEdgeRowsOffsetsWide<Two, TTiles>(kc, a, b, offsets, c, ldc, accumulate, rowBias, relu); break;
            case 3: KernelEdgeRowsOffsetsWide<Three, TTiles>(kc, a, b, offsets, c, ldc, accumulate, rowBias, relu); break;
            case 4: KernelEdgeRowsOffsetsWide<Four, TTiles>(kc, a, b, offsets, c, ldc, accumulate, rowBias, relu); break;
            default: KernelEdgeRowsOffsetsWide<Five, TTiles>(kc, a, b, offsets, c, ldc, accumulate, rowBias, relu); break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void KernelEdgeRowsOffsetsWide<TRows, TTiles>(int kc, float* a, float* b, int* offsets, float* c, int ldc, bool accumulate, float* rowBias, bool relu)
        where TRows : struct, ICount
        where TTiles : struct, ICount
    {
        int r = TRows.Value, q = TTiles.Value;
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector512<float> c30 = default, c31 = default, c40 = default, c41 = default;
        for (int p = 0; p < kc; p++)
        {
            float* row = b + offsets[p];
            var v0 = Vector512.Load(row);
            var v1 = q > 1 ? Vector512.Load(row + NR) : default;
            var x = Vector512.Create(a[0]);
            c00 = Avx512F.FusedMultiplyAdd(x, v0, c00);
            if (q > 1) c01 = Avx512F.FusedMultiplyAdd(x, v1, c01);
            if (r > 1)
            {
                x = Vector512.Create(a[1]);
                c10 = Avx512F.FusedMultiplyAdd(x, v0, c10);
                if (q > 1) c11 = Avx512F.FusedMultiplyAdd(x, v1, c11);
            }

            if (r > 2)
            {
                x = Vector512.Create(a[2]);
                c20 = Avx512F.FusedMultiplyAdd(x, v0, c20);
                if (q > 1) c21 = Avx512F.FusedMultiplyAdd(x, v1, c21);
            }

            if (r > 3)
            {
                x = Vector512.Create(a[3]);
                c30 = Avx512F.FusedMultiplyAdd(x, v0, c30);
                if (q > 1) c31 = Avx512F.FusedMultiplyAdd(x, v1, c31);
            }

            if (r > 4)
            {
                x = Vector512.Create(a[4]);
                c40 = Avx512F.FusedMultiplyAdd(x, v0, c40);
                if (q > 1) c41 = Avx512F.FusedMultiplyAdd(x, v1, c41);
            }

            a += MR;
        }

        StoreEdgeOffsetsRow<TTiles>(c, accumulate, rowBias, relu, c00, c01);
        if (r > 1) StoreEdgeOffsetsRow<TTiles>(c + ldc, accumulate, rowBias == null ? null : rowBias + 1, relu, c10, c11);
        if (r > 2) StoreEdgeOffsetsRow<TTiles>(c + 2 * ldc, accumulate, rowBias == null ? null : rowBias + 2, relu, c20, c21);
        if (r > 3) StoreEdgeOffsetsRow<TTiles>(c + 3 * ldc, accumulate, rowBias == null ? null : rowBias + 3, relu, c30, c31);
        if (r > 4) StoreEdgeOffsetsRow<TTiles>(c + 4 * ldc, accumulate, rowBias == null ? null : rowBias + 4, relu, c40, c41);
    }

    // One row of an offsets edge block: TileOffsets' c + e (accumulating), e + bias, or e, then its ReLU.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void StoreEdgeOffsetsRow<TTiles>(float* c, bool accumulate, float* bias, bool relu, Vector512<float> v0, Vector512<float> v1)
        where TTiles : struct, ICount
    {
        int q = TTiles.Value;
        if (accumulate)
        {
            v0 = Vector512.Load(c) + v0;
            if (q > 1) v1 = Vector512.Load(c + NR) + v1;
        }
        else if (bias != null)
        {
            var start = Vector512.Create(*bias);
            v0 += start;
            if (q > 1) v1 += start;
        }

        if (relu)
        {
            v0 = Relu(v0);
            if (q > 1) v1 = Relu(v1);
        }

        Vector512.Store(v0, c);
        if (q > 1) Vector512.Store(v1, c + NR);
    }

    /// <summary>
    /// Two <see cref="KernelOffsets"/> blocks side by side: C[6×32] (+)= A panel (kc × 6) · B, row p of B the 32
    /// floats at <c>b + offsets[p]</c> (two adjacent 16-column tiles of a convolution's grid read one shifted row).
    /// Twelve 512-bit accumulators, each broadcast of A feeding two multiply-adds: the six chains of the single
    /// block leave the loads of A and B, not the multiply-adds, as the limit. Each element is the same chain down K,
    /// then the same bias start, add to C and ReLU, as in the single block: the same bits.
    /// </summary>
    /// <param name="kc">Depth.</param><param name="a">A panel (kc × 6, p-major).</param>
    /// <param name="b">B's origin.</param><param name="offsets">Row p of B at b + offsets[p].</param>
    /// <param name="c">C's first element.</param><param name="ldc">Row stride of C.</param><param name="accumulate">Add to C instead of overwriting it.</param>
    /// <param name="rowBias">Row i starts from rowBias[i] (not with accumulate), or null.</param><param name="relu">ReLU the stored values.</param>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static unsafe void KernelOffsetsPair(int kc, float* a, float* b, int* offsets, float* c, int ldc, bool accumulate, float* rowBias = null, bool relu = false)
    {
        if (!Wide)
        {
            KernelOffsetsNarrow(kc, a, b, offsets, c, ldc, accumulate, rowBias, relu);
            KernelOffsetsNarrow(kc, a, b + NR, offsets, c + NR, ldc, accumulate, rowBias, relu);
            return;
        }

        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector512<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        if (rowBias != null)
        {
            c00 = c01 = Vector512.Create(rowBias[0]);
            c10 = c11 = Vector512.Create(rowBias[1]);
            c20 = c21 = Vector512.Create(rowBias[2]);
            c30 = c31 = Vector512.Create(rowBias[3]);
            c40 = c41 = Vector512.Create(rowBias[4]);
            c50 = c51 = Vector512.Create(rowBias[5]);
        }

        for (int p = 0; p < kc; p++)
        {
            float* row = b + offsets[p];
            var b0 = Vector512.Load(row);
            var b1 = Vector512.Load(row + NR);
            var a0 = Vector512.Create(a[0]);
            c00 = Avx512F.FusedMultiplyAdd(a0, b0, c00);
            c01 = Avx512F.FusedMultiplyAdd(a0, b1, c01);
            var a1 = Vector512.Create(a[1]);
            c10 = Avx512F.FusedMultiplyAdd(a1, b0, c10);
            c11 = Avx512F.FusedMultiplyAdd(a1, b1, c11);
            var a2 = Vector512.Create(a[2]);
            c20 = Avx512F.FusedMultiplyAdd(a2, b0, c20);
            c21 = Avx512F.FusedMultiplyAdd(a2, b1, c21);
            var a3 = Vector512.Create(a[3]);
            c30 = Avx512F.FusedMultiplyAdd(a3, b0, c30);
            c31 = Avx512F.FusedMultiplyAdd(a3, b1, c31);
            var a4 = Vector512.Create(a[4]);
            c40 = Avx512F.FusedMultiplyAdd(a4, b0, c40);
            c41 = Avx512F.FusedMultiplyAdd(a4, b1, c41);
            var a5 = Vector512.Create(a[5]);
            c50 = Avx512F.FusedMultiplyAdd(a5, b0, c50);
            c51 = Avx512F.FusedMultiplyAdd(a5, b1, c51);
            a += MR;
        }

        StoreBlockWide(c, ldc, accumulate, c00, c10, c20, c30, c40, c50, relu);
        StoreBlockWide(c + NR, ldc, accumulate, c01, c11, c21, c31, c41, c51, relu);
    }

    /// <summary><see cref="KernelRows"/> in six 512-bit registers; the same bits as <see cref="KernelRowsNarrow"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static unsafe void KernelRowsWide(int kc, float* a, int* rows, float* b, float* c, int ldc, bool accumulate)
    {
        float* r0 = a + rows[0], r1 = a + rows[1], r2 = a + rows[2], r3 = a + rows[3], r4 = a + rows[4], r5 = a + rows[5];
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector512.Load(b);
            c0 = Avx512F.FusedMultiplyAdd(Vector512.Create(r0[p]), b0, c0);
            c1 = Avx512F.FusedMultiplyAdd(Vector512.Create(r1[p]), b0, c1);
            c2 = Avx512F.FusedMultiplyAdd(Vector512.Create(r2[p]), b0, c2);
            c3 = Avx512F.FusedMultiplyAdd(Vector512.Create(r3[p]), b0, c3);
            c4 = Avx512F.FusedMultiplyAdd(Vector512.Create(r4[p]), b0, c4);
            c5 = Avx512F.FusedMultiplyAdd(Vector512.Create(r5[p]), b0, c5);
            b += NR;
        }

        StoreBlockWide(c, ldc, accumulate, c0, c1, c2, c3, c4, c5);
    }

    /// <summary>
    /// Two <see cref="KernelRows"/> blocks side by side: C[6×32] (+)= A (6 rows read in place) · [B panel | next B
    /// panel], twelve 512-bit accumulators, each broadcast of A feeding two multiply-adds. Each element is the same
    /// chain down K, then the same add to C, as in the single block: the same bits.
    /// </summary>
    /// <param name="kc">Depth.</param><param name="a">A's origin.</param><param name="rows">Row i of A at a + rows[i].</param>
    /// <param name="b">First B panel (kc × 16, p-major).</param><param name="bNext">Second B panel, for C's columns 16…31.</param>
    /// <param name="c">C's first element.</param><param name="ldc">Row stride of C.</param><param name="accumulate">Add to C instead of overwriting it.</param>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static unsafe void KernelRowsPair(int kc, float* a, int* rows, float* b, float* bNext, float* c, int ldc, bool accumulate)
    {
        if (!Wide)
        {
            KernelRowsNarrow(kc, a, rows, b, c, ldc, accumulate);
            KernelRowsNarrow(kc, a, rows, bNext, c + NR, ldc, accumulate);
            return;
        }

        float* r0 = a + rows[0], r1 = a + rows[1], r2 = a + rows[2], r3 = a + rows[3], r4 = a + rows[4], r5 = a + rows[5];
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector512<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector512.Load(b);
            var b1 = Vector512.Load(bNext);
            var a0 = Vector512.Create(r0[p]);
            c00 = Avx512F.FusedMultiplyAdd(a0, b0, c00);
            c01 = Avx512F.FusedMultiplyAdd(a0, b1, c01);
            var a1 = Vector512.Create(r1[p]);
            c10 = Avx512F.FusedMultiplyAdd(a1, b0, c10);
            c11 = Avx512F.FusedMultiplyAdd(a1, b1, c11);
            var a2 = Vector512.Create(r2[p]);
            c20 = Avx512F.FusedMultiplyAdd(a2, b0, c20);
            c21 = Avx512F.FusedMultiplyAdd(a2, b1, c21);
            var a3 = Vector512.Create(r3[p]);
            c30 = Avx512F.FusedMultiplyAdd(a3, b0, c30);
            c31 = Avx512F.FusedMultiplyAdd(a3, b1, c31);
            var a4 = Vector512.Create(r4[p]);
            c40 = Avx512F.FusedMultiplyAdd(a4, b0, c40);
            c41 = Avx512F.FusedMultiplyAdd(a4, b1, c41);
            var a5 = Vector512.Create(r5[p]);
            c50 = Avx512F.FusedMultiplyAdd(a5, b0, c50);
            c51 = Avx512F.FusedMultiplyAdd(a5, b1, c51);
            b += NR;
            bNext += NR;
        }

        StoreBlockWide(c, ldc, accumulate, c00, c10, c20, c30, c40, c50);
        StoreBlockWide(c + NR, ldc, accumulate, c01, c11, c21, c31, c41, c51);
    }

    // A 6×16 block of 512-bit rows into C: added to what is there when accumulating, ReLU'd when asked, stored
    // (the operations of StoreBlock, lane for lane).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void StoreBlockWide(float* c, int ldc, bool accumulate,
        Vector512<float> c0, Vector512<float> c1, Vector512<float> c2, Vector512<float> c3, Vector512<float> c4, Vector512<float> c5, bool relu = false)
    {
        if (accumulate)
        {
            c0 += Vector512.Load(c);
            c1 += Vector512.Load(c + ldc);
            c2 += Vector512.Load(c + 2 * ldc);
            c3 += Vector512.Load(c + 3 * ldc);
            c4 += Vector512.Load(c + 4 * ldc);
            c5 += Vector512.Load(c + 5 * ldc);
        }

        if (relu)
        {
            c0 = Relu(c0); c1 = Relu(c1); c2 = Relu(c2); c3 = Relu(c3); c4 = Relu(c4); c5 = Relu(c5);
        }

        Vector512.Store(c0, c);
        Vector512.Store(c1, c + ldc);
        Vector512.Store(c2, c + 2 * ldc);
        Vector512.Store(c3, c + 3 * ldc);
        Vector512.Store(c4, c + 4 * ldc);
        Vector512.Store(c5, c + 5 * ldc);
    }

    // Activations.Relu on 16 lanes: max(v, 0), NaN kept.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Relu(Vector512<float> v) => v & (Vector512.GreaterThan(v, Vector512<float>.Zero) | ~Vector512.Equals(v, v));
}
