// Inverted dropout: random keep/drop mask scaled by 1/(1-p), and its backward.
using System.ComponentModel;
using System.Diagnostics;

namespace Dsl.Runtime.Kernels;

/// <summary>Inverted dropout as in PyTorch's <c>nn.Dropout</c> in training mode (at inference dropout is the identity and is not called).</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static class Dropout
{
    /// <summary>
    /// Draws <c>mask[i] = 0</c> with probability <paramref name="p"/>, else <c>1/(1-p)</c>, and computes <c>y = x*mask</c>.
    /// With <c>p == 0</c> the mask is all ones and no random numbers are drawn; with <c>p == 1</c> everything is dropped.
    /// </summary>
    /// <param name="x">Input.</param>
    /// <param name="y">Output (may alias <paramref name="x"/>).</param>
    /// <param name="mask">Receives the mask, needed by <see cref="Backward"/>.</param>
    /// <param name="p">Drop probability in [0, 1].</param>
    /// <param name="rng">Random generator; advanced by one draw per element when 0 &lt; p &lt; 1.</param>
    public static void Forward(ReadOnlySpan<float> x, Span<float> y, Span<float> mask, float p, ref SplitMix64 rng)
    {
        Debug.Assert(y.Length >= x.Length && mask.Length >= x.Length, "buffer too short");
        Debug.Assert(p >= 0f && p <= 1f, "p must be in [0, 1]");

        int count = x.Length;
        if (p <= 0f)
        {
            mask.Slice(0, count).Fill(1f);
        }
        else if (p >= 1f)
        {
            // 1/(1-p) would be infinite; PyTorch returns zeros.
            mask.Slice(0, count).Clear();
        }
        else
        {
            float keepScale = 1f / (1f - p);
            for (int i = 0; i < count; i++) mask[i] = rng.NextSingle() < p ? 0f : keepScale;
        }

        for (int i = 0; i < count; i++) y[i] = x[i] * mask[i];
    }

    /// <summary><c>dx = dy*mask</c>.</summary>
    /// <param name="dy">Output gradient.</param>
    /// <param name="mask">Mask from <see cref="Forward"/>.</param>
    /// <param name="dx">Input gradient (may alias <paramref name="dy"/>).</param>
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> mask, Span<float> dx)
    {
        Debug.Assert(mask.Length >= dy.Length && dx.Length >= dy.Length, "buffer too short");
        for (int i = 0; i < dy.Length; i++) dx[i] = dy[i] * mask[i];
    }
}
