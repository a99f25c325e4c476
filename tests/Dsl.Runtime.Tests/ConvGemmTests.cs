// ConvGemm, the general convolution: geometry formula, hand-computed values, a double-precision reference, and finite-difference gradients.
namespace Dsl.Runtime.Tests;

public class ConvGemmTests
{
    private static ConvGeometry Geometry(int cin, int cout, int h, int w, int k, int stride = 1, int pad = 0, int dilation = 1, int groups = 1) =>
        new(cin, cout, h, w, k, k, stride, stride, pad, pad, dilation, dilation, groups);

    // x[i, j] = 3i + j + 1 on a 3x3 plane.
    private static readonly float[] OneToNine = [1, 2, 3, 4, 5, 6, 7, 8, 9];

    [Fact]
    public void GeometryUsesPyTorchOutputFormula()
    {
        var g = new ConvGeometry(3, 8, 16, 15, 3, 5, 2, 3, 1, 2, 1, 2, 1);
        // floor((16 + 2 - 2 - 1)/2) + 1 = 8 ; floor((15 + 4 - 2*4 - 1)/3) + 1 = 4
        Assert.Equal(8, g.OutH);
        Assert.Equal(4, g.OutW);
        Assert.Equal(3 * 16 * 15, g.InputLength);
        Assert.Equal(8 * 8 * 4, g.OutputLength);
        Assert.Equal(8 * 3 * 3 * 5, g.WeightLength);

        var grouped = Geometry(4, 6, 5, 5, 3, groups: 2);
        Assert.Equal(6 * 2 * 3 * 3, grouped.WeightLength);
        Assert.Equal(2 * 3 * 3, grouped.FanIn);
    }

    [Fact]
    public void GeometryRejectsInvalidConfigurations()
    {
        Assert.Throws<ArgumentException>(() => Geometry(3, 4, 5, 5, 3, groups: 2)); // 3 not divisible by 2
        Assert.Throws<ArgumentException>(() => Geometry(2, 3, 5, 5, 3, groups: 2)); // 3 not divisible by 2
        Assert.Throws<ArgumentException>(() => Geometry(1, 1, 2, 2, 3));           // kernel larger than input
        Assert.Throws<ArgumentException>(() => Geometry(1, 1, 5, 5, 3, stride: 0));
    }

    [Fact]
    public void PlainConvolutionMatchesHandComputation()
    {
        var g = Geometry(1, 1, 3, 3, 2);
        var y = new float[4];
        ConvGemm.Forward(OneToNine, [1, 1, 1, 1], [], y, 1, g);
        Assert.Equal([12f, 16f, 24f, 28f], y);

        // Bias is added to every output; weights are not flipped (cross-correlation).
        ConvGemm.Forward(OneToNine, [1, 0, 0, 0], [0.5f], y, 1, g);
        Assert.Equal([1.5f, 2.5f, 4.5f, 5.5f], y);
    }

    [Fact]
    public void StrideAndPaddingMatchHandComputation()
    {
        // Windows start at -1 and 1 in both directions; padded taps contribute 0.
        var g = Geometry(1, 1, 3, 3, 2, stride: 2, pad: 1);
        Assert.Equal((2, 2), (g.OutH, g.OutW));
        var y = new float[4];
        ConvGemm.Forward(OneToNine, [1, 1, 1, 1], [], y, 1, g);
        Assert.Equal([1f, 2 + 3f, 4 + 7f, 5 + 6 + 8 + 9f], y);
    }

    [Fact]
    public void DilationMatchesHandComputation()
    {
        // A 2x2 kernel with dilation 2 touches the four corners.
        var g = Geometry(1, 1, 3, 3, 2, dilation: 2);
        Assert.Equal((1, 1), (g.OutH, g.OutW));
        var y = new float[1];
        ConvGemm.Forward(OneToNine, [1, 10, 100, 1000], [], y, 1, g);
        Assert.Equal([1 + 30 + 700 + 9000f], y);
    }

    [Fact]
    public void GroupsOnlySeeTheirOwnChannels()
    {
        // 2 groups: output 0 sees input channel 0 only, output 1 sees channel 1 only.
        var g = Geometry(2, 2, 1, 2, 1, groups: 2);
        float[] x = [1, 2, 10, 20];
        var y = new float[4];
        ConvGemm.Forward(x, [2, 3], [0, 1], y, 1, g);
        Assert.Equal([2f, 4f, 31f, 61f], y);
    }

    [Fact]
    public void OneDimensionalConvolutionIsTheHeightOneCase()
    {
        // conv1d(1, 1, 3, padding: 1) over [1, 2, 3, 4]
        var g = new ConvGeometry(1, 1, 1, 4, 1, 3, 1, 1, 0, 1, 1, 1, 1);
        var y = new float[4];
        ConvGemm.Forward([1, 2, 3, 4], [1, 2, 3], [], y, 1, g);
        Assert.Equal([0 + 2 + 6f, 1 + 4 + 9f, 2 + 6 + 12f, 3 + 8 + 0f], y);
    }

    public static TheoryData<int, int, int, int, int, int, int, int, int> Configurations() => new()
    {
        // cin, cout, h, w, k, stride, pad, dilation, groups
        { 1, 1, 5, 5, 3, 1, 0, 1, 1 },
        { 3, 4, 7, 6, 3, 2, 1, 1, 1 },
        { 4, 6, 9, 8, 3, 1, 2, 2, 2 },
        { 4, 4, 6, 7, 2, 3, 1, 1, 4 },
        { 2, 3, 5, 5, 5, 1, 2, 1, 1 },
        { 6, 4, 8, 8, 3, 2, 1, 2, 2 },
    };

    [Theory]
    [MemberData(nameof(Configurations))]
    public void ForwardMatchesDoublePrecisionReference(int cin, int cout, int h, int w, int k, int stride, int pad, int dilation, int groups)
    {
        var g = Geometry(cin, cout, h, w, k, stride, pad, dilation, groups);
        const int n = 2;
        var x = TestUtil.Random(n * g.InputLength, 1);
        var weight = TestUtil.Random(g.WeightLength, 2);
        var bias = TestUtil.Random(cout, 3);
        var y = new float[n * g.OutputLength];
        ConvGemm.Forward(x, weight, bias, y, n, g);
        TestUtil.AssertClose(Reference(x, weight, bias, n, g), y, 1e-5, 1e-5, "y");

        ConvGemm.Forward(x, weight, [], y, n, g);
        TestUtil.AssertClose(Reference(x, weight, null, n, g), y, 1e-5, 1e-5, "y (no bias)");
    }

    public static TheoryData<int[]> StridedGeometries() => new()
    {
        // cin, cout, h, w, kernel h, kernel w, stride h, stride w, pad h, pad w, dilation, groups
        new[] { 16, 32, 28, 28, 3, 3, 2, 2, 1, 1, 1, 1 },  // ResNet's first downsampling conv (15 × 15 phases, 14 columns of 15 kept)
        new[] { 32, 64, 14, 14, 3, 3, 2, 2, 1, 1, 1, 1 },  // the second (8 × 8 phases)
        new[] { 16, 32, 28, 28, 1, 3, 2, 2, 0, 1, 1, 1 },  // a 1×3 kernel: one row phase of two read, both column phases
        new[] { 8, 4, 9, 9, 3, 1, 2, 2, 1, 0, 1, 1 },      // a 3×1 kernel: one column phase of two read
        new[] { 3, 5, 9, 9, 3, 3, 2, 2, 1, 1, 1, 1 },      // padded 11 × 11: the phases have 6 and 5 rows, the short ones zero-filled
        new[] { 2, 7, 10, 11, 3, 3, 3, 3, 1, 1, 1, 1 },    // stride 3: nine phases
        new[] { 3, 4, 9, 12, 3, 3, 2, 1, 1, 1, 1, 1 },     // stride (2, 1)
        new[] { 3, 4, 12, 9, 3, 2, 1, 2, 1, 0, 1, 1 },     // stride (1, 2), a 3 × 2 kernel
        new[] { 2, 6, 13, 13, 3, 3, 2, 2, 2, 2, 2, 1 },    // dilation 2: taps (0, 2, 4) read phase 0 at shifts 0, 1, 2
        new[] { 4, 6, 11, 10, 3, 3, 2, 2, 1, 1, 1, 2 },    // two groups, each its own phases
        new[] { 2, 3, 34, 33, 3, 3, 2, 2, 1, 1, 1, 1 },    // 17 columns kept of 18
        new[] { 2, 3, 32, 32, 3, 3, 2, 2, 1, 1, 1, 1 },    // 16 output columns: rows of whole tiles, stored straight into y
        new[] { 1, 2, 3, 1100, 3, 3, 2, 2, 1, 1, 1, 1 },   // a long row: the split's whole vectors, then its masked end
    };

    [Fact]
    public void AStridedOneByOneKernelPacksInsteadOfCopyingPhases()
    {
        // ResNet's projection shortcut reads one phase of four: it stays on the packed path, and matches the reference.
        var g = new ConvGeometry(16, 32, 28, 28, 1, 1, 2, 2, 0, 0, 1, 1, 1);
        Assert.False(ImplicitGemm.OnPaddedGrid(g));
        Assert.True(ImplicitGemm.OnPaddedGrid(new ConvGeometry(16, 32, 28, 28, 1, 1, 1, 1, 0, 0, 1, 1, 1)));
        var x = TestUtil.Random(2 * g.InputLength, 21);
        var weight = TestUtil.Random(g.WeightLength, 22);
        var y = new float[2 * g.OutputLength];
        ConvGemm.Forward(x, weight, [], y, 2, g);
        TestUtil.AssertClose(Reference(x, weight, null, 2, g), y, 1e-5, 1e-5, "y");
    }

    // The strided forward on the padded image's phases (ImplicitGemm.OnPaddedGrid), against the double reference,
    // with and without bias, ReLU fused; two samples so the copy of the second overwrites the first's phases.
    [Theory]
    [MemberData(nameof(StridedGeometries))]
    public void StridedForwardOnTheImagePhasesMatchesReference(int[] c)
    {
        var g = new ConvGeometry(c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10], c[10], c[11]);
        int cout = c[1];
        Assert.True(ImplicitGemm.OnPaddedGrid(g));
        const int n = 2;
        var x = TestUtil.Random(n * g.InputLength, 11);
        var weight = TestUtil.Random(g.WeightLength, 12);
        var bias = TestUtil.Random(cout, 13);
        var y = new float[n * g.OutputLength];
        var scratch = new float[ConvGemm.ScratchLength(g)];
        scratch.AsSpan().Fill(float.NaN); // what a kept output reads is written first (unread row phases stay NaN)
        ConvGemm.Forward(x, weight, bias, y, n, g, scratch);
        var reference = Reference(x, weight, bias, n, g);
        TestUtil.AssertClose(reference, y, 1e-5, 1e-5, "y");

        ConvGemm.Forward(x, weight, [], y, n, g, scratch);
        TestUtil.AssertClose(Reference(x, weight, null, n, g), y, 1e-5, 1e-5, "y (no bias)");

        ConvGemm.Forward(x, weight, bias, y, n, g, scratch, relu: true);
        TestUtil.AssertClose(reference.Select(v => Math.Max(v, 0.0)).ToArray(), y, 1e-5, 1e-5, "relu(y)");
    }

    // Finite differences with ε = 1e-2 in float; tolerance 1e-3 relative (the loss is linear in every argument, so only rounding remains).
    [Theory]
    [MemberData(nameof(Configurations))]
    public void GradientsMatchFiniteDifferences(int cin, int cout, int h, int w, int k, int stride, int pad, int dilation, int groups)
    {
        var g = Geometry(cin, cout, h, w, k, stride, pad, dilation, groups);
        const int n = 2;
        var x = TestUtil.Random(n * g.InputLength, 4);
        var weight = TestUtil.Random(g.WeightLength, 5);
        var bias = TestUtil.Random(cout, 6);
        var r = TestUtil.Random(n * g.OutputLength, 7);
        var y = new float[n * g.OutputLength];
        double Loss()
        {
            ConvGemm.Forward(x, weight, bias, y, n, g);
            return TestUtil.WeightedSum(y, r);
        }

        var dx = new float[x.Length];
        dx.AsSpan().Fill(float.NaN); // overwritten, not accumulated
        ConvGemm.BackwardInput(r, weight, dx, n, g);
        var dw = new float[weight.Length];
        var db = new float[bias.Length];
        ConvGemm.BackwardWeight(r, x, dw, db, n, g);

        GradCheck.Check(x, dx, Loss, 1e-3, "dx");
        GradCheck.Check(weight, dw, Loss, 1e-3, "dw");
        GradCheck.Check(bias, db, Loss, 1e-3, "dbias");
    }

    [Fact]
    public void BackwardWeightAccumulates()
    {
        var g = Geometry(2, 3, 5, 5, 3, 1, 1);
        var x = TestUtil.Random(g.InputLength, 8);
        var dy = TestUtil.Random(g.OutputLength, 9);
        var dw = new float[g.WeightLength];
        var db = new float[3];
        ConvGemm.BackwardWeight(dy, x, dw, db, 1, g);
        var dw2 = (float[])dw.Clone();
        var db2 = (float[])db.Clone();
        ConvGemm.BackwardWeight(dy, x, dw2, db2, 1, g);
        TestUtil.AssertClose(dw.Select(v => 2 * v).ToArray(), dw2, 1e-6, 1e-6, "dw");
        TestUtil.AssertClose(db.Select(v => 2 * v).ToArray(), db2, 1e-6, 1e-6, "db");

        // Empty dbias: no bias gradient, weight gradient unaffected.
        var dw3 = new float[g.WeightLength];
        ConvGemm.BackwardWeight(dy, x, dw3, [], 1, g);
        Assert.Equal(dw, dw3);
    }

    /// <summary>Direct definition of PyTorch's convolution, in double.</summary>
    internal static double[] Reference(float[] x, float[] w, float[]? bias, int n, ConvGeometry g)
    {
        var y = new double[n * g.OutputLength];
        int inPg = g.InChannels / g.Groups, outPg = g.OutChannels / g.Groups;
        for (int s = 0; s < n; s++)
        for (int o = 0; o < g.OutChannels; o++)
        for (int oh = 0; oh < g.OutH; oh++)
        for (int ow = 0; ow < g.OutW; ow++)
        {
            double sum = bias?[o] ?? 0;
            int group = o / outPg;
            for (int ci = 0; ci < inPg; ci++)
            for (int kh = 0; kh < g.KernelH; kh++)
            for (int kw = 0; kw < g.KernelW; kw++)
            {
                int ih = oh * g.StrideH - g.PadH + kh * g.DilationH;
                int iw = ow * g.StrideW - g.PadW + kw * g.DilationW;
                if (ih < 0 || ih >= g.InH || iw < 0 || iw >= g.InW) continue;
                int c = group * inPg + ci;
                sum += (double)w[((o * inPg + ci) * g.KernelH + kh) * g.KernelW + kw] * x[((s * g.InChannels + c) * g.InH + ih) * g.InW + iw];
            }
            y[((s * g.OutChannels + o) * g.OutH + oh) * g.OutW + ow] = sum;
        }
        return y;
    }
}
