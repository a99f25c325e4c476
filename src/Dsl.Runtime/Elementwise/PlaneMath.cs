// Vectorized per-plane reductions and affine maps for batch norm's passes over [n, channels, spatial] data.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Dsl.Runtime.Kernels;

/// <summary>
/// The inner loops of batch norm, 8 floats at a time: a plane (one sample, one channel) is reduced in float
/// SIMD lanes, and callers add plane results into a double, so long channels keep their precision.
/// </summary>
internal static class PlaneMath
{
    /// <summary>Σ (x − mean)².</summary>
    public static float SumSquaredDeviations(ReadOnlySpan<float> x, float mean)
    {
        ref float p = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(x);
        int i = 0;
        var m = Vector256.Create(mean);
        var acc0 = Vector256<float>.Zero;
        var acc1 = Vector256<float>.Zero;
        for (; i <= x.Length - 16; i += 16)
        {
            var d0 = Vector256.LoadUnsafe(ref p, (nuint)i) - m;
            var d1 = Vector256.LoadUnsafe(ref p, (nuint)(i + 8)) - m;
            acc0 += d0 * d0;
            acc1 += d1 * d1;
        }

        float sum = Vector256.Sum(acc0 + acc1);
        for (; i < x.Length; i++)
        {
            float d = Unsafe.Add(ref p, i) - mean;
            sum += d * d;
        }

        return sum;
    }

    /// <summary>(Σ dy, Σ dy·(x − mean)).</summary>
    public static (float SumDy, float SumDyCentered) GradientSums(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, float mean)
    {
        ref float pd = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(dy);
        ref float px = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(x);
        var m = Vector256.Create(mean);
        var sumDy = Vector256<float>.Zero;
        var sumDyXc = Vector256<float>.Zero;
        int i = 0;
        for (; i <= dy.Length - 8; i += 8)
        {
            var d = Vector256.LoadUnsafe(ref pd, (nuint)i);
            sumDy += d;
            sumDyXc += d * (Vector256.LoadUnsafe(ref px, (nuint)i) - m);
        }

        float a = Vector256.Sum(sumDy), b = Vector256.Sum(sumDyXc);
        for (; i < dy.Length; i++)
        {
            float d = Unsafe.Add(ref pd, i);
            a += d;
            b += d * (Unsafe.Add(ref px, i) - mean);
        }

        return (a, b);
    }

    /// <summary><c>dx = dy·s + x·a + b</c>, the shape of both batch-norm input gradients once per-channel sums are known.</summary>
    public static void Combine(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, float s, float a, float b, Span<float> dx)
    {
        ref float pd = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(dy);
        ref float px = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(x);
        ref float po = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(dx);
        var vs = Vector256.Create(s);
        var va = Vector256.Create(a);
        var vb = Vector256.Create(b);
        int i = 0;
        for (; i <= dy.Length - 8; i += 8)
        {
            var r = Vector256.LoadUnsafe(ref pd, (nuint)i) * vs + Vector256.LoadUnsafe(ref px, (nuint)i) * va + vb;
            r.StoreUnsafe(ref po, (nuint)i);
        }

        for (; i < dy.Length; i++) Unsafe.Add(ref po, i) = Unsafe.Add(ref pd, i) * s + Unsafe.Add(ref px, i) * a + b;
    }

    /// <summary><c>y = (x − mean)·scale + shift</c>; subtracting first keeps precision when the mean is large.</summary>
    public static void Normalize(ReadOnlySpan<float> x, float mean, float scale, float shift, Span<float> y)
    {
        ref float px = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(x);
        ref float py = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(y);
        var m = Vector256.Create(mean);
        var sc = Vector256.Create(scale);
        var sh = Vector256.Create(shift);
        int i = 0;
        for (; i <= x.Length - 8; i += 8) ((Vector256.LoadUnsafe(ref px, (nuint)i) - m) * sc + sh).StoreUnsafe(ref py, (nuint)i);
        for (; i < x.Length; i++) Unsafe.Add(ref py, i) = (Unsafe.Add(ref px, i) - mean) * scale + shift;
    }
}
