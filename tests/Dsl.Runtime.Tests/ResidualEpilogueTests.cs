// A graph's residual add fused into the conv or linear that produces one of its inputs: the same bits as the
// layer, then Merges.Add, then the activation (the unfused graph at inference).
namespace Dsl.Runtime.Tests;

public sealed class ResidualEpilogueTests
{
    public static TheoryData<string, int> Convolutions() => new()
    {
        { "Winograd (3×3 stride 1)", 0 },
        { "implicit GEMM on the padded grid (stride 1)", 1 },
        { "implicit GEMM, packed (stride 2)", 2 },
        { "direct (few input channels)", 3 },
        { "implicit GEMM on the padded grid, odd width (rows written through the grid)", 4 },
    };

    private static ConvGeometry Geometry(int kind) => kind switch
    {
        0 => new ConvGeometry(16, 20, 30, 30, 3, 3, 1, 1, 1, 1, 1, 1, 1),
        1 => new ConvGeometry(16, 20, 32, 32, 5, 5, 1, 1, 2, 2, 1, 1, 1), // 8.2M multiply-adds, above the one-sample threshold: batch 1 splits by channels
        2 => new ConvGeometry(16, 20, 40, 40, 3, 3, 2, 2, 1, 1, 1, 1, 1),
        3 => new ConvGeometry(1, 6, 20, 20, 5, 5, 1, 1, 0, 0, 1, 1, 1),
        _ => new ConvGeometry(8, 12, 13, 13, 5, 5, 1, 1, 2, 2, 1, 1, 1),
    };

    // The kernel class generated code calls for the geometry: the algorithm kernel selection would pick.
    private static void Unfused(int kind, float[] x, float[] w, float[] b, float[] y, int n, in ConvGeometry g, float[] scratch, WorkerPool? pool)
    {
        if (kind == 0) ConvWinograd.Forward(x, w, b, y, n, g, scratch, pool);
        else if (kind == 3) ConvDirect.Forward(x, w, b, y, n, g, scratch, pool);
        else ConvGemm.Forward(x, w, b, y, n, g, scratch, pool);
    }

    private static void Fused(int kind, float[] x, float[] w, float[] b, float[] y, int n, in ConvGeometry g, float[] scratch, WorkerPool? pool, FusedActivation activation, float[] residual, bool serial)
    {
        var s = serial ? scratch.AsSpan(0, scratch.Length / (pool?.Threads ?? 1)) : scratch;
        switch (kind, serial)
        {
            case (0, true): ConvWinograd.Forward(x, w, b, y, n, g, s, activation, residual); break;
            case (0, false): ConvWinograd.Forward(x, w, b, y, n, g, s, pool, activation, residual); break;
            case (3, true): ConvDirect.Forward(x, w, b, y, n, g, s, activation, residual); break;
            case (3, false): ConvDirect.Forward(x, w, b, y, n, g, s, pool, activation, residual); break;
            case (_, true): ConvGemm.Forward(x, w, b, y, n, g, s, activation, residual); break;
            default: ConvGemm.Forward(x, w, b, y, n, g, s, pool, activation, residual); break;
        }
    }

    [Theory]
    [MemberData(nameof(Convolutions))]
    public void A_convolution_with_a_residual_equals_the_convolution_then_the_add_then_the_activation(string path, int kind)
    {
        var g = Geometry(kind);
        Assert.Equal(kind == 0, ConvWinograd.Suits(g));
        Assert.Equal(kind == 3, ConvDirect.Suits(g));
        foreach (int threads in new[] { 1, 2 })
        {
            foreach (int n in new[] { 1, 5 })
            {
                foreach (var activation in new[] { FusedActivation.None, FusedActivation.Relu, FusedActivation.Silu })
                {
                    foreach (bool serial in new[] { false, true })
                    {
                        var x = TestUtil.Random(n * g.InputLength, 1);
                        x[3] = float.NaN; // NaN propagates through both
                        var w = TestUtil.Random(g.WeightLength, 2);
                        var b = TestUtil.Random(g.OutChannels, 3);
                        var residual = TestUtil.Random(n * g.OutputLength, 4);
                        var pool = threads == 1 ? null : WorkerPool.Shared(threads);
                        int perThread = Math.Max(ConvWinograd.ParallelScratchLength(g), ConvDirect.ParallelScratchLength(g));
                        var scratch = new float[threads * perThread];
                        var expected = new float[n * g.OutputLength];
                        Unfused(kind, x, w, b, expected, n, g, scratch, pool);
                        Merges.Add(expected, residual, expected);
                        Activations.Apply(activation, expected);
                        var actual = new float[expected.Length];
                        actual.AsSpan().Fill(1e30f); // every element is written
                        Fused(kind, x, w, b, actual, n, g, scratch, pool, activation, residual, serial);
                        Assert.True(expected.AsSpan().SequenceEqual(actual), $"{path}, {threads} thread(s), batch {n}, {activation}, {(serial ? "serial" : "pool")}");
                        Assert.Contains(actual, float.IsNaN);
                        if (activation == FusedActivation.Relu) Assert.Contains(actual, v => v == 0f);
                    }
                }
            }
        }
    }

    // The general entry point of the kernel class generated code calls for the geometry.
    private static void Strided(int kind, float[] x, float[] w, float[] b, Span<float> y, int n, in ConvGeometry g, float[] scratch, WorkerPool? pool, FusedActivation activation, ReadOnlySpan<float> residual, int stride)
    {
        if (kind == 0) ConvWinograd.Forward(x, w, b, y, n, g, scratch, pool, activation, residual, stride);
        else if (kind == 3) ConvDirect.Forward(x, w, b, y, n, g, scratch, pool, activation, residual, stride);
        else ConvGemm.Forward(x, w, b, y, n, g, scratch, pool, activation, residual, stride);
    }

    [Theory]
    [MemberData(nameof(Convolutions))]
    public void A_convolution_writes_its_slice_of_a_concatenation_in_place(string path, int kind)
    {
        var g = Geometry(kind);
        const int before = 7, after = 5; // channels of the other inputs, on either side
        int plane = g.OutH * g.OutW, stride = (before + g.OutChannels + after) * plane, offset = before * plane;
        foreach (int threads in new[] { 1, 2 })
        {
            foreach (int n in new[] { 1, 5 })
            {
                foreach (var activation in new[] { FusedActivation.None, FusedActivation.Relu, FusedActivation.Silu })
                {
                    foreach (bool withResidual in new[] { false, true })
                    {
                        var x = TestUtil.Random(n * g.InputLength, 1);
                        var w = TestUtil.Random(g.WeightLength, 2);
                        var b = TestUtil.Random(g.OutChannels, 3);
                        var pool = threads == 1 ? null : WorkerPool.Shared(threads);
                        var scratch = new float[threads * Math.Max(ConvWinograd.ParallelScratchLength(g), ConvDirect.ParallelScratchLength(g))];
                        var residual = TestUtil.Random(n * g.OutputLength, 4);

                        // Contiguous, then copied into the slices: what the unfused graph does.
                        var contiguous = new float[n * g.OutputLength];
                        Unfused(kind, x, w, b, contiguous, n, g, scratch, pool);
                        if (withResidual) Merges.Add(contiguous, residual, contiguous);
                        Activations.Apply(activation, contiguous);
                        var expected = TestUtil.Random(n * stride, 5); // the other inputs' channels
                        Merges.WriteSlice(contiguous, g.OutputLength, expected, stride, offset, n);

                        var actual = TestUtil.Random(n * stride, 5);
                        var stridedResidual = new float[n * stride];
                        Merges.WriteSlice(residual, g.OutputLength, stridedResidual, stride, offset, n);
                        var span = actual.AsSpan(offset, (n - 1) * stride + g.OutputLength);
                        Strided(kind, x, w, b, span, n, g, scratch, pool, activation,
                            withResidual ? stridedResidual.AsSpan(offset, (n - 1) * stride + g.OutputLength) : ReadOnlySpan<float>.Empty, stride);
                        Assert.True(expected.AsSpan().SequenceEqual(actual), $"{path}, {threads} thread(s), batch {n}, {activation}, residual {withResidual}");
                    }
                }
            }
        }
    }

    [Fact]
    public void A_sample_stride_shorter_than_a_sample_is_refused()
    {
        var g = Geometry(3);
        var scratch = new float[ConvDirect.ParallelScratchLength(g)];
        Assert.Throws<ArgumentOutOfRangeException>(() => ConvDirect.Forward(new float[2 * g.InputLength], new float[g.WeightLength], new float[g.OutChannels], new float[2 * g.OutputLength], 2, g, scratch, null,
            FusedActivation.None, ReadOnlySpan<float>.Empty, g.OutputLength - 1));
        Assert.Throws<ArgumentException>(() => ConvDirect.Forward(new float[2 * g.InputLength], new float[g.WeightLength], new float[g.OutChannels], new float[2 * g.OutputLength], 2, g, scratch, null,
            FusedActivation.None, ReadOnlySpan<float>.Empty, g.OutputLength + 1));
    }

    [Theory]
    [InlineData(3)]    // dot products
    [InlineData(130)]  // GEMM
    public void A_linear_layer_with_a_residual_equals_the_layer_then_the_add_then_the_activation(int n)
    {
        const int inF = 37, outF = 19;
        var x = TestUtil.Random(n * inF, 1);
        var w = TestUtil.Random(outF * inF, 2);
        var b = TestUtil.Random(outF, 3);
        var residual = TestUtil.Random(n * outF, 4);
        var packed = new float[Linear.PackedWeightLength(inF, outF)];
        Linear.PackWeight(w, packed, inF, outF);
        var scratch = new float[2 * Gemm.ScratchLength];
        foreach (var activation in new[] { FusedActivation.None, FusedActivation.Relu, FusedActivation.Gelu })
        {
            var expected = new float[n * outF];
            Linear.ForwardPacked(x, w, packed, b, expected, n, inF, outF, scratch, WorkerPool.Shared(2));
            Merges.Add(expected, residual, expected);
            Activations.Apply(activation, expected);
            var actual = new float[expected.Length];
            Linear.ForwardPacked(x, w, packed, b, actual, n, inF, outF, scratch, WorkerPool.Shared(2), activation, residual);
            Assert.True(expected.AsSpan().SequenceEqual(actual), $"{activation}");
        }
    }

    [Fact]
    public void A_residual_shorter_than_the_output_is_refused()
    {
        var g = Geometry(3);
        var scratch = new float[ConvDirect.ParallelScratchLength(g)];
        var ex = Assert.Throws<ArgumentException>(() => ConvDirect.Forward(new float[g.InputLength], new float[g.WeightLength], new float[g.OutChannels], new float[g.OutputLength], 1, g, scratch, null,
            FusedActivation.Relu, new float[g.OutputLength - 1]));
        Assert.Contains("shorter than the output", ex.Message);
    }
}
