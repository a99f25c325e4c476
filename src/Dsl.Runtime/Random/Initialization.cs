// PyTorch-default parameter initialization (uniform bounds) driven by SplitMix64.
using System.ComponentModel;

namespace Dsl.Runtime.Kernels;

/// <summary>
/// Parameter initialization matching the distributions of PyTorch's defaults for <c>nn.Conv*d</c> and <c>nn.Linear</c>
/// (same bounds; the random streams differ from PyTorch's, so values are not bit-identical).
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static class Initialization
{
    /// <summary>Fills <paramref name="values"/> with independent draws from <c>U(-bound, bound)</c>.</summary>
    /// <param name="values">Values to overwrite.</param>
    /// <param name="bound">Half-width of the interval.</param>
    /// <param name="rng">Random generator; advanced by one draw per element.</param>
    public static void Uniform(Span<float> values, float bound, ref SplitMix64 rng)
    {
        for (int i = 0; i < values.Length; i++) values[i] = rng.NextUniform(-bound, bound);
    }

    /// <summary>
    /// PyTorch's default weight init <c>kaiming_uniform_(a = sqrt(5))</c>: gain sqrt(2/(1+5)), bound
    /// <c>gain*sqrt(3/fanIn) = 1/sqrt(fanIn)</c>. The default bias init uses the same bound, so call this for biases too.
    /// </summary>
    /// <param name="weight">Values to overwrite.</param>
    /// <param name="fanIn"><c>inChannels/groups*kernelH*kernelW</c> for convolutions, <c>inFeatures</c> for linear layers.</param>
    /// <param name="rng">Random generator; advanced by one draw per element.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="fanIn"/> is not positive.</exception>
    public static void KaimingUniformDefault(Span<float> weight, int fanIn, ref SplitMix64 rng)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(fanIn);
        Uniform(weight, (float)(1.0 / Math.Sqrt(fanIn)), ref rng);
    }
}
