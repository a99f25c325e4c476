using System.Collections.Generic;
using Dsl.Compiler.Diagnostics;

namespace Dsl.Compiler.Ops
{
    /// <summary>
    /// A conv or linear layer: a weight with one row per output channel and an optional bias. Batch norm folds into
    /// it at inference, and an activation after it is applied as it writes.
    /// </summary>
    public abstract class WeightedOp : Op
    {
        protected WeightedOp(OpCore core, bool bias, int outChannels)
            : base(core)
        {
            Bias = bias;
            OutChannels = outChannels;
        }

        public bool Bias { get; }

        /// <summary>Output channels (features): the rows of the weight.</summary>
        public int OutChannels { get; }

        public int WeightLength => Tensors[0].ElementCount;

        /// <summary>PyTorch's fan-in, for the default initialization.</summary>
        public int FanIn => WeightLength / OutChannels;

        public override BackwardReads BackwardReads => BackwardReads.Input;

        public override bool UsesScratch => true;

        public override IEnumerable<NnDiagnostic> Lint(LintContext context)
        {
            if (Bias && context.Next is BatchNormOp { Frozen: false } bn)
            {
                yield return DiagnosticDescriptors.RedundantBias.At(SpanOf("bias"),
                    $"the bias of '{KindName}' is cancelled by the following '{bn.KindName}' (batch norm subtracts the per-channel mean), so its {OutChannels} parameters never learn anything; write bias: false (to keep loading PyTorch weights that carry '{Name}.bias', keep the bias, or load them with allowExtra: true)");
            }
        }

        public override void EmitReset(Emit.OpEmitContext e)
        {
            e.Line($"// {Name}: weight ~ U(±1/√fan_in) (kaiming_uniform with a = √5), fan_in = {e.Int(FanIn)}{(Bias ? "; bias likewise" : "")}");
            e.Line($"{e.Kernels}.Initialization.KaimingUniformDefault({e.Weight()}, {e.Int(FanIn)}, ref rng);");
            if (Bias) e.Line($"{e.Kernels}.Initialization.Uniform({e.BiasOrDefault()}, {e.Float(1 / System.Math.Sqrt(FanIn))}, ref rng);");
        }

        /// <summary>The notes on an inference header: what was folded in and what is applied as it writes.</summary>
        protected string FusionNotes(Emit.OpEmitContext e)
        {
            string notes = "";
            if (e.Group?.Find(Lowering.EpilogueKind.FoldedBatchNorm) is { } bn) notes += $" — with {bn.Node.Op.Name} folded in";
            return notes;
        }

        /// <summary>The notes after the kernel's own: the residual add, the activation and pooling applied as it writes.</summary>
        protected static string AppliedNotes(Emit.OpEmitContext e)
        {
            string notes = "";
            if (e.Group?.Find(Lowering.EpilogueKind.ResidualAdd) is { } add)
                notes += $" — {add.Node.Op.Name} (add) applied as it writes: adds {e.InferSourceOf(add.Residual!)}";
            if (e.Group?.Find(Lowering.EpilogueKind.Activation) is { } activation)
                notes += $" — {activation.Node.Op.Name} ({activation.Node.Op.KindName}) applied as it writes";
            if (e.Group?.Find(Lowering.EpilogueKind.MaxPool2x2) is { } pool)
                notes += $" — {pool.Node.Op.Name} (maxpool 2×2) applied as it writes, "
                    + (e.Algorithm == ConvAlgorithm.Winograd ? "one window per tile" : "two output rows at a time");
            return notes;
        }

        /// <summary>The weight and bias inference reads: folded with a batch norm when one was folded in.</summary>
        protected (string Weight, string Bias) InferenceWeights(Emit.OpEmitContext e)
        {
            bool fold = e.Group?.Find(Lowering.EpilogueKind.FoldedBatchNorm) is not null;
            return fold
                ? ($"folded.Slice({e.N}FoldedWeight, {e.Int(WeightLength)})", $"folded.Slice({e.N}FoldedBias, {e.Int(OutChannels)})")
                : (e.Weight(), e.BiasOrDefault());
        }

        /// <summary>
        /// The fused-activation argument of the kernels: <c>, relu: true</c> or nothing; with a residual add, the
        /// activation after it and the residual: <c>, FusedActivation.Relu, residual: h2</c>.
        /// </summary>
        protected static string ActivationArgument(Emit.OpEmitContext e)
        {
            var activation = e.Group?.Find(Lowering.EpilogueKind.Activation);
            if (e.Group?.Find(Lowering.EpilogueKind.ResidualAdd) is { } add)
            {
                string function = activation is null ? "None" : ((ActivationOp)activation.Node.Op).Function.Kernel;
                return $", {e.Kernels}.FusedActivation.{function}, residual: {e.InferNameOf(add.Residual!)}";
            }

            return activation is not null ? ((ActivationOp)activation.Node.Op).KernelArgument(e) : "";
        }
    }
}
