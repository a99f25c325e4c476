using Dsl.Runtime;

namespace Dsl.Runtime.Tests;

/// <summary>
/// Batch norm's training passes (planes and features), max pooling and the ReLU backward split across a pool (channels, planes, ranges):
/// the same bits as on the caller alone, on 2 threads and on 3 (uneven shares), with every tensor above the
/// split threshold so the parallel path is the one tested.
/// </summary>
public sealed class ParallelElementwiseTests
{
    public static TheoryData<int> Threads => new() { 2, 3 };

    // 5 samples × 7 channels × 1000 values: 35,000 ≥ 2^15, channels split 3/4 or 2/2/3.
    private const int N = 5, C = 7, S = 1000;

    // Planes (5 × 7 × 1000) and features (70 × 531: runs of 16 channels, the last one short), 2 and 3 threads.
    public static TheoryData<int, int, int, int> Shapes => new()
    {
        { 2, N, C, S }, { 3, N, C, S }, { 2, 70, 531, 1 }, { 3, 70, 531, 1 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Batch_norm_forward_splits_channels_with_the_same_bits(int threads, int n, int c, int s)
    {
        Assert.True(n * c * s >= BatchNorm.ParallelElements);
        using var pool = new WorkerPool(threads);
        var x = TestUtil.Random(n * c * s, 1, -2f, 3f);
        foreach (bool affine in new[] { true, false })
        {
            foreach (bool tracked in new[] { true, false })
            {
                foreach (bool relu in new[] { true, false })
                {
                    var gamma = affine ? TestUtil.Random(c, 2) : [];
                    var beta = affine ? TestUtil.Random(c, 3) : [];
                    var serial = new Outputs(tracked, n * c * s, c);
                    var parallel = new Outputs(tracked, n * c * s, c);
                    BatchNorm.ForwardTraining(x, gamma, beta, serial.Y, serial.Mean, serial.InvStd, serial.RunningMean, serial.RunningVar, 0.1f, 1e-5f, n, c, s, relu ? FusedActivation.Relu : FusedActivation.None);
                    BatchNorm.ForwardTraining(x, gamma, beta, parallel.Y, parallel.Mean, parallel.InvStd, parallel.RunningMean, parallel.RunningVar, 0.1f, 1e-5f, n, c, s, relu ? FusedActivation.Relu : FusedActivation.None, pool);
                    serial.AssertSameBits(parallel);
                }
            }
        }
    }

    private sealed class Outputs(bool tracked, int length, int channels)
    {
        public float[] Y { get; } = Filled(length, float.NaN);
        public float[] Mean { get; } = Filled(channels, float.NaN);
        public float[] InvStd { get; } = Filled(channels, float.NaN);
        public float[] RunningMean { get; } = tracked ? TestUtil.Random(channels, 4) : [];
        public float[] RunningVar { get; } = tracked ? TestUtil.Random(channels, 5, 0.5f, 2f) : [];

        public void AssertSameBits(Outputs other)
        {
            Assert.Equal(Y, other.Y);
            Assert.Equal(Mean, other.Mean);
            Assert.Equal(InvStd, other.InvStd);
            Assert.Equal(RunningMean, other.RunningMean);
            Assert.Equal(RunningVar, other.RunningVar);
        }
    }

    private static float[] Filled(int length, float value)
    {
        var result = new float[length];
        result.AsSpan().Fill(value);
        return result;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Batch_norm_backward_splits_channels_with_the_same_bits(int threads, int n, int c, int s)
    {
        using var pool = new WorkerPool(threads);
        var x = TestUtil.Random(n * c * s, 1, -2f, 3f);
        var dy = TestUtil.Random(n * c * s, 2);
        var gamma = TestUtil.Random(c, 3);
        var mean = new float[c];
        var invStd = new float[c];
        BatchNorm.ForwardTraining(x, gamma, [], new float[x.Length], mean, invStd, [], [], 0f, 1e-5f, n, c, s);
        foreach (bool affine in new[] { true, false })
        {
            var g = affine ? gamma : [];
            float[] Start(int seed) => affine ? TestUtil.Random(c, seed) : [];
            var (dxSerial, dgSerial, dbSerial) = (Filled(x.Length, float.NaN), Start(4), Start(5));
            var (dxParallel, dgParallel, dbParallel) = (Filled(x.Length, float.NaN), Start(4), Start(5));
            BatchNorm.Backward(dy, x, g, mean, invStd, dxSerial, dgSerial, dbSerial, n, c, s);
            BatchNorm.Backward(dy, x, g, mean, invStd, dxParallel, dgParallel, dbParallel, n, c, s, pool);
            Assert.Equal(dxSerial, dxParallel);
            Assert.Equal(dgSerial, dgParallel);
            Assert.Equal(dbSerial, dbParallel);
        }
    }

    // The 2×2 stride-2 fast path and the general window walk (3×3, stride 2, padding 1), with odd planes so the
    // vector and scalar columns both run: 5 × 7 planes of 31 × 33 = 35,805 values.
    public static TheoryData<int, bool> ThreadsAndWindows => new() { { 2, true }, { 2, false }, { 3, true }, { 3, false } };

    private static PoolGeometry Window(bool twoByTwo) =>
        twoByTwo ? new PoolGeometry(C, 31, 33, 2, 2, 2, 2, 0, 0, 1, 1, false) : new PoolGeometry(C, 31, 33, 3, 3, 2, 2, 1, 1, 1, 1, false);

    [Theory]
    [MemberData(nameof(ThreadsAndWindows))]
    public void Max_pooling_splits_planes_with_the_same_bits(int threads, bool twoByTwo)
    {
        using var pool = new WorkerPool(threads);
        var g = Window(twoByTwo);
        Assert.True(N * g.InputLength >= Pooling.ParallelElements);
        var x = TestUtil.Random(N * g.InputLength, 1);
        int outLength = N * g.OutputLength;

        // Training: values and arg-max indices.
        var (ySerial, iSerial) = (Filled(outLength, float.NaN), new int[outLength]);
        var (yParallel, iParallel) = (Filled(outLength, float.NaN), new int[outLength]);
        Pooling.MaxForward(x, ySerial, iSerial, N, g);
        Pooling.MaxForward(x, yParallel, iParallel, N, g, pool);
        Assert.Equal(ySerial, yParallel);
        Assert.Equal(iSerial, iParallel);

        // Inference, plain and with a batch norm's scale and shift.
        var scale = TestUtil.Random(C, 2);
        var shift = TestUtil.Random(C, 3);
        var plain = Filled(outLength, float.NaN);
        Pooling.MaxForward(x, plain, N, g, pool);
        Assert.Equal(ySerial, plain);
        var affineSerial = Filled(outLength, float.NaN);
        var affineParallel = Filled(outLength, float.NaN);
        Pooling.MaxForward(x, affineSerial, N, g, scale, shift);
        Pooling.MaxForward(x, affineParallel, N, g, scale, shift, pool);
        Assert.Equal(affineSerial, affineParallel);

        // Backward: every plane cleared (from NaN) and its gradients added at the recorded maxima.
        var dy = TestUtil.Random(outLength, 4);
        var dxSerial = Filled(N * g.InputLength, float.NaN);
        var dxParallel = Filled(N * g.InputLength, float.NaN);
        Pooling.MaxBackward(dy, iSerial, dxSerial, N, g);
        Pooling.MaxBackward(dy, iSerial, dxParallel, N, g, pool);
        Assert.Equal(dxSerial, dxParallel);
        Assert.DoesNotContain(dxParallel, float.IsNaN);
    }

    [Theory]
    [MemberData(nameof(Threads))]
    public void Relu_backward_splits_ranges_with_the_same_bits(int threads)
    {
        using var pool = new WorkerPool(threads);
        const int length = Activations.ParallelElements + 13;
        var y = TestUtil.Random(length, 1);
        var dy = TestUtil.Random(length, 2);
        var serial = Filled(length, float.NaN);
        var parallel = Filled(length, float.NaN);
        Activations.ReluBackward(y, dy, serial);
        Activations.ReluBackward(y, dy, parallel, pool);
        Assert.Equal(serial, parallel);

        // In place, as the generated backward calls it (dx aliases dy).
        var inPlace = (float[])dy.Clone();
        Activations.ReluBackward(y, inPlace, inPlace, pool);
        Assert.Equal(serial, inPlace);
    }

    // The residual block's element-wise passes (training's add, ReLU, a gradient handed on or summed), at 1 thread
    // (no pool, and a pool of one) and split: an odd length above the threshold, so shares are uneven and end mid-vector.
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Residual_passes_split_ranges_with_the_same_bits(int threads)
    {
        using var pool = new WorkerPool(threads);
        const int length = Merges.ParallelElements + 13;
        Assert.Equal(Activations.ParallelElements, Merges.ParallelElements);
        var a = TestUtil.Random(length, 1);
        var b = TestUtil.Random(length, 2);
        a[5] = float.NaN; // ReLU keeps NaN
        a[length - 1] = -0f;

        var serial = Filled(length, float.NaN);
        var parallel = Filled(length, float.NaN);
        Activations.ReluForward(a, serial);
        Activations.ReluForward(a, parallel, pool);
        Assert.Equal(serial, parallel);
        var inPlace = (float[])a.Clone();
        Activations.ReluForward(inPlace, inPlace, pool);
        Assert.Equal(serial, inPlace);

        serial = Filled(length, float.NaN);
        parallel = Filled(length, float.NaN);
        Merges.Add(a, b, serial);
        Merges.Add(a, b, parallel, pool);
        Assert.Equal(serial, parallel);
        inPlace = (float[])a.Clone();
        Merges.Add(inPlace, b, inPlace, pool); // the output may alias an input
        Assert.Equal(serial, inPlace);

        serial = (float[])b.Clone();
        parallel = (float[])b.Clone();
        Merges.Accumulate(a, serial);
        Merges.Accumulate(a, parallel, pool);
        Assert.Equal(serial, parallel);

        parallel = Filled(length + 3, 7f);
        Merges.Copy(a, parallel, pool);
        Assert.Equal(a, parallel.AsSpan(0, length).ToArray());
        Assert.Equal(new[] { 7f, 7f, 7f }, parallel.AsSpan(length).ToArray());
    }
}
