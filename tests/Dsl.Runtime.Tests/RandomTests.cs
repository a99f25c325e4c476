// SplitMix64, dropout and default initialization: reference values, ranges, determinism and gradients.
namespace Dsl.Runtime.Tests;

public class RandomTests
{
    [Fact]
    public void SplitMix64MatchesReferenceSequence()
    {
        // First outputs of Vigna's reference splitmix64.c with x = 0.
        var rng = new SplitMix64(0);
        Assert.Equal(0xE220A8397B1DCDAFUL, rng.NextUInt64());
        Assert.Equal(0x6E789E6AA1B965F4UL, rng.NextUInt64());
        Assert.Equal(0x06C45D188009454FUL, rng.NextUInt64());
    }

    [Fact]
    public void NextSingleHas24BitsInUnitInterval()
    {
        var rng = new SplitMix64(42);
        double sum = 0;
        for (int i = 0; i < 100_000; i++)
        {
            float v = rng.NextSingle();
            Assert.InRange(v, 0f, 1f - 1f / 16777216f);
            float scaled = v * 16777216f;
            Assert.Equal(MathF.Floor(scaled), scaled);
            sum += v;
        }
        Assert.Equal(0.5, sum / 100_000, 2);

        for (int i = 0; i < 1000; i++) Assert.InRange(rng.NextUniform(-3f, 2f), -3f, 2f);
    }

    [Fact]
    public void SameSeedSameSequence()
    {
        var a = new SplitMix64(7);
        var b = new SplitMix64(7);
        for (int i = 0; i < 10; i++) Assert.Equal(a.NextUInt64(), b.NextUInt64());
    }

    [Fact]
    public void DropoutMaskIsZeroOrInverseKeepProbability()
    {
        const float p = 0.3f;
        var x = TestUtil.Random(20_000, 1);
        var y = new float[x.Length];
        var mask = new float[x.Length];
        var rng = new SplitMix64(123);
        Dropout.Forward(x, y, mask, p, ref rng);

        float keep = 1f / (1f - p);
        Assert.All(mask, m => Assert.True(m == 0f || m == keep));
        Assert.Equal(p, mask.Count(m => m == 0f) / (double)mask.Length, 2);
        for (int i = 0; i < x.Length; i++) Assert.Equal(x[i] * mask[i], y[i]);

        var dy = TestUtil.Random(x.Length, 2);
        var dx = new float[x.Length];
        Dropout.Backward(dy, mask, dx);
        for (int i = 0; i < x.Length; i++) Assert.Equal(dy[i] * mask[i], dx[i]);
    }

    [Fact]
    public void DropoutEdgeProbabilities()
    {
        var x = TestUtil.Random(100, 3);
        var y = new float[100];
        var mask = new float[100];
        var rng = new SplitMix64(5);
        var before = rng;
        Dropout.Forward(x, y, mask, 0f, ref rng);
        Assert.All(mask, m => Assert.Equal(1f, m));
        Assert.Equal(x, y);
        Assert.Equal(before.NextUInt64(), rng.NextUInt64()); // p = 0 draws nothing

        Dropout.Forward(x, y, mask, 1f, ref rng);
        Assert.All(y, v => Assert.Equal(0f, v));
    }

    [Fact]
    public void DropoutIsDeterministicPerSeedAndWorksInPlace()
    {
        var x = TestUtil.Random(50, 4);
        var y1 = new float[50];
        var mask1 = new float[50];
        var rng1 = new SplitMix64(9);
        Dropout.Forward(x, y1, mask1, 0.5f, ref rng1);

        var inPlace = (float[])x.Clone();
        var mask2 = new float[50];
        var rng2 = new SplitMix64(9);
        Dropout.Forward(inPlace, inPlace, mask2, 0.5f, ref rng2);
        Assert.Equal(mask1, mask2);
        Assert.Equal(y1, inPlace);
    }

    // Central differences with the mask held fixed (same seed each evaluation), ε = 1e-2, tolerance 1e-3 (linear in x).
    [Fact]
    public void DropoutGradientMatchesFiniteDifferences()
    {
        var x = TestUtil.Random(30, 5);
        var r = TestUtil.Random(30, 6);
        var y = new float[30];
        var mask = new float[30];
        double Loss()
        {
            var rng = new SplitMix64(11);
            Dropout.Forward(x, y, mask, 0.4f, ref rng);
            return TestUtil.WeightedSum(y, r);
        }
        Loss();
        var dx = new float[30];
        Dropout.Backward(r, mask, dx);
        GradCheck.Check(x, dx, Loss, 1e-3, "dropout dx");
    }

    [Fact]
    public void KaimingUniformDefaultUsesOneOverSqrtFanIn()
    {
        const int fanIn = 3 * 5 * 5;
        float bound = 1f / MathF.Sqrt(fanIn);
        var w = new float[50_000];
        var rng = new SplitMix64(1);
        Initialization.KaimingUniformDefault(w, fanIn, ref rng);
        Assert.All(w, v => Assert.InRange(v, -bound, bound));
        Assert.True(w.Max() > 0.99f * bound && w.Min() < -0.99f * bound);
        Assert.Equal(0, w.Average(), 3);
        // Variance of U(-b, b) is b²/3.
        Assert.InRange(w.Select(v => (double)v * v).Average() / (bound * bound / 3), 0.98, 1.02);

        var u = new float[1000];
        Initialization.Uniform(u, 0.25f, ref rng);
        Assert.All(u, v => Assert.InRange(v, -0.25f, 0.25f));
        Assert.Throws<ArgumentOutOfRangeException>(() =>
        {
            var r = new SplitMix64(1);
            Initialization.KaimingUniformDefault(u, 0, ref r);
        });
    }
}
