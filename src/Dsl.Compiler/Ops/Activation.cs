using System.Collections.Generic;
using System.Linq;
using Dsl.Compiler.Lowering;
using Dsl.Compiler.Semantics;

namespace Dsl.Compiler.Ops
{
    /// <summary>
    /// An element-wise activation: its <c>.nn</c> name, the runtime kernels (<c>Activations.{Kernel}Forward/Backward</c>,
    /// <c>ActivationEpilogues.{Kernel}</c> when it carries a batch norm's scale and shift), which forward value its
    /// backward reads, and which producers apply it as they write: a batch norm in training (the kernel's
    /// <c>FusedActivation.{Kernel}</c>), a conv or linear at inference (<c>relu: true</c> in their register tiles;
    /// SiLU and GELU by the same call, over the output right after the kernel wrote it).
    /// Only an activation whose backward reads its output can be written over the batch norm's output in training:
    /// SiLU's and GELU's backward read their input, which that fusion would overwrite.
    /// </summary>
    public sealed record ActivationFunction(string Name, string Kernel, BackwardReads BackwardReads, bool HasSlope = false,
        bool FusesIntoBatchNorm = false, bool FusesIntoWeighted = false, bool HasEpilogue = true, bool BackwardTakesPool = false)
    {
        public static readonly ActivationFunction Relu = new("relu", "Relu", BackwardReads.Output, FusesIntoBatchNorm: true, FusesIntoWeighted: true, BackwardTakesPool: true);
        public static readonly ActivationFunction Sigmoid = new("sigmoid", "Sigmoid", BackwardReads.Output);
        public static readonly ActivationFunction Tanh = new("tanh", "Tanh", BackwardReads.Output);
        public static readonly ActivationFunction LeakyRelu = new("leaky_relu", "LeakyRelu", BackwardReads.Input, HasSlope: true);

        /// <summary><c>nn.SiLU</c>: x·σ(x).</summary>
        public static readonly ActivationFunction Silu = new("silu", "Silu", BackwardReads.Input, FusesIntoWeighted: true, HasEpilogue: false);

        /// <summary><c>nn.GELU()</c>, the exact form: x·Φ(x) = x·(1 + erf(x/√2))/2.</summary>
        public static readonly ActivationFunction Gelu = new("gelu", "Gelu", BackwardReads.Input, FusesIntoWeighted: true, HasEpilogue: false);

        public static IReadOnlyList<ActivationFunction> All { get; } = new[] { Relu, Sigmoid, Tanh, LeakyRelu, Silu, Gelu };
    }

    /// <summary>The definition of one activation name.</summary>
    public sealed class ActivationDefinition : OpDefinition
    {
        private static readonly ParameterSpec[] SlopeParameters = { new("negative_slope", ParameterType.Decimal, false) };

        public ActivationDefinition(ActivationFunction function)
            : base(function.Name, function.HasSlope ? SlopeParameters : System.Array.Empty<ParameterSpec>()) => Function = function;

        public ActivationFunction Function { get; }

        public override Op? Bind(LayerBinding b)
        {
            int errorsBefore = b.ErrorCount();
            double slope = Function.HasSlope ? b.Arguments.Decimal("negative_slope", 0.01, v => true, "a number") : 0;
            if (b.ErrorCount() != errorsBefore || b.Input is not { } input) return null;
            return b.Checked(new ActivationOp(b.Core(Function.Name, input, input, System.Array.Empty<TensorSpec>(), Shapes.Elements(input)), Function, slope));
        }
    }

    /// <summary>A bound activation.</summary>
    public sealed class ActivationOp : Op
    {
        internal ActivationOp(OpCore core, ActivationFunction function, double negativeSlope)
            : base(core)
        {
            Function = function;
            NegativeSlope = negativeSlope;
        }

        public ActivationFunction Function { get; }
        public double NegativeSlope { get; }

        public override BackwardReads BackwardReads => Function.BackwardReads;

        public override bool BackwardInPlace => true;

        public override bool InfersInPlace => true;

        /// <summary>The argument a conv's or linear's kernel takes to apply this activation as it writes.</summary>
        public string KernelArgument(Emit.OpEmitContext e) =>
            !Function.FusesIntoWeighted ? throw new UnreachableException()
            : Function == ActivationFunction.Relu ? ", relu: true"
            : $", activation: {e.Kernels}.FusedActivation.{Function.Kernel}";

        /// <summary>The argument batch norm's training kernel takes to apply this activation as it writes.</summary>
        public string BatchNormArgument(Emit.OpEmitContext e) =>
            Function.FusesIntoBatchNorm ? $", activation: {e.Kernels}.FusedActivation.{Function.Kernel}" : throw new UnreachableException();

        public override string Describe() => Function.HasSlope ? $"{KindName}({Number(NegativeSlope)})" : KindName;

        private string Slope(Emit.OpEmitContext e) => Function.HasSlope ? ", " + e.Float(NegativeSlope) : "";

        public override void EmitForward(Emit.OpEmitContext e, string x, string y)
        {
            if (e.TrainingProducer is { } producer)
            {
                e.Header($" — applied by {producer.Op.Name} (batch norm) as it wrote this output");
                return;
            }

            e.Header();
            // ReLU's training forward splits across the model's threads (element-wise: the same bits); its BackwardTakesPool says the kernels take one.
            e.Line($"{e.Kernels}.Activations.{Function.Kernel}Forward({x}, {y}{Slope(e)}{(Function.BackwardTakesPool ? ", Pool" : "")});");
        }

        public override void EmitBackward(Emit.OpEmitContext e, string x, string y, string dy, string dx)
        {
            string read = Function.BackwardReads == BackwardReads.Output ? y : x;
            e.Line($"{e.Guard}{e.Kernels}.Activations.{Function.Kernel}Backward({read}, {dy}, {dx}{Slope(e)}{(Function.BackwardTakesPool ? ", Pool" : "")});");
        }

        public override void EmitInfer(Emit.OpEmitContext e, string v)
        {
            var scaleShift = e.Group?.Find(EpilogueKind.ScaleShift);
            e.Header(scaleShift is null ? "" : $" — with {scaleShift.Node.Op.Name} (batch norm) applied as it writes");
            e.DeclareInferOutput(v);
            if (scaleShift is not null)
            {
                var bn = scaleShift.Node.Op;
                e.Line($"{e.Kernels}.ActivationEpilogues.{Function.Kernel}(h, {v}, {e.ScaleShiftArguments}, batch, {e.Int(bn.Channels)}, {e.Int(bn.Spatial)}{Slope(e)});");
                return;
            }

            e.Line($"{e.Kernels}.Activations.{Function.Kernel}Forward(h, {v}{Slope(e)});");
        }
    }
}
