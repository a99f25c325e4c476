// Pooling: PyTorch's output-size rule (ceil_mode), hand-computed max/avg windows and divisors, and finite-difference gradients.
namespace Dsl.Runtime.Tests;

public class PoolingTests
{
    private static PoolGeometry Square(int channels, int size, int k, int stride, int pad = 0, bool ceil = false, int dilation = 1) =>
        new(channels, size, size, k, k, stride, stride, pad, pad, dilation, dilation, ceil);

    // x[i, j] = 4i + j + 1 on a 4x4 plane.
    private static readonly float[] OneToSixteen = Enumerable.Range(1, 16).Select(v => (float)v).ToArray();

    [Theory]
    // size, k, stride, pad, ceil, expected
    [InlineData(4, 2, 2, 0, false, 2)]
    [InlineData(5, 2, 2, 0, false, 2)]
    [InlineData(5, 2, 2, 0, true, 3)]
    [InlineData(4, 3, 2, 1, false, 2)]
    [InlineData(4, 3, 2, 1, true, 3)]
    // ceil would give 4, but the 4th window would start at 5 = size + pad, inside the right padding: PyTorch drops it.
    [InlineData(5, 2, 2, 1, true, 3)]
    [InlineData(9, 3, 2, 0, false, 4)]
    public void OutputSizeFollowsPyTorch(int size, int k, int stride, int pad, bool ceil, int expected)
    {
        var g = Square(2, size, k, stride, pad, ceil);
        Assert.Equal(expected, g.OutH);
        Assert.Equal(expected, g.OutW);
        Assert.Equal(2 * size * size, g.InputLength);
        Assert.Equal(2 * expected * expected, g.OutputLength);
    }

    [Fact]
    public void GeometryRejectsPaddingLargerThanHalfTheKernel()
    {
        Assert.Throws<ArgumentException>(() => Square(1, 6, 2, 2, pad: 2));
        Assert.Throws<ArgumentException>(() => Square(1, 1, 3, 1));
    }

    [Fact]
    public void MaxPoolWithPaddingAndCeilMode()
    {
        var g = Square(1, 4, 3, 2, pad: 1, ceil: true);
        var y = new float[9];
        var indices = new int[9];
        Pooling.MaxForward(OneToSixteen, y, indices, 1, g);
        // Windows start at rows/cols -1, 1, 3; the maximum is always the bottom-right real element of the window.
        Assert.Equal([6f, 8, 8, 14, 16, 16, 14, 16, 16], y);
        Assert.Equal([5, 7, 7, 13, 15, 15, 13, 15, 15], indices);

        var inference = new float[9];
        Pooling.MaxForward(OneToSixteen, inference, 1, g);
        Assert.Equal(y, inference);

        // Gradients of overlapping windows add up at their shared arg-max.
        var dy = Enumerable.Range(1, 9).Select(v => (float)v).ToArray();
        var dx = Enumerable.Repeat(float.NaN, 16).ToArray();
        Pooling.MaxBackward(dy, indices, dx, 1, g);
        var expected = new float[16];
        expected[5] = 1;
        expected[7] = 2 + 3;
        expected[13] = 4 + 7;
        expected[15] = 5 + 6 + 8 + 9;
        Assert.Equal(expected, dx);
    }

    [Fact]
    public void MaxPoolTiesKeepFirstAndNegativeValuesBeatPadding()
    {
        var g = Square(1, 2, 2, 2, pad: 1);
        float[] x = [-5, -5, -5, -5];
        var y = new float[4];
        var indices = new int[4];
        Pooling.MaxForward(x, y, indices, 1, g);
        Assert.Equal([-5f, -5, -5, -5], y);
        Assert.Equal([0, 1, 2, 3], indices);

        var g2 = Square(1, 2, 2, 1);
        Pooling.MaxForward([3f, 3, 3, 3], y.AsSpan(0, 1), indices.AsSpan(0, 1), 1, g2);
        Assert.Equal(0, indices[0]);
    }

    [Fact]
    public void MaxPoolWithDilation()
    {
        // 2x2 window, dilation 2 on 4x4: taps (i, j), (i, j+2), (i+2, j), (i+2, j+2).
        var g = Square(1, 4, 2, 1, dilation: 2);
        Assert.Equal(2, g.OutH);
        float[] x = [9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        var y = new float[4];
        var indices = new int[4];
        Pooling.MaxForward(x, y, indices, 1, g);
        Assert.Equal([9f, 0, 0, 1], y);
        Assert.Equal([0, 1, 4, 15], indices);
    }

    [Fact]
    public void AvgPoolDivisorsForPaddedCeilModeWindows()
    {
        // AvgPool2d(3, stride 2, padding 1, ceil_mode true) on 4x4. PyTorch's CPU kernel, per window:
        //   hstart = oh*2 - 1; hend = min(hstart + 3, H + 1); pool_size = (hend - hstart)*(wend - wstart);
        //   then clip start/end to [0, 4); divisor = pool_size (count_include_pad) or the clipped area.
        // Row windows: [-1, 2) -> real rows 0..1, padded extent 3;  [1, 4) -> rows 1..3, extent 3;
        //              [3, 5) (clipped from [3, 6) at H + pad = 5) -> row 3, extent 2.
        var g = Square(1, 4, 3, 2, pad: 1, ceil: true);
        float[] sums = [14, 30, 12, 57, 99, 36, 27, 45, 16];
        float[] includePadDivisors = [9, 9, 6, 9, 9, 6, 6, 6, 4];
        float[] realCounts = [4, 6, 2, 6, 9, 3, 2, 3, 1];

        var y = new float[9];
        Pooling.AvgForward(OneToSixteen, y, 1, g, countIncludePad: true);
        Assert.Equal(sums.Zip(includePadDivisors, (s, d) => s / d).ToArray(), y);

        Pooling.AvgForward(OneToSixteen, y, 1, g, countIncludePad: false);
        Assert.Equal(sums.Zip(realCounts, (s, d) => s / d).ToArray(), y);

        // Backward: every input element receives dy/divisor from each window covering it.
        var dx = Enumerable.Repeat(float.NaN, 16).ToArray();
        Pooling.AvgBackward(Enumerable.Repeat(1f, 9).ToArray(), dx, 1, g, countIncludePad: true);
        // Element (3, 3) lies in windows (1,1) /9, (1,2) /6, (2,1) /6, (2,2) /4.
        Assert.Equal(1f / 9 + 1f / 6 + 1f / 6 + 1f / 4, dx[15], 6);
        // Element (0, 0) lies only in window (0, 0).
        Assert.Equal(1f / 9, dx[0], 6);
    }

    [Fact]
    public void AvgPoolMatchesIndependentFormulaOnManyGeometries()
    {
        foreach (int size in new[] { 4, 5, 7 })
        foreach (int k in new[] { 2, 3 })
        foreach (int stride in new[] { 1, 2, 3 })
        foreach (int pad in new[] { 0, 1 })
        foreach (bool ceil in new[] { false, true })
        foreach (bool includePad in new[] { false, true })
        {
            if (pad > k / 2) continue;
            var g = Square(2, size, k, stride, pad, ceil);
            var x = TestUtil.Random(2 * g.InputLength, size * 100 + k * 10 + stride);
            var y = new float[2 * g.OutputLength];
            Pooling.AvgForward(x, y, 2, g, includePad);
            TestUtil.AssertClose(ReferenceAvg(x, 2, g, includePad), y, 1e-6, 1e-6, $"size {size} k {k} s {stride} p {pad} ceil {ceil} include {includePad}");
        }
    }

    // The reference counts the window elements one by one instead of using min/max arithmetic.
    private static double[] ReferenceAvg(float[] x, int n, PoolGeometry g, bool includePad)
    {
        var y = new double[n * g.OutputLength];
        for (int p = 0; p < n * g.Channels; p++)
        for (int oh = 0; oh < g.OutH; oh++)
        for (int ow = 0; ow < g.OutW; ow++)
        {
            double sum = 0;
            int inPadded = 0, real = 0;
            for (int kh = 0; kh < g.KernelH; kh++)
            for (int kw = 0; kw < g.KernelW; kw++)
            {
                int ih = oh * g.StrideH - g.PadH + kh, iw = ow * g.StrideW - g.PadW + kw;
                // Count taps inside the padded input [-pad, size + pad); taps beyond it (ceil mode overhang) never count.
                if (ih < g.InH + g.PadH && iw < g.InW + g.PadW) inPadded++;
                if (ih < 0 || iw < 0 || ih >= g.InH || iw >= g.InW) continue;
                real++;
                sum += x[(p * g.InH + ih) * g.InW + iw];
            }
            y[(p * g.OutH + oh) * g.OutW + ow] = sum / (includePad ? inPadded : real);
        }
        return y;
    }

    [Fact]
    public void AvgPoolRejectsDilation()
    {
        var g = Square(1, 5, 2, 1, dilation: 2);
        Assert.Throws<ArgumentException>(() => Pooling.AvgForward(new float[25], new float[g.OutputLength], 1, g, true));
    }

    [Fact]
    public void GlobalAverage()
    {
        float[] x = [1, 2, 3, 4, 10, 20, 30, 40];
        var y = new float[2];
        Pooling.GlobalAvgForward(x, y, 1, 2, 4);
        Assert.Equal([2.5f, 25f], y);
        var dx = new float[8];
        Pooling.GlobalAvgBackward([4f, 8f], dx, 1, 2, 4);
        Assert.Equal([1f, 1, 1, 1, 2, 2, 2, 2], dx);
    }

    // Central differences, ε = 1e-2, tolerance 1e-3 relative. Max pooling uses distinct values 0.1 apart so that a
    // ±ε step never changes the arg-max; all pooling is piecewise linear, so only rounding error remains.
    [Theory]
    [InlineData("max", 5, 3, 2, 1, true)]
    [InlineData("max", 6, 2, 2, 0, false)]
    [InlineData("max", 7, 3, 1, 1, false)]
    [InlineData("avg", 5, 3, 2, 1, true)]
    [InlineData("avg", 4, 3, 2, 1, true)]
    [InlineData("avg", 6, 2, 2, 0, false)]
    [InlineData("avg_exclude_pad", 5, 3, 2, 1, true)]
    [InlineData("global", 5, 1, 1, 0, false)]
    public void GradientsMatchFiniteDifferences(string kind, int size, int k, int stride, int pad, bool ceil)
    {
        const int n = 2, channels = 2;
        var g = Square(channels, size, k, stride, pad, ceil);
        var x = TestUtil.DistinctValues(n * g.InputLength, 5);
        int outLength = kind == "global" ? n * channels : n * g.OutputLength;
        var r = TestUtil.Random(outLength, 6);
        var y = new float[outLength];
        var indices = new int[outLength];
        void Forward()
        {
            switch (kind)
            {
                case "max": Pooling.MaxForward(x, y, indices, n, g); break;
                case "avg": Pooling.AvgForward(x, y, n, g, true); break;
                case "avg_exclude_pad": Pooling.AvgForward(x, y, n, g, false); break;
                case "global": Pooling.GlobalAvgForward(x, y, n, channels, size * size); break;
            }
        }
        double Loss()
        {
            Forward();
            return TestUtil.WeightedSum(y, r);
        }

        Forward();
        var dx = Enumerable.Repeat(float.NaN, x.Length).ToArray();
        switch (kind)
        {
            case "max": Pooling.MaxBackward(r, indices, dx, n, g); break;
            case "avg": Pooling.AvgBackward(r, dx, n, g, true); break;
            case "avg_exclude_pad": Pooling.AvgBackward(r, dx, n, g, false); break;
            case "global": Pooling.GlobalAvgBackward(r, dx, n, channels, size * size); break;
        }
        GradCheck.Check(x, dx, Loss, 1e-3, kind);
    }
}
