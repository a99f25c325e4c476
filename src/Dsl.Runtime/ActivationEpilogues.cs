// Activations for inference with the following batch norm fused in: one pass instead of two.
namespace Dsl.Runtime;

/// <summary>
/// <c>y[n, c, s] = act(x[n, c, s])·scale[c] + shift[c]</c> over <c>[n, channels, spatial]</c>, where scale and
/// shift are an inference batch norm's (<see cref="BatchNorm.ScaleShift"/>) that could not fold into a conv
/// or linear because an activation stands between them. The output may alias the input.
/// </summary>
public static class ActivationEpilogues
{
    /// <summary>ReLU, then the per-channel scale and shift.</summary>
    /// <param name="x">Input.</param><param name="y">Output (may alias x).</param><param name="scale">Per-channel scale.</param>
    /// <param name="shift">Per-channel shift.</param><param name="n">Batch size.</param><param name="channels">Channels.</param><param name="spatial">Values per channel.</param>
    public static void Relu(ReadOnlySpan<float> x, Span<float> y, ReadOnlySpan<float> scale, ReadOnlySpan<float> shift, int n, int channels, int spatial) =>
        Apply(x, y, scale, shift, n, channels, spatial, static (v, _) => v > 0f || float.IsNaN(v) ? v : 0f, 0f);

    /// <summary>Leaky ReLU, then the per-channel scale and shift.</summary>
    /// <param name="x">Input.</param><param name="y">Output (may alias x).</param><param name="scale">Per-channel scale.</param>
    /// <param name="shift">Per-channel shift.</param><param name="n">Batch size.</param><param name="channels">Channels.</param><param name="spatial">Values per channel.</param>
    /// <param name="negativeSlope">Slope for negative inputs.</param>
    public static void LeakyRelu(ReadOnlySpan<float> x, Span<float> y, ReadOnlySpan<float> scale, ReadOnlySpan<float> shift, int n, int channels, int spatial, float negativeSlope) =>
        Apply(x, y, scale, shift, n, channels, spatial, static (v, slope) => v > 0f ? v : v * slope, negativeSlope);

    /// <summary>Sigmoid, then the per-channel scale and shift.</summary>
    /// <param name="x">Input.</param><param name="y">Output (may alias x).</param><param name="scale">Per-channel scale.</param>
    /// <param name="shift">Per-channel shift.</param><param name="n">Batch size.</param><param name="channels">Channels.</param><param name="spatial">Values per channel.</param>
    public static void Sigmoid(ReadOnlySpan<float> x, Span<float> y, ReadOnlySpan<float> scale, ReadOnlySpan<float> shift, int n, int channels, int spatial) =>
        Apply(x, y, scale, shift, n, channels, spatial, static (v, _) => 1f / (1f + MathF.Exp(-v)), 0f);

    /// <summary>Tanh, then the per-channel scale and shift.</summary>
    /// <param name="x">Input.</param><param name="y">Output (may alias x).</param><param name="scale">Per-channel scale.</param>
    /// <param name="shift">Per-channel shift.</param><param name="n">Batch size.</param><param name="channels">Channels.</param><param name="spatial">Values per channel.</param>
    public static void Tanh(ReadOnlySpan<float> x, Span<float> y, ReadOnlySpan<float> scale, ReadOnlySpan<float> shift, int n, int channels, int spatial) =>
        Apply(x, y, scale, shift, n, channels, spatial, static (v, _) => MathF.Tanh(v), 0f);

    // Static lambdas compile to cached delegates: no allocation per call.
    private static void Apply(ReadOnlySpan<float> x, Span<float> y, ReadOnlySpan<float> scale, ReadOnlySpan<float> shift, int n, int channels, int spatial,
        Func<float, float, float> activation, float argument)
    {
        int index = 0;
        for (int s = 0; s < n; s++)
        {
            for (int c = 0; c < channels; c++)
            {
                float sc = scale[c], sh = shift[c];
                for (int i = 0; i < spatial; i++, index++) y[index] = activation(x[index], argument) * sc + sh;
            }
        }
    }
}
