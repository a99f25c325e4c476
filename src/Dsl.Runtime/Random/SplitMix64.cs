// Small, seedable, allocation-free random number generator used for dropout masks and weight initialization.
using System.ComponentModel;

namespace Dsl.Runtime.Kernels;

/// <summary>
/// SplitMix64 generator (Steele, Lea and Flood, 2014): a 64-bit counter passed through a bijective mixing function.
/// Deterministic for a given seed on every platform, which keeps generated models reproducible.
/// It is a mutable struct: pass it by <c>ref</c> so that the state advances.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public struct SplitMix64
{
    private ulong _state;

    /// <summary>Creates a generator whose sequence is fully determined by <paramref name="seed"/>.</summary>
    /// <param name="seed">Any 64-bit value (0 is fine).</param>
    public SplitMix64(ulong seed) => _state = seed;

    /// <summary>The generator's state: <c>new SplitMix64(State)</c> continues the same sequence (checkpoints save it).</summary>
    public readonly ulong State => _state;

    /// <summary>Returns the next 64 uniformly distributed bits.</summary>
    /// <returns>A uniformly distributed 64-bit value.</returns>
    public ulong NextUInt64()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Returns a float uniformly distributed in [0, 1) with 24 random bits (every value is exactly representable).</summary>
    /// <returns>A value in [0, 1).</returns>
    public float NextSingle() => (NextUInt64() >> 40) * (1f / 16777216f);

    /// <summary>Returns <c>low + (high - low) * NextSingle()</c>, like PyTorch's <c>uniform_(low, high)</c>.</summary>
    /// <param name="low">Lower bound (inclusive).</param>
    /// <param name="high">Upper bound (exclusive up to float rounding).</param>
    /// <returns>A value in [low, high].</returns>
    public float NextUniform(float low, float high) => low + (high - low) * NextSingle();
}
