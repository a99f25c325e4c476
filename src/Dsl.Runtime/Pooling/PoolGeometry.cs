// Shape arithmetic for 2-d max/average pooling (1-d pooling uses H = 1), including PyTorch's ceil_mode rule.
using System.ComponentModel;

namespace Dsl.Runtime.Kernels;

/// <summary>
/// Immutable description of a 2-d pooling window over <c>[channels, InH, InW]</c> planes, with the output size
/// PyTorch computes (<c>pooling_output_shape</c>, including <c>ceil_mode</c>).
/// A 1-d pooling is described with <c>inH = 1</c>, <c>kernelH = 1</c>, <c>strideH = 1</c>, <c>padH = 0</c>, <c>dilationH = 1</c>.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public readonly struct PoolGeometry
{
    /// <summary>Creates a geometry and validates it the way PyTorch's pooling shape check does.</summary>
    /// <param name="channels">Channels (pooling is per channel).</param>
    /// <param name="inH">Input height.</param>
    /// <param name="inW">Input width.</param>
    /// <param name="kernelH">Window height.</param>
    /// <param name="kernelW">Window width.</param>
    /// <param name="strideH">Vertical stride.</param>
    /// <param name="strideW">Horizontal stride.</param>
    /// <param name="padH">Implicit padding at top and bottom (at most half the window height).</param>
    /// <param name="padW">Implicit padding at left and right (at most half the window width).</param>
    /// <param name="dilationH">Vertical dilation (max pooling only; average pooling requires 1).</param>
    /// <param name="dilationW">Horizontal dilation (max pooling only; average pooling requires 1).</param>
    /// <param name="ceilMode">Use ceiling instead of floor when computing the output size.</param>
    /// <exception cref="ArgumentException">A value is out of range, the padding exceeds half the kernel, or the output would be empty.</exception>
    public PoolGeometry(int channels, int inH, int inW, int kernelH, int kernelW, int strideH, int strideW,
        int padH, int padW, int dilationH, int dilationW, bool ceilMode)
    {
        RequirePositive(channels, nameof(channels));
        RequirePositive(inH, nameof(inH));
        RequirePositive(inW, nameof(inW));
        RequirePositive(kernelH, nameof(kernelH));
        RequirePositive(kernelW, nameof(kernelW));
        RequirePositive(strideH, nameof(strideH));
        RequirePositive(strideW, nameof(strideW));
        RequirePositive(dilationH, nameof(dilationH));
        RequirePositive(dilationW, nameof(dilationW));
        if (padH < 0 || padW < 0) throw new ArgumentException($"padding must be non-negative, got {padH}x{padW}.");
        // PyTorch's check: otherwise a window could lie entirely in the padding.
        if (padH > kernelH / 2 || padW > kernelW / 2)
        {
            throw new ArgumentException($"pad should be at most half of effective kernel size, but got pad={padH}x{padW} and kernel_size={kernelH}x{kernelW}.");
        }

        Channels = channels;
        InH = inH;
        InW = inW;
        KernelH = kernelH;
        KernelW = kernelW;
        StrideH = strideH;
        StrideW = strideW;
        PadH = padH;
        PadW = padW;
        DilationH = dilationH;
        DilationW = dilationW;
        CeilMode = ceilMode;
        OutH = OutputSize(inH, kernelH, strideH, padH, dilationH, ceilMode);
        OutW = OutputSize(inW, kernelW, strideW, padW, dilationW, ceilMode);
        if (OutH < 1 || OutW < 1)
        {
            throw new ArgumentException($"Given input size {channels}x{inH}x{inW}, calculated output size {channels}x{OutH}x{OutW} is too small.");
        }
    }

    /// <summary>Channels.</summary>
    public int Channels { get; }
    /// <summary>Input height.</summary>
    public int InH { get; }
    /// <summary>Input width.</summary>
    public int InW { get; }
    /// <summary>Window height.</summary>
    public int KernelH { get; }
    /// <summary>Window width.</summary>
    public int KernelW { get; }
    /// <summary>Vertical stride.</summary>
    public int StrideH { get; }
    /// <summary>Horizontal stride.</summary>
    public int StrideW { get; }
    /// <summary>Vertical padding (each side).</summary>
    public int PadH { get; }
    /// <summary>Horizontal padding (each side).</summary>
    public int PadW { get; }
    /// <summary>Vertical dilation.</summary>
    public int DilationH { get; }
    /// <summary>Horizontal dilation.</summary>
    public int DilationW { get; }
    /// <summary>Whether the output size is rounded up.</summary>
    public bool CeilMode { get; }

    /// <summary>Output height.</summary>
    public int OutH { get; }
    /// <summary>Output width.</summary>
    public int OutW { get; }

    /// <summary>Elements of one input sample: <c>Channels*InH*InW</c>.</summary>
    public int InputLength => Channels * InH * InW;
    /// <summary>Elements of one output sample: <c>Channels*OutH*OutW</c>.</summary>
    public int OutputLength => Channels * OutH * OutW;

    // PyTorch's pooling_output_shape, written once for the compiler and the runtime.
    private static int OutputSize(int input, int kernel, int stride, int pad, int dilation, bool ceilMode) =>
        (int)Dsl.Contract.OutputSizes.Of(input, kernel, stride, pad, dilation, ceilMode);

    private static void RequirePositive(int value, string name)
    {
        if (value < 1) throw new ArgumentException($"{name} must be positive, got {value}.", name);
    }
}
