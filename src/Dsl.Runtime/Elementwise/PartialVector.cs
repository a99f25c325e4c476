// The first `count` lanes of a 256-bit vector, loaded or stored without touching the memory past them.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Dsl.Runtime.Kernels;

/// <summary>
/// Loads and stores of a row's last 1–7 floats as one vector: lanes at and past <c>count</c> are neither read
/// (they load as zero) nor written. With AVX-512 these are the masked moves (one instruction each); with AVX
/// alone, <c>vmaskmovps</c> (which AMD's cores run as a slow microcoded store); without either, one float at a time.
/// </summary>
internal static unsafe class PartialVector
{
    /// <summary>Lanes below <paramref name="count"/> (0–8): all bits set, the others zero.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Mask(int count) =>
        Vector256.LessThan(Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7), Vector256.Create(count)).AsSingle();

    /// <summary>The first <paramref name="count"/> floats at <paramref name="p"/>, zero in the other lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load(float* p, int count)
    {
        var mask = Mask(count);
        if (Avx512F.VL.IsSupported) return Avx512F.VL.MaskLoad(p, mask, Vector256<float>.Zero);
        if (Avx.IsSupported) return Avx.MaskLoad(p, mask);
        var v = Vector256<float>.Zero;
        for (int i = 0; i < count; i++) v = v.WithElement(i, p[i]);
        return v;
    }

    /// <summary>Stores the first <paramref name="count"/> (0–16) lanes of a 512-bit <paramref name="v"/> at <paramref name="p"/>; needs AVX-512.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(float* p, Vector512<float> v, int count) =>
        Avx512F.MaskStore(p, Vector512.LessThan(Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), Vector512.Create(count)).AsSingle(), v);

    /// <summary>Stores the first <paramref name="count"/> lanes of <paramref name="v"/> at <paramref name="p"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(float* p, Vector256<float> v, int count)
    {
        var mask = Mask(count);
        if (Avx512F.VL.IsSupported) Avx512F.VL.MaskStore(p, mask, v);
        else if (Avx.IsSupported) Avx.MaskStore(p, mask, v);
        else
        {
            for (int i = 0; i < count; i++) p[i] = v.GetElement(i);
        }
    }
}
