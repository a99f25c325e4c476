using Dsl.Runtime;

namespace Dsl.Runtime.Tests;

/// <summary>The packed GEMM against a double-precision triple loop: every layout conv and linear use, edge tiles, blocking boundaries.</summary>
public sealed class GemmTests
{
    public static TheoryData<int, int, int> Shapes() => new()
    {
        { 1, 1, 1 }, { 6, 16, 1 }, { 5, 15, 3 }, { 7, 17, 9 }, { 13, 33, 300 }, { 64, 1024, 576 / 4 }, { 97, 40, 257 }, { 6, 1025, 2 }, { 200, 7, 513 },
    };

    private static float[] Random(int n, int seed)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(r.NextDouble() * 2 - 1)).ToArray();
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Matches_reference_for_every_layout(int m, int n, int k)
    {
        var a = Random(m * k, 1);
        var b = Random(k * n, 2);
        var scratch = new float[Gemm.ScratchLength];
        // (aRow, aCol) and (bRow, bCol) for A, Aᵀ stored, B, Bᵀ stored.
        foreach (var (aRow, aCol) in new[] { (k, 1), (1, m) })
        {
            foreach (var (bRow, bCol) in new[] { (n, 1), (1, k) })
            {
                foreach (bool accumulate in new[] { false, true })
                {
                    int ldc = n + 3;
                    var c = Random(m * ldc, 3);
                    var expected = (float[])c.Clone();
                    for (int i = 0; i < m; i++)
                    {
                        for (int j = 0; j < n; j++)
                        {
                            double sum = accumulate ? expected[i * ldc + j] : 0;
                            for (int p = 0; p < k; p++) sum += a[i * aRow + p * aCol] * (double)b[p * bRow + j * bCol];
                            expected[i * ldc + j] = (float)sum;
                        }
                    }

                    Gemm.Multiply(m, n, k, a, aRow, aCol, b, bRow, bCol, c, ldc, accumulate, scratch);
                    for (int i = 0; i < m; i++)
                    {
                        for (int j = 0; j < n; j++)
                            Assert.True(Math.Abs(c[i * ldc + j] - expected[i * ldc + j]) <= 1e-5 * (k + 1), $"({i},{j}) layout a({aRow},{aCol}) b({bRow},{bCol}) acc {accumulate}");
                        // The padding columns of C beyond n are never written.
                        for (int j = n; j < ldc; j++) Assert.Equal(expected[i * ldc + j], c[i * ldc + j]);
                    }
                }
            }
        }
    }

    [Fact]
    public void Zero_k_clears_or_keeps_c()
    {
        var c = new float[] { 1, 2, 3, 4 };
        Gemm.Multiply(2, 2, 0, ReadOnlySpan<float>.Empty, 0, 1, ReadOnlySpan<float>.Empty, 2, 1, c, 2, accumulate: true, new float[Gemm.ScratchLength]);
        Assert.Equal(new float[] { 1, 2, 3, 4 }, c);
        Gemm.Multiply(2, 2, 0, ReadOnlySpan<float>.Empty, 0, 1, ReadOnlySpan<float>.Empty, 2, 1, c, 2, accumulate: false, new float[Gemm.ScratchLength]);
        Assert.Equal(new float[4], c);
    }
}

/// <summary>ConvGemm equals ConvReference on random geometries (the reference is checked by hand-computed values and finite differences).</summary>
public sealed class ConvGemmAgainstReferenceTests
{
    public static TheoryData<int> Seeds() => new(Enumerable.Range(0, 40));

    [Theory]
    [MemberData(nameof(Seeds))]
    public void Gemm_path_equals_direct_path(int seed)
    {
        var r = new Random(seed);
        int groups = r.Next(1, 3);
        int inC = groups * r.Next(1, 4), outC = groups * r.Next(1, 5);
        int kh = r.Next(1, 4), kw = r.Next(1, 4), sh = r.Next(1, 3), sw = r.Next(1, 3), ph = r.Next(0, 2), pw = r.Next(0, 2), dh = r.Next(1, 3), dw = r.Next(1, 3);
        int inH = r.Next(1, 3) == 1 ? 1 : r.Next((kh - 1) * dh + 1, 12), inW = r.Next((kw - 1) * dw + 1, 14);
        if (inH == 1) { kh = 1; ph = 0; dh = 1; sh = 1; } // the 1-d case
        var g = new ConvGeometry(inC, outC, inH, inW, kh, kw, sh, sw, ph, pw, dh, dw, groups);
        int n = r.Next(1, 4);
        float[] Rand(int len) => Enumerable.Range(0, len).Select(_ => (float)(r.NextDouble() * 2 - 1)).ToArray();
        var x = Rand(n * g.InputLength);
        var w = Rand(g.WeightLength);
        var bias = r.Next(2) == 0 ? Array.Empty<float>() : Rand(outC);
        var dy = Rand(n * g.OutputLength);

        var y1 = new float[n * g.OutputLength];
        var y2 = new float[y1.Length];
        ConvGemm.Forward(x, w, bias, y1, n, g);
        ConvReference.Forward(x, w, bias, y2, n, g);
        AssertClose(y2, y1);

        var dx1 = new float[x.Length];
        var dx2 = new float[x.Length];
        ConvGemm.BackwardInput(dy, w, dx1, n, g);
        ConvReference.BackwardInput(dy, w, dx2, n, g);
        AssertClose(dx2, dx1);

        var dw1 = Rand(w.Length);
        var dw2 = (float[])dw1.Clone();
        var db1 = bias.Length == 0 ? Array.Empty<float>() : Rand(outC);
        var db2 = (float[])db1.Clone();
        ConvGemm.BackwardWeight(dy, x, dw1, db1, n, g);
        ConvReference.BackwardWeight(dy, x, dw2, db2, n, g);
        AssertClose(dw2, dw1);
        AssertClose(db2, db1);
    }

    [Theory]
    [InlineData(3, 7, 5, 16, 3, 1, 1, 1)]   // one 16-column tile per row, an edge tile of 1 channel
    [InlineData(64, 64, 6, 32, 3, 1, 1, 1)] // Resblock64's layer, K = 576 in four blocks
    [InlineData(8, 10, 9, 32, 3, 2, 2, 1)]  // dilation 2 with padding 2: output rows of 32
    [InlineData(8, 12, 7, 18, 3, 0, 1, 2)]  // two groups, no padding: rows of 16
    public void Rows_of_whole_tiles_match_the_direct_path(int inC, int outC, int h, int w, int k, int pad, int dilation, int groups)
    {
        // Output rows a multiple of 16 wide: tiles stored straight into y, bias in the accumulators, ReLU in the last store.
        var g = new ConvGeometry(inC, outC, h, w, k, k, 1, 1, pad, pad, dilation, dilation, groups);
        Assert.Equal(0, g.OutW % 16);
        var r = new Random(inC * 100 + w);
        float[] Rand(int len) => Enumerable.Range(0, len).Select(_ => (float)(r.NextDouble() * 2 - 1)).ToArray();
        const int n = 2;
        var x = Rand(n * g.InputLength);
        var wt = Rand(g.WeightLength);
        var dy = Rand(n * g.OutputLength);
        foreach (var bias in new[] { Rand(outC), [] })
        {
            foreach (bool relu in new[] { false, true })
            {
                var expected = new float[n * g.OutputLength];
                ConvReference.Forward(x, wt, bias, expected, n, g);
                if (relu) Activations.ReluForward(expected, expected);
                var actual = new float[expected.Length];
                actual.AsSpan().Fill(float.NaN);
                ConvGemm.Forward(x, wt, bias, actual, n, g, new float[ConvGemm.ScratchLength(g)], relu);
                AssertClose(expected, actual);
            }
        }

        var dx1 = new float[x.Length];
        var dx2 = new float[x.Length];
        ConvGemm.BackwardInput(dy, wt, dx1, n, g);
        ConvReference.BackwardInput(dy, wt, dx2, n, g);
        AssertClose(dx2, dx1);
    }

    [Fact]
    public void Images_beyond_the_padded_grid_budget_pack_as_before()
    {
        // 8 × 402 × 402 padded floats plus the grid output exceed the 2^20-float budget of the stride-1
        // padded-grid path, so this layer packs its B panels from the image.
        var r = new Random(5);
        var g = new ConvGeometry(8, 8, 400, 400, 3, 3, 1, 1, 1, 1, 1, 1, 1);
        float[] Rand(int len) => Enumerable.Range(0, len).Select(_ => (float)(r.NextDouble() * 2 - 1)).ToArray();
        var x = Rand(g.InputLength);
        var w = Rand(g.WeightLength);
        var b = Rand(8);
        var y1 = new float[g.OutputLength];
        var y2 = new float[g.OutputLength];
        ConvGemm.Forward(x, w, b, y1, 1, g);
        ConvReference.Forward(x, w, b, y2, 1, g);
        AssertClose(y2, y1);
    }

    [Theory]
    [InlineData(64, 3, 1)] // K = 576: two 288-deep blocks
    [InlineData(16, 7, 2)] // K = 784 over two groups of 8 channels: 392 per group, two blocks
    public void Deep_kernels_split_into_blocks_match_the_direct_path(int inC, int k, int groups)
    {
        var r = new Random(inC + k);
        var g = new ConvGeometry(inC, 16, 9, 11, k, k, 1, 1, k / 2, k / 2, 1, 1, groups);
        float[] Rand(int len) => Enumerable.Range(0, len).Select(_ => (float)(r.NextDouble() * 2 - 1)).ToArray();
        var x = Rand(2 * g.InputLength);
        var w = Rand(g.WeightLength);
        var dy = Rand(2 * g.OutputLength);
        var y1 = new float[dy.Length];
        var y2 = new float[dy.Length];
        ConvGemm.Forward(x, w, ReadOnlySpan<float>.Empty, y1, 2, g);
        ConvReference.Forward(x, w, ReadOnlySpan<float>.Empty, y2, 2, g);
        AssertClose(y2, y1);
        var dx1 = new float[x.Length];
        var dx2 = new float[x.Length];
        ConvGemm.BackwardInput(dy, w, dx1, 2, g);
        ConvReference.BackwardInput(dy, w, dx2, 2, g);
        AssertClose(dx2, dx1);
        var dw1 = new float[w.Length];
        var dw2 = new float[w.Length];
        ConvGemm.BackwardWeight(dy, x, dw1, Span<float>.Empty, 2, g);
        ConvReference.BackwardWeight(dy, x, dw2, Span<float>.Empty, 2, g);
        AssertClose(dw2, dw1);
    }

    private static void AssertClose(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++) Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-4f * (1 + Math.Abs(expected[i])), $"at {i}: {expected[i]} vs {actual[i]}");
    }
}

/// <summary>The branch-free 2×2 max pooling equals the window walk: first maximum wins on ties, the last NaN wins (as PyTorch), indices match.</summary>
public sealed class MaxPool2x2Tests
{
    [Theory]
    [InlineData(6, 6)]
    [InlineData(28, 28)]
    [InlineData(30, 31)]
    [InlineData(17, 40)]
    [InlineData(14, 14)] // rows of 7 outputs: the 4-wide path
    [InlineData(9, 8)]   // rows of 4
    [InlineData(12, 11)] // rows of 5
    public void Vector_path_matches_a_naive_reference(int h, int w)
    {
        var r = new Random(h * 100 + w);
        int n = 3, c = 2;
        var g = new PoolGeometry(c, h, w, 2, 2, 2, 2, 0, 0, 1, 1, false);
        // Small integers make ties common; a few NaNs check propagation.
        var x = Enumerable.Range(0, n * c * h * w).Select(_ => r.Next(20) == 0 ? float.NaN : r.Next(4)).ToArray();
        var y = new float[n * g.OutputLength];
        var indices = new int[y.Length];
        Pooling.MaxForward(x, y, indices, n, g);
        float[] scale = [0.5f, -2f], shift = [1f, 0.25f];
        var fused = new float[y.Length];
        Pooling.MaxForward(x, fused, n, g, scale, shift); // inference, batch norm applied as it writes
        for (int i = 0; i < y.Length; i++)
        {
            int channel = i / (g.OutH * g.OutW) % c;
            Assert.Equal(y[i] * scale[channel] + shift[channel], fused[i]);
        }

        for (int p = 0; p < n * c; p++)
        {
            for (int oh = 0; oh < g.OutH; oh++)
            {
                for (int ow = 0; ow < g.OutW; ow++)
                {
                    int best = 2 * oh * w + 2 * ow;
                    float max = x[p * h * w + best];
                    foreach (int candidate in new[] { best + 1, best + w, best + w + 1 })
                    {
                        float v = x[p * h * w + candidate];
                        if (v > max || float.IsNaN(v)) // PyTorch: a later NaN replaces an earlier one
                        {
                            max = v;
                            best = candidate;
                        }
                    }

                    int o = p * g.OutH * g.OutW + oh * g.OutW + ow;
                    Assert.Equal(max, y[o]);
                    Assert.Equal(best, indices[o]);
                }
            }
        }
    }
}

/// <summary>The GEMM's micro-kernels against each other: the 512-bit ones give the 256-bit ones' bits, the edge rows the whole kernel's.</summary>
public sealed class GemmMicroKernelTests
{
    // The micro-kernels on 512-bit registers (one per row of the 6×16 block; two blocks side by side in
    // KernelPair) give the bits of the 256-bit ones: each element of C is the same chain of fused multiply-adds
    // down K. Depths around the unrolling, accumulation, a bias start, ReLU with negative zeros and NaN. On a CPU
    // without AVX-512 the dispatching kernels take the 256-bit path and both sides agree trivially.
    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(16)]
    [InlineData(255)]
    public unsafe void WideKernelsGiveTheNarrowKernelsBits(int kc)
    {
        const int ldc = 40;
        var a = TestUtil.Random(kc * Gemm.MR, 1);
        var b = TestUtil.Random(kc * 2 * Gemm.NR, 2);
        var c0 = TestUtil.Random(Gemm.MR * ldc, 3);
        c0[5] = float.NaN;
        c0[ldc + 2] = -0f;
        var bias = TestUtil.Random(Gemm.MR, 4);
        var offsets = Enumerable.Range(0, kc).Select(p => (p * 37) % (kc * Gemm.NR)).ToArray();
        var rows = new[] { 0, 3, 11, 20, 5, 17 };
        var image = TestUtil.Random(kc * Gemm.NR + 2 * Gemm.NR + 40, 5);
        image[7] = float.NaN;
        foreach (bool accumulate in new[] { false, true })
        {
            var wide = (float[])c0.Clone();
            var narrow = (float[])c0.Clone();
            fixed (float* pa = a, pb = b, pw = wide, pn = narrow, pbias = bias, pimage = image)
            fixed (int* po = offsets, pr = rows)
            {
                Gemm.Kernel(kc, pa, pb, pw, ldc, accumulate);
                Gemm.KernelNarrow(kc, pa, pb, pn, ldc, accumulate);
                Assert.Equal(narrow, wide);

                Gemm.KernelPair(kc, pa, pb, pb + kc * Gemm.NR, pw, ldc, accumulate);
                Gemm.KernelNarrow(kc, pa, pb, pn, ldc, accumulate);
                Gemm.KernelNarrow(kc, pa, pb + kc * Gemm.NR, pn + Gemm.NR, ldc, accumulate);
                Assert.Equal(narrow, wide);

                foreach (bool relu in new[] { false, true })
                {
                    Gemm.KernelOffsets(kc, pa, pimage, po, pw, ldc, accumulate, accumulate ? null : pbias, relu);
                    Gemm.KernelOffsetsNarrow(kc, pa, pimage, po, pn, ldc, accumulate, accumulate ? null : pbias, relu);
                    Assert.Equal(narrow, wide);

                    // The pair: two adjacent 16-column tiles reading one 32-float row at each offset.
                    Gemm.KernelOffsetsPair(kc, pa, pimage, po, pw, ldc, accumulate, accumulate ? null : pbias, relu);
                    Gemm.KernelOffsetsNarrow(kc, pa, pimage, po, pn, ldc, accumulate, accumulate ? null : pbias, relu);
                    Gemm.KernelOffsetsNarrow(kc, pa, pimage + Gemm.NR, po, pn + Gemm.NR, ldc, accumulate, accumulate ? null : pbias, relu);
                    Assert.Equal(narrow, wide);
                }

                Gemm.KernelRows(Math.Min(kc, 19), pimage, pr, pb, pw, ldc, accumulate);
                Gemm.KernelRowsNarrow(Math.Min(kc, 19), pimage, pr, pb, pn, ldc, accumulate);
                Assert.Equal(narrow, wide);

                // The pair: the same six rows against two B panels.
                Gemm.KernelRowsPair(Math.Min(kc, 19), pimage, pr, pb, pb + kc * Gemm.NR, pw, ldc, accumulate);
                Gemm.KernelRowsNarrow(Math.Min(kc, 19), pimage, pr, pb, pn, ldc, accumulate);
                Gemm.KernelRowsNarrow(Math.Min(kc, 19), pimage, pr, pb + kc * Gemm.NR, pn + Gemm.NR, ldc, accumulate);
                Assert.Equal(narrow, wide);
            }

            Assert.NotEqual(c0, wide);
        }
    }

    // The edge-row kernel (the 1 to 5 rows of A past its last whole 6-row panel, against 4, 2 and 1 B panels at a
    // time) gives each element the bits of the 6×16 kernel computed whole and copied out, which is what it
    // replaces, and writes nothing outside its rows and whole panels. Needs AVX-512 (it is only called with it).
    [Theory]
    [InlineData(1)]
    [InlineData(9)]
    [InlineData(196)]
    public unsafe void EdgeRowsGiveTheWholeKernelsBits(int kc)
    {
        if (!System.Runtime.Intrinsics.X86.Avx512F.IsSupported) return;
        foreach (int panels in new[] { 1, 2, 3, 4, 5, 7 })
        {
            int ldc = panels * Gemm.NR + 5;
            var b = TestUtil.Random(kc * panels * Gemm.NR, 2);
            for (int rows = 1; rows < Gemm.MR; rows++)
            {
                var a = PackedRows(kc, rows, 10 + rows);
                var c0 = StartingC(Gemm.MR * ldc, ldc);
                foreach (bool accumulate in new[] { false, true })
                {
                    var expected = (float[])c0.Clone();
                    var actual = (float[])c0.Clone();
                    var block = new float[Gemm.MR * Gemm.NR];
                    fixed (float* pa = a, pb = b, pe = expected, pc = actual, pt = block)
                    {
                        for (int j = 0; j < panels; j++)
                        {
                            Gemm.KernelNarrow(kc, pa, pb + (long)j * kc * Gemm.NR, pt, Gemm.NR, accumulate: false);
                            for (int i = 0; i < rows; i++)
                            {
                                for (int col = 0; col < Gemm.NR; col++)
                                {
                                    int at = i * ldc + j * Gemm.NR + col;
                                    pe[at] = accumulate ? pe[at] + pt[i * Gemm.NR + col] : pt[i * Gemm.NR + col];
                                }
                            }
                        }

                        Gemm.EdgeRowsWide(kc, pa, rows, pb, panels, pc, ldc, accumulate);
                    }

                    Assert.True(expected.AsSpan().SequenceEqual(actual), $"kc {kc}, {rows} rows, {panels} panels, accumulate {accumulate}");
                }
            }
        }
    }

    // Seven or eight rows (a small inference batch), and the last 7 or 8 rows of a taller block with 1 or 2 rows past
    // its last whole panel (32 samples: 24 + 8), run in one pass over B (KernelTallWide, three panels at a time, then
    // the last one or two, then a partial panel by tiles): each element gets the bits of the 6×16 kernel run on each
    // 6-row panel whole and copied out, and nothing outside the m × nc block of C is written. Needs AVX-512.
    [Theory]
    [InlineData(1)]
    [InlineData(9)]
    [InlineData(262)]
    public unsafe void SevenAndEightRowsGiveTheWholeKernelsBits(int kc)
    {
        if (!System.Runtime.Intrinsics.X86.Avx512F.IsSupported) return;
        foreach (int m in new[] { 7, 8, 13, 14, 20, 32 })
        {
            foreach (int nc in new[] { 16, 32, 48, 64, 80, 96, 100, 131 })
            {
                int panels = (nc + Gemm.NR - 1) / Gemm.NR, ldc = nc + 5, aPanels = (m + Gemm.MR - 1) / Gemm.MR;
                var b = TestUtil.Random(kc * panels * Gemm.NR, 2);
                var a = PackedRows(kc, m, 10 + m);
                var c0 = StartingC((m + 1) * ldc, ldc);
                foreach (bool accumulate in new[] { false, true })
                {
                    var expected = (float[])c0.Clone();
                    var actual = (float[])c0.Clone();
                    var block = new float[Gemm.MR * Gemm.NR];
                    var edge = new float[Gemm.MR * Gemm.NR];
                    fixed (float* pa = a, pb = b, pe = expected, pc = actual, pt = block, pedge = edge)
                    {
                        for (int ir = 0; ir < m; ir += Gemm.MR)
                        {
                            for (int j = 0; j < panels; j++)
                            {
                                Gemm.KernelNarrow(kc, pa + (long)ir * kc, pb + (long)j * kc * Gemm.NR, pt, Gemm.NR, accumulate: false);
                                for (int i = ir; i < Math.Min(m, ir + Gemm.MR); i++)
                                {
                                    for (int col = 0; col < Math.Min(Gemm.NR, nc - j * Gemm.NR); col++)
                                    {
                                        int at = i * ldc + j * Gemm.NR + col;
                                        float t = pt[(i - ir) * Gemm.NR + col];
                                        pe[at] = accumulate ? pe[at] + t : t;
                                    }
                                }
                            }
                        }

                        Gemm.PanelProduct(kc, pa, m, pb, nc, pc, ldc, accumulate, pedge);
                    }

                    Assert.True(expected.AsSpan().SequenceEqual(actual), $"kc {kc}, {m} rows, {nc} columns, accumulate {accumulate}");
                }
            }
        }
    }

    // The offsets edge-row kernel (a convolution's output channels past the last whole 6-row panel, against one or
    // two 16-column tiles read in place through row offsets) gives each element the bits TileOffsets gives it, with
    // and without accumulating, a bias and the ReLU (NaN and negative values in C), and writes nothing outside its
    // rows and tiles. Needs AVX-512 (it is only called with it).
    [Theory]
    [InlineData(1)]
    [InlineData(9)]
    [InlineData(144)]
    public unsafe void EdgeRowsOffsetsGiveTileOffsetsBits(int kc)
    {
        if (!System.Runtime.Intrinsics.X86.Avx512F.IsSupported) return;
        int width = 80, ldc = 2 * Gemm.NR + 3;
        var b = TestUtil.Random(kc + 3 * width, 2);
        var offsets = new int[kc];
        var rng = new Random(5);
        for (int p = 0; p < kc; p++) offsets[p] = rng.Next(0, 3 * width - 2 * Gemm.NR);
        var bias = TestUtil.Random(Gemm.MR, 6);
        for (int rows = 1; rows < Gemm.MR; rows++)
        {
            var a = PackedRows(kc, rows, 10 + rows);
            var c0 = StartingC(Gemm.MR * ldc, ldc);
            foreach (int tiles in new[] { 1, 2 })
            {
                foreach (var (accumulate, withBias, relu) in new[] { (false, false, false), (true, false, false), (false, true, false), (false, true, true), (true, false, true), (false, false, true) })
                {
                    var expected = (float[])c0.Clone();
                    var actual = (float[])c0.Clone();
                    var edge = new float[Gemm.MR * Gemm.NR];
                    fixed (float* pa = a, pb = b, po = bias, pe = expected, pc = actual, pedge = edge)
                    fixed (int* poff = offsets)
                    {
                        for (int j = 0; j < tiles; j++)
                        {
                            Gemm.TileOffsets(kc, pa, pb + j * Gemm.NR, poff, pe + j * Gemm.NR, ldc, rows, Gemm.NR, accumulate, pedge, withBias ? po : null, relu);
                        }

                        Gemm.EdgeRowsOffsetsWide(kc, pa, rows, pb, poff, pc, ldc, tiles, accumulate, withBias ? po : null, relu);
                    }

                    Assert.True(expected.AsSpan().SequenceEqual(actual), $"kc {kc}, {rows} rows, {tiles} tiles, accumulate {accumulate}, bias {withBias}, relu {relu}");
                }
            }
        }
    }

    // An A operand of `rows` rows packed in 6-row panels kc deep (panel i at i·kc·6, p-major), the rows past `rows`
    // zero, as PackA leaves the last panel.
    private static float[] PackedRows(int kc, int rows, int seed)
    {
        int panels = (rows + Gemm.MR - 1) / Gemm.MR;
        var a = TestUtil.Random(kc * panels * Gemm.MR, seed);
        for (int p = 0; p < kc; p++)
        {
            for (int i = rows; i < panels * Gemm.MR; i++) a[(i / Gemm.MR) * kc * Gemm.MR + p * Gemm.MR + i % Gemm.MR] = 0f;
        }

        return a;
    }

    // C before a product: random, with a NaN and a −0 among the elements a kernel adds to.
    private static float[] StartingC(int length, int ldc)
    {
        var c = TestUtil.Random(length, 3);
        c[3] = float.NaN;
        c[ldc + 1] = -0f;
        return c;
    }
}
