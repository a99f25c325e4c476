// Layer, group and instance norm: outputs and gradients against a double-precision reference, finite differences,
// instance norm's running statistics, the same bits on several threads, and no allocation.
namespace Dsl.Runtime.Tests;

public class SampleNormalizationTests
{
    private const float Eps = 1e-5f;

    /// <summary>
    /// y, dx, dγ, dβ in double for rows of <paramref name="length"/> values whose affine entries cover
    /// <paramref name="length"/>/<paramref name="units"/> values each, row r using entries from (r % rowsPerSet)·units.
    /// </summary>
    private static (double[] Y, double[] Dx, double[] DGamma, double[] DBeta) Reference(float[] x, float[]? gamma, float[]? beta, float[] dy,
        int rows, int length, int units, int rowsPerSet, double eps)
    {
        int unit = length / units, affine = units * rowsPerSet;
        var y = new double[x.Length];
        var dx = new double[x.Length];
        var dgamma = new double[affine];
        var dbeta = new double[affine];
        for (int r = 0; r < rows; r++)
        {
            int o = r * length, first = (r % rowsPerSet) * units;
            double mean = 0, variance = 0;
            for (int i = 0; i < length; i++) mean += x[o + i];
            mean /= length;
            for (int i = 0; i < length; i++) variance += (x[o + i] - mean) * (x[o + i] - mean);
            variance /= length;
            double rs = 1 / Math.Sqrt(variance + eps);
            double sumWdy = 0, sumWdyXhat = 0;
            for (int i = 0; i < length; i++)
            {
                int e = first + i / unit;
                double xhat = (x[o + i] - mean) * rs, w = gamma?[e] ?? 1.0;
                y[o + i] = xhat * w + (beta?[e] ?? 0.0);
                sumWdy += w * dy[o + i];
                sumWdyXhat += w * dy[o + i] * xhat;
                dgamma[e] += dy[o + i] * xhat;
                dbeta[e] += dy[o + i];
            }

            for (int i = 0; i < length; i++)
            {
                double xhat = (x[o + i] - mean) * rs, w = gamma?[first + i / unit] ?? 1.0;
                dx[o + i] = rs * (w * dy[o + i] - sumWdy / length - xhat * sumWdyXhat / length);
            }
        }

        return (y, dx, dgamma, dbeta);
    }

    [Theory]
    [InlineData(3, 12, true, true)]
    [InlineData(4, 144, true, true)]
    [InlineData(2, 37, true, false)]
    [InlineData(5, 16, false, false)]
    [InlineData(1, 1, true, true)]
    public void LayerNorm_matches_the_double_reference(int rows, int length, bool affine, bool bias)
    {
        var x = TestUtil.Random(rows * length, 1, -2f, 3f);
        var dy = TestUtil.Random(rows * length, 2);
        float[]? gamma = affine ? TestUtil.Random(length, 3, 0.5f, 1.5f) : null;
        float[]? beta = affine && bias ? TestUtil.Random(length, 4, -0.5f, 0.5f) : null;
        var y = new float[x.Length];
        var mean = new float[rows];
        var invStd = new float[rows];
        LayerNorm.Forward(x, gamma, beta, y, mean, invStd, Eps, rows, length);
        var dx = new float[x.Length];
        var dgamma = affine ? new float[length] : null;
        var dbeta = beta is null ? null : new float[length];
        LayerNorm.Backward(dy, x, gamma, mean, invStd, dx, dgamma, dbeta, rows, length);
        var (ry, rdx, rdg, rdb) = Reference(x, gamma, beta, dy, rows, length, length, 1, Eps);
        TestUtil.AssertClose(ry, y, 1e-5, 1e-5, "y");
        TestUtil.AssertClose(rdx, dx, 1e-4, 1e-4, "dx");
        if (dgamma is not null) TestUtil.AssertClose(rdg, dgamma, 1e-4, 1e-4, "dgamma");
        if (dbeta is not null) TestUtil.AssertClose(rdb, dbeta, 1e-4, 1e-4, "dbeta");

        var inferred = new float[x.Length];
        LayerNorm.Infer(x, gamma, beta, inferred, Eps, rows, length);
        Assert.Equal(y, inferred);
    }

    [Theory]
    [InlineData(1, 8, 64, 4)]
    [InlineData(3, 6, 9, 3)]
    [InlineData(2, 6, 5, 1)]
    [InlineData(2, 4, 7, 4)]
    public void GroupNorm_matches_the_double_reference(int n, int channels, int spatial, int groups)
    {
        var x = TestUtil.Random(n * channels * spatial, 5, -1f, 4f);
        var dy = TestUtil.Random(x.Length, 6);
        var gamma = TestUtil.Random(channels, 7, 0.5f, 1.5f);
        var beta = TestUtil.Random(channels, 8, -0.5f, 0.5f);
        var y = new float[x.Length];
        var mean = new float[n * groups];
        var invStd = new float[n * groups];
        GroupNorm.Forward(x, gamma, beta, y, mean, invStd, Eps, n, channels, spatial, groups);
        var dx = new float[x.Length];
        var dgamma = new float[channels];
        var dbeta = new float[channels];
        GroupNorm.Backward(dy, x, gamma, mean, invStd, new float[GroupNorm.PartialsLength(n, channels)], dx, dgamma, dbeta, n, channels, spatial, groups);
        var (ry, rdx, rdg, rdb) = Reference(x, gamma, beta, dy, n * groups, channels / groups * spatial, channels / groups, groups, Eps);
        TestUtil.AssertClose(ry, y, 1e-5, 1e-5, "y");
        TestUtil.AssertClose(rdx, dx, 1e-4, 1e-4, "dx");
        TestUtil.AssertClose(rdg, dgamma, 1e-4, 1e-4, "dgamma");
        TestUtil.AssertClose(rdb, dbeta, 1e-4, 1e-4, "dbeta");
    }

    [Fact]
    public void GroupNorm_gradients_match_finite_differences()
    {
        const int n = 2, channels = 4, spatial = 5, groups = 2;
        var x = TestUtil.Random(n * channels * spatial, 9, -2f, 2f);
        var r = TestUtil.Random(x.Length, 10);
        var gamma = TestUtil.Random(channels, 11, 0.5f, 1.5f);
        var beta = TestUtil.Random(channels, 12, -0.5f, 0.5f);
        var y = new float[x.Length];
        var mean = new float[n * groups];
        var invStd = new float[n * groups];
        double Loss()
        {
            GroupNorm.Forward(x, gamma, beta, y, new float[n * groups], new float[n * groups], Eps, n, channels, spatial, groups);
            return TestUtil.WeightedSum(y, r);
        }

        GroupNorm.Forward(x, gamma, beta, y, mean, invStd, Eps, n, channels, spatial, groups);
        var dx = new float[x.Length];
        var dgamma = new float[channels];
        var dbeta = new float[channels];
        GroupNorm.Backward(r, x, gamma, mean, invStd, new float[2 * n * channels], dx, dgamma, dbeta, n, channels, spatial, groups);
        GradCheck.Check(x, dx, Loss, 2e-2, "dx");
        GradCheck.Check(gamma, dgamma, Loss, 2e-2, "dgamma");
        GradCheck.Check(beta, dbeta, Loss, 2e-2, "dbeta");
    }

    [Fact]
    public void LayerNorm_gradients_match_finite_differences()
    {
        const int rows = 3, length = 10;
        var x = TestUtil.Random(rows * length, 13, -2f, 2f);
        var r = TestUtil.Random(x.Length, 14);
        var gamma = TestUtil.Random(length, 15, 0.5f, 1.5f);
        var beta = TestUtil.Random(length, 16, -0.5f, 0.5f);
        var y = new float[x.Length];
        double Loss()
        {
            LayerNorm.Infer(x, gamma, beta, y, Eps, rows, length);
            return TestUtil.WeightedSum(y, r);
        }

        var mean = new float[rows];
        var invStd = new float[rows];
        LayerNorm.Forward(x, gamma, beta, y, mean, invStd, Eps, rows, length);
        var dx = new float[x.Length];
        var dgamma = new float[length];
        var dbeta = new float[length];
        LayerNorm.Backward(r, x, gamma, mean, invStd, dx, dgamma, dbeta, rows, length);
        GradCheck.Check(x, dx, Loss, 2e-2, "dx");
        GradCheck.Check(gamma, dgamma, Loss, 2e-2, "dgamma");
        GradCheck.Check(beta, dbeta, Loss, 2e-2, "dbeta");
    }

    [Fact]
    public void InstanceNorm_updates_running_statistics_with_the_batch_average_of_unbiased_instance_variances()
    {
        const int n = 3, channels = 2, spatial = 6;
        const float momentum = 0.3f;
        var x = TestUtil.Random(n * channels * spatial, 17, -2f, 2f);
        float[] runningMean = [0.25f, -0.5f];
        float[] runningVar = [1.5f, 0.75f];
        var y = new float[x.Length];
        var mean = new float[n * channels];
        var invStd = new float[n * channels];
        InstanceNorm.Forward(x, [], [], y, mean, invStd, runningMean, runningVar, momentum, Eps, n, channels, spatial);
        float[] expectedMean = [0.25f, -0.5f], expectedVar = [1.5f, 0.75f];
        for (int c = 0; c < channels; c++)
        {
            double m = 0, v = 0;
            for (int s = 0; s < n; s++)
            {
                var plane = x.Skip((s * channels + c) * spatial).Take(spatial).Select(f => (double)f).ToArray();
                double pm = plane.Average();
                m += pm / n;
                v += plane.Sum(p => (p - pm) * (p - pm)) / (spatial - 1) / n;
            }

            Assert.Equal((1 - momentum) * expectedMean[c] + momentum * m, runningMean[c], 1e-5);
            Assert.Equal((1 - momentum) * expectedVar[c] + momentum * v, runningVar[c], 1e-5);
        }

        // Instance statistics equal group norm's with one channel per group.
        var reference = new float[x.Length];
        GroupNorm.Forward(x, [], [], reference, new float[n * channels], new float[n * channels], Eps, n, channels, spatial, channels);
        Assert.Equal(reference, y);

        var inferred = new float[x.Length];
        InstanceNorm.InferWithRunningStatistics(x, [], [], runningMean, runningVar, inferred, Eps, n, channels, spatial);
        for (int i = 0; i < x.Length; i++)
        {
            int c = i / spatial % channels;
            Assert.Equal((x[i] - runningMean[c]) / Math.Sqrt(runningVar[c] + Eps), inferred[i], 1e-5);
        }
    }

    [Fact]
    public void InstanceNorm_refuses_one_value_per_channel()
    {
        var error = Assert.Throws<ArgumentException>(() => InstanceNorm.Forward(new float[3], [], [], new float[3], new float[3], new float[3], [], [], 0.1f, Eps, 1, 3, 1));
        Assert.Contains("Expected more than 1 spatial element when training", error.Message);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void Several_threads_give_the_same_bits(int threads)
    {
        using var pool = new WorkerPool(threads);
        const int n = 8, channels = 16, spatial = 400, groups = 4;
        var x = TestUtil.Random(n * channels * spatial, 18, -1f, 2f);
        var dy = TestUtil.Random(x.Length, 19);
        var gamma = TestUtil.Random(channels, 20, 0.5f, 1.5f);
        var beta = TestUtil.Random(channels, 21);
        (float[] Y, float[] Dx, float[] Dg, float[] Db) Group(WorkerPool? p)
        {
            var y = new float[x.Length];
            var mean = new float[n * groups];
            var invStd = new float[n * groups];
            GroupNorm.Forward(x, gamma, beta, y, mean, invStd, Eps, n, channels, spatial, groups, p);
            var dx = new float[x.Length];
            var dg = new float[channels];
            var db = new float[channels];
            GroupNorm.Backward(dy, x, gamma, mean, invStd, new float[2 * n * channels], dx, dg, db, n, channels, spatial, groups, p);
            return (y, dx, dg, db);
        }

        (float[] Y, float[] Dx, float[] Dg, float[] Db) Layer(WorkerPool? p)
        {
            int rows = n, length = channels * spatial;
            var lg = TestUtil.Random(length, 22, 0.5f, 1.5f);
            var lb = TestUtil.Random(length, 23);
            var y = new float[x.Length];
            var mean = new float[rows];
            var invStd = new float[rows];
            LayerNorm.Forward(x, lg, lb, y, mean, invStd, Eps, rows, length, p);
            var dx = new float[x.Length];
            var dg = new float[length];
            var db = new float[length];
            LayerNorm.Backward(dy, x, lg, mean, invStd, dx, dg, db, rows, length, p);
            return (y, dx, dg, db);
        }

        (float[] Y, float[] Dx, float[] Dg, float[] Db) Running(WorkerPool? p)
        {
            var rm = TestUtil.Random(channels, 29);
            var rv = TestUtil.Random(channels, 30, 0.5f, 2f);
            var y = new float[x.Length];
            InstanceNorm.InferWithRunningStatistics(x, gamma, beta, rm, rv, y, Eps, n, channels, spatial, p);
            return (y, [], [], []);
        }

        foreach (var run in new Func<WorkerPool?, (float[], float[], float[], float[])>[] { Group, Layer, Running })
        {
            var serial = run(null);
            var parallel = run(pool);
            Assert.Equal(serial.Item1, parallel.Item1);
            Assert.Equal(serial.Item2, parallel.Item2);
            Assert.Equal(serial.Item3, parallel.Item3);
            Assert.Equal(serial.Item4, parallel.Item4);
        }
    }

    [Fact]
    public void Forward_and_backward_allocate_nothing()
    {
        using var pool = new WorkerPool(2);
        const int n = 4, channels = 8, spatial = 1024, groups = 2;
        var x = TestUtil.Random(n * channels * spatial, 24);
        var dy = TestUtil.Random(x.Length, 25);
        var gamma = TestUtil.Random(channels, 26);
        var beta = TestUtil.Random(channels, 27);
        var lg = TestUtil.Random(channels * spatial, 28);
        var y = new float[x.Length];
        var dx = new float[x.Length];
        var mean = new float[n * channels];
        var invStd = new float[n * channels];
        var partials = new float[2 * n * channels];
        var dg = new float[channels * spatial];
        var db = new float[channels * spatial];
        float[] rm = new float[channels], rv = new float[channels];
        void Run()
        {
            GroupNorm.Forward(x, gamma, beta, y, mean, invStd, Eps, n, channels, spatial, groups, pool);
            GroupNorm.Backward(dy, x, gamma, mean, invStd, partials, dx, dg.AsSpan(0, channels), db.AsSpan(0, channels), n, channels, spatial, groups, pool);
            InstanceNorm.Forward(x, gamma, beta, y, mean, invStd, rm, rv, 0.1f, Eps, n, channels, spatial, pool);
            LayerNorm.Forward(x, lg, lg, y, mean, invStd, Eps, n, channels * spatial, pool);
            LayerNorm.Backward(dy, x, lg, mean, invStd, dx, dg, db, n, channels * spatial, pool);
        }

        Run();
        Assert.Equal(0, TestUtil.BytesAllocatedBy(Run));
    }
}
