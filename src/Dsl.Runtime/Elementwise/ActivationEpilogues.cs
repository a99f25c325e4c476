// Activations for inference with the following batch norm fused in: one pass instead of two.

using System.ComponentModel;

namespace Dsl.Runtime.Kernels;

/// <summary>
/// <c>y[n, c, s] = act(x[n, c, s])·scale[c] + shift[c]</c> over <c>[n, channels, spatial]</c>, where scale and
/// shift are an inference batch norm's (<see cref="BatchNorm.ScaleShift"/>) that could not fold into a conv
/// or linear because an activation stands between them. The output may alias the input. Each plane is
/// written once: the activation and the affine map run over it while it is in cache.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static class ActivationEpilogues
{
    /// <summary>ReLU, then the per-channel scale and shift.</summary>
    /// <param name="x">Input.</param><param name="y">Output (may alias x).</param><param name="scale">Per-channel scale.</param>
    /// <param name="shift">Per-channel shift.</param><param name="n">Batch size.</param><param name="channels">Channels.</param><param name="spatial">Values per channel.</param>
    public static void Relu(ReadOnlySpan<float> x, Span<float> y, ReadOnlySpan<float> scale, ReadOnlySpan<float> shift, int n, int channels, int spatial)
    {
        for (int plane = 0, start = 0; plane < n * channels; plane++, start += spatial)
        {
            var o = y.Slice(start, spatial);
            Activations.ReluForward(x.Slice(start, spatial), o);
            PlaneMath.Normalize(o, 0f, scale[plane % channels], shift[plane % channels], o);
        }
    }

    /// <summary>Leaky ReLU, then the per-channel scale and shift.</summary>
    /// <param name="x">Input.</param><param name="y">Output (may alias x).</param><param name="scale">Per-channel scale.</param>
    /// <param name="shift">Per-channel shift.</param><param name="n">Batch size.</param><param name="channels">Channels.</param><param name="spatial">Values per channel.</param>
    /// <param name="negativeSlope">Slope for negative inputs.</param>
    public static void LeakyRelu(ReadOnlySpan<float> x, Span<float> y, ReadOnlySpan<float> scale, ReadOnlySpan<float> shift, int n, int channels, int spatial, float negativeSlope)
    {
        for (int plane = 0, start = 0; plane < n * channels; plane++, start += spatial)
        {
            var o = y.Slice(start, spatial);
            Activations.LeakyReluForward(x.Slice(start, spatial), o, negativeSlope);
            PlaneMath.Normalize(o, 0f, scale[plane % channels], shift[plane % channels], o);
        }
    }

    /// <summary>Sigmoid, then the per-channel scale and shift.</summary>
    /// <param name="x">Input.</param><param name="y">Output (may alias x).</param><param name="scale">Per-channel scale.</param>
    /// <param name="shift">Per-channel shift.</param><param name="n">Batch size.</param><param name="channels">Channels.</param><param name="spatial">Values per channel.</param>
    public static void Sigmoid(ReadOnlySpan<float> x, Span<float> y, ReadOnlySpan<float> scale, ReadOnlySpan<float> shift, int n, int channels, int spatial)
    {
        for (int plane = 0, start = 0; plane < n * channels; plane++, start += spatial)
        {
            var o = y.Slice(start, spatial);
            Activations.SigmoidForward(x.Slice(start, spatial), o);
            PlaneMath.Normalize(o, 0f, scale[plane % channels], shift[plane % channels], o);
        }
    }

    /// <summary>Tanh, then the per-channel scale and shift.</summary>
    /// <param name="x">Input.</param><param name="y">Output (may alias x).</param><param name="scale">Per-channel scale.</param>
    /// <param name="shift">Per-channel shift.</param><param name="n">Batch size.</param><param name="channels">Channels.</param><param name="spatial">Values per channel.</param>
    public static void Tanh(ReadOnlySpan<float> x, Span<float> y, ReadOnlySpan<float> scale, ReadOnlySpan<float> shift, int n, int channels, int spatial)
    {
        for (int plane = 0, start = 0; plane < n * channels; plane++, start += spatial)
        {
            var o = y.Slice(start, spatial);
            Activations.TanhForward(x.Slice(start, spatial), o);
            PlaneMath.Normalize(o, 0f, scale[plane % channels], shift[plane % channels], o);
        }
    }
}
