// The residual add of a graph (add(conv(x), skip) -> act) done by the conv that writes the sum, on the block it
// has just written: no buffer for conv(x), no pass of its own over the sum.
using System.ComponentModel;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Dsl.Runtime.Kernels;

/// <summary>
/// <c>y = act(y + residual)</c> over a block a producing kernel has just written (one sample, or one sample's planes
/// of the output channels a part computed), while it is in that core's cache. The arithmetic is the unfused
/// graph's, <see cref="Merges.Add"/> then the activation's forward, so the fused result is bit-equal to it.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static unsafe class ResidualEpilogue
{
    /// <summary>Adds <paramref name="residual"/> to <paramref name="y"/>, then applies <paramref name="activation"/>, in place.</summary>
    /// <param name="y">The block the kernel wrote; overwritten with the activated sum.</param>
    /// <param name="residual">The other input of the add, in the same layout, as long as <paramref name="y"/>.</param>
    /// <param name="activation">The activation after the add (<see cref="FusedActivation.None"/>: none).</param>
    public static void Apply(Span<float> y, ReadOnlySpan<float> residual, FusedActivation activation)
    {
        if (residual.Length != y.Length) throw new ArgumentException($"a residual of {residual.Length} floats does not match the {y.Length} written.", nameof(residual));
        if (activation == FusedActivation.Relu)
        {
            AddRelu(y, residual);
            return;
        }

        TensorPrimitives.Add(y, residual, y);
        Activations.Apply(activation, y);
    }

    // y = relu(y + residual) in one pass: the same bits as the add, then Activations.ReluForward (NaN kept, as PyTorch).
    private static void AddRelu(Span<float> y, ReadOnlySpan<float> residual)
    {
        ref float py = ref MemoryMarshal.GetReference(y);
        ref float pr = ref MemoryMarshal.GetReference(residual);
        int i = 0;
        for (; i <= y.Length - 8; i += 8)
        {
            var v = Vector256.LoadUnsafe(ref py, (nuint)i) + Vector256.LoadUnsafe(ref pr, (nuint)i);
            Activations.Relu(v).StoreUnsafe(ref py, (nuint)i);
        }

        for (; i < y.Length; i++)
        {
            float v = y[i] + residual[i];
            y[i] = v > 0f || float.IsNaN(v) ? v : 0f;
        }
    }

    /// <summary>
    /// The same over <paramref name="length"/> floats at <paramref name="y"/> and <paramref name="residual"/> (a
    /// kernel's pointers); with no residual, only the activation (a kernel writing a slice of a concatenation applies
    /// it per sample, the slices not being one run).
    /// </summary>
    /// <param name="y">The block the kernel wrote.</param><param name="residual">The same block of the other input, or null.</param>
    /// <param name="length">Floats in the block.</param><param name="activation">The activation after the add.</param>
    internal static void Apply(float* y, float* residual, long length, FusedActivation activation)
    {
        var written = new Span<float>(y, checked((int)length));
        if (residual == null) Activations.Apply(activation, written);
        else Apply(written, new ReadOnlySpan<float>(residual, checked((int)length)), activation);
    }

    /// <summary>
    /// The same over rows [<paramref name="rowLo"/>, <paramref name="rowHi"/>) of every plane of one sample
    /// (<paramref name="planes"/> planes of <paramref name="rows"/> × <paramref name="width"/>): what a kernel that
    /// writes a band of rows for all channels at once has just written.
    /// </summary>
    internal static void ApplyRows(float* y, float* residual, int planes, int rows, int width, int rowLo, int rowHi, FusedActivation activation)
    {
        if (rowLo >= rowHi) return;
        long plane = (long)rows * width, offset = (long)rowLo * width, length = (long)(rowHi - rowLo) * width;
        for (int c = 0; c < planes; c++) Apply(y + c * plane + offset, residual == null ? null : residual + c * plane + offset, length, activation);
    }

    /// <summary>Checks the residual covers the output of <paramref name="n"/> samples of <paramref name="perSample"/> floats.</summary>
    internal static void Check(ReadOnlySpan<float> residual, int n, long perSample)
    {
        if (residual.Length < n * perSample)
            throw new ArgumentException($"a residual of {residual.Length} floats is shorter than the output ({n} × {perSample}).", nameof(residual));
    }

    /// <summary>
    /// Floats an output of <paramref name="n"/> samples of <paramref name="perSample"/> floats spans when sample s
    /// starts at s·<paramref name="stride"/>; checks the stride and <paramref name="y"/> (and a residual, laid out alike).
    /// </summary>
    internal static long Extent(ReadOnlySpan<float> y, ReadOnlySpan<float> residual, int n, long perSample, long stride)
    {
        if (stride < perSample) throw new ArgumentOutOfRangeException(nameof(stride), stride, $"a sample stride must be at least the {perSample} floats of a sample.");
        long extent = n == 0 ? 0 : (n - 1) * stride + perSample;
        if (y.Length < extent) throw new ArgumentException($"an output of {y.Length} floats is shorter than {n} samples at a stride of {stride} ({extent}).", nameof(y));
        if (!residual.IsEmpty && residual.Length < extent)
            throw new ArgumentException($"a residual of {residual.Length} floats is shorter than the output ({n} samples at a stride of {stride}).", nameof(residual));
        return extent;
    }
}
