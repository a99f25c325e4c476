// Shared helpers for the runtime tests: deterministic random data, closeness assertions and finite-difference gradient checks.
namespace Dsl.Runtime.Tests;

internal static class TestUtil
{
    /// <summary>
    /// Bytes this thread allocates while running <paramref name="action"/> (already warmed up by the caller).
    /// A full collection first empties this thread's allocation quantum: otherwise a collection started by
    /// another test thread during the window can charge the unused rest of that quantum (up to 8 KB) to this
    /// thread (dotnet/runtime#13502 and #74388 show the same flake). An object allocated by the action still
    /// takes a new quantum and is counted.
    /// </summary>
    public static long BytesAllocatedBy(Action action)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        long before = GC.GetAllocatedBytesForCurrentThread();
        action();
        return GC.GetAllocatedBytesForCurrentThread() - before;
    }

    /// <summary>Uniform values in [low, high) from a fixed seed so failures are reproducible.</summary>
    public static float[] Random(int count, int seed, float low = -1f, float high = 1f)
    {
        var random = new Random(seed);
        var result = new float[count];
        for (int i = 0; i < count; i++) result[i] = (float)(low + (high - low) * random.NextDouble());
        return result;
    }

    /// <summary>Uniform values whose magnitude is at least <paramref name="minAbs"/>, so kinks (ReLU at 0) are out of finite-difference reach.</summary>
    public static float[] RandomAwayFromZero(int count, int seed, float minAbs, float maxAbs = 1f)
    {
        var random = new Random(seed);
        var result = new float[count];
        for (int i = 0; i < count; i++)
        {
            float magnitude = (float)(minAbs + (maxAbs - minAbs) * random.NextDouble());
            result[i] = random.Next(2) == 0 ? magnitude : -magnitude;
        }
        return result;
    }

    /// <summary>A random permutation of distinct, well separated values (no ties, gaps of 0.1 ≫ finite-difference step).</summary>
    public static float[] DistinctValues(int count, int seed)
    {
        var values = Enumerable.Range(0, count).Select(i => (i - count / 2) * 0.1f).ToArray();
        new Random(seed).Shuffle(values);
        return values;
    }

    public static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double absTol, double relTol = 0, string what = "")
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            double diff = Math.Abs((double)expected[i] - actual[i]);
            double tol = absTol + relTol * Math.Abs(expected[i]);
            if (!(diff <= tol))
            {
                Assert.Fail($"{what}[{i}]: expected {expected[i]:R}, got {actual[i]:R} (|diff| {diff:G4} > tol {tol:G4})");
            }
        }
    }

    public static void AssertClose(ReadOnlySpan<double> expected, ReadOnlySpan<float> actual, double absTol, double relTol = 0, string what = "")
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            double diff = Math.Abs(expected[i] - actual[i]);
            double tol = absTol + relTol * Math.Abs(expected[i]);
            if (!(diff <= tol))
            {
                Assert.Fail($"{what}[{i}]: expected {expected[i]:R}, got {actual[i]:R} (|diff| {diff:G4} > tol {tol:G4})");
            }
        }
    }

    /// <summary>L = Σ output·weights, accumulated in double so that the loss itself adds no float rounding.</summary>
    public static double WeightedSum(ReadOnlySpan<float> output, ReadOnlySpan<float> weights)
    {
        double sum = 0;
        for (int i = 0; i < output.Length; i++) sum += (double)output[i] * weights[i];
        return sum;
    }
}

/// <summary>
/// Central-difference gradient check in float: perturbs each element of <c>parameter</c> by ±<see cref="Epsilon"/> (1e-2),
/// evaluates the scalar loss, and requires |numeric − analytic| ≤ tolerance·max(1, |numeric|).
/// With L = Σ y·r the loss is linear in y, so the only errors are O(ε²) truncation and float rounding of y divided by 2ε.
/// </summary>
internal static class GradCheck
{
    public const float Epsilon = 1e-2f;

    public static void Check(float[] parameter, ReadOnlySpan<float> analytic, Func<double> loss, double tolerance, string what)
    {
        Assert.Equal(parameter.Length, analytic.Length);
        for (int i = 0; i < parameter.Length; i++)
        {
            float saved = parameter[i];
            parameter[i] = saved + Epsilon;
            double plus = loss();
            parameter[i] = saved - Epsilon;
            double minus = loss();
            parameter[i] = saved;
            // Divide by the actually representable step, not the nominal one.
            double step = (double)(saved + Epsilon) - (saved - Epsilon);
            double numeric = (plus - minus) / step;
            double error = Math.Abs(numeric - analytic[i]);
            if (!(error <= tolerance * Math.Max(1.0, Math.Abs(numeric))))
            {
                Assert.Fail($"{what}[{i}]: analytic {analytic[i]:R}, numeric {numeric:R} (|diff| {error:G4}, tolerance {tolerance})");
            }
        }
    }
}
