// Kernels are called every training step from generated code, so after warm-up they must not allocate at all.
using Dsl.Tests;

namespace Dsl.Runtime.Tests;

// In the collection that runs alone: the parallel kernels are measured on the shared pool's threads, which
// another test's jobs must not use meanwhile.
[Collection(EveryThreadAllocation.Collection)]
public class AllocationTests
{
    private delegate void Kernel();

    // A kernel split across the pool: measured on the caller and on the pool's workers, for 100 ms of calls (at
    // least 20) so that the worker claims chunks.
    private static void AssertNoAllocationOnAnyThread(string name, WorkerPool pool, Kernel kernel)
    {
        kernel(); // warm-up: JIT compilation and static initialization may allocate
        kernel();
        EveryThreadAllocation.LetWorkersSleep();
        long allocated = EveryThreadAllocation.BytesAllocatedByCalls(pool, () => kernel(), minCalls: 20, milliseconds: 100);
        Assert.True(allocated == 0, $"{name} allocated {allocated} bytes on the pool's threads in 100 ms of calls");
    }

    private static void AssertNoAllocation(string name, Kernel kernel)
    {
        kernel(); // warm-up: JIT compilation and static initialization may allocate
        long allocated = TestUtil.BytesAllocatedBy(() =>
        {
            for (int i = 0; i < 3; i++) kernel();
        });
        Assert.True(allocated == 0, $"{name} allocated {allocated} bytes");
    }

    [Fact]
    public void TheMeasureCountsAnAllocation()
    {
        byte[]? kept = null;
        long allocated = TestUtil.BytesAllocatedBy(() => kept = new byte[100]);
        Assert.InRange(allocated, 100 + 16, 8 * 1024 + 1024); // the array, at most one fresh quantum beyond it
        GC.KeepAlive(kept);
    }

    [Fact]
    public void ConvolutionKernelsDoNotAllocate()
    {
        foreach (var g in new[]
        {
            new ConvGeometry(4, 6, 9, 9, 3, 3, 1, 1, 1, 1, 1, 1, 2),
            new ConvGeometry(3, 4, 9, 8, 3, 3, 2, 2, 1, 1, 2, 2, 1),
        })
        {
            const int n = 2;
            var x = TestUtil.Random(n * g.InputLength, 1);
            var w = TestUtil.Random(g.WeightLength, 2);
            var b = TestUtil.Random(g.OutChannels, 3);
            var y = new float[n * g.OutputLength];
            var dx = new float[x.Length];
            var dw = new float[w.Length];
            var db = new float[b.Length];
            AssertNoAllocation("ConvGemm.Forward", () => ConvGemm.Forward(x, w, b, y, n, g));
            AssertNoAllocation("ConvGemm.BackwardInput", () => ConvGemm.BackwardInput(y, w, dx, n, g));
            AssertNoAllocation("ConvGemm.BackwardWeight", () => ConvGemm.BackwardWeight(y, x, dw, db, n, g));
        }
    }

    [Fact]
    public void LinearKernelsDoNotAllocate()
    {
        const int n = 4, inF = 17, outF = 5;
        var x = TestUtil.Random(n * inF, 1);
        var w = TestUtil.Random(outF * inF, 2);
        var b = TestUtil.Random(outF, 3);
        var y = new float[n * outF];
        var dx = new float[x.Length];
        var dw = new float[w.Length];
        var db = new float[outF];
        AssertNoAllocation("Linear.Forward", () => Linear.Forward(x, w, b, y, n, inF, outF));
        AssertNoAllocation("Linear.BackwardInput", () => Linear.BackwardInput(y, w, dx, n, inF, outF));
        AssertNoAllocation("Linear.BackwardWeight", () => Linear.BackwardWeight(y, x, dw, db, n, inF, outF));
    }

    // Across two threads, as chunks handed to whichever thread is free (WorkerPool.RunChunks): batch 8 and 40
    // take the small-batch kernels and the GEMM for each pass, all above the parallel threshold. Measured on
    // every thread of the pool, not only the caller's.
    [Theory]
    [InlineData(8)]
    [InlineData(40)]
    public void ParallelLinearKernelsDoNotAllocate(int n)
    {
        const int inF = 300, outF = 211;
        var pool = WorkerPool.Shared(2);
        var scratch = new float[2 * Gemm.ScratchLength];
        var x = TestUtil.Random(n * inF, 1);
        var w = TestUtil.Random(outF * inF, 2);
        var b = TestUtil.Random(outF, 3);
        var packed = new float[Linear.PackedWeightLength(inF, outF)];
        Linear.PackWeight(w, packed, inF, outF);
        var y = new float[n * outF];
        var dx = new float[x.Length];
        var dw = new float[w.Length];
        var db = new float[outF];
        AssertNoAllocationOnAnyThread("Linear.Forward (2 threads)", pool, () => Linear.Forward(x, w, b, y, n, inF, outF, scratch, pool, relu: true));
        AssertNoAllocationOnAnyThread("Linear.ForwardPacked (2 threads)", pool, () => Linear.ForwardPacked(x, w, packed, b, y, n, inF, outF, scratch, pool));
        AssertNoAllocationOnAnyThread("Linear.BackwardInput (2 threads)", pool, () => Linear.BackwardInput(y, w, dx, n, inF, outF, scratch, pool));
        AssertNoAllocationOnAnyThread("Linear.BackwardWeight (2 threads)", pool, () => Linear.BackwardWeight(y, x, dw, db, n, inF, outF, scratch, pool, accumulate: false));
    }

    // The convolutions split across two threads, one chunk per thread with its scratch region: the direct kernel
    // (3 input channels), Winograd (16 → 16, 3×3) and the general GEMM path (stride 2, groups 2), each pass above
    // its parallel threshold at batch 16. Measured on every thread of the pool.
    [Fact]
    public void ParallelConvolutionKernelsDoNotAllocate()
    {
        const int n = 16;
        var pool = WorkerPool.Shared(2);
        foreach (var (kind, g) in new[]
        {
            ("ConvDirect", new ConvGeometry(3, 16, 32, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1)),
            ("ConvWinograd", new ConvGeometry(16, 16, 32, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1)),
            ("Conv2d", new ConvGeometry(16, 32, 32, 32, 3, 3, 2, 2, 1, 1, 1, 1, 2)),
        })
        {
            var x = TestUtil.Random(n * g.InputLength, 1);
            var w = TestUtil.Random(g.WeightLength, 2);
            var b = TestUtil.Random(g.OutChannels, 3);
            var y = new float[n * g.OutputLength];
            var dx = new float[x.Length];
            var dw = new float[w.Length];
            var db = new float[b.Length];
            var scratch = new float[2 * Math.Max(Math.Max(ConvDirect.ParallelScratchLength(g), ConvWinograd.ParallelScratchLength(g)), ConvGemm.ParallelScratchLength(g))];
            switch (kind)
            {
                case "ConvDirect":
                    Assert.True(ConvDirect.Suits(g));
                    AssertNoAllocationOnAnyThread("ConvDirect.Forward (2 threads)", pool, () => ConvDirect.Forward(x, w, b, y, n, g, scratch, pool, relu: true));
                    AssertNoAllocationOnAnyThread("ConvDirect.BackwardWeight (2 threads)", pool, () => ConvDirect.BackwardWeight(y, x, dw, db, n, g, scratch, pool));
                    break;
                case "ConvWinograd":
                    Assert.True(ConvWinograd.Suits(g));
                    AssertNoAllocationOnAnyThread("ConvWinograd.Forward (2 threads)", pool, () => ConvWinograd.Forward(x, w, b, y, n, g, scratch, pool, relu: true));
                    AssertNoAllocationOnAnyThread("ConvWinograd.BackwardInput (2 threads)", pool, () => ConvWinograd.BackwardInput(y, w, dx, n, g, scratch, pool));
                    AssertNoAllocationOnAnyThread("ConvWinograd.BackwardWeight (2 threads)", pool, () => ConvWinograd.BackwardWeight(y, x, dw, db, n, g, scratch, pool));
                    break;
                default:
                    AssertNoAllocationOnAnyThread("ConvGemm.Forward (2 threads)", pool, () => ConvGemm.Forward(x, w, b, y, n, g, scratch, pool, relu: true));
                    AssertNoAllocationOnAnyThread("ConvGemm.BackwardInput (2 threads)", pool, () => ConvGemm.BackwardInput(y, w, dx, n, g, scratch, pool));
                    AssertNoAllocationOnAnyThread("ConvGemm.BackwardWeight (2 threads)", pool, () => ConvGemm.BackwardWeight(y, x, dw, db, n, g, scratch, pool));
                    break;
            }
        }
    }

    // Batch norm's training passes, max pooling and the ReLU backward split across two threads (above their
    // thresholds): the job state is a struct on the caller's stack. Measured on every thread of the pool.
    [Fact]
    public void ParallelElementwiseKernelsDoNotAllocate()
    {
        const int n = 4, c = 8, s = 1024;
        var pool = WorkerPool.Shared(2);
        var x = TestUtil.Random(n * c * s, 1);
        var gamma = TestUtil.Random(c, 2);
        var beta = TestUtil.Random(c, 3);
        var y = new float[x.Length];
        var dx = new float[x.Length];
        var mean = new float[c];
        var invStd = new float[c];
        var runningMean = new float[c];
        var runningVar = new float[c];
        var dgamma = new float[c];
        var dbeta = new float[c];
        var g = new PoolGeometry(c, 32, 32, 2, 2, 2, 2, 0, 0, 1, 1, false);
        var pooled = new float[n * g.OutputLength];
        var indices = new int[pooled.Length];
        AssertNoAllocationOnAnyThread("BatchNorm.ForwardTraining (2 threads)", pool, () => BatchNorm.ForwardTraining(x, gamma, beta, y, mean, invStd, runningMean, runningVar, 0.1f, 1e-5f, n, c, s, FusedActivation.Relu, pool));
        AssertNoAllocationOnAnyThread("BatchNorm.Backward (2 threads)", pool, () => BatchNorm.Backward(x, y, gamma, mean, invStd, dx, dgamma, dbeta, n, c, s, pool));
        AssertNoAllocationOnAnyThread("Pooling.MaxForward (2 threads)", pool, () => Pooling.MaxForward(x, pooled, indices, n, g, pool));
        AssertNoAllocationOnAnyThread("Pooling.MaxForward inference (2 threads)", pool, () => Pooling.MaxForward(x, pooled, n, g, gamma, beta, pool));
        AssertNoAllocationOnAnyThread("Pooling.MaxBackward (2 threads)", pool, () => Pooling.MaxBackward(pooled, indices, dx, n, g, pool));
        AssertNoAllocationOnAnyThread("Activations.ReluBackward (2 threads)", pool, () => Activations.ReluBackward(y, x, dx, pool));
        AssertNoAllocationOnAnyThread("Activations.ReluForward (2 threads)", pool, () => Activations.ReluForward(x, dx, pool));
        AssertNoAllocationOnAnyThread("Merges.Add (2 threads)", pool, () => Merges.Add(x, y, dx, pool));
        AssertNoAllocationOnAnyThread("Merges.Accumulate (2 threads)", pool, () => Merges.Accumulate(x, dx, pool));
        AssertNoAllocationOnAnyThread("Merges.Copy (2 threads)", pool, () => Merges.Copy(x, dx, pool));

        // Batch norm over features ([n, C]), split in runs of 16 channels: per-channel buffers on each thread's stack.
        const int rows = 128, features = 512;
        var fx = TestUtil.Random(rows * features, 4);
        var fy = new float[fx.Length];
        var fdx = new float[fx.Length];
        var fGamma = TestUtil.Random(features, 5);
        var (fMean, fInvStd, fdGamma, fdBeta) = (new float[features], new float[features], new float[features], new float[features]);
        AssertNoAllocationOnAnyThread("BatchNorm.ForwardTraining, features (2 threads)", pool, () => BatchNorm.ForwardTraining(fx, fGamma, fGamma, fy, fMean, fInvStd, default, default, 0.1f, 1e-5f, rows, features, 1, FusedActivation.Relu, pool));
        AssertNoAllocationOnAnyThread("BatchNorm.Backward, features (2 threads)", pool, () => BatchNorm.Backward(fx, fy, fGamma, fMean, fInvStd, fdx, fdGamma, fdBeta, rows, features, 1, pool));
    }

    [Fact]
    public void BatchNormKernelsDoNotAllocate()
    {
        const int n = 4, c = 3, s = 10;
        var x = TestUtil.Random(n * c * s, 1);
        var gamma = TestUtil.Random(c, 2);
        var beta = TestUtil.Random(c, 3);
        var y = new float[x.Length];
        var dx = new float[x.Length];
        var mean = new float[c];
        var invStd = new float[c];
        var rm = new float[c];
        var rv = Enumerable.Repeat(1f, c).ToArray();
        var dg = new float[c];
        var dbeta = new float[c];
        var scale = new float[c];
        var shift = new float[c];
        AssertNoAllocation("BatchNorm.ForwardTraining", () => BatchNorm.ForwardTraining(x, gamma, beta, y, mean, invStd, rm, rv, 0.1f, 1e-5f, n, c, s));
        AssertNoAllocation("BatchNorm.Backward", () => BatchNorm.Backward(y, x, gamma, mean, invStd, dx, dg, dbeta, n, c, s));
        AssertNoAllocation("BatchNorm.ForwardWithStatistics", () => BatchNorm.ForwardWithStatistics(x, gamma, beta, rm, rv, y, mean, invStd, 1e-5f, n, c, s));
        AssertNoAllocation("BatchNorm.BackwardConstantStatistics", () => BatchNorm.BackwardConstantStatistics(y, x, gamma, mean, invStd, dx, dg, dbeta, n, c, s));
        AssertNoAllocation("BatchNorm.ScaleShift", () => BatchNorm.ScaleShift(gamma, beta, rm, rv, 1e-5f, scale, shift));
        AssertNoAllocation("BatchNorm.ApplyScaleShift", () => BatchNorm.ApplyScaleShift(y, scale, shift, n, c, s));
    }

    [Fact]
    public void PoolingKernelsDoNotAllocate()
    {
        const int n = 2;
        var g = new PoolGeometry(3, 7, 7, 3, 3, 2, 2, 1, 1, 1, 1, true);
        var x = TestUtil.Random(n * g.InputLength, 1);
        var y = new float[n * g.OutputLength];
        var indices = new int[y.Length];
        var dx = new float[x.Length];
        AssertNoAllocation("Pooling.MaxForward", () => Pooling.MaxForward(x, y, indices, n, g));
        AssertNoAllocation("Pooling.MaxForward (inference)", () => Pooling.MaxForward(x, y, n, g));
        AssertNoAllocation("Pooling.MaxBackward", () => Pooling.MaxBackward(y, indices, dx, n, g));
        AssertNoAllocation("Pooling.AvgForward", () => Pooling.AvgForward(x, y, n, g, true));
        AssertNoAllocation("Pooling.AvgBackward", () => Pooling.AvgBackward(y, dx, n, g, false));
        AssertNoAllocation("Pooling.GlobalAvgForward", () => Pooling.GlobalAvgForward(x, y, n, 3, 49));
        AssertNoAllocation("Pooling.GlobalAvgBackward", () => Pooling.GlobalAvgBackward(y, dx, n, 3, 49));
    }

    [Fact]
    public void ActivationAndDropoutKernelsDoNotAllocate()
    {
        var x = TestUtil.Random(60, 1);
        var y = new float[60];
        var dx = new float[60];
        var mask = new float[60];
        var rng = new SplitMix64(1);
        AssertNoAllocation("Relu", () => { Activations.ReluForward(x, y); Activations.ReluBackward(y, x, dx); });
        AssertNoAllocation("Sigmoid", () => { Activations.SigmoidForward(x, y); Activations.SigmoidBackward(y, x, dx); });
        AssertNoAllocation("Tanh", () => { Activations.TanhForward(x, y); Activations.TanhBackward(y, x, dx); });
        AssertNoAllocation("LeakyRelu", () => { Activations.LeakyReluForward(x, y, 0.1f); Activations.LeakyReluBackward(x, y, dx, 0.1f); });
        AssertNoAllocation("Softmax", () => { Activations.SoftmaxForward(x, y, 6, 10); Activations.SoftmaxBackward(y, x, dx, 6, 10); });
        AssertNoAllocation("LogSoftmax", () => { Activations.LogSoftmaxForward(x, y, 6, 10); Activations.LogSoftmaxBackward(y, x, dx, 6, 10); });
        AssertNoAllocation("Dropout", () => { Dropout.Forward(x, y, mask, 0.5f, ref rng); Dropout.Backward(y, mask, dx); });
    }
}
