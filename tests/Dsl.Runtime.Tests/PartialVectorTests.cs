using System.Runtime.Intrinsics;
using Dsl.Runtime.Kernels;
using Xunit;

namespace Dsl.Runtime.Tests;

// The row tails of the grid's output copy, the phase split and Winograd's 7-column rows: the lanes past `count`
// are neither read nor written.
public unsafe class PartialVectorTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(7)]
    [InlineData(8)]
    public void Loads_and_stores_only_the_first_count_lanes(int count)
    {
        var source = new float[16];
        for (int i = 0; i < source.Length; i++) source[i] = i + 1;
        source[count] = float.NaN; // would show up in the loaded vector if read
        var target = new float[16];
        target.AsSpan().Fill(-5f);
        fixed (float* s = source, t = target)
        {
            var v = PartialVector.Load(s, count);
            for (int i = 0; i < 8; i++) Assert.Equal(i < count ? i + 1f : 0f, v.GetElement(i));
            PartialVector.Store(t, Vector256.Create(9f), count);
        }

        for (int i = 0; i < target.Length; i++) Assert.Equal(i < count ? 9f : -5f, target[i]);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(12)]
    [InlineData(16)]
    public void A_512_bit_store_writes_only_the_first_count_lanes(int count)
    {
        if (!System.Runtime.Intrinsics.X86.Avx512F.IsSupported) return; // only called where AVX-512 is
        var target = new float[32];
        target.AsSpan().Fill(-5f);
        fixed (float* t = target) PartialVector.Store(t, Vector512.Create(9f), count);
        for (int i = 0; i < target.Length; i++) Assert.Equal(i < count ? 9f : -5f, target[i]);
    }
}
