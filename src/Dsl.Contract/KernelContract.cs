// The rules the compiler and the runtime must agree on, written once: this file is compiled into both
// Dsl.Compiler (netstandard2.0) and Dsl.Runtime, so a layer the compiler plans for a kernel is a layer that
// kernel accepts, and an offset the compiler rounds is one the runtime's storage is aligned to.
namespace Dsl.Contract
{
    /// <summary>PyTorch's output-size rule for convolution and pooling, per spatial dimension.</summary>
    internal static class OutputSizes
    {
        /// <summary>
        /// <c>floor((in + 2p − d(k−1) − 1) / s) + 1</c>, or with <paramref name="ceilMode"/> the ceiling, dropping a last
        /// window that would start in the right padding (PyTorch's pooling_output_shape). Below 1 when the kernel does
        /// not fit.
        /// </summary>
        public static long Of(long size, long kernel, long stride, long padding, long dilation, bool ceilMode = false)
        {
            // PyTorch: div_rtn(in + 2p − d(k−1) − 1 + (ceil_mode ? s − 1 : 0), s) + 1, rounding toward −∞.
            long numerator = size + 2 * padding - dilation * (kernel - 1) - 1 + (ceilMode ? stride - 1 : 0);
            long output = (numerator >= 0 ? numerator / stride : -((-numerator + stride - 1) / stride)) + 1;
            if (ceilMode && (output - 1) * stride >= size + padding) output--;
            return output;
        }
    }

    /// <summary>
    /// Which convolution algorithm suits a layer, from its constant geometry (a 1-d layer as a 2-d one of height 1).
    /// The compiler chooses with these; the runtime's kernels check them and fall back to the GEMM otherwise.
    /// </summary>
    internal static class ConvolutionRules
    {
        /// <summary>Largest reduction (input channels × kernel taps) the direct kernel keeps in registers.</summary>
        public const int DirectMaxTaps = 32;

        /// <summary>Widest kernel row of the direct kernel.</summary>
        public const int DirectMaxKernelW = 5;

        /// <summary>Narrowest output row of the direct kernel: one register tile is 16 columns.</summary>
        public const int DirectMinOutW = 16;

        /// <summary>Fewest input and output channels for which Winograd's transforms cost less than the multiplies they save.</summary>
        public const int WinogradMinChannels = 16;

        /// <summary>The direct kernel: no groups, stride and dilation 1, a reduction of at most 32, kernel rows of at most 5, output rows of at least 16.</summary>
        public static bool Direct(int inChannels, int kernelH, int kernelW, int strideH, int strideW, int dilationH, int dilationW, int groups, int outW) =>
            groups == 1 && strideH == 1 && strideW == 1 && dilationH == 1 && dilationW == 1
            && (long)inChannels * kernelH * kernelW <= DirectMaxTaps && kernelW <= DirectMaxKernelW && outW >= DirectMinOutW;

        /// <summary>Winograd's F(2×2, 3×3): a 3×3 kernel, stride and dilation 1, no groups, at least 16 channels in and out, an output of at least 2×2.</summary>
        public static bool Winograd(int inChannels, int outChannels, int kernelH, int kernelW, int strideH, int strideW, int dilationH, int dilationW,
            int groups, int outH, int outW) =>
            kernelH == 3 && kernelW == 3 && strideH == 1 && strideW == 1 && dilationH == 1 && dilationW == 1
            && groups == 1 && inChannels >= WinogradMinChannels && outChannels >= WinogradMinChannels && outH >= 2 && outW >= 2;
    }

    /// <summary>Storage layout: regions start on 64-byte cache lines.</summary>
    internal static class Alignment
    {
        /// <summary>Floats in one 64-byte cache line.</summary>
        public const int LineFloats = 16;

        /// <summary>Rounds a float offset up to a whole cache line.</summary>
        public static int Line(int offset) => checked(offset + LineFloats - 1) & ~(LineFloats - 1);
    }

    /// <summary>Lengths of packed operands that generated code reserves and the runtime fills.</summary>
    internal static class PackedLengths
    {
        /// <summary>Columns of one packed GEMM panel (the micro-kernel's width).</summary>
        public const int PanelColumns = 16;

        /// <summary>Rows of one packed GEMM A panel (the micro-kernel's height).</summary>
        public const int PanelRows = 6;

        /// <summary>Floats after each of Winograd's transformed weight matrices: room for the tail of a vector store.</summary>
        public const int WinogradSlack = 8;

        /// <summary>A linear layer's <c>Wᵀ</c> packed as the GEMM's B operand: in · out, out rounded up to whole panels.</summary>
        public static int LinearWeight(int inFeatures, int outFeatures) => inFeatures * ((outFeatures + PanelColumns - 1) / PanelColumns * PanelColumns);

        /// <summary>
        /// A Winograd F(2×2, 3×3) convolution's transformed weights <c>U = G·g·Gᵀ</c>: sixteen <c>[out × in]</c> matrices
        /// packed as the GEMM's A operand, out rounded up to whole panels, each followed by <see cref="WinogradSlack"/> floats.
        /// </summary>
        public static int WinogradWeight(int inChannels, int outChannels) =>
            checked(16 * ((outChannels + PanelRows - 1) / PanelRows * PanelRows * inChannels + WinogradSlack));
    }
}
