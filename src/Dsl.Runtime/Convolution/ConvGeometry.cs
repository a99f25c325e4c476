// Shape arithmetic for 2-d convolutions (1-d convolutions use H = 1), shared by the conv kernels and generated code.
using System.ComponentModel;

namespace Dsl.Runtime.Kernels;

/// <summary>
/// Immutable description of a 2-d convolution: channel counts, input size, kernel, stride, padding,
/// dilation and groups, plus the derived output size and per-sample buffer lengths.
/// A 1-d convolution is described with <c>inH = 1</c>, <c>kernelH = 1</c>, <c>strideH = 1</c>, <c>padH = 0</c>, <c>dilationH = 1</c>.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public readonly struct ConvGeometry
{
    /// <summary>Creates a geometry and validates it the way PyTorch's <c>nn.ConvGemm</c> does.</summary>
    /// <param name="inChannels">Input channels (must be divisible by <paramref name="groups"/>).</param>
    /// <param name="outChannels">Output channels (must be divisible by <paramref name="groups"/>).</param>
    /// <param name="inH">Input height.</param>
    /// <param name="inW">Input width.</param>
    /// <param name="kernelH">Kernel height.</param>
    /// <param name="kernelW">Kernel width.</param>
    /// <param name="strideH">Vertical stride.</param>
    /// <param name="strideW">Horizontal stride.</param>
    /// <param name="padH">Zero padding added to the top and bottom.</param>
    /// <param name="padW">Zero padding added to the left and right.</param>
    /// <param name="dilationH">Vertical kernel dilation.</param>
    /// <param name="dilationW">Horizontal kernel dilation.</param>
    /// <param name="groups">Number of channel groups.</param>
    /// <exception cref="ArgumentException">A value is out of range, channels are not divisible by groups, or the output would be empty.</exception>
    public ConvGeometry(int inChannels, int outChannels, int inH, int inW, int kernelH, int kernelW,
        int strideH, int strideW, int padH, int padW, int dilationH, int dilationW, int groups)
    {
        RequirePositive(inChannels, nameof(inChannels));
        RequirePositive(outChannels, nameof(outChannels));
        RequirePositive(inH, nameof(inH));
        RequirePositive(inW, nameof(inW));
        RequirePositive(kernelH, nameof(kernelH));
        RequirePositive(kernelW, nameof(kernelW));
        RequirePositive(strideH, nameof(strideH));
        RequirePositive(strideW, nameof(strideW));
        RequirePositive(dilationH, nameof(dilationH));
        RequirePositive(dilationW, nameof(dilationW));
        RequirePositive(groups, nameof(groups));
        if (padH < 0) throw new ArgumentException($"padH must be non-negative, got {padH}.", nameof(padH));
        if (padW < 0) throw new ArgumentException($"padW must be non-negative, got {padW}.", nameof(padW));
        if (inChannels % groups != 0) throw new ArgumentException($"in_channels ({inChannels}) must be divisible by groups ({groups}).", nameof(groups));
        if (outChannels % groups != 0) throw new ArgumentException($"out_channels ({outChannels}) must be divisible by groups ({groups}).", nameof(groups));

        InChannels = inChannels;
        OutChannels = outChannels;
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
        Groups = groups;
        OutH = OutputSize(inH, kernelH, strideH, padH, dilationH);
        OutW = OutputSize(inW, kernelW, strideW, padW, dilationW);
        if (OutH < 1 || OutW < 1)
        {
            throw new ArgumentException(
                $"Calculated output size ({OutH}x{OutW}) is too small for input {inH}x{inW}, kernel {kernelH}x{kernelW}, " +
                $"padding {padH}x{padW}, dilation {dilationH}x{dilationW}.");
        }
    }

    /// <summary>Input channels.</summary>
    public int InChannels { get; }
    /// <summary>Output channels.</summary>
    public int OutChannels { get; }
    /// <summary>Input height.</summary>
    public int InH { get; }
    /// <summary>Input width.</summary>
    public int InW { get; }
    /// <summary>Kernel height.</summary>
    public int KernelH { get; }
    /// <summary>Kernel width.</summary>
    public int KernelW { get; }
    /// <summary>Vertical stride.</summary>
    public int StrideH { get; }
    /// <summary>Horizontal stride.</summary>
    public int StrideW { get; }
    /// <summary>Vertical zero padding (each side).</summary>
    public int PadH { get; }
    /// <summary>Horizontal zero padding (each side).</summary>
    public int PadW { get; }
    /// <summary>Vertical dilation.</summary>
    public int DilationH { get; }
    /// <summary>Horizontal dilation.</summary>
    public int DilationW { get; }
    /// <summary>Number of channel groups.</summary>
    public int Groups { get; }

    /// <summary>Output height: <c>floor((InH + 2*PadH - DilationH*(KernelH-1) - 1) / StrideH) + 1</c>.</summary>
    public int OutH { get; }
    /// <summary>Output width: <c>floor((InW + 2*PadW - DilationW*(KernelW-1) - 1) / StrideW) + 1</c>.</summary>
    public int OutW { get; }

    /// <summary>Input channels per group.</summary>
    public int InPerGroup => InChannels / Groups;
    /// <summary>Output channels per group.</summary>
    public int OutPerGroup => OutChannels / Groups;
    /// <summary>Elements of one input sample: <c>InChannels*InH*InW</c>.</summary>
    public int InputLength => InChannels * InH * InW;
    /// <summary>Elements of one output sample: <c>OutChannels*OutH*OutW</c>.</summary>
    public int OutputLength => OutChannels * OutH * OutW;
    /// <summary>Elements of the weight tensor <c>[OutChannels, InChannels/Groups, KernelH, KernelW]</c>.</summary>
    public int WeightLength => OutChannels * (InChannels / Groups) * KernelH * KernelW;
    /// <summary>PyTorch's fan-in of the weight (<c>InChannels/Groups*KernelH*KernelW</c>), used for default initialization.</summary>
    public int FanIn => InPerGroup * KernelH * KernelW;

    // PyTorch's rule, written once for the compiler and the runtime (an output below 1 is rejected above).
    private static int OutputSize(int input, int kernel, int stride, int pad, int dilation) =>
        (int)Dsl.Contract.OutputSizes.Of(input, kernel, stride, pad, dilation);

    private static void RequirePositive(int value, string name)
    {
        if (value < 1) throw new ArgumentException($"{name} must be positive, got {value}.", name);
    }
}
