// Single-core FMA peak: 12 independent Vector256 fused multiply-add chains kept in registers, no memory
// traffic. 12 chains cover FMA latency × throughput on current x86 cores (4 cycles × 2 pipes = 8 needed),
// so the loop runs at the core's FMA throughput: the GFLOP/s ceiling our kernels are judged against.
using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Dsl.Benchmarks;

public static class Peak
{
    private const int Chains = 12;

    public sealed record Result(string Kind, double GFlops);

    /// <summary>Measures single-thread peak on the current thread (best of several timed runs of ~0.2 s).</summary>
    public static IReadOnlyList<Result> Measure(TextWriter? log = null)
    {
        var results = new List<Result>();
        if (Fma.IsSupported)
        {
            results.Add(new("Vector256 FMA", Best(Fma256, 8)));
            if (Avx512F.IsSupported) results.Add(new("Vector512 FMA", Best(Fma512, 16)));
        }
        else
        {
            results.Add(new("Vector256 mul+add (no FMA)", Best(MulAdd256, 8)));
        }

        if (log is not null)
        {
            foreach (var r in results)
                log.WriteLine($"peak {r.Kind}: {r.GFlops.ToString("0.0", CultureInfo.InvariantCulture)} GFLOP/s (single core, {Chains} independent chains)");
        }

        return results;
    }

    /// <summary>The Vector256 FMA peak (what the kernels use), or the best available.</summary>
    public static double Vector256GFlops(IReadOnlyList<Result> results) => results[0].GFlops;

    private static double Best(Func<long, float> kernel, int lanes)
    {
        kernel(1000); // JIT (tier 1 via AggressiveOptimization) and warm up
        long iterations = 1_000_000;
        var sw = Stopwatch.StartNew();
        kernel(iterations);
        double seconds = sw.Elapsed.TotalSeconds;
        iterations = Math.Max(1000, (long)(iterations * 0.2 / Math.Max(seconds, 1e-6)));
        double best = 0;
        for (int run = 0; run < 5; run++)
        {
            sw.Restart();
            float sink = kernel(iterations);
            seconds = sw.Elapsed.TotalSeconds;
            if (float.IsNaN(sink)) throw new InvalidOperationException("unreachable: keeps the result alive");
            best = Math.Max(best, iterations * Chains * lanes * 2.0 / seconds / 1e9);
        }

        return best;
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Fma256(long iterations)
    {
        var a = Vector256.Create(0.999999f);
        var b = Vector256.Create(1e-7f);
        Vector256<float> c0 = Vector256.Create(1f), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0,
            c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;
        for (long i = 0; i < iterations; i++)
        {
            c0 = Fma.MultiplyAdd(c0, a, b);
            c1 = Fma.MultiplyAdd(c1, a, b);
            c2 = Fma.MultiplyAdd(c2, a, b);
            c3 = Fma.MultiplyAdd(c3, a, b);
            c4 = Fma.MultiplyAdd(c4, a, b);
            c5 = Fma.MultiplyAdd(c5, a, b);
            c6 = Fma.MultiplyAdd(c6, a, b);
            c7 = Fma.MultiplyAdd(c7, a, b);
            c8 = Fma.MultiplyAdd(c8, a, b);
            c9 = Fma.MultiplyAdd(c9, a, b);
            c10 = Fma.MultiplyAdd(c10, a, b);
            c11 = Fma.MultiplyAdd(c11, a, b);
        }

        var sum = ((c0 + c1) + (c2 + c3)) + ((c4 + c5) + (c6 + c7)) + ((c8 + c9) + (c10 + c11));
        return Vector256.Sum(sum);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Fma512(long iterations)
    {
        var a = Vector512.Create(0.999999f);
        var b = Vector512.Create(1e-7f);
        Vector512<float> c0 = Vector512.Create(1f), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0,
            c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;
        for (long i = 0; i < iterations; i++)
        {
            c0 = Avx512F.FusedMultiplyAdd(c0, a, b);
            c1 = Avx512F.FusedMultiplyAdd(c1, a, b);
            c2 = Avx512F.FusedMultiplyAdd(c2, a, b);
            c3 = Avx512F.FusedMultiplyAdd(c3, a, b);
            c4 = Avx512F.FusedMultiplyAdd(c4, a, b);
            c5 = Avx512F.FusedMultiplyAdd(c5, a, b);
            c6 = Avx512F.FusedMultiplyAdd(c6, a, b);
            c7 = Avx512F.FusedMultiplyAdd(c7, a, b);
            c8 = Avx512F.FusedMultiplyAdd(c8, a, b);
            c9 = Avx512F.FusedMultiplyAdd(c9, a, b);
            c10 = Avx512F.FusedMultiplyAdd(c10, a, b);
            c11 = Avx512F.FusedMultiplyAdd(c11, a, b);
        }

        var sum = ((c0 + c1) + (c2 + c3)) + ((c4 + c5) + (c6 + c7)) + ((c8 + c9) + (c10 + c11));
        return Vector512.Sum(sum);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float MulAdd256(long iterations)
    {
        var a = Vector256.Create(0.999999f);
        var b = Vector256.Create(1e-7f);
        Vector256<float> c0 = Vector256.Create(1f), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0,
            c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;
        for (long i = 0; i < iterations; i++)
        {
            c0 = c0 * a + b;
            c1 = c1 * a + b;
            c2 = c2 * a + b;
            c3 = c3 * a + b;
            c4 = c4 * a + b;
            c5 = c5 * a + b;
            c6 = c6 * a + b;
            c7 = c7 * a + b;
            c8 = c8 * a + b;
            c9 = c9 * a + b;
            c10 = c10 * a + b;
            c11 = c11 * a + b;
        }

        var sum = ((c0 + c1) + (c2 + c3)) + ((c4 + c5) + (c6 + c7)) + ((c8 + c9) + (c10 + c11));
        return Vector256.Sum(sum);
    }
}
