// Instance normalization (PyTorch's nn.InstanceNorm1d/2d): each sample's channel by its own statistics, optional running statistics.
using System.ComponentModel;
using System.Diagnostics;

namespace Dsl.Runtime.Kernels;

/// <summary>
/// Instance normalization with PyTorch's <c>nn.InstanceNorm1d/2d</c> semantics on <c>[n, channels, spatial]</c>: group
/// norm with one channel per group in training (and in inference without running statistics). With
/// <c>track_running_stats</c>, training also updates the running statistics with the instance statistics averaged over
/// the batch (unbiased variance), and inference normalizes with them.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static class InstanceNorm
{
    /// <summary>Training forward with instance statistics; updates the running statistics when they are given.</summary>
    /// <param name="x">Input <c>[n, channels, spatial]</c>.</param>
    /// <param name="gamma">Scale <c>[channels]</c>, or empty (not affine).</param>
    /// <param name="beta">Shift <c>[channels]</c>, or empty.</param>
    /// <param name="y">Output; overwritten.</param>
    /// <param name="saveMean">Receives the means <c>[n, channels]</c>.</param>
    /// <param name="saveInvStd">Receives <c>1/√(var + ε)</c> <c>[n, channels]</c>.</param>
    /// <param name="runningMean">Updated to <c>(1 − m)·running + m·mean_n(mean)</c>; empty when not tracked.</param>
    /// <param name="runningVar">Updated to <c>(1 − m)·running + m·mean_n(var·S/(S − 1))</c>; empty when not tracked.</param>
    /// <param name="momentum">Running-statistics momentum.</param>
    /// <param name="eps">Added to the variance.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="channels">Channels.</param>
    /// <param name="spatial">Values per channel per sample, more than 1.</param>
    /// <param name="pool">Splits the planes across its threads when large; null stays on the caller. The same bits either way.</param>
    /// <exception cref="ArgumentException"><paramref name="spatial"/> is 1 (PyTorch: "Expected more than 1 spatial element when training").</exception>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, Span<float> y,
        Span<float> saveMean, Span<float> saveInvStd, Span<float> runningMean, Span<float> runningVar, float momentum, float eps,
        int n, int channels, int spatial, WorkerPool? pool = null)
    {
        if (spatial <= 1) ThrowSingleValue(n, channels, spatial);
        Debug.Assert(runningMean.IsEmpty == runningVar.IsEmpty, "runningMean and runningVar must both be given or both be empty");
        SampleNormalization.Forward(x, gamma, beta, y, saveMean, saveInvStd, eps, n * channels, spatial, 1, channels, pool);
        if (runningMean.IsEmpty) return;
        double unbiased = (double)spatial / (spatial - 1);
        for (int c = 0; c < channels; c++)
        {
            double mean = 0, variance = 0;
            for (int s = 0; s < n; s++)
            {
                double r = saveInvStd[s * channels + c];
                mean += saveMean[s * channels + c];
                variance += Math.Max(0.0, 1.0 / (r * r) - eps) * unbiased;
            }

            runningMean[c] = (float)((1 - momentum) * runningMean[c] + momentum * (mean / n));
            runningVar[c] = (float)((1 - momentum) * runningVar[c] + momentum * (variance / n));
        }
    }

    /// <summary>Inference with instance statistics (no running statistics tracked): the forward without saving.</summary>
    /// <param name="x">Input <c>[n, channels, spatial]</c>.</param>
    /// <param name="gamma">Scale, or empty.</param>
    /// <param name="beta">Shift, or empty.</param>
    /// <param name="y">Output; overwritten (may be <paramref name="x"/>).</param>
    /// <param name="eps">Added to the variance.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="channels">Channels.</param>
    /// <param name="spatial">Values per channel per sample, more than 1.</param>
    /// <param name="pool">Splits the planes when large; null stays on the caller.</param>
    public static void Infer(ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, Span<float> y,
        float eps, int n, int channels, int spatial, WorkerPool? pool = null)
    {
        if (spatial <= 1) ThrowSingleValue(n, channels, spatial);
        SampleNormalization.Forward(x, gamma, beta, y, default, default, eps, n * channels, spatial, 1, channels, pool);
    }

    /// <summary>Inference with the running statistics: <c>y = (x − running_mean)/√(running_var + ε)·γ + β</c> per channel.</summary>
    /// <param name="x">Input <c>[n, channels, spatial]</c>.</param>
    /// <param name="gamma">Scale, or empty.</param>
    /// <param name="beta">Shift, or empty.</param>
    /// <param name="runningMean">Running mean <c>[channels]</c>.</param>
    /// <param name="runningVar">Running variance <c>[channels]</c>.</param>
    /// <param name="y">Output; overwritten (may be <paramref name="x"/>).</param>
    /// <param name="eps">Added to the variance.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="channels">Channels.</param>
    /// <param name="spatial">Values per channel per sample.</param>
    /// <param name="pool">Splits the planes across its threads when large; null stays on the caller. The same bits either way.</param>
    public static unsafe void InferWithRunningStatistics(ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta,
        ReadOnlySpan<float> runningMean, ReadOnlySpan<float> runningVar, Span<float> y, float eps, int n, int channels, int spatial, WorkerPool? pool = null)
    {
        Debug.Assert(x.Length >= n * channels * spatial && y.Length >= n * channels * spatial, "x or y too short");
        int rows = n * channels;
        if (SampleNormalization.Splits(pool, rows, spatial))
        {
            fixed (float* px = x, pg = gamma, pb = beta, pm = runningMean, pv = runningVar, py = y)
            {
                var job = new SampleNormalization.Job { X = px, Gamma = pg, Beta = pb, Mean = pm, InvStd = pv, Y = py, Eps = eps, Rows = rows, Length = spatial, RowsPerSet = channels };
                pool!.RunChunks(&RunningChunk, &job, Math.Min(rows, 4 * pool.Threads));
            }

            return;
        }

        RunningRows(x, gamma, beta, runningMean, runningVar, y, eps, spatial, channels, 0, rows);
    }

    private static unsafe void RunningChunk(void* state, int chunk, int chunks, int thread)
    {
        var j = (SampleNormalization.Job*)state;
        var (lo, hi) = WorkerPool.Share(j->Rows, chunk, chunks);
        int total = j->Rows * j->Length, c = j->RowsPerSet;
        RunningRows(SampleNormalization.Read(j->X, total), SampleNormalization.Read(j->Gamma, c), SampleNormalization.Read(j->Beta, c), SampleNormalization.Read(j->Mean, c),
            SampleNormalization.Read(j->InvStd, c), SampleNormalization.Write(j->Y, total), j->Eps, j->Length, c, lo, hi);
    }

    // Planes [lo, hi) of [n·channels, spatial].
    private static void RunningRows(ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, ReadOnlySpan<float> runningMean, ReadOnlySpan<float> runningVar,
        Span<float> y, float eps, int spatial, int channels, int lo, int hi)
    {
        for (int row = lo; row < hi; row++)
        {
            int c = row % channels;
            float invStd = (float)(1.0 / Math.Sqrt((double)runningVar[c] + eps));
            float scale = gamma.IsEmpty ? invStd : invStd * gamma[c];
            float shift = beta.IsEmpty ? 0f : beta[c];
            PlaneMath.Normalize(x.Slice(row * spatial, spatial), runningMean[c], scale, shift, y.Slice(row * spatial, spatial));
        }
    }

    /// <summary>Backward through the instance statistics: group norm's with one channel per group.</summary>
    /// <param name="dy">dL/dy <c>[n, channels, spatial]</c>.</param>
    /// <param name="x">The forward's input.</param>
    /// <param name="gamma">Scale, or empty.</param>
    /// <param name="saveMean">The forward's means <c>[n, channels]</c>.</param>
    /// <param name="saveInvStd">The forward's <c>1/√(var + ε)</c>.</param>
    /// <param name="partials">Scratch of <see cref="GroupNorm.PartialsLength"/> floats.</param>
    /// <param name="dx">Receives dL/dx; empty to skip.</param>
    /// <param name="dgamma">dL/dγ, added to; empty when not affine.</param>
    /// <param name="dbeta">dL/dβ, added to; empty when not affine.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="channels">Channels.</param>
    /// <param name="spatial">Values per channel per sample.</param>
    /// <param name="pool">Splits the planes when large; null stays on the caller.</param>
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> saveMean, ReadOnlySpan<float> saveInvStd,
        Span<float> partials, Span<float> dx, Span<float> dgamma, Span<float> dbeta, int n, int channels, int spatial, WorkerPool? pool = null) =>
        GroupNorm.Backward(dy, x, gamma, saveMean, saveInvStd, partials, dx, dgamma, dbeta, n, channels, spatial, channels, pool);

    private static void ThrowSingleValue(int n, int channels, int spatial) =>
        throw new ArgumentException($"Expected more than 1 spatial element when training, got input size [{n}, {channels}, {spatial}]");
}
