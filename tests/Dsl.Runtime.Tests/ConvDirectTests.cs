// The direct convolution for few input channels against the reference loops of ConvReference.
namespace Dsl.Runtime.Tests;

public sealed class ConvDirectTests
{
    public static TheoryData<int, int, int, int, int, int, int, int> Geometries() => new()
    {
        // inC, outC, inH, inW, kH, kW, padH, padW
        { 1, 6, 34, 34, 5, 5, 0, 0 },   // the tutorial's conv(1, 6, 5): 4 + 2 single channels
        { 1, 32, 28, 28, 3, 3, 1, 1 },  // Fashion-MNIST's first layer
        { 3, 5, 17, 19, 3, 3, 1, 1 },   // 27 taps, an odd channel count, rows of 19 (a tile moved back)
        { 2, 7, 1, 40, 1, 5, 0, 2 },    // a 1-d convolution
        { 4, 4, 9, 17, 2, 4, 0, 1 },    // 32 taps: kernel rows of 4, 2-row kernels, rows of exactly 16 outputs
        { 1, 9, 6, 33, 1, 1, 0, 0 },    // pointwise
        { 2, 3, 12, 34, 3, 2, 1, 0 },   // rows of 33: a masked weight-gradient tail of one column
    };

    [Theory]
    [MemberData(nameof(Geometries))]
    public void Forward_and_weight_gradient_match_the_reference(int inC, int outC, int inH, int inW, int kH, int kW, int padH, int padW)
    {
        var g = new ConvGeometry(inC, outC, inH, inW, kH, kW, 1, 1, padH, padW, 1, 1, 1);
        Assert.True(ConvDirect.Suits(g));
        const int n = 3;
        var x = TestUtil.Random(n * g.InputLength, 1);
        var w = TestUtil.Random(g.WeightLength, 2);
        var b = TestUtil.Random(outC, 3);
        var dy = TestUtil.Random(n * g.OutputLength, 4);
        var scratch = new float[ConvDirect.ScratchLength(g)];

        foreach (var bias in new[] { b, [] })
        {
            var expected = new float[n * g.OutputLength];
            ConvReference.Forward(x, w, bias, expected, n, g);
            var actual = new float[expected.Length];
            actual.AsSpan().Fill(float.NaN);
            ConvDirect.Forward(x, w, bias, actual, n, g, scratch);
            TestUtil.AssertClose(expected, actual, 1e-5, 1e-5, "y");
        }

        var dw0 = TestUtil.Random(w.Length, 5);
        var db0 = TestUtil.Random(outC, 6);
        var dwExpected = (float[])dw0.Clone();
        var dbExpected = (float[])db0.Clone();
        ConvReference.BackwardWeight(dy, x, dwExpected, dbExpected, n, g);
        var dw = (float[])dw0.Clone();
        var db = (float[])db0.Clone();
        ConvDirect.BackwardWeight(dy, x, dw, db, n, g, scratch);
        double scale = n * g.OutH * g.OutW; // terms summed per weight
        TestUtil.AssertClose(dwExpected, dw, 1e-6 * scale, 1e-5, "dw (accumulated)");
        TestUtil.AssertClose(dbExpected, db, 1e-6 * scale, 1e-5, "db (accumulated)");
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void Parallel_passes_equal_serial(int threads)
    {
        var g = new ConvGeometry(1, 32, 28, 28, 3, 3, 1, 1, 1, 1, 1, 1, 1);
        const int n = 11;
        var x = TestUtil.Random(n * g.InputLength, 1);
        var w = TestUtil.Random(g.WeightLength, 2);
        var b = TestUtil.Random(g.OutChannels, 3);
        var dy = TestUtil.Random(n * g.OutputLength, 4);
        var pool = WorkerPool.Shared(threads);
        Assert.True(ConvDirect.Parallel(pool, n, g), "the passes must be large enough to split");
        var scratch = new float[threads * ConvDirect.ParallelScratchLength(g)];

        var y1 = new float[n * g.OutputLength];
        var y2 = new float[y1.Length];
        ConvDirect.Forward(x, w, b, y1, n, g, scratch.AsSpan(0, ConvDirect.ScratchLength(g)));
        ConvDirect.Forward(x, w, b, y2, n, g, scratch, pool);
        Assert.Equal(y1, y2); // samples are independent: same bits

        var dw1 = new float[w.Length];
        var db1 = new float[b.Length];
        var dw2 = new float[w.Length];
        var db2 = new float[b.Length];
        ConvDirect.BackwardWeight(dy, x, dw1, db1, n, g, scratch.AsSpan(0, ConvDirect.ScratchLength(g)));
        ConvDirect.BackwardWeight(dy, x, dw2, db2, n, g, scratch, pool);
        TestUtil.AssertClose(dw1, dw2, 1e-4, 1e-5, "dw"); // per-thread partial sums add in another order
        TestUtil.AssertClose(db1, db2, 1e-4, 1e-5, "db");
    }

    // The fused maxpool(2) of inference: every output equals the unfused conv → ReLU → Pooling.MaxForward bit for bit
    // (the same tiles, the window's maximum taken in the same order), serial and across threads, for even and odd
    // outputs (floor pooling drops a last odd row or column; an odd row's last tile starts at an even column), channel
    // counts with single channels after the blocks of four, rows of exactly 16, and NaN propagated as in Pooling.
    [Theory]
    [InlineData(1, 32, 28, 28, 3, 1)]  // Fashion-MNIST's first layer, then maxpool(2)
    [InlineData(1, 6, 34, 34, 5, 0)]   // the tutorial's conv(1, 6, 5): 4 + 2 single channels, 30×30
    [InlineData(3, 5, 17, 19, 3, 1)]   // 17×19: a last odd row and column
    [InlineData(2, 4, 9, 16, 1, 0)]    // rows of exactly 16 outputs, 9 rows
    [InlineData(1, 8, 12, 36, 3, 0)]   // rows of 34: two moved-back tiles' worth of overlap
    public void A_fused_max_pooling_equals_pooling_the_output(int inC, int outC, int inH, int inW, int k, int pad)
    {
        var g = new ConvGeometry(inC, outC, inH, inW, k, k, 1, 1, pad, pad, 1, 1, 1);
        Assert.True(ConvDirect.Suits(g));
        var pg = new PoolGeometry(outC, g.OutH, g.OutW, 2, 2, 2, 2, 0, 0, 1, 1, false);
        // Enough samples that the pool splits them (the parallel path's pooled sample stride), at least 3.
        long perSample = (long)g.OutChannels * g.OutH * g.OutW * g.InChannels * g.KernelH * g.KernelW;
        int n = (int)Math.Max(3, (ConvDirect.ParallelThreshold + perSample - 1) / perSample);
        var x = TestUtil.Random(n * g.InputLength, 1);
        x[g.InputLength + 20] = float.NaN; // one NaN input poisons the outputs of the second sample it reaches
        var w = TestUtil.Random(g.WeightLength, 2);
        var b = TestUtil.Random(outC, 3);
        var pool = WorkerPool.Shared(2);
        Assert.True(ConvDirect.Parallel(pool, n, g));
        var scratch = new float[2 * ConvDirect.ParallelScratchLength(g)];
        foreach (bool relu in new[] { false, true })
        {
            var full = new float[n * g.OutputLength];
            ConvDirect.Forward(x, w, b, full, n, g, scratch, pool: null, relu);
            var expected = new float[n * pg.OutputLength];
            Pooling.MaxForward(full, expected, n, pg);
            var serial = new float[expected.Length];
            serial.AsSpan().Fill(-7f);
            ConvDirect.Forward(x, w, b, serial, n, g, scratch, pool: null, relu, maxPool: true);
            Assert.Equal(expected, serial);
            var parallel = new float[expected.Length];
            ConvDirect.Forward(x, w, b, parallel, n, g, scratch, pool, relu, maxPool: true);
            Assert.Equal(expected, parallel);
            Assert.Contains(serial, float.IsNaN);
            Assert.DoesNotContain(serial.AsSpan(0, pg.OutputLength).ToArray(), float.IsNaN); // the first sample's output is clean
        }

        var stride2 = new ConvGeometry(inC, outC, inH, inW, k, k, 2, 2, pad, pad, 1, 1, 1);
        var error = Assert.Throws<ArgumentException>(() => ConvDirect.Forward(x, w, b, new float[n * stride2.OutputLength], n, stride2, scratch, pool, relu: false, maxPool: true));
        Assert.Contains("ConvDirect.Suits", error.Message, StringComparison.Ordinal);
    }

    // With AVX-512 the blocks of four channels run on 512-bit tiles: every output is the same chain (bias, then the taps
    // in order) as on the 256-bit tiles, so the bits match, pooled or not, on rows of 16 to 40 (tiles moved back). On a
    // CPU without AVX-512 both sides take the 256-bit tiles.
    [Theory]
    [MemberData(nameof(Geometries))]
    public void The_512_bit_tiles_give_the_256_bit_tiles_bits(int inC, int outC, int inH, int inW, int kH, int kW, int padH, int padW)
    {
        var g = new ConvGeometry(inC, outC, inH, inW, kH, kW, 1, 1, padH, padW, 1, 1, 1);
        const int n = 2;
        var x = TestUtil.Random(n * g.InputLength, 1);
        var w = TestUtil.Random(g.WeightLength, 2);
        var b = TestUtil.Random(outC, 3);
        var scratch = new float[ConvDirect.ScratchLength(g)];
        foreach (bool maxPool in g.OutH >= 2 ? new[] { false, true } : [false])
        {
            foreach (bool relu in new[] { false, true })
            {
                int length = maxPool ? outC * (g.OutH / 2) * (g.OutW / 2) : g.OutputLength;
                var narrow = new float[n * length];
                var wide = new float[n * length];
                ConvDirect.Forward(x, w, b, narrow, n, g, scratch, relu, maxPool, wide: false);
                ConvDirect.Forward(x, w, b, wide, n, g, scratch, relu, maxPool, wide: true);
                Assert.Equal(narrow, wide);
            }
        }
    }

    [Fact]
    public void Geometries_it_does_not_suit_go_to_the_gemm()
    {
        ConvGeometry[] others =
        [
            new(1, 6, 34, 34, 5, 5, 2, 2, 0, 0, 1, 1, 1),  // stride 2
            new(2, 4, 20, 20, 3, 3, 1, 1, 0, 0, 2, 2, 1),  // dilation 2
            new(4, 4, 20, 20, 3, 3, 1, 1, 1, 1, 1, 1, 2),  // groups
            new(4, 8, 20, 20, 3, 3, 1, 1, 1, 1, 1, 1, 1),  // 36 taps
            new(1, 4, 20, 20, 1, 7, 1, 1, 0, 3, 1, 1, 1),  // kernel rows of 7
            new(1, 4, 10, 10, 3, 3, 1, 1, 1, 1, 1, 1, 1),  // rows of 10 outputs
        ];
        foreach (var g in others)
        {
            Assert.False(ConvDirect.Suits(g));
            const int n = 2;
            var x = TestUtil.Random(n * g.InputLength, 1);
            var w = TestUtil.Random(g.WeightLength, 2);
            var expected = new float[n * g.OutputLength];
            ConvReference.Forward(x, w, [], expected, n, g);
            var actual = new float[expected.Length];
            ConvDirect.Forward(x, w, [], actual, n, g, new float[ConvDirect.ScratchLength(g)]);
            TestUtil.AssertClose(expected, actual, 1e-4, 1e-4, "y");
            Assert.Equal(ConvGemm.ScratchLength(g), ConvDirect.ScratchLength(g));
        }
    }

    [Fact]
    public void Passes_do_not_allocate()
    {
        var g = new ConvGeometry(1, 6, 34, 34, 5, 5, 1, 1, 1, 1, 1, 1, 1);
        const int n = 4;
        var x = TestUtil.Random(n * g.InputLength, 1);
        var w = TestUtil.Random(g.WeightLength, 2);
        var b = TestUtil.Random(g.OutChannels, 3);
        var y = new float[n * g.OutputLength];
        var dw = new float[w.Length];
        var db = new float[b.Length];
        var pool = WorkerPool.Shared(2);
        var scratch = new float[2 * ConvDirect.ParallelScratchLength(g)];
        void Both()
        {
            ConvDirect.Forward(x, w, b, y, n, g, scratch, pool);
            ConvDirect.BackwardWeight(y, x, dw, db, n, g, scratch, pool);
        }

        Both();
        Assert.Equal(0, TestUtil.BytesAllocatedBy(Both));
    }
}
