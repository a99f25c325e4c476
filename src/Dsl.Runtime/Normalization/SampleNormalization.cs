// What layer, group and instance norm share: rows of contiguous values normalized by their own mean and biased
// variance, an affine part per value (layer norm) or per run of values (a channel's plane in group and instance norm).
using System.Diagnostics;
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

namespace Dsl.Runtime.Kernels;

/// <summary>
/// Rows of <c>length</c> contiguous values, each normalized with its own statistics. The affine part has
/// <c>units</c> entries per row, each covering <c>length / units</c> consecutive values; row <c>r</c> uses entries
/// <c>(r % rowsPerSet) * units</c> onward (layer norm: one set of <c>length</c> entries for every row; group norm:
/// <c>groups</c> rows per sample, <c>channels / groups</c> entries each).
/// </summary>
internal static class SampleNormalization
{
    // Below this many values a job stays on the caller's thread.
    private const int ParallelElements = 1 << 15;

    // Rows are reduced in float SIMD lanes a block at a time; blocks add up in double, so long rows keep their precision.
    private const int Block = 4096;

    internal unsafe struct Job
    {
        public float* X, Gamma, Beta, Y, Mean, InvStd, Dy, Dx, Partials;
        public float Eps;
        public int Rows, Length, Units, RowsPerSet;
    }

    internal static unsafe ReadOnlySpan<float> Read(float* p, int length) => p == null ? default : new ReadOnlySpan<float>(p, length);

    internal static unsafe Span<float> Write(float* p, int length) => p == null ? default : new Span<float>(p, length);

    internal static bool Splits(WorkerPool? pool, int rows, int length) => pool is { Threads: > 1 } && rows >= 2 && (long)rows * length >= ParallelElements;

    /// <summary>Normalizes rows; saves each row's mean and 1/√(var + ε) when the spans are not empty.</summary>
    public static unsafe void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, Span<float> y,
        Span<float> mean, Span<float> invStd, float eps, int rows, int length, int units, int rowsPerSet, WorkerPool? pool)
    {
        Debug.Assert(x.Length >= rows * length && y.Length >= rows * length, "x or y too short");
        Debug.Assert(mean.IsEmpty || (mean.Length >= rows && invStd.Length >= rows), "saved statistics too short");
        Debug.Assert(gamma.IsEmpty || gamma.Length >= units * rowsPerSet, "gamma too short");
        Debug.Assert(beta.IsEmpty || beta.Length >= units * rowsPerSet, "beta too short");
        if (Splits(pool, rows, length))
        {
            fixed (float* px = x, pg = gamma, pb = beta, py = y, pm = mean, pi = invStd)
            {
                var job = new Job { X = px, Gamma = pg, Beta = pb, Y = py, Mean = pm, InvStd = pi, Eps = eps, Rows = rows, Length = length, Units = units, RowsPerSet = rowsPerSet };
                pool!.RunChunks(&ForwardChunk, &job, Math.Min(rows, 4 * pool.Threads));
            }

            return;
        }

        ForwardRows(x, gamma, beta, y, mean, invStd, eps, length, units, rowsPerSet, 0, rows);
    }

    private static unsafe void ForwardChunk(void* state, int chunk, int chunks, int thread)
    {
        var j = (Job*)state;
        var (lo, hi) = WorkerPool.Share(j->Rows, chunk, chunks);
        int total = j->Rows * j->Length, affine = j->Units * j->RowsPerSet;
        ForwardRows(Read(j->X, total), Read(j->Gamma, affine), Read(j->Beta, affine), Write(j->Y, total), Write(j->Mean, j->Rows), Write(j->InvStd, j->Rows),
            j->Eps, j->Length, j->Units, j->RowsPerSet, lo, hi);
    }

    private static void ForwardRows(ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, Span<float> y,
        Span<float> mean, Span<float> invStd, float eps, int length, int units, int rowsPerSet, int lo, int hi)
    {
        int unit = length / units;
        for (int r = lo; r < hi; r++)
        {
            var xr = x.Slice(r * length, length);
            var yr = y.Slice(r * length, length);
            double sum = 0;
            for (int i = 0; i < length; i += Block) sum += TensorPrimitives.Sum(xr.Slice(i, Math.Min(Block, length - i)));
            float mu = (float)(sum / length);
            double squares = 0;
            for (int i = 0; i < length; i += Block) squares += PlaneMath.SumSquaredDeviations(xr.Slice(i, Math.Min(Block, length - i)), mu);
            float r0 = (float)(1.0 / Math.Sqrt(squares / length + eps));
            if (!mean.IsEmpty)
            {
                mean[r] = mu;
                invStd[r] = r0;
            }

            int first = (r % rowsPerSet) * units;
            if (unit == 1)
            {
                // An affine entry per value (layer norm).
                PlaneMath.Normalize(xr, mu, r0, 0f, yr);
                if (!gamma.IsEmpty) TensorPrimitives.Multiply(yr, gamma.Slice(first, length), yr);
                if (!beta.IsEmpty) TensorPrimitives.Add(yr, beta.Slice(first, length), yr);
                continue;
            }

            for (int u = 0; u < units; u++)
            {
                float scale = gamma.IsEmpty ? r0 : r0 * gamma[first + u];
                float shift = beta.IsEmpty ? 0f : beta[first + u];
                PlaneMath.Normalize(xr.Slice(u * unit, unit), mu, scale, shift, yr.Slice(u * unit, unit));
            }
        }
    }

    /// <summary>
    /// dL/dx through the row statistics: <c>dx = r·(w·dy − mean(w·dy) − x̂·mean(w·dy·x̂))</c> with w the affine scale,
    /// x̂ = (x − mean)·r. Per-unit sums of dy and dy·x go to <paramref name="partials"/> (2 per unit per row) for the
    /// parameter gradients when units are planes. An empty <paramref name="dx"/> skips it.
    /// </summary>
    public static unsafe void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> mean, ReadOnlySpan<float> invStd,
        Span<float> dx, Span<float> partials, int rows, int length, int units, int rowsPerSet, WorkerPool? pool)
    {
        Debug.Assert(dy.Length >= rows * length && x.Length >= rows * length, "dy or x too short");
        Debug.Assert(dx.IsEmpty || dx.Length >= rows * length, "dx too short");
        Debug.Assert(partials.IsEmpty || partials.Length >= 2 * rows * units, "partials too short");
        if (Splits(pool, rows, length))
        {
            fixed (float* pdy = dy, px = x, pg = gamma, pm = mean, pi = invStd, pdx = dx, pp = partials)
            {
                var job = new Job { Dy = pdy, X = px, Gamma = pg, Mean = pm, InvStd = pi, Dx = pdx, Partials = pp, Rows = rows, Length = length, Units = units, RowsPerSet = rowsPerSet };
                pool!.RunChunks(&BackwardChunk, &job, Math.Min(rows, 4 * pool.Threads));
            }

            return;
        }

        BackwardRows(dy, x, gamma, mean, invStd, dx, partials, length, units, rowsPerSet, 0, rows);
    }

    private static unsafe void BackwardChunk(void* state, int chunk, int chunks, int thread)
    {
        var j = (Job*)state;
        var (lo, hi) = WorkerPool.Share(j->Rows, chunk, chunks);
        int total = j->Rows * j->Length;
        BackwardRows(Read(j->Dy, total), Read(j->X, total), Read(j->Gamma, j->Units * j->RowsPerSet), Read(j->Mean, j->Rows), Read(j->InvStd, j->Rows),
            Write(j->Dx, j->Dx == null ? 0 : total), Write(j->Partials, j->Partials == null ? 0 : 2 * j->Rows * j->Units), j->Length, j->Units, j->RowsPerSet, lo, hi);
    }

    private static void BackwardRows(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> mean, ReadOnlySpan<float> invStd,
        Span<float> dx, Span<float> partials, int length, int units, int rowsPerSet, int lo, int hi)
    {
        int unit = length / units;
        for (int r = lo; r < hi; r++)
        {
            var dyr = dy.Slice(r * length, length);
            var xr = x.Slice(r * length, length);
            int first = (r % rowsPerSet) * units;
            float mu = mean[r], rs = invStd[r];

            // A = Σ w·dy and C = Σ w·dy·x, so that Σ w·dy·(x − mean) = C − mean·A.
            double a = 0, c = 0;
            if (unit == 1)
            {
                (a, c) = WeightedSums(dyr, xr, gamma.IsEmpty ? default : gamma.Slice(first, length));
            }
            else
            {
                for (int u = 0; u < units; u++)
                {
                    var dyu = dyr.Slice(u * unit, unit);
                    var xu = xr.Slice(u * unit, unit);
                    double sdy = 0, sdyx = 0;
                    for (int i = 0; i < unit; i += Block)
                    {
                        int w = Math.Min(Block, unit - i);
                        sdy += TensorPrimitives.Sum(dyu.Slice(i, w));
                        sdyx += TensorPrimitives.Dot(dyu.Slice(i, w), xu.Slice(i, w));
                    }

                    if (!partials.IsEmpty)
                    {
                        partials[2 * (r * units + u)] = (float)sdy;
                        partials[2 * (r * units + u) + 1] = (float)sdyx;
                    }

                    double g = gamma.IsEmpty ? 1.0 : gamma[first + u];
                    a += g * sdy;
                    c += g * sdyx;
                }
            }

            if (dx.IsEmpty) continue;
            var dxr = dx.Slice(r * length, length);
            double b = c - mu * a; // Σ w·dy·(x − mean)
            double r3 = (double)rs * rs * rs;
            // dx = r·w·dy + k·x + m with k = −r³·B/n and m = r³·B·mean/n − r·A/n.
            float k = (float)(-r3 * b / length);
            float m = (float)(r3 * b * mu / length - rs * a / length);
            if (unit == 1)
            {
                Combine(dyr, xr, gamma.IsEmpty ? default : gamma.Slice(first, length), rs, k, m, dxr);
                continue;
            }

            for (int u = 0; u < units; u++)
            {
                float scale = gamma.IsEmpty ? rs : rs * gamma[first + u];
                PlaneMath.Combine(dyr.Slice(u * unit, unit), xr.Slice(u * unit, unit), scale, k, m, dxr.Slice(u * unit, unit));
            }
        }
    }

    // (Σ g·dy, Σ g·dy·x) over a row, g = 1 when empty; float lanes per block, blocks in double.
    private static (double A, double C) WeightedSums(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> g)
    {
        if (g.IsEmpty)
        {
            double s = 0, d = 0;
            for (int i = 0; i < dy.Length; i += Block)
            {
                int w = Math.Min(Block, dy.Length - i);
                s += TensorPrimitives.Sum(dy.Slice(i, w));
                d += TensorPrimitives.Dot(dy.Slice(i, w), x.Slice(i, w));
            }

            return (s, d);
        }

        double a = 0, c = 0;
        int j = 0;
        while (j < dy.Length)
        {
            int end = Math.Min(dy.Length, j + Block);
            var va = Vector256<float>.Zero;
            var vc = Vector256<float>.Zero;
            for (; j + Vector256<float>.Count <= end; j += Vector256<float>.Count)
            {
                var gdy = Vector256.Create(dy.Slice(j, 8)) * Vector256.Create(g.Slice(j, 8));
                va += gdy;
                vc += gdy * Vector256.Create(x.Slice(j, 8));
            }

            float sa = Vector256.Sum(va), sc = Vector256.Sum(vc);
            for (; j < end; j++)
            {
                float gdy = dy[j] * g[j];
                sa += gdy;
                sc += gdy * x[j];
            }

            a += sa;
            c += sc;
        }

        return (a, c);
    }

    // dx = r·g·dy + k·x + m, g = 1 when empty.
    private static void Combine(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> g, float r, float k, float m, Span<float> dx)
    {
        if (g.IsEmpty)
        {
            PlaneMath.Combine(dy, x, r, k, m, dx);
            return;
        }

        int j = 0;
        var vr = Vector256.Create(r);
        var vk = Vector256.Create(k);
        var vm = Vector256.Create(m);
        for (; j + Vector256<float>.Count <= dy.Length; j += Vector256<float>.Count)
        {
            var v = vr * Vector256.Create(g.Slice(j, 8)) * Vector256.Create(dy.Slice(j, 8)) + vk * Vector256.Create(x.Slice(j, 8)) + vm;
            v.CopyTo(dx.Slice(j, 8));
        }

        for (; j < dy.Length; j++) dx[j] = r * g[j] * dy[j] + k * x[j] + m;
    }

    /// <summary>Per-channel dγ and dβ of group and instance norm from the backward's per-plane partial sums.</summary>
    public static void ChannelParameterGradients(ReadOnlySpan<float> partials, ReadOnlySpan<float> mean, ReadOnlySpan<float> invStd,
        Span<float> dgamma, Span<float> dbeta, int n, int channels, int groups)
    {
        int perGroup = channels / groups;
        for (int c = 0; c < channels; c++)
        {
            double gg = 0, gb = 0;
            for (int s = 0; s < n; s++)
            {
                int row = s * groups + c / perGroup;
                double sdy = partials[2 * (s * channels + c)], sdyx = partials[2 * (s * channels + c) + 1];
                gg += invStd[row] * (sdyx - mean[row] * sdy);
                gb += sdy;
            }

            if (!dgamma.IsEmpty) dgamma[c] += (float)gg;
            if (!dbeta.IsEmpty) dbeta[c] += (float)gb;
        }
    }
}
