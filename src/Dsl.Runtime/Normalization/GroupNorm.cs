// Group normalization (PyTorch's nn.GroupNorm): each sample's channels in groups, each group by its own statistics.
using System.ComponentModel;
using System.Diagnostics;

namespace Dsl.Runtime.Kernels;

/// <summary>
/// Group normalization with PyTorch's <c>nn.GroupNorm</c> semantics on <c>[n, channels, spatial]</c>: per sample and
/// group of <c>channels / groups</c> consecutive channels, mean and biased variance over the group's values;
/// <c>y = (x − mean)·invstd·γ[c] + β[c]</c>. The same in training and inference, valid at batch 1.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static class GroupNorm
{
    /// <summary>Training forward: normalizes and saves each (sample, group)'s mean and <c>1/√(var + ε)</c>.</summary>
    /// <param name="x">Input <c>[n, channels, spatial]</c>.</param>
    /// <param name="gamma">Scale <c>[channels]</c>, or empty (not affine).</param>
    /// <param name="beta">Shift <c>[channels]</c>, or empty.</param>
    /// <param name="y">Output; overwritten.</param>
    /// <param name="saveMean">Receives the means <c>[n, groups]</c>.</param>
    /// <param name="saveInvStd">Receives <c>1/√(var + ε)</c> <c>[n, groups]</c>.</param>
    /// <param name="eps">Added to the variance.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="channels">Channels.</param>
    /// <param name="spatial">Values per channel per sample.</param>
    /// <param name="groups">Groups; divides <paramref name="channels"/>.</param>
    /// <param name="pool">Splits the (sample, group) rows across its threads when large; null stays on the caller. The same bits either way.</param>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, Span<float> y,
        Span<float> saveMean, Span<float> saveInvStd, float eps, int n, int channels, int spatial, int groups, WorkerPool? pool = null)
    {
        Debug.Assert(channels % groups == 0, "groups must divide channels");
        int perGroup = channels / groups;
        SampleNormalization.Forward(x, gamma, beta, y, saveMean, saveInvStd, eps, n * groups, perGroup * spatial, perGroup, groups, pool);
    }

    /// <summary>Inference: the forward without saving anything.</summary>
    /// <param name="x">Input <c>[n, channels, spatial]</c>.</param>
    /// <param name="gamma">Scale, or empty.</param>
    /// <param name="beta">Shift, or empty.</param>
    /// <param name="y">Output; overwritten (may be <paramref name="x"/>).</param>
    /// <param name="eps">Added to the variance.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="channels">Channels.</param>
    /// <param name="spatial">Values per channel per sample.</param>
    /// <param name="groups">Groups.</param>
    /// <param name="pool">Splits the rows when large; null stays on the caller.</param>
    public static void Infer(ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, Span<float> y,
        float eps, int n, int channels, int spatial, int groups, WorkerPool? pool = null)
    {
        int perGroup = channels / groups;
        SampleNormalization.Forward(x, gamma, beta, y, default, default, eps, n * groups, perGroup * spatial, perGroup, groups, pool);
    }

    /// <summary>Floats of <c>partials</c> that <see cref="Backward"/> needs: two per channel per sample.</summary>
    /// <param name="n">Batch size.</param>
    /// <param name="channels">Channels.</param>
    /// <returns>The length.</returns>
    public static int PartialsLength(int n, int channels) => 2 * n * channels;

    /// <summary>Backward: writes <c>dx</c> (skipped when empty) and adds dγ, dβ per channel.</summary>
    /// <param name="dy">dL/dy <c>[n, channels, spatial]</c>.</param>
    /// <param name="x">The forward's input.</param>
    /// <param name="gamma">Scale, or empty.</param>
    /// <param name="saveMean">The forward's means <c>[n, groups]</c>.</param>
    /// <param name="saveInvStd">The forward's <c>1/√(var + ε)</c>.</param>
    /// <param name="partials">Scratch of <see cref="PartialsLength"/> floats: per-plane Σdy and Σdy·x.</param>
    /// <param name="dx">Receives dL/dx; empty to skip.</param>
    /// <param name="dgamma">dL/dγ <c>[channels]</c>, added to; empty when not affine.</param>
    /// <param name="dbeta">dL/dβ <c>[channels]</c>, added to; empty when not affine.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="channels">Channels.</param>
    /// <param name="spatial">Values per channel per sample.</param>
    /// <param name="groups">Groups.</param>
    /// <param name="pool">Splits the rows when large; null stays on the caller. The same bits either way.</param>
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> saveMean, ReadOnlySpan<float> saveInvStd,
        Span<float> partials, Span<float> dx, Span<float> dgamma, Span<float> dbeta, int n, int channels, int spatial, int groups, WorkerPool? pool = null)
    {
        int perGroup = channels / groups;
        SampleNormalization.Backward(dy, x, gamma, saveMean, saveInvStd, dx, partials, n * groups, perGroup * spatial, perGroup, groups, pool);
        if (!dgamma.IsEmpty || !dbeta.IsEmpty) SampleNormalization.ChannelParameterGradients(partials, saveMean, saveInvStd, dgamma, dbeta, n, channels, groups);
    }
}
