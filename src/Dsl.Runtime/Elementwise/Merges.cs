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
    public static void Add(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y)
    {
        if (a.Length != b.Length || y.Length < a.Length) throw new ArgumentException($"add needs inputs of one length and an output as long: got {a.Length}, {b.Length} and {y.Length}.");
        TensorPrimitives.Add(a, b, y.Slice(0, a.Length));
    }

    /// <summary><c>y += x</c>: another input of a sum, or another reader's share of a gradient.</summary>
    /// <param name="x">What to add.</param><param name="y">The running sum, as long as <paramref name="x"/>.</param>
    public static void Accumulate(ReadOnlySpan<float> x, Span<float> y)
    {
        if (y.Length != x.Length) throw new ArgumentException($"accumulate needs spans of one length: got {x.Length} and {y.Length}.");
        TensorPrimitives.Add(y, x, y);
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
