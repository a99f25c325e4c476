// Batch normalization kernels (training with batch statistics, inference with given statistics, backward, folding).
using System.ComponentModel;
using System.Diagnostics;
using System.Numerics.Tensors;

namespace Dsl.Runtime.Kernels;

/// <summary>
/// Batch normalization with PyTorch's <c>nn.BatchNorm1d/2d</c> semantics on data laid out as <c>[n, channels, spatial]</c>
/// (<c>spatial</c> = 1 for <c>[C]</c> inputs, <c>L</c> for <c>[C, L]</c>, <c>H*W</c> for <c>[C, H, W]</c>).
/// </summary>
/// <remarks>
/// Per-channel reductions are accumulated in double, like PyTorch's CPU kernels (its accumulation type for float is double),
/// so that statistics over large batches do not lose precision.
/// </remarks>
[EditorBrowsable(EditorBrowsableState.Never)]
public static class BatchNorm
{
    /// <summary>
    /// Normalizes with the batch statistics: per channel, mean and biased variance over the <c>n*spatial</c> values;
    /// <c>y = (x - mean) * invstd * gamma + beta</c>. Optionally updates the running statistics.
    /// </summary>
    /// <param name="x">Input <c>[n, channels, spatial]</c>.</param>
    /// <param name="gamma">Scale <c>[channels]</c>, or empty when not affine (scale 1).</param>
    /// <param name="beta">Shift <c>[channels]</c>, or empty when not affine (shift 0).</param>
    /// <param name="y">Output, same shape as <paramref name="x"/>; overwritten.</param>
    /// <param name="saveMean">Receives the batch mean per channel (needed by <see cref="Backward"/>).</param>
    /// <param name="saveInvStd">Receives <c>1/sqrt(var + eps)</c> per channel (needed by <see cref="Backward"/>).</param>
    /// <param name="runningMean">Running mean, updated to <c>(1-m)*runningMean + m*mean</c>; empty when running statistics are not tracked.</param>
    /// <param name="runningVar">Running variance, updated to <c>(1-m)*runningVar + m*var*M/(M-1)</c> (unbiased); empty when not tracked.</param>
    /// <param name="momentum">Running-statistics momentum <c>m</c> (for PyTorch's <c>momentum=None</c>, pass <c>1/num_batches_tracked</c>).</param>
    /// <param name="eps">Value added to the variance for numerical stability.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="channels">Number of channels.</param>
    /// <param name="spatial">Values per channel per sample.</param>
    /// <exception cref="ArgumentException"><c>n*spatial == 1</c> (PyTorch: "Expected more than 1 value per channel when training"); nothing is written.</exception>
    public static void ForwardTraining(ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, Span<float> y,
        Span<float> saveMean, Span<float> saveInvStd, Span<float> runningMean, Span<float> runningVar,
        float momentum, float eps, int n, int channels, int spatial) =>
        ForwardTraining(x, gamma, beta, y, saveMean, saveInvStd, runningMean, runningVar, momentum, eps, n, channels, spatial, FusedActivation.None);

    /// <summary>
    /// <see cref="ForwardTraining(ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, Span{float}, Span{float}, Span{float}, Span{float}, float, float, int, int, int)"/>
    /// with a following activation applied as each plane is written (training's conv → bn → relu: one pass over the
    /// activation less; the ReLU's backward needs only its output, and batch norm's only its input).
    /// </summary>
    /// <param name="x">Input <c>[n, channels, spatial]</c>.</param>
    /// <param name="gamma">Scale, or empty.</param>
    /// <param name="beta">Shift, or empty.</param>
    /// <param name="y">Output: the activation of the normalized input (just the normalized input with <see cref="FusedActivation.None"/>); overwritten.</param>
    /// <param name="saveMean">Receives the batch mean per channel.</param>
    /// <param name="saveInvStd">Receives <c>1/sqrt(var + eps)</c> per channel.</param>
    /// <param name="runningMean">Running mean, updated; empty when not tracked.</param>
    /// <param name="runningVar">Running variance, updated; empty when not tracked.</param>
    /// <param name="momentum">Running-statistics momentum.</param>
    /// <param name="eps">Value added to the variance.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="channels">Number of channels.</param>
    /// <param name="spatial">Values per channel per sample.</param>
    /// <param name="activation">The activation applied to the output as each plane (or row) is written, while it is in L1.</param>
    /// <param name="pool">Splits the channels across its threads when the tensor is large enough (<see cref="ParallelElements"/>); null stays on the caller. Each channel's statistics and outputs are the same bits either way.</param>
    public static unsafe void ForwardTraining(ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, Span<float> y,
        Span<float> saveMean, Span<float> saveInvStd, Span<float> runningMean, Span<float> runningVar,
        float momentum, float eps, int n, int channels, int spatial, FusedActivation activation = FusedActivation.None, WorkerPool? pool = null)
    {
        long count = (long)n * spatial;
        if (count <= 1) ThrowSingleValue(n, channels, spatial);
        Debug.Assert(x.Length >= n * channels * spatial, "x too short");
        Debug.Assert(y.Length >= n * channels * spatial, "y too short");
        Debug.Assert(gamma.IsEmpty || gamma.Length >= channels, "gamma too short");
        Debug.Assert(beta.IsEmpty || beta.Length >= channels, "beta too short");
        Debug.Assert(saveMean.Length >= channels && saveInvStd.Length >= channels, "save buffers too short");
        Debug.Assert(runningMean.IsEmpty == runningVar.IsEmpty, "runningMean and runningVar must both be given or both be empty");
        Debug.Assert(runningMean.IsEmpty || (runningMean.Length >= channels && runningVar.Length >= channels), "running buffers too short");

        if (SplitsChannels(pool, n, channels, spatial))
        {
            fixed (float* px = x, pg = gamma, pb = beta, py = y, pm = saveMean, pi = saveInvStd, prm = runningMean, prv = runningVar)
            {
                var job = new Job { X = px, Gamma = pg, Beta = pb, Y = py, SaveMean = pm, SaveInvStd = pi, RunningMean = prm, RunningVar = prv,
                    Momentum = momentum, Eps = eps, N = n, Channels = channels, Spatial = spatial, Activation = activation };
                pool!.RunChunks(&ForwardTrainingChunk, &job, pool.Threads);
            }

            return;
        }

        ForwardTrainingRange(x, gamma, beta, y, saveMean, saveInvStd, runningMean, runningVar, momentum, eps, n, channels, spatial, activation, 0, channels);
    }

    private static unsafe void ForwardTrainingChunk(void* state, int chunk, int chunks, int thread)
    {
        var j = (Job*)state;
        var (lo, hi) = Share(j->Channels, j->Spatial, chunk, chunks);
        int length = j->N * j->Channels * j->Spatial, channels = j->Channels;
        ForwardTrainingRange(Read(j->X, length), Read(j->Gamma, channels), Read(j->Beta, channels), Write(j->Y, length), Write(j->SaveMean, channels), Write(j->SaveInvStd, channels),
            Write(j->RunningMean, channels), Write(j->RunningVar, channels), j->Momentum, j->Eps, j->N, channels, j->Spatial, j->Activation, lo, hi);
    }

    // Channels [lo, hi), on the features path ([n, C]) or the per-plane one.
    private static void ForwardTrainingRange(ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, Span<float> y,
        Span<float> saveMean, Span<float> saveInvStd, Span<float> runningMean, Span<float> runningVar,
        float momentum, float eps, int n, int channels, int spatial, FusedActivation activation, int lo, int hi)
    {
        if (lo == hi) return;
        if (IsFeatures(channels, spatial)) ForwardTrainingFeatures(x, gamma, beta, y, saveMean, saveInvStd, runningMean, runningVar, momentum, eps, n, channels, activation, lo, hi);
        else ForwardTrainingChannels(x, gamma, beta, y, saveMean, saveInvStd, runningMean, runningVar, momentum, eps, n, channels, spatial, activation, lo, hi);
    }

    // The per-plane path for channels [lo, hi): everything a channel reads and writes is its own.
    private static void ForwardTrainingChannels(ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, Span<float> y,
        Span<float> saveMean, Span<float> saveInvStd, Span<float> runningMean, Span<float> runningVar,
        float momentum, float eps, int n, int channels, int spatial, FusedActivation activation, int lo, int hi)
    {
        long count = (long)n * spatial;
        int stride = channels * spatial;
        for (int c = lo; c < hi; c++)
        {
            // Each plane is reduced in float SIMD lanes; planes add up in double.
            double sum = 0;
            for (int s = 0; s < n; s++) sum += System.Numerics.Tensors.TensorPrimitives.Sum(x.Slice(s * stride + c * spatial, spatial));
            double mean = sum / count;

            // Two-pass variance: subtracting the mean first avoids the cancellation of E[x²] - E[x]².
            double squares = 0;
            for (int s = 0; s < n; s++) squares += PlaneMath.SumSquaredDeviations(x.Slice(s * stride + c * spatial, spatial), (float)mean);
            double variance = squares / count;
            float invStd = (float)(1.0 / Math.Sqrt(variance + eps));
            float meanF = (float)mean;
            saveMean[c] = meanF;
            saveInvStd[c] = invStd;

            if (!runningMean.IsEmpty)
            {
                double unbiased = squares / (count - 1);
                runningMean[c] = (float)((1.0 - momentum) * runningMean[c] + momentum * mean);
                runningVar[c] = (float)((1.0 - momentum) * runningVar[c] + momentum * unbiased);
            }

            Normalize(x, y, c, meanF, invStd, gamma.IsEmpty ? 1f : gamma[c], beta.IsEmpty ? 0f : beta[c], n, stride, spatial, activation);
        }
    }

    /// <summary>
    /// Normalizes with given statistics (running statistics at inference, or a frozen batch norm in training):
    /// <c>y = (x - mean) / sqrt(var + eps) * gamma + beta</c>.
    /// </summary>
    /// <param name="x">Input <c>[n, channels, spatial]</c>.</param>
    /// <param name="gamma">Scale <c>[channels]</c>, or empty when not affine.</param>
    /// <param name="beta">Shift <c>[channels]</c>, or empty when not affine.</param>
    /// <param name="mean">Mean per channel.</param>
    /// <param name="variance">Variance per channel.</param>
    /// <param name="y">Output, same shape as <paramref name="x"/>; overwritten (may alias <paramref name="x"/>).</param>
    /// <param name="saveMean">If non-empty, receives <paramref name="mean"/> (for <see cref="BackwardConstantStatistics"/>).</param>
    /// <param name="saveInvStd">If non-empty, receives <c>1/sqrt(var + eps)</c>.</param>
    /// <param name="eps">Value added to the variance for numerical stability.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="channels">Number of channels.</param>
    /// <param name="spatial">Values per channel per sample.</param>
    public static void ForwardWithStatistics(ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta,
        ReadOnlySpan<float> mean, ReadOnlySpan<float> variance, Span<float> y, Span<float> saveMean, Span<float> saveInvStd,
        float eps, int n, int channels, int spatial)
    {
        Debug.Assert(x.Length >= n * channels * spatial && y.Length >= n * channels * spatial, "x or y too short");
        Debug.Assert(mean.Length >= channels && variance.Length >= channels, "statistics too short");
        Debug.Assert(saveMean.IsEmpty || saveMean.Length >= channels, "saveMean too short");
        Debug.Assert(saveInvStd.IsEmpty || saveInvStd.Length >= channels, "saveInvStd too short");

        int stride = channels * spatial;
        for (int c = 0; c < channels; c++)
        {
            float invStd = InvStd(variance[c], eps);
            if (!saveMean.IsEmpty) saveMean[c] = mean[c];
            if (!saveInvStd.IsEmpty) saveInvStd[c] = invStd;
            Normalize(x, y, c, mean[c], invStd, gamma.IsEmpty ? 1f : gamma[c], beta.IsEmpty ? 0f : beta[c], n, stride, spatial);
        }
    }

    /// <summary>
    /// Backward through batch statistics (training mode), PyTorch's formula
    /// <c>dx = (dy - mean(dy) - xhat * mean(dy * xhat)) * invstd * gamma</c>.
    /// </summary>
    /// <param name="dy">Output gradient <c>[n, channels, spatial]</c>.</param>
    /// <param name="x">Forward input.</param>
    /// <param name="gamma">Scale, or empty when not affine.</param>
    /// <param name="saveMean">Batch mean from <see cref="ForwardTraining(ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, Span{float}, Span{float}, Span{float}, Span{float}, float, float, int, int, int, FusedActivation, WorkerPool?)"/>.</param>
    /// <param name="saveInvStd">Batch inverse standard deviation from <see cref="ForwardTraining(ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, Span{float}, Span{float}, Span{float}, Span{float}, float, float, int, int, int, FusedActivation, WorkerPool?)"/>.</param>
    /// <param name="dx">Input gradient; overwritten (may alias <paramref name="dy"/>).</param>
    /// <param name="dgamma">Scale gradient, accumulated into; empty when not affine.</param>
    /// <param name="dbeta">Shift gradient, accumulated into; empty when not affine.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="channels">Number of channels.</param>
    /// <param name="spatial">Values per channel per sample.</param>
    /// <param name="pool">Splits the channels across its threads when the tensor is large enough (<see cref="ParallelElements"/>); null stays on the caller. The same bits either way.</param>
    public static unsafe void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> gamma,
        ReadOnlySpan<float> saveMean, ReadOnlySpan<float> saveInvStd, Span<float> dx, Span<float> dgamma, Span<float> dbeta,
        int n, int channels, int spatial, WorkerPool? pool = null)
    {
        Debug.Assert(dy.Length >= n * channels * spatial && x.Length >= n * channels * spatial && dx.Length >= n * channels * spatial, "buffer too short");
        Debug.Assert(saveMean.Length >= channels && saveInvStd.Length >= channels, "saved statistics too short");

        if (SplitsChannels(pool, n, channels, spatial))
        {
            fixed (float* pdy = dy, px = x, pg = gamma, pm = saveMean, pi = saveInvStd, pdx = dx, pdg = dgamma, pdb = dbeta)
            {
                var job = new Job { Dy = pdy, X = px, Gamma = pg, SaveMean = pm, SaveInvStd = pi, Dx = pdx, DGamma = pdg, DBeta = pdb, N = n, Channels = channels, Spatial = spatial };
                pool!.RunChunks(&BackwardChunk, &job, pool.Threads);
            }

            return;
        }

        BackwardRange(dy, x, gamma, saveMean, saveInvStd, dx, dgamma, dbeta, n, channels, spatial, 0, channels);
    }

    private static unsafe void BackwardChunk(void* state, int chunk, int chunks, int thread)
    {
        var j = (Job*)state;
        var (lo, hi) = Share(j->Channels, j->Spatial, chunk, chunks);
        int length = j->N * j->Channels * j->Spatial, channels = j->Channels;
        BackwardRange(Read(j->Dy, length), Read(j->X, length), Read(j->Gamma, channels), Read(j->SaveMean, channels), Read(j->SaveInvStd, channels), Write(j->Dx, length),
            Write(j->DGamma, channels), Write(j->DBeta, channels), j->N, channels, j->Spatial, lo, hi);
    }

    // Channels [lo, hi), on the features path ([n, C]) or the per-plane one.
    private static void BackwardRange(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> gamma,
        ReadOnlySpan<float> saveMean, ReadOnlySpan<float> saveInvStd, Span<float> dx, Span<float> dgamma, Span<float> dbeta,
        int n, int channels, int spatial, int lo, int hi)
    {
        if (lo == hi) return;
        if (IsFeatures(channels, spatial)) BackwardFeatures(dy, x, gamma, saveMean, saveInvStd, dx, dgamma, dbeta, n, channels, lo, hi);
        else BackwardChannels(dy, x, gamma, saveMean, saveInvStd, dx, dgamma, dbeta, n, channels, spatial, lo, hi);
    }

    // The first 64 cache lines (up to a 32×32 plane) of a plane at start, asked for ahead of a pass over it: a
    // channel's planes lie a whole sample apart, each too short a stream for the hardware's prefetch once the batch
    // is out of cache (ResNet-20's batch-128 step: the backward's sums 3.8–4.3% → 3.3–3.6% of the time; the forward's
    // statistics, whose input the convolution has just written, measured no change).
    private static unsafe void PrefetchPlane(ReadOnlySpan<float> values, int start, int spatial)
    {
        if (!System.Runtime.Intrinsics.X86.Sse.IsSupported) return;
        int lines = Math.Min(64, (spatial + 15) / 16);
        fixed (float* p = values)
        {
            for (int l = 0; l < lines; l++) System.Runtime.Intrinsics.X86.Sse.Prefetch0(p + start + 16 * l);
        }
    }

    // The per-plane backward for channels [lo, hi).
    private static void BackwardChannels(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> gamma,
        ReadOnlySpan<float> saveMean, ReadOnlySpan<float> saveInvStd, Span<float> dx, Span<float> dgamma, Span<float> dbeta,
        int n, int channels, int spatial, int lo, int hi)
    {
        int stride = channels * spatial;
        long count = (long)n * spatial;
        for (int c = lo; c < hi; c++)
        {
            float mean = saveMean[c], invStd = saveInvStd[c];
            double sumDy = 0, sumDyCentered = 0;
            for (int s = 0; s < n; s++)
            {
                int start = s * stride + c * spatial;
                if (s + 1 < n)
                {
                    PrefetchPlane(dy, start + stride, spatial);
                    PrefetchPlane(x, start + stride, spatial);
                }

                var (planeDy, planeDyCentered) = PlaneMath.GradientSums(dy.Slice(start, spatial), x.Slice(start, spatial), mean);
                sumDy += planeDy;
                sumDyCentered += planeDyCentered;
            }

            float g = gamma.IsEmpty ? 1f : gamma[c];
            // dx = (dy - sumDy/M - (x-mean) * invstd² * sumDyCentered/M) * invstd * gamma, as dy·scale + x·a + b
            float meanDy = (float)(sumDy / count);
            float k = (float)(sumDyCentered / count) * invStd * invStd;
            float scale = invStd * g;
            float a = -k * scale, b = (mean * k - meanDy) * scale;
            for (int s = 0; s < n; s++)
            {
                int start = s * stride + c * spatial;
                PlaneMath.Combine(dy.Slice(start, spatial), x.Slice(start, spatial), scale, a, b, dx.Slice(start, spatial));
            }

            if (!dgamma.IsEmpty) dgamma[c] += (float)(sumDyCentered * invStd);
            if (!dbeta.IsEmpty) dbeta[c] += (float)sumDy;
        }
    }

    /// <summary>
    /// Backward when the statistics were constants (frozen batch norm): <c>dx = dy * gamma * invstd</c>,
    /// <c>dgamma += Σ dy * xhat</c>, <c>dbeta += Σ dy</c>.
    /// </summary>
    /// <param name="dy">Output gradient <c>[n, channels, spatial]</c>.</param>
    /// <param name="x">Forward input.</param>
    /// <param name="gamma">Scale, or empty when not affine.</param>
    /// <param name="saveMean">Mean used in the forward pass.</param>
    /// <param name="saveInvStd">Inverse standard deviation used in the forward pass.</param>
    /// <param name="dx">Input gradient; overwritten (may alias <paramref name="dy"/>).</param>
    /// <param name="dgamma">Scale gradient, accumulated into; empty when not affine.</param>
    /// <param name="dbeta">Shift gradient, accumulated into; empty when not affine.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="channels">Number of channels.</param>
    /// <param name="spatial">Values per channel per sample.</param>
    public static void BackwardConstantStatistics(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> gamma,
        ReadOnlySpan<float> saveMean, ReadOnlySpan<float> saveInvStd, Span<float> dx, Span<float> dgamma, Span<float> dbeta,
        int n, int channels, int spatial)
    {
        Debug.Assert(dy.Length >= n * channels * spatial && x.Length >= n * channels * spatial && dx.Length >= n * channels * spatial, "buffer too short");
        Debug.Assert(saveMean.Length >= channels && saveInvStd.Length >= channels, "saved statistics too short");

        int stride = channels * spatial;
        for (int c = 0; c < channels; c++)
        {
            float mean = saveMean[c], invStd = saveInvStd[c];
            float scale = invStd * (gamma.IsEmpty ? 1f : gamma[c]);
            double sumDy = 0, sumDyXhat = 0;
            for (int s = 0; s < n; s++)
            {
                int start = s * stride + c * spatial;
                for (int i = start; i < start + spatial; i++)
                {
                    float d = dy[i];
                    sumDy += d;
                    sumDyXhat += d * (double)((x[i] - mean) * invStd);
                    dx[i] = d * scale;
                }
            }
            if (!dgamma.IsEmpty) dgamma[c] += (float)sumDyXhat;
            if (!dbeta.IsEmpty) dbeta[c] += (float)sumDy;
        }
    }

    /// <summary>Per-channel affine form of inference batch norm: <c>scale = gamma/sqrt(var + eps)</c>, <c>shift = beta - mean*scale</c>.</summary>
    /// <param name="gamma">Scale, or empty (1).</param>
    /// <param name="beta">Shift, or empty (0).</param>
    /// <param name="mean">Mean per channel.</param>
    /// <param name="variance">Variance per channel.</param>
    /// <param name="eps">Value added to the variance.</param>
    /// <param name="scale">Receives the per-channel scale.</param>
    /// <param name="shift">Receives the per-channel shift.</param>
    public static void ScaleShift(ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, ReadOnlySpan<float> mean, ReadOnlySpan<float> variance,
        float eps, Span<float> scale, Span<float> shift)
    {
        int channels = mean.Length;
        Debug.Assert(variance.Length == channels && scale.Length >= channels && shift.Length >= channels, "length mismatch");
        for (int c = 0; c < channels; c++)
        {
            float sc = (gamma.IsEmpty ? 1f : gamma[c]) * InvStd(variance[c], eps);
            scale[c] = sc;
            shift[c] = (beta.IsEmpty ? 0f : beta[c]) - mean[c] * sc;
        }
    }

    /// <summary>In place: <c>y[n, c, s] = y[n, c, s]*scale[c] + shift[c]</c>.</summary>
    /// <param name="y">Data <c>[n, channels, spatial]</c>, transformed in place.</param>
    /// <param name="scale">Per-channel scale.</param>
    /// <param name="shift">Per-channel shift.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="channels">Number of channels.</param>
    /// <param name="spatial">Values per channel per sample.</param>
    public static void ApplyScaleShift(Span<float> y, ReadOnlySpan<float> scale, ReadOnlySpan<float> shift, int n, int channels, int spatial)
    {
        Debug.Assert(y.Length >= n * channels * spatial && scale.Length >= channels && shift.Length >= channels, "buffer too short");
        int index = 0;
        for (int s = 0; s < n; s++)
        {
            for (int c = 0; c < channels; c++)
            {
                float sc = scale[c], sh = shift[c];
                for (int i = 0; i < spatial; i++, index++) y[index] = y[index] * sc + sh;
            }
        }
    }

    /// <summary>Out of place: <c>y[n, c, s] = x[n, c, s]*scale[c] + shift[c]</c>, when the producer's output must not be changed (the caller's input).</summary>
    /// <param name="x">Data <c>[n, channels, spatial]</c>.</param>
    /// <param name="y">Output, same shape; may alias <paramref name="x"/>.</param>
    /// <param name="scale">Per-channel scale.</param>
    /// <param name="shift">Per-channel shift.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="channels">Number of channels.</param>
    /// <param name="spatial">Values per channel per sample.</param>
    public static void ApplyScaleShift(ReadOnlySpan<float> x, Span<float> y, ReadOnlySpan<float> scale, ReadOnlySpan<float> shift, int n, int channels, int spatial)
    {
        Debug.Assert(x.Length >= n * channels * spatial && y.Length >= n * channels * spatial, "buffer too short");
        int index = 0;
        for (int s = 0; s < n; s++)
        {
            for (int c = 0; c < channels; c++)
            {
                float sc = scale[c], sh = shift[c];
                for (int i = 0; i < spatial; i++, index++) y[index] = x[index] * sc + sh;
            }
        }
    }

    /// <summary>
    /// Folds an inference batch norm (given as <see cref="ScaleShift"/>'s scale and shift) into the preceding convolution or linear layer:
    /// <c>W'[o, :] = W[o, :]*scale[o]</c>, <c>b'[o] = b[o]*scale[o] + shift[o]</c>.
    /// </summary>
    /// <param name="weight">Weight <c>[outChannels, perOutput]</c>.</param>
    /// <param name="bias">Bias <c>[outChannels]</c>, or empty for a layer without bias (treated as zero).</param>
    /// <param name="scale">Per-output-channel scale.</param>
    /// <param name="shift">Per-output-channel shift.</param>
    /// <param name="foldedWeight">Receives the folded weight <c>[outChannels, perOutput]</c>.</param>
    /// <param name="foldedBias">Receives the folded bias <c>[outChannels]</c> (always written).</param>
    /// <param name="outChannels">Output channels of the layer (= batch-norm channels).</param>
    /// <param name="perOutput">Weight elements per output channel.</param>
    public static void Fold(ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, ReadOnlySpan<float> scale, ReadOnlySpan<float> shift,
        Span<float> foldedWeight, Span<float> foldedBias, int outChannels, int perOutput)
    {
        Debug.Assert(weight.Length >= outChannels * perOutput && foldedWeight.Length >= outChannels * perOutput, "weight too short");
        Debug.Assert(bias.IsEmpty || bias.Length >= outChannels, "bias too short");
        Debug.Assert(scale.Length >= outChannels && shift.Length >= outChannels && foldedBias.Length >= outChannels, "buffer too short");
        for (int o = 0; o < outChannels; o++)
        {
            float sc = scale[o];
            int start = o * perOutput;
            for (int i = start; i < start + perOutput; i++) foldedWeight[i] = weight[i] * sc;
            foldedBias[o] = (bias.IsEmpty ? 0f : bias[o]) * sc + shift[o];
        }
    }

    /// <summary>
    /// Tensors of at least this many values (<c>n · channels · spatial</c>) split their channels across a pool's threads
    /// in the training passes (<see cref="ForwardTraining(ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, Span{float}, Span{float}, Span{float}, Span{float}, float, float, int, int, int, FusedActivation, WorkerPool?)"/>,
    /// <see cref="Backward"/>): below it, waking a worker costs more than the half pass it would take. Features
    /// (<c>[n, C]</c>, a row at a time across channels) split in runs of 16 channels.
    /// </summary>
    public const int ParallelElements = 1 << 15;

    private static bool SplitsChannels(WorkerPool? pool, int n, int channels, int spatial) =>
        pool is { Threads: > 1 } && channels >= (IsFeatures(channels, spatial) ? 2 * FeatureUnit : 2) && (long)n * channels * spatial >= ParallelElements;

    // [n, C] with per-channel accumulators on the stack: the row-at-a-time path.
    private static bool IsFeatures(int channels, int spatial) => spatial == 1 && channels <= FeatureStackLimit;

    // Features split in whole runs of 16 (two vectors), so each chunk's rows stay vector-aligned; planes one channel at a time.
    private const int FeatureUnit = 16;

    private static (int Lo, int Hi) Share(int channels, int spatial, int chunk, int chunks)
    {
        if (!IsFeatures(channels, spatial)) return WorkerPool.Share(channels, chunk, chunks);
        var (lo, hi) = WorkerPool.Share((channels + FeatureUnit - 1) / FeatureUnit, chunk, chunks);
        return (Math.Min(lo * FeatureUnit, channels), Math.Min(hi * FeatureUnit, channels));
    }

    // A parallel pass's arguments, pinned by the caller for the duration of the job; a null pointer is an empty span.
    private unsafe struct Job
    {
        public float* X, Gamma, Beta, Y, SaveMean, SaveInvStd, RunningMean, RunningVar, Dy, Dx, DGamma, DBeta;
        public float Momentum, Eps;
        public int N, Channels, Spatial;
        public FusedActivation Activation;
    }

    private static unsafe ReadOnlySpan<float> Read(float* p, int length) => p == null ? default : new ReadOnlySpan<float>(p, length);

    private static unsafe Span<float> Write(float* p, int length) => p == null ? default : new Span<float>(p, length);

    // Batch norm over features ([n, C], one value per channel per sample) runs across channels, a row at a time,
    // with per-channel accumulators on the stack up to this many channels.
    private const int FeatureStackLimit = 2048;

    // Features [lo, hi) (all of them on one thread; a 16-aligned share of them as a chunk): each column's values
    // are its own, and every operation is element by element along the row, so any split gives the same bits.
    private static void ForwardTrainingFeatures(ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, Span<float> y,
        Span<float> saveMean, Span<float> saveInvStd, Span<float> runningMean, Span<float> runningVar, float momentum, float eps, int n, int channels, FusedActivation activation,
        int lo, int hi)
    {
        int width = hi - lo;
        Span<float> squares = stackalloc float[width];
        var mean = saveMean.Slice(lo, width);
        mean.Clear();
        for (int s = 0; s < n; s++) TensorPrimitives.Add(mean, x.Slice(s * channels + lo, width), mean);
        TensorPrimitives.Divide(mean, n, mean);

        // Two-pass variance, as in the per-plane path: Σ (x − mean)², with y rows as the scratch for x − mean.
        squares.Clear();
        for (int s = 0; s < n; s++)
        {
            var centered = y.Slice(s * channels + lo, width);
            TensorPrimitives.Subtract(x.Slice(s * channels + lo, width), mean, centered);
            TensorPrimitives.MultiplyAdd(centered, centered, squares, squares);
        }

        for (int i = 0; i < width; i++)
        {
            int c = lo + i;
            double variance = squares[i] / (double)n;
            saveInvStd[c] = (float)(1.0 / Math.Sqrt(variance + eps));
            if (!runningMean.IsEmpty)
            {
                double unbiased = squares[i] / (double)(n - 1);
                runningMean[c] = (float)((1.0 - momentum) * runningMean[c] + momentum * (double)mean[i]);
                runningVar[c] = (float)((1.0 - momentum) * runningVar[c] + momentum * unbiased);
            }

            // Reuse the buffer for scale = γ·invStd.
            squares[i] = saveInvStd[c] * (gamma.IsEmpty ? 1f : gamma[c]);
        }

        for (int s = 0; s < n; s++)
        {
            var row = y.Slice(s * channels + lo, width); // holds x − mean
            TensorPrimitives.Multiply(row, squares, row);
            if (!beta.IsEmpty) TensorPrimitives.Add(row, beta.Slice(lo, width), row);
            Activations.Apply(activation, row); // the row is still in L1
        }
    }

    private static void BackwardFeatures(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> gamma,
        ReadOnlySpan<float> saveMean, ReadOnlySpan<float> saveInvStd, Span<float> dx, Span<float> dgamma, Span<float> dbeta, int n, int channels, int lo, int hi)
    {
        int width = hi - lo;
        Span<float> buffers = stackalloc float[3 * width];
        var sumDy = buffers.Slice(0, width);
        var sumDyCentered = buffers.Slice(width, width);
        var scratch = buffers.Slice(2 * width, width);
        var mean = saveMean.Slice(lo, width);
        sumDy.Clear();
        sumDyCentered.Clear();
        for (int s = 0; s < n; s++)
        {
            var dyRow = dy.Slice(s * channels + lo, width);
            TensorPrimitives.Add(sumDy, dyRow, sumDy);
            TensorPrimitives.Subtract(x.Slice(s * channels + lo, width), mean, scratch);
            TensorPrimitives.MultiplyAdd(dyRow, scratch, sumDyCentered, sumDyCentered);
        }

        // dx = dy·s + (x − mean)·a + b per channel, with s = γ·invStd, a = −s·invStd²·Σdy(x−mean)/n, b = −s·Σdy/n.
        var a = sumDyCentered; // reused in place once dγ has been taken
        for (int i = 0; i < width; i++)
        {
            int c = lo + i;
            float invStd = saveInvStd[c];
            float scale = invStd * (gamma.IsEmpty ? 1f : gamma[c]);
            if (!dgamma.IsEmpty) dgamma[c] += sumDyCentered[i] * invStd;
            if (!dbeta.IsEmpty) dbeta[c] += sumDy[i];
            a[i] = -scale * invStd * invStd * sumDyCentered[i] / n;
            sumDy[i] = -scale * sumDy[i] / n; // now b
            scratch[i] = scale;
        }

        for (int s = 0; s < n; s++)
        {
            var row = dx.Slice(s * channels + lo, width);
            TensorPrimitives.Subtract(x.Slice(s * channels + lo, width), mean, row);
            TensorPrimitives.MultiplyAdd(row, a, sumDy, row);
            TensorPrimitives.MultiplyAdd(dy.Slice(s * channels + lo, width), scratch, row, row);
        }
    }

    private static float InvStd(float variance, float eps) => (float)(1.0 / Math.Sqrt((double)variance + eps));

    // y = (x - mean) * invstd * gamma + beta for every value of channel c.
    private static void Normalize(ReadOnlySpan<float> x, Span<float> y, int c, float mean, float invStd, float gamma, float beta, int n, int stride, int spatial, FusedActivation activation = FusedActivation.None)
    {
        float scale = invStd * gamma;
        for (int s = 0; s < n; s++)
        {
            int start = s * stride + c * spatial;
            var plane = y.Slice(start, spatial);
            PlaneMath.Normalize(x.Slice(start, spatial), mean, scale, beta, plane);
            Activations.Apply(activation, plane); // the plane is still in L1
        }
    }

    private static void ThrowSingleValue(int n, int channels, int spatial)
    {
        string size = spatial == 1 ? $"[{n}, {channels}]" : $"[{n}, {channels}, {spatial}]";
        throw new ArgumentException($"Expected more than 1 value per channel when training, got input size {size}");
    }
}
