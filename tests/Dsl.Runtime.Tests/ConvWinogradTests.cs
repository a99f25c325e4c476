// Winograd's F(2×2, 3×3) convolution against the reference loops of ConvReference.
using System.Runtime.Intrinsics.X86;

namespace Dsl.Runtime.Tests;

public sealed class ConvWinogradTests
{
    public static TheoryData<int, int, int, int, int> Geometries() => new()
    {
        // inC, outC, inH, inW, pad (3×3 kernels)
        { 64, 64, 32, 32, 1 },  // resblock64: rows of 16 tiles, 8 blocks of 2 tile rows
        { 32, 64, 14, 14, 1 },  // Fashion-MNIST's second conv: 7 tiles per row padded to 8, a last block past the image
        { 16, 16, 9, 13, 0 },   // odd output (7×11): the last tile row and column half outside
        { 20, 24, 7, 5, 2 },    // padding 2 (the input gradient's own padding is then 0)
        { 16, 16, 4, 4, 0 },    // a 2×2 output: one tile
        { 17, 23, 11, 6, 1 },   // channel counts that are not multiples of 6 or 8
        { 16, 40, 33, 50, 1 },  // 25 tiles per row: several vectors of tiles, a partial store at the row's end
        { 64, 64, 7, 7, 1 },    // ResNet's last stage: 4 tiles per row, two tile rows per vector, 16 tiles computed (not 32)
        { 16, 16, 10, 8, 0 },   // 8×6: 3 tiles per row, 4 tile rows, one block of half rows, no tile past the bottom
        { 16, 24, 19, 6, 1 },   // 19×6: 10 tile rows in three blocks of four, the last tile row half outside
        { 16, 16, 28, 28, 1 },  // ResNet's first stage: 14 tiles per row in blocks of two rows of 16 (7/8 of them on the output)
        { 16, 16, 20, 20, 1 },  // 10 tiles per row, numbered across row ends and samples (vectors of 16 across panels)
    };

    [Theory]
    [MemberData(nameof(Geometries))]
    public void Forward_and_both_gradients_match_the_reference(int inC, int outC, int inH, int inW, int pad)
    {
        var g = new ConvGeometry(inC, outC, inH, inW, 3, 3, 1, 1, pad, pad, 1, 1, 1);
        Assert.True(ConvWinograd.Suits(g));
        Assert.True(ConvWinograd.SuitsBackwardInput(g));
        const int n = 3;
        var x = TestUtil.Random(n * g.InputLength, 1);
        var w = TestUtil.Random(g.WeightLength, 2);
        var b = TestUtil.Random(outC, 3);
        var dy = TestUtil.Random(n * g.OutputLength, 4);
        var scratch = new float[ConvWinograd.ScratchLength(g)];
        // Values are sums of 9·C products of numbers in [-1, 1]; the transforms' roundings stay near 1e-6 of that.
        double tolerance = 2e-6 * 9 * Math.Max(inC, outC);

        foreach (var bias in new[] { b, [] })
        {
            var expected = new float[n * g.OutputLength];
            ConvReference.Forward(x, w, bias, expected, n, g);
            var actual = new float[expected.Length];
            actual.AsSpan().Fill(float.NaN);
            ConvWinograd.Forward(x, w, bias, actual, n, g, scratch);
            TestUtil.AssertClose(expected, actual, tolerance, 1e-5, "y");

            actual.AsSpan().Fill(float.NaN);
            ConvWinograd.Forward(x, w, bias, actual, n, g, scratch, relu: true);
            for (int i = 0; i < expected.Length; i++) expected[i] = Math.Max(expected[i], 0f);
            TestUtil.AssertClose(expected, actual, tolerance, 1e-5, "relu(y)");
        }

        var dxExpected = new float[x.Length];
        ConvReference.BackwardInput(dy, w, dxExpected, n, g);
        var dx = new float[x.Length];
        dx.AsSpan().Fill(float.NaN); // overwritten, not accumulated
        ConvWinograd.BackwardInput(dy, w, dx, n, g, scratch);
        TestUtil.AssertClose(dxExpected, dx, tolerance, 1e-5, "dx");

        var dw0 = TestUtil.Random(w.Length, 5);
        var db0 = TestUtil.Random(outC, 6);
        var dwExpected = (float[])dw0.Clone();
        var dbExpected = (float[])db0.Clone();
        ConvReference.BackwardWeight(dy, x, dwExpected, dbExpected, n, g);
        var dw = (float[])dw0.Clone();
        var db = (float[])db0.Clone();
        ConvWinograd.WeightGradient(dy, x, dw, db, n, g, scratch); // the Winograd path, whatever SuitsWeightGradient says
        double terms = n * g.OutH * g.OutW; // products summed per weight
        TestUtil.AssertClose(dwExpected, dw, 4e-6 * terms, 1e-5, "dw (accumulated)");
        TestUtil.AssertClose(dbExpected, db, 1e-6 * terms, 1e-5, "db (accumulated)");
        dw = (float[])dw0.Clone();
        db = (float[])db0.Clone();
        ConvWinograd.BackwardWeight(dy, x, dw, db, n, g, scratch); // whichever path the geometry takes
        TestUtil.AssertClose(dwExpected, dw, 4e-6 * terms, 1e-5, "dw (public entry)");
    }

    [Theory]
    [InlineData(2, 1)]
    [InlineData(2, 5)]
    [InlineData(3, 2)]
    [InlineData(2, 3, 7)]
    public void Parallel_passes_equal_serial_bit_for_bit(int threads, int n, int size = 20)
    {
        var g = new ConvGeometry(32, 48, size, size - 2, 3, 3, 1, 1, 1, 1, 1, 1, 1);
        var x = TestUtil.Random(n * g.InputLength, 1);
        var w = TestUtil.Random(g.WeightLength, 2);
        var b = TestUtil.Random(g.OutChannels, 3);
        var dy = TestUtil.Random(n * g.OutputLength, 4);
        var pool = WorkerPool.Shared(threads);
        var scratch = new float[threads * ConvWinograd.ParallelScratchLength(g)];
        var serial = scratch.AsSpan(0, ConvWinograd.ScratchLength(g));

        var y1 = new float[n * g.OutputLength];
        var y2 = new float[y1.Length];
        ConvWinograd.Forward(x, w, b, y1, n, g, serial, relu: true);
        ConvWinograd.Forward(x, w, b, y2, n, g, scratch, pool, relu: true);
        Assert.Equal(y1, y2); // blocks of tiles are independent: one image split across threads computes the same bits

        var dx1 = new float[x.Length];
        var dx2 = new float[x.Length];
        ConvWinograd.BackwardInput(dy, w, dx1, n, g, serial);
        ConvWinograd.BackwardInput(dy, w, dx2, n, g, scratch, pool);
        Assert.Equal(dx1, dx2);

        // The weight gradient sums each thread's items privately, then adds the sums in thread order:
        // another order than one thread's, the same on every run.
        var dw1 = new float[w.Length];
        var db1 = new float[b.Length];
        var dw2 = new float[w.Length];
        var db2 = new float[b.Length];
        var dw3 = new float[w.Length];
        var db3 = new float[b.Length];
        ConvWinograd.WeightGradient(dy, x, dw1, db1, n, g, serial);
        ConvWinograd.WeightGradient(dy, x, dw2, db2, n, g, scratch, pool);
        ConvWinograd.WeightGradient(dy, x, dw3, db3, n, g, scratch, pool);
        double terms = n * g.OutH * g.OutW;
        TestUtil.AssertClose(dw1, dw2, 2e-6 * terms, 1e-5, "dw");
        TestUtil.AssertClose(db1, db2, 1e-6 * terms, 1e-5, "db");
        Assert.Equal(dw2, dw3);
        Assert.Equal(db2, db3);
    }

    [Fact]
    public void A_sample_gives_the_same_bits_whatever_batch_it_is_in()
    {
        var g = new ConvGeometry(16, 16, 12, 12, 3, 3, 1, 1, 1, 1, 1, 1, 1);
        const int n = 4;
        var x = TestUtil.Random(n * g.InputLength, 1);
        var w = TestUtil.Random(g.WeightLength, 2);
        var scratch = new float[ConvWinograd.ScratchLength(g)];
        var batch = new float[n * g.OutputLength];
        ConvWinograd.Forward(x, w, [], batch, n, g, scratch);
        var single = new float[g.OutputLength];
        ConvWinograd.Forward(x.AsSpan(2 * g.InputLength, g.InputLength), w, [], single, 1, g, scratch);
        Assert.Equal(single, batch.AsSpan(2 * g.OutputLength, g.OutputLength).ToArray());
    }

    [Fact]
    public void Geometries_it_does_not_suit_go_to_the_gemm()
    {
        ConvGeometry[] others =
        [
            new(32, 32, 16, 16, 3, 3, 2, 2, 1, 1, 1, 1, 1),  // stride 2
            new(32, 32, 16, 16, 3, 3, 1, 1, 2, 2, 2, 2, 1),  // dilation 2
            new(32, 32, 16, 16, 3, 3, 1, 1, 1, 1, 1, 1, 2),  // groups
            new(15, 32, 16, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1),  // 15 input channels
            new(32, 8, 16, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1),   // 8 output channels
            new(32, 32, 16, 16, 5, 5, 1, 1, 2, 2, 1, 1, 1),  // 5×5
            new(16, 16, 3, 3, 3, 3, 1, 1, 0, 0, 1, 1, 1),    // a 1×1 output
        ];
        foreach (var g in others)
        {
            Assert.False(ConvWinograd.Suits(g));
            const int n = 2;
            var x = TestUtil.Random(n * g.InputLength, 1);
            var w = TestUtil.Random(g.WeightLength, 2);
            var dy = TestUtil.Random(n * g.OutputLength, 3);
            var scratch = new float[ConvWinograd.ParallelScratchLength(g)];
            Assert.Equal(ConvGemm.ParallelScratchLength(g), ConvWinograd.ParallelScratchLength(g));
            var expected = new float[n * g.OutputLength];
            ConvReference.Forward(x, w, [], expected, n, g);
            var actual = new float[expected.Length];
            ConvWinograd.Forward(x, w, [], actual, n, g, scratch, pool: null);
            TestUtil.AssertClose(expected, actual, 1e-4, 1e-4, "y");
            var dxExpected = new float[x.Length];
            ConvReference.BackwardInput(dy, w, dxExpected, n, g);
            var dx = new float[x.Length];
            ConvWinograd.BackwardInput(dy, w, dx, n, g, scratch, pool: null);
            TestUtil.AssertClose(dxExpected, dx, 1e-4, 1e-4, "dx");
            var dwExpected = new float[w.Length];
            ConvReference.BackwardWeight(dy, x, dwExpected, [], n, g);
            var dw = new float[w.Length];
            ConvWinograd.BackwardWeight(dy, x, dw, [], n, g, scratch, pool: null);
            TestUtil.AssertClose(dwExpected, dw, 1e-3, 1e-4, "dw");
        }
    }

    [Fact]
    public void Padding_beyond_the_kernel_keeps_the_forward_pass_and_sends_the_input_gradient_to_the_gemm()
    {
        // Padding 3 > k − 1: the input gradient is no longer a padded convolution of dY.
        var g = new ConvGeometry(16, 16, 6, 6, 3, 3, 1, 1, 3, 3, 1, 1, 1);
        Assert.True(ConvWinograd.Suits(g));
        Assert.False(ConvWinograd.SuitsBackwardInput(g));
        const int n = 2;
        var x = TestUtil.Random(n * g.InputLength, 1);
        var w = TestUtil.Random(g.WeightLength, 2);
        var dy = TestUtil.Random(n * g.OutputLength, 3);
        var scratch = new float[ConvWinograd.ParallelScratchLength(g)];
        var expected = new float[n * g.OutputLength];
        ConvReference.Forward(x, w, [], expected, n, g);
        var actual = new float[expected.Length];
        ConvWinograd.Forward(x, w, [], actual, n, g, scratch);
        TestUtil.AssertClose(expected, actual, 1e-4, 1e-5, "y");
        var dxExpected = new float[x.Length];
        ConvReference.BackwardInput(dy, w, dxExpected, n, g);
        var dx = new float[x.Length];
        ConvWinograd.BackwardInput(dy, w, dx, n, g, scratch);
        TestUtil.AssertClose(dxExpected, dx, 1e-4, 1e-5, "dx");
    }

    [Fact]
    public void Passes_do_not_allocate()
    {
        var g = new ConvGeometry(32, 32, 16, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1);
        const int n = 3;
        var x = TestUtil.Random(n * g.InputLength, 1);
        var w = TestUtil.Random(g.WeightLength, 2);
        var b = TestUtil.Random(g.OutChannels, 3);
        var y = new float[n * g.OutputLength];
        var dx = new float[x.Length];
        var dw = new float[w.Length];
        var db = new float[b.Length];
        var pool = WorkerPool.Shared(2);
        var scratch = new float[2 * ConvWinograd.ParallelScratchLength(g)];
        var transformed = new float[ConvWinograd.TransformedWeightLength(g)];
        var y2 = new float[g.OutputLength];
        void All()
        {
            ConvWinograd.Forward(x, w, b, y, n, g, scratch, pool, relu: true);
            ConvWinograd.BackwardInput(y, w, dx, n, g, scratch, pool);
            ConvWinograd.BackwardWeight(y, x, dw, db, n, g, scratch, pool);
            ConvWinograd.Forward(x, w, b, y, 1, g, scratch, pool); // one image over both threads
            ConvWinograd.BackwardWeight(y, x, dw, db, 1, g, scratch, pool);
            ConvWinograd.WeightGradient(y, x, dw, db, n, g, scratch, pool);
            ConvWinograd.TransformWeights(w, transformed, g);
            ConvWinograd.ForwardTransformed(x, transformed, b, y, n, g, scratch, pool, relu: true);
            ConvWinograd.ForwardTransformed(x, transformed, b, y, 1, g, scratch, pool, FusedActivation.Relu, y2);
        }

        All();
        Assert.Equal(0, TestUtil.BytesAllocatedBy(All));
    }

    [Fact]
    public void The_weight_gradient_stays_on_the_gemm_where_most_tiles_would_be_padding()
    {
        Assert.True(ConvWinograd.SuitsWeightGradient(new ConvGeometry(64, 64, 32, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1)));  // 256 of 256 tiles
        Assert.True(ConvWinograd.SuitsWeightGradient(new ConvGeometry(32, 32, 28, 28, 3, 3, 1, 1, 1, 1, 1, 1, 1)));  // 196 of 224
        Assert.False(ConvWinograd.SuitsWeightGradient(new ConvGeometry(32, 64, 14, 14, 3, 3, 1, 1, 1, 1, 1, 1, 1))); // 49 of 64
        Assert.False(ConvWinograd.SuitsWeightGradient(new ConvGeometry(32, 32, 16, 16, 3, 3, 2, 2, 1, 1, 1, 1, 1))); // not Winograd at all
    }

    // Where a tile row is not a whole number of vectors and the per-image blocks would waste more than 1/8 of the
    // products (7 tiles a row at 14×14, 10 at 20×20, 6 at 12×12 and 7×11), and AVX-512 is there, the forward pass and
    // the input gradient number the tiles across row ends and samples: a block of the products holds rows of several
    // images, and a row's tiles cross the micro-kernel's 16-column panels. The products must compute the tiles that
    // exist rounded up to whole panels per block, not per image row, and each sample must still come out with the
    // bits it has alone, with every epilogue, on one thread and on two. 28×28 (14 of 16 tiles a row used) keeps its blocks.
    [Theory]
    [InlineData(32, 64, 14, 14, 1, 8, 400, 512)] // FmnistBn's second conv, 8 × 49 tiles: 6 blocks of 9 rows (63 tiles in 64 columns), 2 rows (14 in 16)
    [InlineData(16, 16, 20, 20, 1, 3, 320, 480)] // 3 × 100 tiles, 16-tile vectors: 10 blocks of 3 rows (30 in 32)
    [InlineData(16, 24, 12, 12, 1, 5, 192, 320)] // 5 × 36 tiles: 16 rows (96, 6 panels), 14 rows (84 in 96)
    [InlineData(16, 16, 9, 13, 0, 3, 80, 96)]    // 7×11 output, 3 × 24 tiles (the last row and column half outside): one block of 12 rows (72 in 80)
    [InlineData(16, 16, 28, 28, 1, 3, 672, 672)] // ResNet's first stage, 3 × 196 tiles: blocks of two rows of 16 per image
    [InlineData(16, 16, 40, 40, 1, 2, 864, 960)] // rows of 20 tiles, a vector of 16 then one of 8: 2 × 400 tiles, 13 blocks of 3 rows (60 in 64), 1 row (20 in 32)
    [InlineData(16, 16, 6, 130, 1, 2, 480, 576)] // rows of 65 tiles (5 vectors), one row a block: 6 × 65 tiles in 80 columns each
    public void Tiles_across_row_ends_and_samples_compute_no_padding_tiles_and_the_bits_each_sample_has_alone(
        int inC, int outC, int inH, int inW, int pad, int n, long computed, long perImage)
    {
        var g = new ConvGeometry(inC, outC, inH, inW, 3, 3, 1, 1, pad, pad, 1, 1, 1);
        long tiles = (long)n * ((g.OutH + 1) / 2) * ((g.OutW + 1) / 2);
        Assert.Equal(Avx512F.VL.IsSupported ? computed : perImage, ConvWinograd.ForwardTiles(g, n));
        Assert.InRange(ConvWinograd.ForwardTiles(g, n), tiles, perImage);
        var x = TestUtil.Random(n * g.InputLength, 1);
        var w = TestUtil.Random(g.WeightLength, 2);
        var b = TestUtil.Random(outC, 3);
        var residual = TestUtil.Random(n * g.OutputLength, 4);
        var dy = TestUtil.Random(n * g.OutputLength, 5);
        int pooled = outC * (g.OutH / 2) * (g.OutW / 2);
        foreach (int threads in new[] { 1, 2 })
        {
            var pool = WorkerPool.Shared(threads);
            var scratch = new float[threads * ConvWinograd.ParallelScratchLength(g)];

            // Samples [first, first + count) through a pass, outputs of `length` floats per sample.
            void Alone(string what, int length, Action<int, int, float[]> pass)
            {
                var batch = new float[n * length];
                batch.AsSpan().Fill(float.NaN);
                pass(0, n, batch);
                for (int s = 0; s < n; s++)
                {
                    var single = new float[length];
                    single.AsSpan().Fill(float.NaN);
                    pass(s, 1, single);
                    Assert.True(single.AsSpan().SequenceEqual(batch.AsSpan(s * length, length)), $"{what}, sample {s} of {n}, {threads} thread(s)");
                }
            }

            Alone("relu", g.OutputLength, (first, count, y) =>
                ConvWinograd.Forward(x.AsSpan(first * g.InputLength, count * g.InputLength), w, b, y, count, g, scratch, pool, relu: true));
            Alone("max pooling", pooled, (first, count, y) =>
                ConvWinograd.Forward(x.AsSpan(first * g.InputLength, count * g.InputLength), w, b, y, count, g, scratch, pool, relu: true, maxPool: true));
            Alone("residual", g.OutputLength, (first, count, y) =>
                ConvWinograd.Forward(x.AsSpan(first * g.InputLength, count * g.InputLength), w, b, y, count, g, scratch, pool, FusedActivation.Relu,
                    residual.AsSpan(first * g.OutputLength, count * g.OutputLength)));
            Alone("input gradient", g.InputLength, (first, count, dx) =>
                ConvWinograd.BackwardInput(dy.AsSpan(first * g.OutputLength, count * g.OutputLength), w, dx, count, g, scratch, pool));

            // The residual epilogue on the rows of each sample in a block: relu(conv + bias + residual), the same bits as adding after.
            var plain = new float[n * g.OutputLength];
            ConvWinograd.Forward(x, w, b, plain, n, g, scratch, pool);
            var fused = new float[plain.Length];
            ConvWinograd.Forward(x, w, b, fused, n, g, scratch, pool, FusedActivation.Relu, residual);
            for (int i = 0; i < plain.Length; i++) plain[i] = Math.Max(plain[i] + residual[i], 0f);
            Assert.Equal(plain, fused);
        }
    }

    // FmnistBn's second convolution at batch 1 (32 → 64 at 14×14, 3.6M multiply-adds, its max pooling fused): one
    // image that splits across two threads by blocks of tile rows since the single-sample threshold is 2^21. Each
    // thread's block must come out as on one thread, pooled, with the ReLU.
    [Fact]
    public void One_image_of_FmnistBn_size_splits_by_blocks_with_its_max_pooling_and_the_same_bits()
    {
        var g = new ConvGeometry(32, 64, 14, 14, 3, 3, 1, 1, 1, 1, 1, 1, 1);
        long macs = (long)g.OutChannels * g.OutH * g.OutW * g.InChannels * 9;
        Assert.InRange(macs, ConvGemm.SingleSampleThreshold, (1L << 22) - 1); // split now, not before
        var x = TestUtil.Random(g.InputLength, 1);
        var w = TestUtil.Random(g.WeightLength, 2);
        var b = TestUtil.Random(64, 3);
        var pool = WorkerPool.Shared(2);
        var scratch = new float[2 * ConvWinograd.ParallelScratchLength(g)];
        var serial = new float[64 * 7 * 7];
        ConvWinograd.Forward(x, w, b, serial, 1, g, scratch.AsSpan(0, ConvWinograd.ScratchLength(g)), relu: true, maxPool: true);
        var parallel = new float[serial.Length];
        parallel.AsSpan().Fill(float.NaN);
        ConvWinograd.Forward(x, w, b, parallel, 1, g, scratch, pool, relu: true, maxPool: true);
        Assert.Equal(serial, parallel);
    }

    // The fused maxpool(2): every output equals the unfused conv → ReLU → Pooling.MaxForward bit for bit (the same
    // values, max in the same order), serial and across threads, for even and odd outputs (floor pooling drops the
    // last partial windows) and several vectors of tiles; NaN propagates as in Pooling.
    [Theory]
    [InlineData(32, 64, 14, 14, 1)]
    [InlineData(16, 24, 9, 13, 1)]
    [InlineData(16, 16, 36, 40, 1)]
    [InlineData(20, 16, 8, 8, 0)]
    [InlineData(16, 16, 9, 7, 0)]
    [InlineData(16, 32, 13, 9, 1)]
    public void A_fused_max_pooling_equals_pooling_the_output(int inC, int outC, int inH, int inW, int pad)
    {
        var g = new ConvGeometry(inC, outC, inH, inW, 3, 3, 1, 1, pad, pad, 1, 1, 1);
        var pg = new PoolGeometry(outC, g.OutH, g.OutW, 2, 2, 2, 2, 0, 0, 1, 1, false);
        const int n = 3;
        var x = TestUtil.Random(n * g.InputLength, 1);
        x[5] = float.NaN; // one NaN input poisons the outputs it reaches
        var w = TestUtil.Random(g.WeightLength, 2);
        var b = TestUtil.Random(outC, 3);
        var pool = WorkerPool.Shared(2);
        var scratch = new float[2 * ConvWinograd.ParallelScratchLength(g)];
        foreach (bool relu in new[] { false, true })
        {
            var full = new float[n * g.OutputLength];
            ConvWinograd.Forward(x, w, b, full, n, g, scratch, pool: null, relu);
            var expected = new float[n * pg.OutputLength];
            Pooling.MaxForward(full, expected, n, pg);
            var serial = new float[expected.Length];
            serial.AsSpan().Fill(-7f);
            ConvWinograd.Forward(x, w, b, serial, n, g, scratch.AsSpan(0, ConvWinograd.ScratchLength(g)), relu, maxPool: true);
            Assert.Equal(expected, serial);
            var parallel = new float[expected.Length];
            ConvWinograd.Forward(x, w, b, parallel, n, g, scratch, pool, relu, maxPool: true);
            Assert.Equal(expected, parallel);
            Assert.Contains(serial, float.IsNaN);
        }

        var stride2 = new ConvGeometry(inC, outC, inH, inW, 3, 3, 2, 2, pad, pad, 1, 1, 1);
        var error = Assert.Throws<ArgumentException>(() => ConvWinograd.Forward(x, w, b, new float[n * stride2.OutputLength], n, stride2, scratch, pool, relu: false, maxPool: true));
        Assert.Contains("suits Winograd", error.Message, StringComparison.Ordinal);
    }

    // A batch of one image whose output is a single block of tiles (ResNet's 7×7 stage at batch 1) is one item: the pool
    // splits it by output channels, whole panels of U per thread, each thread transforming the input itself. Every
    // output channel must come out as on one thread, with each epilogue, into a slice of a wider output, for channel
    // counts that split evenly, unevenly and into a padded last panel (20 = 6 + 6 + 6 + 2), on 2 and 3 threads, and the
    // input gradient (the same pass on the flipped weights). Each geometry is above the threshold from which one
    // sample's pass splits (ConvGemm.SingleSampleThreshold, 2^21 multiply-adds).
    [Theory]
    [InlineData(160, 64, 7, 7, 2)]   // a 7×7 output: half rows (4 tiles a row), 11 panels: 5 + 6
    [InlineData(160, 64, 7, 7, 3)]
    [InlineData(64, 60, 8, 16, 2)]   // whole rows of 8 tiles, one block of 4 tile rows
    [InlineData(384, 20, 8, 8, 2)]   // 4 panels, the last one 2 channels and 4 of padding
    [InlineData(384, 20, 8, 8, 3)]
    [InlineData(384, 64, 2, 14, 2)]  // one tile row of 7 (a compact plan, tiles across row ends, on one thread): its one block, split
    public void One_image_of_one_block_splits_by_output_channels_with_the_same_bits(int inC, int outC, int inH, int inW, int threads)
    {
        var g = new ConvGeometry(inC, outC, inH, inW, 3, 3, 1, 1, 1, 1, 1, 1, 1);
        Assert.True((long)outC * g.OutH * g.OutW * inC * 9 >= ConvGemm.SingleSampleThreshold, "the geometry must be large enough to split");
        var x = TestUtil.Random(g.InputLength, 1);
        var w = TestUtil.Random(g.WeightLength, 2);
        var b = TestUtil.Random(outC, 3);
        var residual = TestUtil.Random(g.OutputLength, 4);
        var t = new float[ConvWinograd.TransformedWeightLength(g)];
        ConvWinograd.TransformWeights(w, t, g);
        var pool = WorkerPool.Shared(threads);
        var scratch = new float[threads * ConvWinograd.ParallelScratchLength(g)];
        var one = scratch.AsMemory(0, ConvWinograd.ScratchLength(g));
        var serial = new float[g.OutputLength];
        var split = new float[g.OutputLength];
        void Same(string what, Action<float[], bool> run)
        {
            serial.AsSpan().Fill(-3f);
            split.AsSpan().Fill(-3f);
            run(serial, false);
            run(split, true);
            Assert.True(serial.AsSpan().SequenceEqual(split), what);
        }

        Same("bias", (y, p) => ConvWinograd.ForwardTransformed(x, t, b, y, 1, g, p ? scratch : one.Span, p ? pool : null, relu: false, maxPool: false));
        Same("relu", (y, p) => ConvWinograd.ForwardTransformed(x, t, [], y, 1, g, p ? scratch : one.Span, p ? pool : null, relu: true, maxPool: false));
        Same("silu", (y, p) => ConvWinograd.ForwardTransformed(x, t, b, y, 1, g, p ? scratch : one.Span, p ? pool : null, FusedActivation.Silu));
        Same("residual", (y, p) => ConvWinograd.ForwardTransformed(x, t, b, y, 1, g, p ? scratch : one.Span, p ? pool : null, FusedActivation.Relu, residual));
        Same("weights each call", (y, p) => ConvWinograd.Forward(x, w, b, y, 1, g, p ? scratch : one.Span, p ? pool : null, relu: true));
        Assert.Contains(serial, v => v > 0); // a real output, not two equal fills

        // The input gradient is the same pass on the flipped weights (one item too: the input is one block): split by
        // input channels, the same bits.
        var dy = TestUtil.Random(g.OutputLength, 5);
        var dxSerial = new float[g.InputLength];
        var dxSplit = new float[g.InputLength];
        dxSerial.AsSpan().Fill(-3f);
        dxSplit.AsSpan().Fill(-3f);
        ConvWinograd.BackwardInput(dy, w, dxSerial, 1, g, one.Span);
        ConvWinograd.BackwardInput(dy, w, dxSplit, 1, g, scratch, pool);
        Assert.Equal(dxSerial, dxSplit);
        Assert.DoesNotContain(-3f, dxSerial);

        // A slice of a concatenation's output: the floats after the sample left alone.
        var wide = new float[2 * g.OutputLength];
        var wideSplit = new float[wide.Length];
        wide.AsSpan().Fill(5f);
        wideSplit.AsSpan().Fill(5f);
        ConvWinograd.ForwardTransformed(x, t, b, wide, 1, g, one.Span, null, FusedActivation.Relu, residual, 2 * g.OutputLength);
        ConvWinograd.ForwardTransformed(x, t, b, wideSplit, 1, g, scratch, pool, FusedActivation.Relu, residual, 2 * g.OutputLength);
        Assert.Equal(wide, wideSplit);
        Assert.All(wideSplit.AsSpan(g.OutputLength).ToArray(), v => Assert.Equal(5f, v));
    }

    // Inference's cached path: the weights transformed once (TransformWeights, into an unaligned span whose slack is NaN,
    // never read) and ForwardTransformed give the same bits as Forward, which transforms on every call, for every
    // variant generated inference calls, serial and across threads.
    [Theory]
    [InlineData(64, 64, 32, 32, 1, 2)]
    [InlineData(32, 48, 20, 18, 1, 2)]
    [InlineData(32, 64, 14, 14, 1, 1)]
    [InlineData(16, 16, 9, 13, 0, 2)]
    [InlineData(17, 23, 11, 6, 1, 2)]
    [InlineData(16, 16, 4, 4, 0, 1)]
    [InlineData(64, 64, 7, 7, 1, 2)]
    public void Transformed_weights_give_the_same_bits_as_transforming_on_every_call(int inC, int outC, int inH, int inW, int pad, int threads)
    {
        var g = new ConvGeometry(inC, outC, inH, inW, 3, 3, 1, 1, pad, pad, 1, 1, 1);
        const int n = 3;
        var x = TestUtil.Random(n * g.InputLength, 1);
        var w = TestUtil.Random(g.WeightLength, 2);
        var b = TestUtil.Random(outC, 3);
        var residual = TestUtil.Random(n * g.OutputLength, 4);
        int length = ConvWinograd.TransformedWeightLength(g);
        Assert.Equal(Dsl.Contract.PackedLengths.WinogradWeight(inC, outC), length);
        var storage = new float[length + 3];
        storage.AsSpan().Fill(float.NaN);
        var u = storage.AsSpan(3, length); // off a cache line
        ConvWinograd.TransformWeights(w, u, g);
        var pool = WorkerPool.Shared(threads);
        var scratch = new float[threads * ConvWinograd.ParallelScratchLength(g)];
        var serial = scratch.AsSpan(0, ConvWinograd.ScratchLength(g));

        // The matrices themselves equal what Forward leaves at the start of its scratch.
        ConvWinograd.Forward(x, w, b, new float[n * g.OutputLength], n, g, serial);
        int rows = (outC + Gemm.MR - 1) / Gemm.MR * Gemm.MR, stride = length / 16;
        for (int xi = 0; xi < 16; xi++)
            Assert.Equal(serial.Slice(xi * stride, rows * inC).ToArray(), u.Slice(xi * stride, rows * inC).ToArray());

        var uncached = new float[n * g.OutputLength];
        var cached = new float[uncached.Length];
        void Same(string what, Action<float[]> withWeights, Action<float[]> withTransformed)
        {
            uncached.AsSpan().Fill(-3f);
            cached.AsSpan().Fill(-3f);
            withWeights(uncached);
            withTransformed(cached);
            Assert.True(uncached.AsSpan().SequenceEqual(cached), what);
        }

        var t = storage.AsMemory(3, length);
        var one = scratch.AsMemory(0, ConvWinograd.ScratchLength(g));
        Same("serial", y => ConvWinograd.Forward(x, w, b, y, n, g, one.Span), y => ConvWinograd.ForwardTransformed(x, t.Span, b, y, n, g, one.Span));
        Same("serial relu", y => ConvWinograd.Forward(x, w, [], y, n, g, one.Span, relu: true), y => ConvWinograd.ForwardTransformed(x, t.Span, [], y, n, g, one.Span, relu: true));
        Same("serial residual", y => ConvWinograd.Forward(x, w, b, y, n, g, one.Span, FusedActivation.Relu, residual),
            y => ConvWinograd.ForwardTransformed(x, t.Span, b, y, n, g, one.Span, FusedActivation.Relu, residual));
        Same("pool", y => ConvWinograd.Forward(x, w, b, y, n, g, scratch, pool), y => ConvWinograd.ForwardTransformed(x, t.Span, b, y, n, g, scratch, pool));
        Same("pool relu", y => ConvWinograd.Forward(x, w, b, y, n, g, scratch, pool, relu: true), y => ConvWinograd.ForwardTransformed(x, t.Span, b, y, n, g, scratch, pool, relu: true));
        Same("pool silu", y => ConvWinograd.Forward(x, w, b, y, n, g, scratch, pool, FusedActivation.Silu), y => ConvWinograd.ForwardTransformed(x, t.Span, b, y, n, g, scratch, pool, FusedActivation.Silu));
        Same("pool residual", y => ConvWinograd.Forward(x, w, b, y, n, g, scratch, pool, FusedActivation.Relu, residual),
            y => ConvWinograd.ForwardTransformed(x, t.Span, b, y, n, g, scratch, pool, FusedActivation.Relu, residual));
        Same("pool max pooling", y => ConvWinograd.Forward(x, w, b, y, n, g, scratch, pool, relu: true, maxPool: true),
            y => ConvWinograd.ForwardTransformed(x, t.Span, b, y, n, g, scratch, pool, relu: true, maxPool: true));

        // A slice of a concatenation's output: samples 2·OutputLength apart, the floats between them left alone.
        var wide = new float[2 * n * g.OutputLength];
        var wideCached = new float[wide.Length];
        wide.AsSpan().Fill(5f);
        wideCached.AsSpan().Fill(5f);
        ConvWinograd.Forward(x, w, b, wide, n, g, scratch, pool, FusedActivation.Relu, residual: default, outputStride: 2 * g.OutputLength);
        ConvWinograd.ForwardTransformed(x, t.Span, b, wideCached, n, g, scratch, pool, FusedActivation.Relu, residual: default, outputStride: 2 * g.OutputLength);
        Assert.Equal(wide, wideCached);
    }

    [Fact]
    public void Transformed_weights_exist_only_where_Winograd_suits_and_must_be_long_enough()
    {
        Assert.Equal(Gemm.MR, Dsl.Contract.PackedLengths.PanelRows);
        var stride2 = new ConvGeometry(32, 32, 16, 16, 3, 3, 2, 2, 1, 1, 1, 1, 1);
        Assert.Throws<ArgumentException>(() => ConvWinograd.TransformedWeightLength(stride2));
        Assert.Throws<ArgumentException>(() => ConvWinograd.TransformWeights(new float[stride2.WeightLength], new float[1 << 16], stride2));
        Assert.Throws<ArgumentException>(() => ConvWinograd.ForwardTransformed(new float[stride2.InputLength], new float[1 << 16], default, new float[stride2.OutputLength], 1, stride2,
            new float[ConvWinograd.ParallelScratchLength(stride2)], pool: null));

        var g = new ConvGeometry(16, 16, 8, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1);
        var scratch = new float[ConvWinograd.ParallelScratchLength(g)];
        // The weight itself where the transformed weights belong is too short: refused, not read past its end.
        var error = Assert.Throws<ArgumentException>(() => ConvWinograd.ForwardTransformed(new float[g.InputLength], new float[g.WeightLength], default, new float[g.OutputLength], 1, g, scratch, pool: null));
        Assert.Contains("TransformedWeightLength", error.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => ConvWinograd.TransformWeights(new float[g.WeightLength], new float[ConvWinograd.TransformedWeightLength(g) - 1], g));
    }
}
