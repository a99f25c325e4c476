// The lane sums of many 16-lane accumulators at once, each exactly as Vector512.Sum adds it.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Dsl.Runtime.Kernels;

/// <summary>
/// Sums the 16 lanes of each of 16 (or 8) accumulators into one vector, lane i the sum of accumulator i. A dot
/// product kernel ends with one such sum per output: <see cref="Vector512.Sum{T}(Vector512{T})"/> on each costs
/// about eight shuffles and adds per accumulator, one after the other (at batch 8, 784 → 512 → 512, the sums took
/// 13 of 72 µs); here the shuffles of one step serve several accumulators, about three instructions per sum.
/// Each sum adds in <see cref="Vector512.Sum{T}(Vector512{T})"/>'s order, so the bits are the same: within each
/// 128-bit quarter (v0 + v1) + (v2 + v3), then (quarter 0 + quarter 1) + (quarter 2 + quarter 3); a test checks it.
/// AVX-512 only (<see cref="Avx512F"/>); the callers are the 512-bit kernels.
/// </summary>
internal static class LaneSums
{
    /// <summary>Lane i: the sum of the lanes of <c>a{i}</c>, in <see cref="Vector512.Sum{T}(Vector512{T})"/>'s order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Sum16(
        Vector512<float> a0, Vector512<float> a1, Vector512<float> a2, Vector512<float> a3,
        Vector512<float> a4, Vector512<float> a5, Vector512<float> a6, Vector512<float> a7,
        Vector512<float> a8, Vector512<float> a9, Vector512<float> a10, Vector512<float> a11,
        Vector512<float> a12, Vector512<float> a13, Vector512<float> a14, Vector512<float> a15) =>
        Halves(
            Halves(Quarters(a0, a1, a2, a3), Quarters(a4, a5, a6, a7)),
            Halves(Quarters(a8, a9, a10, a11), Quarters(a12, a13, a14, a15)));

    /// <summary>Lane i: the sum of the lanes of <c>a{i}</c>, in <see cref="Vector512.Sum{T}(Vector512{T})"/>'s order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Sum8(
        Vector512<float> a0, Vector512<float> a1, Vector512<float> a2, Vector512<float> a3,
        Vector512<float> a4, Vector512<float> a5, Vector512<float> a6, Vector512<float> a7)
    {
        var halves = Halves(Quarters(a0, a1, a2, a3), Quarters(a4, a5, a6, a7));
        return Halves(halves, halves).GetLower();
    }

    // Quarter q of the result: [Q(a, q), Q(b, q), Q(c, q), Q(d, q)], Q(v, q) = (v[4q] + v[4q+1]) + (v[4q+2] + v[4q+3]).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Quarters(Vector512<float> a, Vector512<float> b, Vector512<float> c, Vector512<float> d) =>
        Pairs(Pairs(a, b), Pairs(c, d));

    // In each 128-bit quarter: [x0 + x1, x2 + x3, y0 + y1, y2 + y3].
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Pairs(Vector512<float> x, Vector512<float> y) =>
        Avx512F.Shuffle(x, y, 0x88) + Avx512F.Shuffle(x, y, 0xDD);

    // [r.q0 + r.q1, r.q2 + r.q3, s.q0 + s.q1, s.q2 + s.q3], by 128-bit quarters.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Halves(Vector512<float> r, Vector512<float> s) =>
        Avx512F.Shuffle4x128(r, s, 0x88) + Avx512F.Shuffle4x128(r, s, 0xDD);
}
