using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Dsl.Runtime.Kernels;
using Xunit;

namespace Dsl.Runtime.Tests;

// LaneSums gives the small-batch linear kernels their lane sums sixteen at a time; the wide and narrow blocks
// have the same bits only if each sum adds in Vector512.Sum's order.
public class LaneSumsTests
{
    public static TheoryData<int> Seeds => new() { 1, 2, 3 };

    [Theory]
    [MemberData(nameof(Seeds))]
    public void EachLaneIsVector512SumBitForBit(int seed)
    {
        if (!Avx512F.IsSupported) return; // the 512-bit kernels (and this helper) run only with AVX-512
        var rng = new Random(seed);
        for (int trial = 0; trial < 2000; trial++)
        {
            var a = new Vector512<float>[16];
            for (int i = 0; i < 16; i++) a[i] = Vector512.Create(Values(rng));
            var sums16 = LaneSums.Sum16(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15]);
            var sums8 = LaneSums.Sum8(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]);
            for (int i = 0; i < 16; i++)
            {
                float expected = Vector512.Sum(a[i]);
                Assert.Equal(BitConverter.SingleToInt32Bits(expected), BitConverter.SingleToInt32Bits(sums16[i]));
                if (i < 8) Assert.Equal(BitConverter.SingleToInt32Bits(expected), BitConverter.SingleToInt32Bits(sums8[i]));
            }
        }
    }

    [Fact]
    public void SumsDifferFromOtherOrders()
    {
        // The check above can fail: on these lanes a left-to-right sum and Vector512.Sum's tree differ.
        if (!Avx512F.IsSupported) return;
        // 1e8 then fifteen ones: left to right each 1 is lost (floats near 1e8 are 8 apart); the tree adds the ones
        // to each other first.
        var lanes = Enumerable.Repeat(1f, 16).ToArray();
        lanes[0] = 1e8f;
        var v = Vector512.Create(lanes);
        float sequential = 0;
        foreach (float l in lanes) sequential += l;
        float tree = LaneSums.Sum16(v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v)[0];
        Assert.Equal(Vector512.Sum(v), tree);
        Assert.NotEqual(sequential, tree);
    }

    // Magnitudes from 1e-3 to 1e3 and both signs, so that the order of the additions shows in the last bits;
    // now and then a zero of either sign.
    private static float[] Values(Random rng)
    {
        var values = new float[16];
        for (int i = 0; i < 16; i++)
        {
            values[i] = rng.Next(20) switch
            {
                0 => 0f,
                1 => -0f,
                _ => (float)((rng.NextDouble() - 0.5) * Math.Pow(10, rng.Next(-3, 4))),
            };
        }

        return values;
    }
}
