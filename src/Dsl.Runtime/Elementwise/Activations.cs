// Element-wise activations and row-wise softmax / log-softmax, forward and backward.
using System.ComponentModel;
using System.Diagnostics;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Dsl.Runtime.Kernels;

/// <summary>An activation that a producing kernel (batch norm in training) applies to what it writes, while it is in cache.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public enum FusedActivation
{
    /// <summary>Nothing: the kernel's own output.</summary>
    None,

    /// <summary>max(x, 0).</summary>
    Relu,

    /// <summary>x·σ(x).</summary>
    Silu,

    /// <summary>x·Φ(x), the exact form.</summary>
    Gelu,
}

/// <summary>
/// Activation functions with PyTorch semantics. Forward outputs may alias their input (in-place),
/// and backward input gradients may alias the output gradient.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static class Activations
{
    /// <summary>Applies <paramref name="activation"/> in place: what a producing kernel calls on the block it has just written.</summary>
    /// <param name="activation">The activation; <see cref="FusedActivation.None"/> leaves the values as they are.</param>
    /// <param name="values">The values, overwritten.</param>
    public static void Apply(FusedActivation activation, Span<float> values)
    {
        switch (activation)
        {
            case FusedActivation.None:
                break;
            case FusedActivation.Relu:
                ReluForward(values, values);
                break;
            case FusedActivation.Silu:
                SiluForward(values, values);
                break;
            case FusedActivation.Gelu:
                GeluForward(values, values);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(activation), activation, "not an activation a kernel applies as it writes");
        }
    }

    /// <summary>ReLU of eight lanes with PyTorch's rule: keep v where v &gt; 0 or v is NaN, else 0.</summary>
    /// <param name="v">The values.</param>
    /// <returns>max(v, 0), NaN kept.</returns>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Relu(Vector256<float> v) => v & (Vector256.GreaterThan(v, Vector256<float>.Zero) | ~Vector256.Equals(v, v));

    /// <summary><c>y = max(x, 0)</c>; NaN propagates as in PyTorch.</summary>
    /// <param name="x">Input.</param>
    /// <param name="y">Output (may alias <paramref name="x"/>).</param>
    /// <param name="pool">Splits the range across its threads from <see cref="ParallelElements"/> values; null stays on the caller. Element by element: the same bits either way.</param>
    public static unsafe void ReluForward(ReadOnlySpan<float> x, Span<float> y, WorkerPool? pool = null)
    {
        Debug.Assert(y.Length >= x.Length, "y too short");
        if (pool is not { Threads: > 1 } || x.Length < ParallelElements)
        {
            ReluForwardRange(x, y);
            return;
        }

        fixed (float* px = x, py = y)
        {
            var job = new Job { A = px, C = py, Length = x.Length };
            pool.RunChunks(&ReluForwardChunk, &job, pool.Threads);
        }
    }

    private static unsafe void ReluForwardChunk(void* state, int chunk, int chunks, int thread)
    {
        var j = (Job*)state;
        var (lo, hi) = WorkerPool.Share(j->Length, chunk, chunks);
        ReluForwardRange(new ReadOnlySpan<float>(j->A + lo, hi - lo), new Span<float>(j->C + lo, hi - lo));
    }

    // Element by element, so any split gives the same bits.
    private static void ReluForwardRange(ReadOnlySpan<float> x, Span<float> y)
    {
        ref float px = ref MemoryMarshal.GetReference(x);
        ref float py = ref MemoryMarshal.GetReference(y);
        int i = 0;
        for (; i <= x.Length - 8; i += 8)
        {
            var v = Vector256.LoadUnsafe(ref px, (nuint)i);
            // Keep v where v > 0 or v is NaN (v != v), as PyTorch does.
            var keep = Vector256.GreaterThan(v, Vector256<float>.Zero) | ~Vector256.Equals(v, v);
            (v & keep).StoreUnsafe(ref py, (nuint)i);
        }

        for (; i < x.Length; i++)
        {
            float v = x[i];
            y[i] = v > 0f || float.IsNaN(v) ? v : 0f;
        }
    }

    /// <summary><c>dx = y &gt; 0 ? dy : 0</c> (PyTorch's <c>threshold_backward</c> on the output).</summary>
    /// <param name="y">Forward output.</param>
    /// <param name="dy">Output gradient.</param>
    /// <param name="dx">Input gradient (may alias <paramref name="dy"/>).</param>
    /// <param name="pool">Splits the range across its threads from <see cref="ParallelElements"/> values; null stays on the caller.</param>
    public static unsafe void ReluBackward(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx, WorkerPool? pool = null)
    {
        Debug.Assert(dy.Length == y.Length && dx.Length >= y.Length, "length mismatch");
        if (pool is not { Threads: > 1 } || y.Length < ParallelElements)
        {
            ReluBackwardRange(y, dy, dx);
            return;
        }

        fixed (float* py = y, pdy = dy, pdx = dx)
        {
            var job = new Job { A = py, B = pdy, C = pdx, Length = y.Length };
            pool.RunChunks(&ReluBackwardChunk, &job, pool.Threads);
        }
    }

    /// <summary>Element-wise passes of at least this many values split across a pool's threads; below it, waking a worker costs more than it saves.</summary>
    public const int ParallelElements = 1 << 16;

    // A parallel element-wise pass: its arrays, pinned by the caller for the duration of the job.
    private unsafe struct Job
    {
        public float* A, B, C;
        public int Length;
    }

    private static unsafe void ReluBackwardChunk(void* state, int chunk, int chunks, int thread)
    {
        var j = (Job*)state;
        var (lo, hi) = WorkerPool.Share(j->Length, chunk, chunks);
        ReluBackwardRange(new ReadOnlySpan<float>(j->A + lo, hi - lo), new ReadOnlySpan<float>(j->B + lo, hi - lo), new Span<float>(j->C + lo, hi - lo));
    }

    // Element by element, so any split gives the same bits.
    private static void ReluBackwardRange(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx)
    {
        ref float py = ref MemoryMarshal.GetReference(y);
        ref float pdy = ref MemoryMarshal.GetReference(dy);
        ref float pdx = ref MemoryMarshal.GetReference(dx);
        int i = 0;
        for (; i <= y.Length - 8; i += 8)
        {
            var keep = Vector256.GreaterThan(Vector256.LoadUnsafe(ref py, (nuint)i), Vector256<float>.Zero);
            (Vector256.LoadUnsafe(ref pdy, (nuint)i) & keep).StoreUnsafe(ref pdx, (nuint)i);
        }

        for (; i < y.Length; i++) dx[i] = y[i] > 0f ? dy[i] : 0f;
    }

    /// <summary><c>y = 1 / (1 + exp(-x))</c>.</summary>
    /// <param name="x">Input.</param>
    /// <param name="y">Output (may alias <paramref name="x"/>).</param>
    public static void SigmoidForward(ReadOnlySpan<float> x, Span<float> y)
    {
        Debug.Assert(y.Length >= x.Length, "y too short");
        TensorPrimitives.Sigmoid(x, y.Slice(0, x.Length));
    }

    /// <summary><c>dx = dy * y * (1 - y)</c>.</summary>
    /// <param name="y">Forward output.</param>
    /// <param name="dy">Output gradient.</param>
    /// <param name="dx">Input gradient (may alias <paramref name="dy"/>).</param>
    public static void SigmoidBackward(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx)
    {
        Debug.Assert(dy.Length == y.Length && dx.Length >= y.Length, "length mismatch");
        int n = y.Length;
        ref float py = ref MemoryMarshal.GetReference(y);
        ref float pdy = ref MemoryMarshal.GetReference(dy);
        ref float pdx = ref MemoryMarshal.GetReference(dx);
        int i = 0;
        for (; i <= n - 8; i += 8)
        {
            var v = Vector256.LoadUnsafe(ref py, (nuint)i);
            (Vector256.LoadUnsafe(ref pdy, (nuint)i) * (Vector256<float>.One - v) * v).StoreUnsafe(ref pdx, (nuint)i);
        }

        for (; i < n; i++) dx[i] = dy[i] * (1f - y[i]) * y[i];
    }

    /// <summary><c>y = tanh(x)</c>.</summary>
    /// <param name="x">Input.</param>
    /// <param name="y">Output (may alias <paramref name="x"/>).</param>
    public static void TanhForward(ReadOnlySpan<float> x, Span<float> y)
    {
        Debug.Assert(y.Length >= x.Length, "y too short");
        // Scalar MathF.Tanh: the vectorized one is about an ulp less accurate, and tanh is rare enough not to matter.
        for (int i = 0; i < x.Length; i++) y[i] = MathF.Tanh(x[i]);
    }

    /// <summary><c>dx = dy * (1 - y²)</c>.</summary>
    /// <param name="y">Forward output.</param>
    /// <param name="dy">Output gradient.</param>
    /// <param name="dx">Input gradient (may alias <paramref name="dy"/>).</param>
    public static void TanhBackward(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx)
    {
        Debug.Assert(dy.Length == y.Length && dx.Length >= y.Length, "length mismatch");
        int n = y.Length;
        ref float py = ref MemoryMarshal.GetReference(y);
        ref float pdy = ref MemoryMarshal.GetReference(dy);
        ref float pdx = ref MemoryMarshal.GetReference(dx);
        int i = 0;
        for (; i <= n - 8; i += 8)
        {
            var v = Vector256.LoadUnsafe(ref py, (nuint)i);
            (Vector256.LoadUnsafe(ref pdy, (nuint)i) * (Vector256<float>.One - v * v)).StoreUnsafe(ref pdx, (nuint)i);
        }

        for (; i < n; i++) dx[i] = dy[i] * (1f - y[i] * y[i]);
    }

    /// <summary><c>y = x &gt; 0 ? x : x * negativeSlope</c>.</summary>
    /// <param name="x">Input.</param>
    /// <param name="y">Output (may alias <paramref name="x"/>).</param>
    /// <param name="negativeSlope">Slope for negative inputs (PyTorch default 0.01).</param>
    public static void LeakyReluForward(ReadOnlySpan<float> x, Span<float> y, float negativeSlope)
    {
        Debug.Assert(y.Length >= x.Length, "y too short");
        for (int i = 0; i < x.Length; i++)
        {
            float v = x[i];
            y[i] = v > 0f ? v : v * negativeSlope;
        }
    }

    /// <summary><c>dx = x &gt; 0 ? dy : dy * negativeSlope</c> (decided on the forward input, as PyTorch does).</summary>
    /// <param name="x">Forward input.</param>
    /// <param name="dy">Output gradient.</param>
    /// <param name="dx">Input gradient (may alias <paramref name="dy"/>).</param>
    /// <param name="negativeSlope">Slope for negative inputs.</param>
    public static void LeakyReluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx, float negativeSlope)
    {
        Debug.Assert(dy.Length == x.Length && dx.Length >= x.Length, "length mismatch");
        for (int i = 0; i < x.Length; i++) dx[i] = x[i] > 0f ? dy[i] : dy[i] * negativeSlope;
    }

    /// <summary><c>y = x·σ(x)</c> (<c>nn.SiLU</c>), eight lanes at a time.</summary>
    /// <param name="x">Input.</param>
    /// <param name="y">Output (may alias <paramref name="x"/>).</param>
    public static void SiluForward(ReadOnlySpan<float> x, Span<float> y)
    {
        Debug.Assert(y.Length >= x.Length, "y too short");
        ref float px = ref MemoryMarshal.GetReference(x);
        ref float py = ref MemoryMarshal.GetReference(y);
        int i = 0;
        for (; i <= x.Length - 8; i += 8)
        {
            var v = Vector256.LoadUnsafe(ref px, (nuint)i);
            (v / (Vector256<float>.One + Vector256.Exp(-v))).StoreUnsafe(ref py, (nuint)i);
        }

        if (i < x.Length)
        {
            var v = Tail(x.Slice(i));
            Store(v / (Vector256<float>.One + Vector256.Exp(-v)), y.Slice(i, x.Length - i));
        }
    }

    /// <summary><c>dx = dy·σ(x)·(1 + x·(1 − σ(x)))</c>, from the forward input as PyTorch's silu_backward.</summary>
    /// <param name="x">Forward input.</param>
    /// <param name="dy">Output gradient.</param>
    /// <param name="dx">Input gradient (may alias <paramref name="dy"/>).</param>
    public static void SiluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        Debug.Assert(dy.Length == x.Length && dx.Length >= x.Length, "length mismatch");
        ref float px = ref MemoryMarshal.GetReference(x);
        ref float pdy = ref MemoryMarshal.GetReference(dy);
        ref float pdx = ref MemoryMarshal.GetReference(dx);
        var one = Vector256<float>.One;
        int i = 0;
        for (; i <= x.Length - 8; i += 8)
        {
            var v = Vector256.LoadUnsafe(ref px, (nuint)i);
            var sigmoid = one / (one + Vector256.Exp(-v));
            (Vector256.LoadUnsafe(ref pdy, (nuint)i) * sigmoid * (one + v * (one - sigmoid))).StoreUnsafe(ref pdx, (nuint)i);
        }

        if (i < x.Length)
        {
            var v = Tail(x.Slice(i));
            var sigmoid = one / (one + Vector256.Exp(-v));
            Store(Tail(dy.Slice(i)) * sigmoid * (one + v * (one - sigmoid)), dx.Slice(i, x.Length - i));
        }
    }

    /// <summary><c>y = x·Φ(x) = x·(1 + erf(x/√2))/2</c>: <c>nn.GELU()</c>, the exact form (not the tanh approximation).</summary>
    /// <param name="x">Input.</param>
    /// <param name="y">Output (may alias <paramref name="x"/>).</param>
    public static void GeluForward(ReadOnlySpan<float> x, Span<float> y)
    {
        Debug.Assert(y.Length >= x.Length, "y too short");
        ref float px = ref MemoryMarshal.GetReference(x);
        ref float py = ref MemoryMarshal.GetReference(y);
        var half = Vector256.Create(0.5f);
        var scale = Vector256.Create(InverseSqrt2);
        int i = 0;
        for (; i <= x.Length - 8; i += 8)
        {
            var v = Vector256.LoadUnsafe(ref px, (nuint)i);
            (half * v * (Vector256<float>.One + Erf(v * scale))).StoreUnsafe(ref py, (nuint)i);
        }

        if (i < x.Length)
        {
            var v = Tail(x.Slice(i));
            Store(half * v * (Vector256<float>.One + Erf(v * scale)), y.Slice(i, x.Length - i));
        }
    }

    /// <summary><c>dx = dy·(Φ(x) + x·φ(x))</c> with φ the standard normal density: PyTorch's exact gelu_backward.</summary>
    /// <param name="x">Forward input.</param>
    /// <param name="dy">Output gradient.</param>
    /// <param name="dx">Input gradient (may alias <paramref name="dy"/>).</param>
    public static void GeluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        Debug.Assert(dy.Length == x.Length && dx.Length >= x.Length, "length mismatch");
        ref float px = ref MemoryMarshal.GetReference(x);
        ref float pdy = ref MemoryMarshal.GetReference(dy);
        ref float pdx = ref MemoryMarshal.GetReference(dx);
        var half = Vector256.Create(0.5f);
        var scale = Vector256.Create(InverseSqrt2);
        var density = Vector256.Create(InverseSqrt2Pi);
        int i = 0;
        for (; i <= x.Length - 8; i += 8)
        {
            var v = Vector256.LoadUnsafe(ref px, (nuint)i);
            var cdf = half * (Vector256<float>.One + Erf(v * scale));
            var pdf = density * Vector256.Exp(-half * v * v);
            (Vector256.LoadUnsafe(ref pdy, (nuint)i) * (cdf + v * pdf)).StoreUnsafe(ref pdx, (nuint)i);
        }

        if (i < x.Length)
        {
            var v = Tail(x.Slice(i));
            var cdf = half * (Vector256<float>.One + Erf(v * scale));
            var pdf = density * Vector256.Exp(-half * v * v);
            Store(Tail(dy.Slice(i)) * (cdf + v * pdf), dx.Slice(i, x.Length - i));
        }
    }

    // The last (fewer than eight) elements go through the same vector code as the rest, zero-padded: an element's
    // bits do not depend on where it falls, so a split across threads or planes changes nothing.
    private static Vector256<float> Tail(ReadOnlySpan<float> rest)
    {
        Span<float> lanes = stackalloc float[8];
        lanes.Clear();
        rest.Slice(0, Math.Min(8, rest.Length)).CopyTo(lanes);
        return Vector256.Create<float>(lanes);
    }

    private static void Store(Vector256<float> v, Span<float> destination)
    {
        Span<float> lanes = stackalloc float[8];
        v.CopyTo(lanes);
        lanes.Slice(0, destination.Length).CopyTo(destination);
    }

    private const float InverseSqrt2 = 0.70710678118654752f;
    private const float InverseSqrt2Pi = 0.39894228040143268f;

    // erf by Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7), odd-extended: erf(x) = 1 − t·P(t)·exp(−x²), t = 1/(1 + p|x|).
    private const float ErfP = 0.3275911f, ErfA1 = 0.254829592f, ErfA2 = -0.284496736f, ErfA3 = 1.421413741f, ErfA4 = -1.453152027f, ErfA5 = 1.061405429f;

    /// <summary>The error function to within 1.5e-7, eight lanes at a time.</summary>
    /// <param name="x">The values.</param>
    /// <returns>erf(x).</returns>
    internal static Vector256<float> Erf(Vector256<float> x)
    {
        var a = Vector256.Abs(x);
        var t = Vector256<float>.One / (Vector256<float>.One + Vector256.Create(ErfP) * a);
        var poly = ((((Vector256.Create(ErfA5) * t + Vector256.Create(ErfA4)) * t + Vector256.Create(ErfA3)) * t + Vector256.Create(ErfA2)) * t + Vector256.Create(ErfA1)) * t;
        var magnitude = Vector256<float>.One - poly * Vector256.Exp(-a * a);
        return Vector256.ConditionalSelect(Vector256.LessThan(x, Vector256<float>.Zero), -magnitude, magnitude);
    }


    /// <summary>Softmax over the last axis of <c>[n, features]</c>, computed as <c>exp(x - max) / Σ exp(x - max)</c> for stability.</summary>
    /// <param name="x">Input <c>[n, features]</c>.</param>
    /// <param name="y">Output (may alias <paramref name="x"/>).</param>
    /// <param name="n">Rows.</param>
    /// <param name="features">Row length.</param>
    public static void SoftmaxForward(ReadOnlySpan<float> x, Span<float> y, int n, int features)
    {
        Debug.Assert(x.Length >= n * features && y.Length >= n * features, "buffer too short");
        for (int r = 0; r < n; r++)
        {
            ReadOnlySpan<float> xr = x.Slice(r * features, features);
            Span<float> yr = y.Slice(r * features, features);
            float max = RowMax(xr);
            float sum = 0f;
            for (int i = 0; i < features; i++)
            {
                float e = MathF.Exp(xr[i] - max);
                yr[i] = e;
                sum += e;
            }
            float inv = 1f / sum;
            for (int i = 0; i < features; i++) yr[i] *= inv;
        }
    }

    /// <summary>Softmax backward: <c>dx = y * (dy - Σ dy*y)</c> per row.</summary>
    /// <param name="y">Forward output <c>[n, features]</c>.</param>
    /// <param name="dy">Output gradient.</param>
    /// <param name="dx">Input gradient (may alias <paramref name="dy"/>).</param>
    /// <param name="n">Rows.</param>
    /// <param name="features">Row length.</param>
    public static void SoftmaxBackward(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx, int n, int features)
    {
        Debug.Assert(y.Length >= n * features && dy.Length >= n * features && dx.Length >= n * features, "buffer too short");
        for (int r = 0; r < n; r++)
        {
            int start = r * features;
            float dot = 0f;
            for (int i = start; i < start + features; i++) dot += dy[i] * y[i];
            for (int i = start; i < start + features; i++) dx[i] = y[i] * (dy[i] - dot);
        }
    }

    /// <summary>Log-softmax over the last axis: <c>y = x - max - log Σ exp(x - max)</c>.</summary>
    /// <param name="x">Input <c>[n, features]</c>.</param>
    /// <param name="y">Output (may alias <paramref name="x"/>).</param>
    /// <param name="n">Rows.</param>
    /// <param name="features">Row length.</param>
    public static void LogSoftmaxForward(ReadOnlySpan<float> x, Span<float> y, int n, int features)
    {
        Debug.Assert(x.Length >= n * features && y.Length >= n * features, "buffer too short");
        for (int r = 0; r < n; r++)
        {
            ReadOnlySpan<float> xr = x.Slice(r * features, features);
            Span<float> yr = y.Slice(r * features, features);
            float max = RowMax(xr);
            float sum = 0f;
            for (int i = 0; i < features; i++) sum += MathF.Exp(xr[i] - max);
            float logSum = MathF.Log(sum);
            for (int i = 0; i < features; i++) yr[i] = xr[i] - max - logSum;
        }
    }

    /// <summary>Log-softmax backward: <c>dx = dy - exp(y) * Σ dy</c> per row.</summary>
    /// <param name="y">Forward output <c>[n, features]</c>.</param>
    /// <param name="dy">Output gradient.</param>
    /// <param name="dx">Input gradient (may alias <paramref name="dy"/>).</param>
    /// <param name="n">Rows.</param>
    /// <param name="features">Row length.</param>
    public static void LogSoftmaxBackward(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx, int n, int features)
    {
        Debug.Assert(y.Length >= n * features && dy.Length >= n * features && dx.Length >= n * features, "buffer too short");
        for (int r = 0; r < n; r++)
        {
            int start = r * features;
            float sum = 0f;
            for (int i = start; i < start + features; i++) sum += dy[i];
            for (int i = start; i < start + features; i++) dx[i] = dy[i] - MathF.Exp(y[i]) * sum;
        }
    }

    // Row maximum; a NaN anywhere makes the whole row NaN, as in PyTorch.
    private static float RowMax(ReadOnlySpan<float> row)
    {
        float max = float.NegativeInfinity;
        foreach (float v in row)
        {
            if (v > max || float.IsNaN(v)) max = v;
            if (float.IsNaN(max)) return max;
        }
        return max;
    }
}
