using System.Collections.Generic;
using System.Linq;
using Dsl.Compiler.Diagnostics;
using Dsl.Compiler.Lowering;
using Dsl.Compiler.Semantics;
using Dsl.Compiler.Syntax;
using Dsl.Contract;

namespace Dsl.Compiler.Ops
{
    /// <summary><c>conv</c>, <c>conv1d</c>, <c>conv2d</c>: PyTorch's <c>nn.Conv1d</c>/<c>nn.Conv2d</c>.</summary>
    public sealed class ConvDefinition : OpDefinition
    {
        private static readonly ParameterSpec[] ConvParameters =
        {
            new("in_channels", ParameterType.Integer, true, "in"),
            new("out_channels", ParameterType.Integer, true, "out"),
            new("kernel_size", ParameterType.IntegerOrPair, true, "kernel"),
            new("stride", ParameterType.IntegerOrPair, false),
            new("padding", ParameterType.IntegerOrPair, false),
            new("dilation", ParameterType.IntegerOrPair, false),
            new("groups", ParameterType.Integer, false),
            new("bias", ParameterType.Boolean, false),
        };

        private readonly int? _rank;

        public ConvDefinition(string name, int? rank)
            : base(name, ConvParameters) => _rank = rank;

        public override int? Rank => _rank;

        public override string Example => $"{Name}(1, 6, 5)";

        public override Op? Bind(LayerBinding b)
        {
            var args = b.Arguments;
            int errorsBefore = b.ErrorCount();
            int inChannels = args.Int("in_channels", 0, 1, "at least 1");
            int outChannels = args.Int("out_channels", 0, 1, "at least 1");
            var kernel = args.Pair("kernel_size", (1, 1), 1, "at least 1");
            var stride = args.Pair("stride", (1, 1), 1, "at least 1");
            var padding = args.Pair("padding", (0, 0), 0, "at least 0");
            var dilation = args.Pair("dilation", (1, 1), 1, "at least 1");
            int groups = args.Int("groups", 1, 1, "at least 1");
            bool bias = args.Bool("bias", true);
            if (b.ErrorCount() == errorsBefore && args["groups"] is { } groupsArgument && (inChannels % groups != 0 || outChannels % groups != 0))
            {
                b.Report(DiagnosticDescriptors.GroupsDoNotDivide, groupsArgument.Syntax.Span,
                    $"groups {groups} must divide both in_channels {inChannels} and out_channels {outChannels}");
            }

            if (b.ErrorCount() != errorsBefore || b.Input is not { } input) return null;
            if (!Spatial.PairsFitRank(b, input)) return null;
            if (!b.RankIs(input, Rank is { } r ? new[] { r } : new[] { 2, 3 })) return null;
            bool oneD = input.Count == 2;
            string kind = oneD ? "conv1d" : "conv2d";
            if (inChannels != input[0])
            {
                b.Report(DiagnosticDescriptors.ChannelMismatch, b.SpanOf("in_channels"),
                    $"'{kind}' expects {inChannels} input channels but receives {input[0]} ({b.Origin(input)}); write {Name}({input[0]}, {outChannels}, ...)");
                return null;
            }

            // A 1-d layer is a 2-d one of height 1, as the runtime computes it.
            if (oneD)
            {
                kernel = (1, kernel.W);
                stride = (1, stride.W);
                padding = (0, padding.W);
                dilation = (1, dilation.W);
            }

            var spatial = Spatial.Output(b, kind, input, kernel, stride, padding, dilation, ceilMode: false);
            if (spatial is null) return null;
            var output = new[] { outChannels }.Concat(spatial).ToArray();
            int perGroup = inChannels / groups;
            var weightShape = oneD ? new[] { outChannels, perGroup, kernel.W } : new[] { outChannels, perGroup, kernel.H, kernel.W };
            var tensors = new List<TensorSpec> { new($"{b.Name}.weight", "weight", weightShape, TensorRole.Weight) };
            if (bias) tensors.Add(new TensorSpec($"{b.Name}.bias", "bias", new[] { outChannels }, TensorRole.Bias));
            long outputLength = Shapes.Elements(output);
            long flops = 2 * outputLength * perGroup * kernel.H * kernel.W + (bias ? outputLength : 0);
            return b.Checked(new ConvOp(b.Core(kind, input, output, tensors, flops), inChannels, outChannels, kernel, stride, padding, dilation, groups, bias));
        }
    }

    /// <summary>Which algorithm computes a convolution, chosen at compile time from its constant geometry.</summary>
    public enum ConvAlgorithm
    {
        /// <summary>im2col-free GEMM on the padded grid (any geometry).</summary>
        Gemm,

        /// <summary>A direct reduction of few taps (few input channels, a short kernel, wide rows).</summary>
        Direct,

        /// <summary>Winograd's F(2×2, 3×3) (3×3 stride-1 layers with many channels).</summary>
        Winograd,
    }

    /// <summary>A bound convolution; a 1-d one is stored as a 2-d one of height 1.</summary>
    public sealed class ConvOp : WeightedOp
    {
        internal ConvOp(OpCore core, int inChannels, int outChannels, (int H, int W) kernel, (int H, int W) stride, (int H, int W) padding,
            (int H, int W) dilation, int groups, bool bias)
            : base(core, bias, outChannels)
        {
            InChannels = inChannels;
            Kernel = kernel;
            Stride = stride;
            Padding = padding;
            Dilation = dilation;
            Groups = groups;
        }

        public int InChannels { get; }
        public (int H, int W) Kernel { get; }
        public (int H, int W) Stride { get; }
        public (int H, int W) Padding { get; }
        public (int H, int W) Dilation { get; }
        public int Groups { get; }
        public int InH => InputShape.Count == 3 ? InputShape[1] : 1;
        public int InW => InputShape[InputShape.Count - 1];
        public int OutH => OutputShape.Count == 3 ? OutputShape[1] : 1;
        public int OutW => OutputShape[OutputShape.Count - 1];

        public override string Describe() =>
            $"{KindName}({InChannels}, {OutChannels}, kernel: ({Kernel.H}, {Kernel.W}), stride: ({Stride.H}, {Stride.W}), padding: ({Padding.H}, {Padding.W}), dilation: ({Dilation.H}, {Dilation.W}), groups: {Groups}, bias: {Flag(Bias)})";

        /// <summary>The kernel rule of the shared contract, applied to this layer.</summary>
        public ConvAlgorithm Algorithm =>
            ConvolutionRules.Winograd(InChannels, OutChannels, Kernel.H, Kernel.W, Stride.H, Stride.W, Dilation.H, Dilation.W, Groups, OutH, OutW) ? ConvAlgorithm.Winograd
            : ConvolutionRules.Direct(InChannels, Kernel.H, Kernel.W, Stride.H, Stride.W, Dilation.H, Dilation.W, Groups, OutW) ? ConvAlgorithm.Direct
            : ConvAlgorithm.Gemm;

        /// <summary>Floats of the weight after Winograd's transform, as inference keeps it (the shared contract's length).</summary>
        public int TransformedWeightLength => PackedLengths.WinogradWeight(InChannels, OutChannels);

        private static string KernelClass(ConvAlgorithm algorithm) => algorithm switch
        {
            ConvAlgorithm.Winograd => "ConvWinograd",
            ConvAlgorithm.Direct => "ConvDirect",
            ConvAlgorithm.Gemm => "ConvGemm",
            _ => throw new UnreachableException(),
        };

        private static string Note(ConvAlgorithm algorithm) => algorithm switch
        {
            ConvAlgorithm.Winograd => " — Winograd F(2×2, 3×3): 16 multiplies per 2×2 outputs and input channel, not 36",
            ConvAlgorithm.Direct => " — direct: a reduction of few taps, no GEMM",
            ConvAlgorithm.Gemm => "",
            _ => throw new UnreachableException(),
        };

        public void EmitGeometry(Emit.OpEmitContext e)
        {
            e.Line($"private static readonly {e.Kernels}.ConvGeometry {e.N}Geometry = new(");
            e.Line($"    inChannels: {InChannels}, outChannels: {OutChannels}, inH: {InH}, inW: {InW}, kernelH: {Kernel.H}, kernelW: {Kernel.W},");
            e.Line($"    strideH: {Stride.H}, strideW: {Stride.W}, padH: {Padding.H}, padW: {Padding.W}, dilationH: {Dilation.H}, dilationW: {Dilation.W}, groups: {Groups});");
        }

        public string ScratchLength(Emit.OpEmitContext e) => $"{e.Kernels}.{KernelClass(e.Algorithm)}.ParallelScratchLength(in {e.N}Geometry)";

        public override void EmitForward(Emit.OpEmitContext e, string x, string y)
        {
            e.Header(Note(e.Algorithm));
            e.Line($"{e.Kernels}.{KernelClass(e.Algorithm)}.Forward({x}, {e.Weight()}, {e.BiasOrDefault()}, {y}, batch, in {e.N}Geometry, scratch, Pool);");
        }

        public override void EmitBackward(Emit.OpEmitContext e, string x, string y, string dy, string dx)
        {
            e.ClearGradientsAfterZeroGrad(e.Weight("gradients"), e.BiasOrDefault("gradients"));
            e.Line($"{e.Kernels}.{KernelClass(e.Algorithm)}.BackwardWeight({dy}, {x}, {e.Weight("gradients")}, {e.BiasOrDefault("gradients")}, batch, in {e.N}Geometry, scratch, Pool);");
            // The direct kernel has no input gradient of its own: the GEMM computes it.
            var input = e.Algorithm == ConvAlgorithm.Winograd ? ConvAlgorithm.Winograd : ConvAlgorithm.Gemm;
            e.Line($"{e.Guard}{e.Kernels}.{KernelClass(input)}.BackwardInput({dy}, {e.Weight()}, {dx}, batch, in {e.N}Geometry, scratch, Pool);");
        }

        public override void EmitInfer(Emit.OpEmitContext e, string v)
        {
            e.Header(FusionNotes(e) + Note(e.Algorithm) + AppliedNotes(e));
            e.DeclareInferOutput(v);
            var (w, b) = InferenceWeights(e);
            string fused = e.Group?.Find(EpilogueKind.MaxPool2x2) is not null
                ? $", relu: {(e.Group.Find(EpilogueKind.Activation) is null ? "false" : "true")}, maxPool: true"
                : e.InferOutputSlice is { } slice ? SliceArguments(e, slice)
                : ActivationArgument(e);
            // Winograd reads the weights RefreshFolded transformed; the other kernels read the (folded) weights themselves.
            string call = e.Algorithm == ConvAlgorithm.Winograd ? $"ForwardTransformed(h, {TransformedWeight(e)}" : $"Forward(h, {w}";
            e.Line($"{e.Kernels}.{KernelClass(e.Algorithm)}.{call}, {b}, {v}, batch, in {e.N}Geometry, scratch, Pool{fused});");
        }

        /// <summary>The span of the folded storage that holds the transformed weights of a Winograd convolution.</summary>
        private string TransformedWeight(Emit.OpEmitContext e) => $"folded.Slice({e.N}TransformedWeight, {e.Int(TransformedWeightLength)})";

        /// <summary>
        /// In RefreshFolded, for a Winograd convolution: transforms the weight Infer reads (the folded one, right after the
        /// fold, when a batch norm was folded in) once per change of the parameters, not on every Infer call.
        /// </summary>
        public void EmitWeightTransform(Emit.OpEmitContext e)
        {
            var (w, _) = InferenceWeights(e);
            bool folded = e.Group?.Find(EpilogueKind.FoldedBatchNorm) is not null;
            e.Line($"// {Name}: Winograd's U = G·g·Gᵀ of the {(folded ? "folded " : "")}kernels, transformed here when they change rather than in every Infer");
            e.Line($"{e.Kernels}.ConvWinograd.TransformWeights({w}, {TransformedWeight(e)}, in {e.N}Geometry);");
        }

        /// <summary>The arguments of the kernels' strided entry point: the activation, no residual, and the concatenation's sample stride.</summary>
        private static string SliceArguments(Emit.OpEmitContext e, InferenceSlice slice)
        {
            string function = e.Group?.Find(EpilogueKind.Activation) is { Node.Op: ActivationOp activation } ? activation.Function.Kernel : "None";
            return $", {e.Kernels}.FusedActivation.{function}, residual: default, outputStride: {e.Int(slice.Stride)}";
        }
    }

    /// <summary>The spatial rules convolution and pooling share.</summary>
    internal static class Spatial
    {
        /// <summary>A generic 1-d/2-d layer on <c>[C, L]</c>: a pair has no second dimension to apply to.</summary>
        public static bool PairsFitRank(LayerBinding b, IReadOnlyList<int> input)
        {
            if (input.Count != 2 || b.Definition.Rank is not null) return true;
            var pair = b.Arguments.All.FirstOrDefault(arg => arg.Syntax.Kind == ValueKind.Pair);
            if (pair is null) return true;
            b.Report(DiagnosticDescriptors.WrongValueKind, pair.Syntax.Span,
                $"'{pair.Spec.Name}' of '{b.Syntax.Name.Text}' must be a single integer on a [C, L] input (a 1-d layer has one spatial dimension), not the pair ({pair.Syntax.Text})");
            return false;
        }

        /// <summary>PyTorch's output size per spatial dimension (the shared contract's rule); reports a size that reaches zero.</summary>
        public static int[]? Output(LayerBinding b, string kind, IReadOnlyList<int> input, (int H, int W) kernel, (int H, int W) stride,
            (int H, int W) padding, (int H, int W) dilation, bool ceilMode)
        {
            var dims = input.Count == 2
                ? new[] { ("length", input[1], kernel.W, stride.W, padding.W, dilation.W) }
                : new[] { ("height", input[1], kernel.H, stride.H, padding.H, dilation.H), ("width", input[2], kernel.W, stride.W, padding.W, dilation.W) };
            var output = new int[dims.Length];
            for (int i = 0; i < dims.Length; i++)
            {
                var (label, size, k, s, p, d) = dims[i];
                long size64 = OutputSizes.Of(size, k, s, p, d, ceilMode);
                if (size64 < 1)
                {
                    b.Report(DiagnosticDescriptors.SpatialSizeNotPositive, b.SpanOf("kernel_size"),
                        $"'{kind}' reduces the {label} to {size64}: an input {label} of {size} is too small for kernel {k} (stride {s}, padding {p}, dilation {d}); use a smaller kernel, more padding or a larger input");
                    return null;
                }

                if (size64 > Binder.MaxElements)
                {
                    b.Report(DiagnosticDescriptors.TooLarge, b.Syntax.Name.Span, $"'{kind}' makes the {label} {size64}, more than the {Binder.MaxElements} a model can hold");
                    return null;
                }

                output[i] = (int)size64;
            }

            return output;
        }
    }
}
