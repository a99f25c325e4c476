// Layer normalization (PyTorch's nn.LayerNorm): each row of the normalized shape by its own statistics.
using System.ComponentModel;
using System.Diagnostics;
using System.Runtime.Intrinsics;

namespace Dsl.Runtime.Kernels;

/// <summary>
/// Layer normalization with PyTorch's <c>nn.LayerNorm</c> semantics on <c>rows</c> rows of <c>length</c> values (the
/// normalized shape): per row, mean and biased variance; <c>y = (x − mean)·invstd·γ + β</c> with γ and β of
/// <c>length</c> entries. The same in training and inference: statistics never cross samples.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static class LayerNorm
{
    /// <summary>Training forward: normalizes and saves each row's mean and <c>1/√(var + ε)</c> for <see cref="Backward"/>.</summary>
    /// <param name="x">Input <c>[rows, length]</c>.</param>
    /// <param name="gamma">Scale <c>[length]</c>, or empty (no elementwise affine).</param>
    /// <param name="beta">Shift <c>[length]</c>, or empty.</param>
    /// <param name="y">Output, the shape of <paramref name="x"/>; overwritten.</param>
    /// <param name="saveMean">Receives the mean of each row.</param>
    /// <param name="saveInvStd">Receives <c>1/√(var + ε)</c> of each row.</param>
    /// <param name="eps">Added to the variance.</param>
    /// <param name="rows">Rows: the batch times the rows per sample.</param>
    /// <param name="length">Values in the normalized shape.</param>
    /// <param name="pool">Splits the rows across its threads when large; null stays on the caller. The same bits either way.</param>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, Span<float> y,
        Span<float> saveMean, Span<float> saveInvStd, float eps, int rows, int length, WorkerPool? pool = null) =>
        SampleNormalization.Forward(x, gamma, beta, y, saveMean, saveInvStd, eps, rows, length, length, 1, pool);

    /// <summary>Inference: the forward without saving anything.</summary>
    /// <param name="x">Input <c>[rows, length]</c>.</param>
    /// <param name="gamma">Scale, or empty.</param>
    /// <param name="beta">Shift, or empty.</param>
    /// <param name="y">Output; overwritten (may be <paramref name="x"/>).</param>
    /// <param name="eps">Added to the variance.</param>
    /// <param name="rows">Rows.</param>
    /// <param name="length">Values in the normalized shape.</param>
    /// <param name="pool">Splits the rows when large; null stays on the caller.</param>
    public static void Infer(ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, Span<float> y,
        float eps, int rows, int length, WorkerPool? pool = null) =>
        SampleNormalization.Forward(x, gamma, beta, y, default, default, eps, rows, length, length, 1, pool);

    /// <summary>
    /// Backward: writes <c>dx</c> (skipped when empty) and adds <c>dγ = Σ dy·x̂</c>, <c>dβ = Σ dy</c> over the rows.
    /// </summary>
    /// <param name="dy">dL/dy <c>[rows, length]</c>.</param>
    /// <param name="x">The forward's input.</param>
    /// <param name="gamma">Scale, or empty.</param>
    /// <param name="saveMean">The forward's row means.</param>
    /// <param name="saveInvStd">The forward's row <c>1/√(var + ε)</c>.</param>
    /// <param name="dx">Receives dL/dx; empty to skip.</param>
    /// <param name="dgamma">dL/dγ, added to; empty when not affine.</param>
    /// <param name="dbeta">dL/dβ, added to; empty when there is no bias.</param>
    /// <param name="rows">Rows.</param>
    /// <param name="length">Values in the normalized shape.</param>
    /// <param name="pool">Splits rows (dx) and columns (dγ, dβ) when large; null stays on the caller. The same bits either way.</param>
    public static unsafe void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> saveMean, ReadOnlySpan<float> saveInvStd,
        Span<float> dx, Span<float> dgamma, Span<float> dbeta, int rows, int length, WorkerPool? pool = null)
    {
        Debug.Assert(dgamma.IsEmpty || dgamma.Length >= length, "dgamma too short");
        Debug.Assert(dbeta.IsEmpty || dbeta.Length >= length, "dbeta too short");
        if (!dx.IsEmpty) SampleNormalization.Backward(dy, x, gamma, saveMean, saveInvStd, dx, default, rows, length, length, 1, pool);
        if (dgamma.IsEmpty && dbeta.IsEmpty) return;
        int units = (length + ColumnUnit - 1) / ColumnUnit;
        if (pool is { Threads: > 1 } && units >= 2 && (long)rows * length >= 1 << 15)
        {
            fixed (float* pdy = dy, px = x, pm = saveMean, pi = saveInvStd, pg = dgamma, pb = dbeta)
            {
                var job = new SampleNormalization.Job { Dy = pdy, X = px, Mean = pm, InvStd = pi, Gamma = pg, Beta = pb, Rows = rows, Length = length, Units = units };
                pool.RunChunks(&ColumnChunk, &job, Math.Min(units, 4 * pool.Threads));
            }

            return;
        }

        ParameterGradients(dy, x, saveMean, saveInvStd, dgamma, dbeta, rows, length, 0, length);
    }

    // Columns of dγ and dβ per share: whole cache lines, so no two threads write one line.
    private const int ColumnUnit = 64;

    private static unsafe void ColumnChunk(void* state, int chunk, int chunks, int thread)
    {
        var j = (SampleNormalization.Job*)state;
        int total = j->Rows * j->Length;
        var (first, last) = WorkerPool.Share(j->Units, chunk, chunks);
        int lo = first * ColumnUnit, hi = Math.Min(j->Length, last * ColumnUnit);
        ParameterGradients(SampleNormalization.Read(j->Dy, total), SampleNormalization.Read(j->X, total), SampleNormalization.Read(j->Mean, j->Rows),
            SampleNormalization.Read(j->InvStd, j->Rows), SampleNormalization.Write(j->Gamma, j->Gamma == null ? 0 : j->Length),
            SampleNormalization.Write(j->Beta, j->Beta == null ? 0 : j->Length), j->Rows, j->Length, lo, hi);
    }

    // Columns [lo, hi): dγ += Σ_rows dy·(x − mean)·invstd, dβ += Σ_rows dy.
    private static void ParameterGradients(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> mean, ReadOnlySpan<float> invStd,
        Span<float> dgamma, Span<float> dbeta, int rows, int length, int lo, int hi)
    {
        for (int r = 0; r < rows; r++)
        {
            var dyr = dy.Slice(r * length, length);
            var xr = x.Slice(r * length, length);
            var vm = Vector256.Create(mean[r]);
            var vr = Vector256.Create(invStd[r]);
            int j = lo;
            if (!dgamma.IsEmpty)
            {
                for (; j + 8 <= hi; j += 8)
                {
                    var g = Vector256.Create(dgamma.Slice(j, 8)) + Vector256.Create(dyr.Slice(j, 8)) * ((Vector256.Create(xr.Slice(j, 8)) - vm) * vr);
                    g.CopyTo(dgamma.Slice(j, 8));
                }

                for (; j < hi; j++) dgamma[j] += dyr[j] * ((xr[j] - mean[r]) * invStd[r]);
            }

            if (!dbeta.IsEmpty)
            {
                for (j = lo; j + 8 <= hi; j += 8) (Vector256.Create(dbeta.Slice(j, 8)) + Vector256.Create(dyr.Slice(j, 8))).CopyTo(dbeta.Slice(j, 8));
                for (; j < hi; j++) dbeta[j] += dyr[j];
            }
        }
    }
}
