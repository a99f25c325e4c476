// Element-wise activations and row-wise softmax / log-softmax, forward and backward.
using System.ComponentModel;
using System.Diagnostics;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Dsl.Runtime.Kernels;

/// <summary>
/// Activation functions with PyTorch semantics. Forward outputs may alias their input (in-place),
/// and backward input gradients may alias the output gradient.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static class Activations
{
    /// <summary>ReLU of eight lanes with PyTorch's rule: keep v where v &gt; 0 or v is NaN, else 0.</summary>
    /// <param name="v">The values.</param>
    /// <returns>max(v, 0), NaN kept.</returns>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Relu(Vector256<float> v) => v & (Vector256.GreaterThan(v, Vector256<float>.Zero) | ~Vector256.Equals(v, v));

    /// <summary><c>y = max(x, 0)</c>; NaN propagates as in PyTorch.</summary>
    /// <param name="x">Input.</param>
    /// <param name="y">Output (may alias <paramref name="x"/>).</param>
    public static void ReluForward(ReadOnlySpan<float> x, Span<float> y)
    {
        Debug.Assert(y.Length >= x.Length, "y too short");
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
