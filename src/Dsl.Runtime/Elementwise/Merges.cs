// The graph merges: add(a, b, ...) and concat(a, b, ...) along channels, forward and backward, and the sum of a
// value's gradients when several layers read it.
using System.ComponentModel;
using System.Numerics.Tensors;

namespace Dsl.Runtime.Kernels;

/// <summary>Merges of values, batch-major (<c>[n, ...]</c> per value), and the accumulation of gradients.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static class Merges
{
    /// <summary><c>y = a + b</c>, element-wise (PyTorch's <c>a + b</c>).</summary>
    /// <param name="a">First input.</param><param name="b">Second input, as long as <paramref name="a"/>.</param>
    /// <param name="y">Output (may alias either input).</param>
    /// <param name="pool">Splits the range across its threads from <see cref="ParallelElements"/> values; null stays on the caller. Element by element: the same bits either way.</param>
    public static unsafe void Add(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y, WorkerPool? pool = null)
    {
        if (a.Length != b.Length || y.Length < a.Length) throw new ArgumentException($"add needs inputs of one length and an output as long: got {a.Length}, {b.Length} and {y.Length}.");
        if (pool is not { Threads: > 1 } || a.Length < ParallelElements)
        {
            TensorPrimitives.Add(a, b, y.Slice(0, a.Length));
            return;
        }

        fixed (float* pa = a, pb = b, py = y)
        {
            var job = new Job { A = pa, B = pb, Y = py, Length = a.Length };
            pool.RunChunks(&AddChunk, &job, pool.Threads);
        }
    }

    /// <summary><c>y += x</c>: another input of a sum, or another reader's share of a gradient.</summary>
    /// <param name="x">What to add.</param><param name="y">The running sum, as long as <paramref name="x"/>.</param>
    /// <param name="pool">Splits the range across its threads from <see cref="ParallelElements"/> values; null stays on the caller. Element by element: the same bits either way.</param>
    public static unsafe void Accumulate(ReadOnlySpan<float> x, Span<float> y, WorkerPool? pool = null)
    {
        if (y.Length != x.Length) throw new ArgumentException($"accumulate needs spans of one length: got {x.Length} and {y.Length}.");
        if (pool is not { Threads: > 1 } || x.Length < ParallelElements)
        {
            TensorPrimitives.Add(y, x, y);
            return;
        }

        fixed (float* px = x, py = y)
        {
            var job = new Job { A = py, B = px, Y = py, Length = x.Length };
            pool.RunChunks(&AddChunk, &job, pool.Threads);
        }
    }

    /// <summary><c>y = x</c>: a sum's gradient handed to one of its inputs (the backward of <c>add</c>), split across <paramref name="pool"/> when large.</summary>
    /// <param name="x">What to copy.</param><param name="y">The destination, at least as long as <paramref name="x"/>.</param>
    /// <param name="pool">Splits the range across its threads from <see cref="ParallelElements"/> values; null stays on the caller.</param>
    public static unsafe void Copy(ReadOnlySpan<float> x, Span<float> y, WorkerPool? pool = null)
    {
        if (y.Length < x.Length) throw new ArgumentException($"copy needs a destination at least as long as its source: got {x.Length} and {y.Length}.");
        if (pool is not { Threads: > 1 } || x.Length < ParallelElements)
        {
            x.CopyTo(y);
            return;
        }

        fixed (float* px = x, py = y)
        {
            var job = new Job { A = px, Y = py, Length = x.Length };
            pool.RunChunks(&CopyChunk, &job, pool.Threads);
        }
    }

    /// <summary>Element-wise passes of at least this many values split across a pool's threads (the threshold of <see cref="Activations.ParallelElements"/>); below it, waking a worker costs more than it saves.</summary>
    public const int ParallelElements = Activations.ParallelElements;

    // A parallel element-wise pass: its arrays, pinned by the caller for the duration of the job.
    private unsafe struct Job
    {
        public float* A, B, Y;
        public int Length;
    }

    // y = a + b over a chunk's share: element by element, so any split gives the same bits.
    private static unsafe void AddChunk(void* state, int chunk, int chunks, int thread)
    {
        var j = (Job*)state;
        var (lo, hi) = WorkerPool.Share(j->Length, chunk, chunks);
        TensorPrimitives.Add(new ReadOnlySpan<float>(j->A + lo, hi - lo), new ReadOnlySpan<float>(j->B + lo, hi - lo), new Span<float>(j->Y + lo, hi - lo));
    }

    private static unsafe void CopyChunk(void* state, int chunk, int chunks, int thread)
    {
        var j = (Job*)state;
        var (lo, hi) = WorkerPool.Share(j->Length, chunk, chunks);
        new ReadOnlySpan<float>(j->A + lo, hi - lo).CopyTo(new Span<float>(j->Y + lo, hi - lo));
    }

    /// <summary>Copies each sample of <paramref name="x"/> (<paramref name="xLength"/> floats) into its slice at <paramref name="offset"/> of each sample of <paramref name="y"/>.</summary>
    /// <param name="x">One input of a concatenation, <c>[n, xLength]</c>.</param><param name="xLength">Floats per sample of the input.</param>
    /// <param name="y">The concatenation, <c>[n, yLength]</c>.</param><param name="yLength">Floats per sample of the output.</param>
    /// <param name="offset">Where this input's channels start in each output sample.</param><param name="n">Batch size.</param>
    public static void WriteSlice(ReadOnlySpan<float> x, int xLength, Span<float> y, int yLength, int offset, int n)
    {
        CheckSlice(x.Length, xLength, y.Length, yLength, offset, n);
        for (int s = 0; s < n; s++) x.Slice(s * xLength, xLength).CopyTo(y.Slice(s * yLength + offset, xLength));
    }

    /// <summary>The slice at <paramref name="offset"/> of each sample of <paramref name="y"/> into (or, with <paramref name="accumulate"/>, added to) <paramref name="x"/>: a concatenation's backward.</summary>
    /// <param name="y">The concatenation's gradient, <c>[n, yLength]</c>.</param><param name="yLength">Floats per sample of it.</param>
    /// <param name="offset">Where the input's channels start in each sample.</param>
    /// <param name="x">The input's gradient, <c>[n, xLength]</c>.</param><param name="xLength">Floats per sample of the input.</param>
    /// <param name="n">Batch size.</param><param name="accumulate">Add to <paramref name="x"/> instead of overwriting it.</param>
    public static void ReadSlice(ReadOnlySpan<float> y, int yLength, int offset, Span<float> x, int xLength, int n, bool accumulate)
    {
        CheckSlice(x.Length, xLength, y.Length, yLength, offset, n);
        for (int s = 0; s < n; s++)
        {
            var from = y.Slice(s * yLength + offset, xLength);
            var to = x.Slice(s * xLength, xLength);
            if (accumulate) TensorPrimitives.Add(to, from, to);
            else from.CopyTo(to);
        }
    }

    private static void CheckSlice(int xSpan, int xLength, int ySpan, int yLength, int offset, int n)
    {
        if (n < 0 || offset < 0 || offset + xLength > yLength || xSpan < n * xLength || ySpan < n * yLength)
            throw new ArgumentException($"a slice of {xLength} floats at {offset} of {yLength} per sample does not fit {n} samples ({xSpan} and {ySpan} floats given).");
    }
}
