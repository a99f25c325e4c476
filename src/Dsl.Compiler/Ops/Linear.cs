using System.Collections.Generic;
using Dsl.Compiler.Diagnostics;
using Dsl.Compiler.Semantics;
using Dsl.Contract;

namespace Dsl.Compiler.Ops
{
    /// <summary><c>linear</c>: PyTorch's <c>nn.Linear</c> on <c>[F]</c>.</summary>
    public sealed class LinearDefinition : OpDefinition
    {
        public LinearDefinition()
            : base("linear", new ParameterSpec[]
            {
                new("in_features", ParameterType.Integer, true, "in"),
                new("out_features", ParameterType.Integer, true, "out"),
                new("bias", ParameterType.Boolean, false),
            })
        {
        }

        public override int? Rank => 1;

        public override string Example => "linear(128, 10)";

        public override Op? Bind(LayerBinding b)
        {
            var args = b.Arguments;
            int errorsBefore = b.ErrorCount();
            int inFeatures = args.Int("in_features", 0, 1, "at least 1");
            int outFeatures = args.Int("out_features", 0, 1, "at least 1");
            bool bias = args.Bool("bias", true);
            if (b.ErrorCount() != errorsBefore || b.Input is not { } input) return null;
            if (!b.RankIs(input, 1)) return null;
            if (inFeatures != input[0])
            {
                string message = b.Previous is FlattenOp flatten && flatten.InputShape.Count > 1
                    ? $"'flatten' yields {input[0]} features ({string.Join("×", flatten.InputShape)}) but 'linear' expects {inFeatures}; write linear({input[0]}, {outFeatures})"
                    : $"'linear' expects {inFeatures} input features but receives {input[0]} ({b.Origin(input)}); write linear({input[0]}, {outFeatures})";
                b.Report(DiagnosticDescriptors.FeatureMismatch, b.SpanOf("in_features"), message);
                return null;
            }

            var tensors = new List<TensorSpec> { new($"{b.Name}.weight", "weight", new[] { outFeatures, inFeatures }, TensorRole.Weight) };
            if (bias) tensors.Add(new TensorSpec($"{b.Name}.bias", "bias", new[] { outFeatures }, TensorRole.Bias));
            long flops = 2L * inFeatures * outFeatures + (bias ? outFeatures : 0);
            return b.Checked(new LinearOp(b.Core("linear", input, new[] { outFeatures }, tensors, flops), inFeatures, outFeatures, bias));
        }
    }

    /// <summary>A bound linear layer.</summary>
    public sealed class LinearOp : WeightedOp
    {
        internal LinearOp(OpCore core, int inFeatures, int outFeatures, bool bias)
            : base(core, bias, outFeatures)
        {
            InFeatures = inFeatures;
            OutFeatures = outFeatures;
        }

        public int InFeatures { get; }
        public int OutFeatures { get; }

        public override string Describe() => $"linear({InFeatures}, {OutFeatures}, bias: {Flag(Bias)})";

        /// <summary>Floats of the weight packed as the GEMM's B operand at inference (the shared contract's length).</summary>
        public int PackedWeightLength => PackedLengths.LinearWeight(InFeatures, OutFeatures);

        public override void EmitForward(Emit.OpEmitContext e, string x, string y)
        {
            e.Header();
            e.Line($"{e.Kernels}.Linear.Forward({x}, {e.Weight()}, {e.BiasOrDefault()}, {y}, batch, {e.Int(InFeatures)}, {e.Int(OutFeatures)}, scratch, Pool);");
        }

        public override void EmitBackward(Emit.OpEmitContext e, string x, string y, string dy, string dx)
        {
            e.Line($"{e.Kernels}.Linear.BackwardWeight({dy}, {x}, {e.Weight("gradients")}, {e.BiasOrDefault("gradients")}, batch, {e.Int(InFeatures)}, {e.Int(OutFeatures)}, scratch, Pool, accumulate);");
            e.Line($"{e.Guard}{e.Kernels}.Linear.BackwardInput({dy}, {e.Weight()}, {dx}, batch, {e.Int(InFeatures)}, {e.Int(OutFeatures)}, scratch, Pool);");
        }

        public override void EmitInfer(Emit.OpEmitContext e, string v)
        {
            e.Header(FusionNotes(e) + AppliedNotes(e));
            e.DeclareInferOutput(v);
            var (w, b) = InferenceWeights(e);
            e.Line($"{e.Kernels}.Linear.ForwardPacked(h, {w}, folded.Slice({e.N}PackedWeight, {e.Int(PackedWeightLength)}), {b}, {v}, batch, {e.Int(InFeatures)}, {e.Int(OutFeatures)}, scratch, Pool{ActivationArgument(e)});");
        }

        /// <summary>Packs the (folded) weight for the GEMM, after every batch norm has been folded.</summary>
        public void EmitPacking(Emit.OpEmitContext e)
        {
            var (w, _) = InferenceWeights(e);
            e.Line();
            e.Line($"// {Name}: Wᵀ packed in 16-column panels, for the GEMM at inference batches from Linear.PackedBatchLimit up");
            e.Line($"if (MaxBatch >= {e.Kernels}.Linear.PackedBatchLimit) {e.Kernels}.Linear.PackWeight({w}, folded.Slice({e.N}PackedWeight, {e.Int(PackedWeightLength)}), {e.Int(InFeatures)}, {e.Int(OutFeatures)});");
        }
    }
}
