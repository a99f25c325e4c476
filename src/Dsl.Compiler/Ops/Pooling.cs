using System.Linq;
using Dsl.Compiler.Diagnostics;
using Dsl.Compiler.Lowering;
using Dsl.Compiler.Semantics;

namespace Dsl.Compiler.Ops
{
    /// <summary>
    /// <c>maxpool</c>, <c>maxpool1d</c>, <c>maxpool2d</c>, <c>avgpool</c>, <c>avgpool1d</c>, <c>avgpool2d</c>: PyTorch's
    /// <c>nn.MaxPool1d/2d</c> and <c>nn.AvgPool1d/2d</c>, with its output-size and padding rules.
    /// </summary>
    public sealed class PoolDefinition : OpDefinition
    {
        private static readonly ParameterSpec[] MaxPoolParameters =
        {
            new("kernel_size", ParameterType.IntegerOrPair, true, "kernel"),
            new("stride", ParameterType.IntegerOrPair, false),
            new("padding", ParameterType.IntegerOrPair, false),
            new("dilation", ParameterType.IntegerOrPair, false),
            new("ceil_mode", ParameterType.Boolean, false),
        };

        private static readonly ParameterSpec[] AvgPoolParameters =
        {
            new("kernel_size", ParameterType.IntegerOrPair, true, "kernel"),
            new("stride", ParameterType.IntegerOrPair, false),
            new("padding", ParameterType.IntegerOrPair, false),
            new("ceil_mode", ParameterType.Boolean, false),
            new("count_include_pad", ParameterType.Boolean, false),
        };

        private readonly int? _rank;

        public PoolDefinition(string name, bool max, int? rank)
            : base(name, max ? MaxPoolParameters : AvgPoolParameters)
        {
            Max = max;
            _rank = rank;
        }

        public bool Max { get; }

        public override int? Rank => _rank;

        public override Op? Bind(LayerBinding b)
        {
            var args = b.Arguments;
            int errorsBefore = b.ErrorCount();
            var kernel = args.Pair("kernel_size", (1, 1), 1, "at least 1");
            var stride = args.Pair("stride", kernel, 1, "at least 1");
            var padding = args.Pair("padding", (0, 0), 0, "at least 0");
            var dilation = args.Pair("dilation", (1, 1), 1, "at least 1");
            bool ceilMode = args.Bool("ceil_mode", false);
            bool countIncludePad = args.Bool("count_include_pad", true);
            if (b.ErrorCount() == errorsBefore && args["padding"] is { } paddingArgument)
            {
                // PyTorch's pool2d_shape_check: "pad should be smaller than or equal to half of kernel size".
                int limitH = kernel.H / 2;
                int limitW = kernel.W / 2;
                if (padding.H > limitH || padding.W > limitW)
                {
                    b.Report(DiagnosticDescriptors.PoolPaddingTooLarge, paddingArgument.Syntax.Span,
                        $"padding of '{Name}' must be at most half the kernel: at most {Show((limitH, limitW))} for kernel {Show(kernel)}, got {Show(padding)}");
                }
            }

            if (b.ErrorCount() != errorsBefore || b.Input is not { } input) return null;
            if (!Spatial.PairsFitRank(b, input)) return null;
            if (!b.RankIs(input, Rank is { } r ? new[] { r } : new[] { 2, 3 })) return null;
            string kind = (Max ? "maxpool" : "avgpool") + (input.Count == 2 ? "1d" : "2d");
            if (input.Count == 2)
            {
                // A 1-d layer works on [C, L] as a 2-d one on [C, 1, L].
                kernel = (1, kernel.W);
                stride = (1, stride.W);
                padding = (0, padding.W);
                dilation = (1, dilation.W);
            }

            var spatial = Ops.Spatial.Output(b, kind, input, kernel, stride, padding, dilation, ceilMode);
            if (spatial is null || !EveryWindowReadsTheInput(b, kind, input, spatial, kernel, stride, padding, dilation)) return null;
            var output = new[] { input[0] }.Concat(spatial).ToArray();
            var core = b.Core(kind, input, output, System.Array.Empty<TensorSpec>(), Shapes.Elements(output) * kernel.H * kernel.W);
            return b.Checked(new PoolOp(core, Max, kernel, stride, padding, dilation, ceilMode, countIncludePad));
        }

        /// <summary>
        /// With dilation, a window near the edge can hold nothing but padding (kernel 2, dilation 3 and padding 1 on a
        /// length of 2 reads positions -1 and 2). PyTorch accepts that (its rules are p ≤ k/2 and p ≤ half the effective
        /// kernel) and returns -inf with an argmax outside the input; here it is NN1020 at the padding. Only windows that
        /// start in the leading padding can miss: a later one starts inside the input (PyTorch's ceil-mode rule keeps the
        /// last start below the input size), so its first tap reads it.
        /// </summary>
        private bool EveryWindowReadsTheInput(LayerBinding b, string kind, System.Collections.Generic.IReadOnlyList<int> input, int[] output,
            (int H, int W) kernel, (int H, int W) stride, (int H, int W) padding, (int H, int W) dilation)
        {
            var dims = input.Count == 2
                ? new[] { ("length", input[1], output[0], kernel.W, stride.W, padding.W, dilation.W) }
                : new[] { ("height", input[1], output[0], kernel.H, stride.H, padding.H, dilation.H), ("width", input[2], output[1], kernel.W, stride.W, padding.W, dilation.W) };
            foreach (var (label, size, outSize, k, s, p, d) in dims)
            {
                for (long o = 0; o < outSize; o++)
                {
                    long start = o * s - p;
                    if (start >= 0 && o > 0 && o < outSize - 1) o = outSize - 2; // the middle starts inside the input
                    long first = start >= 0 ? start : start + (-start + d - 1) / d * d; // the first tap at or after 0
                    if (first < size && first <= start + (long)(k - 1) * d) continue;
                    var taps = Enumerable.Range(0, System.Math.Min(k, 4)).Select(j => (start + (long)j * d).ToString(System.Globalization.CultureInfo.InvariantCulture));
                    b.Report(DiagnosticDescriptors.PoolPaddingTooLarge, b.SpanOf("padding"),
                        $"padding of '{Name}' leaves a window with nothing but padding in it: window {o} of the {label} reads positions {string.Join(", ", taps)}{(k > 4 ? ", …" : "")} "
                        + $"of an input {label} of {size} (kernel {k}, stride {s}, padding {p}, dilation {d}); '{kind}' would output -inf there. Use less padding or a smaller dilation");
                    return false;
                }
            }

            return true;
        }

        private static string Show((int H, int W) pair) =>
            pair.H == pair.W ? pair.H.ToString(System.Globalization.CultureInfo.InvariantCulture) : $"({pair.H}, {pair.W})";
    }

    /// <summary>A bound max or average pooling; a 1-d one is stored as a 2-d one of height 1.</summary>
    public sealed class PoolOp : Op
    {
        internal PoolOp(OpCore core, bool max, (int H, int W) kernel, (int H, int W) stride, (int H, int W) padding, (int H, int W) dilation,
            bool ceilMode, bool countIncludePad)
            : base(core)
        {
            Max = max;
            Kernel = kernel;
            Stride = stride;
            Padding = padding;
            Dilation = dilation;
            CeilMode = ceilMode;
            CountIncludePad = countIncludePad;
        }

        public bool Max { get; }
        public (int H, int W) Kernel { get; }
        public (int H, int W) Stride { get; }
        public (int H, int W) Padding { get; }
        public (int H, int W) Dilation { get; }
        public bool CeilMode { get; }
        public bool CountIncludePad { get; }

        /// <summary>A plain 2×2 stride-2 max pooling on [C, H, W]: one window per Winograd output tile.</summary>
        public bool IsMaxPool2x2 => Max && InputShape.Count == 3 && Kernel == (2, 2) && Stride == (2, 2) && Padding == (0, 0) && Dilation == (1, 1) && !CeilMode;

        public override int IndicesLength => Max ? OutputLength : 0;

        public override string Describe() =>
            $"{KindName}(kernel: ({Kernel.H}, {Kernel.W}), stride: ({Stride.H}, {Stride.W}), padding: ({Padding.H}, {Padding.W}), dilation: ({Dilation.H}, {Dilation.W}), ceil_mode: {Flag(CeilMode)}{(Max ? "" : $", count_include_pad: {Flag(CountIncludePad)}")})";

        public void EmitGeometry(Emit.OpEmitContext e)
        {
            int inH = InputShape.Count == 3 ? InputShape[1] : 1;
            int inW = InputShape[InputShape.Count - 1];
            e.Line($"private static readonly {e.Kernels}.PoolGeometry {e.N}Geometry = new(");
            e.Line($"    channels: {InputShape[0]}, inH: {inH}, inW: {inW}, kernelH: {Kernel.H}, kernelW: {Kernel.W}, strideH: {Stride.H}, strideW: {Stride.W},");
            e.Line($"    padH: {Padding.H}, padW: {Padding.W}, dilationH: {Dilation.H}, dilationW: {Dilation.W}, ceilMode: {Flag(CeilMode)});");
        }

        public override void EmitForward(Emit.OpEmitContext e, string x, string y)
        {
            e.Header();
            e.Line(Max
                ? $"{e.Kernels}.Pooling.MaxForward({x}, {y}, {e.Indices()}, batch, in {e.N}Geometry, Pool);"
                : $"{e.Kernels}.Pooling.AvgForward({x}, {y}, batch, in {e.N}Geometry, countIncludePad: {Flag(CountIncludePad)});");
        }

        public override void EmitBackward(Emit.OpEmitContext e, string x, string y, string dy, string dx) =>
            e.Line(Max
                ? $"{e.Guard}{e.Kernels}.Pooling.MaxBackward({dy}, {e.Indices()}, {dx}, batch, in {e.N}Geometry, Pool);"
                : $"{e.Guard}{e.Kernels}.Pooling.AvgBackward({dy}, {dx}, batch, in {e.N}Geometry, countIncludePad: {Flag(CountIncludePad)});");

        public override void EmitInfer(Emit.OpEmitContext e, string v)
        {
            e.Header(e.ScaleShiftNote);
            e.DeclareInferOutput(v);
            string scaleShift = e.ScaleShiftArguments.Length > 0 ? ", " + e.ScaleShiftArguments : "";
            e.Line(Max
                ? $"{e.Kernels}.Pooling.MaxForward(h, {v}, batch, in {e.N}Geometry{scaleShift}, Pool);"
                : $"{e.Kernels}.Pooling.AvgForward(h, {v}, batch, in {e.N}Geometry, countIncludePad: {Flag(CountIncludePad)}{scaleShift});");
        }
    }

    /// <summary><c>global_avgpool</c>: <c>nn.AdaptiveAvgPool(1)</c> followed by a flatten, [C, ...] → [C].</summary>
    public sealed class GlobalAvgPoolDefinition : OpDefinition
    {
        public GlobalAvgPoolDefinition()
            : base("global_avgpool", System.Array.Empty<ParameterSpec>())
        {
        }

        public override Op? Bind(LayerBinding b)
        {
            if (b.Input is not { } input || !b.RankIs(input, 2, 3)) return null;
            return b.Checked(new GlobalAvgPoolOp(b.Core("global_avgpool", input, new[] { input[0] }, System.Array.Empty<TensorSpec>(), Shapes.Elements(input))));
        }
    }

    /// <summary>A bound global average pooling.</summary>
    public sealed class GlobalAvgPoolOp : Op
    {
        internal GlobalAvgPoolOp(OpCore core)
            : base(core)
        {
        }

        public override void EmitForward(Emit.OpEmitContext e, string x, string y)
        {
            e.Header();
            e.Line($"{e.Kernels}.Pooling.GlobalAvgForward({x}, {y}, batch, {e.Int(Channels)}, {e.Int(Spatial)});");
        }

        public override void EmitBackward(Emit.OpEmitContext e, string x, string y, string dy, string dx) =>
            e.Line($"{e.Guard}{e.Kernels}.Pooling.GlobalAvgBackward({dy}, {dx}, batch, {e.Int(Channels)}, {e.Int(Spatial)});");

        public override void EmitInfer(Emit.OpEmitContext e, string v)
        {
            e.Header(e.ScaleShiftNote);
            e.DeclareInferOutput(v);
            string scaleShift = e.ScaleShiftArguments.Length > 0 ? ", " + e.ScaleShiftArguments : "";
            e.Line($"{e.Kernels}.Pooling.GlobalAvgForward(h, {v}, batch, {e.Int(Channels)}, {e.Int(Spatial)}{scaleShift});");
        }
    }
}
