namespace Dsl.Runtime.Tests;

/// <summary>
/// Parameters, gradients, running statistics, optimizer state and generated arenas start on a 64-byte line: a
/// plain <c>float[]</c> is only 8-byte aligned, and vector loads that straddle lines made the SGD step 30–50% slower.
/// </summary>
public sealed unsafe class AlignedFloatsTests
{
    private static long Misalignment(ReadOnlySpan<float> span)
    {
        fixed (float* p = span) return (long)p % AlignedFloats.Alignment;
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(17)]
    [InlineData(100_000)]
    public void Starts_on_a_line_holds_zeros_and_checks_its_bounds(int length)
    {
        for (int attempt = 0; attempt < 20; attempt++) // different heap positions, different raw alignments
        {
            var a = new AlignedFloats(length);
            Assert.Equal(length, a.Length);
            Assert.Equal(length, a.AsSpan().Length);
            if (length > 0) Assert.Equal(0, Misalignment(a.AsSpan()));
            Assert.True(a.AsSpan().IndexOfAnyExcept(0f) < 0);
            var e = Assert.Throws<ArgumentOutOfRangeException>(() => a[length]);
            Assert.Contains($"between 0 and {length - 1}", e.Message, StringComparison.Ordinal);
            Assert.Throws<ArgumentOutOfRangeException>(() => a[-1]);
        }
    }

    [Fact]
    public void Views_share_the_storage_and_rounding_keeps_offsets_on_lines()
    {
        var a = new AlignedFloats(40);
        a[3] = 5f;
        a.AsSpan(16, 8)[1] = 7f;
        Assert.Equal(5f, a.AsSpan()[3]);
        Assert.Equal(7f, a[17]);
        Assert.Equal(23, a.AsSpan(17).Length);
        Assert.Equal(0, Misalignment(a.AsSpan(16)));
        Assert.Equal(0, AlignedFloats.RoundUp(0));
        Assert.Equal(16, AlignedFloats.RoundUp(1));
        Assert.Equal(16, AlignedFloats.RoundUp(16));
        Assert.Equal(32, AlignedFloats.RoundUp(17));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AlignedFloats(-1));
    }
}
