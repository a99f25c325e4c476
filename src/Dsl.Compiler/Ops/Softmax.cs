using System.Collections.Generic;
using Dsl.Compiler.Diagnostics;
using Dsl.Compiler.Semantics;

namespace Dsl.Compiler.Ops
{
    /// <summary><c>softmax</c>, <c>log_softmax</c>: <c>nn.Softmax(dim=1)</c>/<c>nn.LogSoftmax(dim=1)</c> on [F].</summary>
    public sealed class SoftmaxDefinition : OpDefinition
    {
        public SoftmaxDefinition(string name, bool log)
            : base(name, System.Array.Empty<ParameterSpec>()) => Log = log;

        public bool Log { get; }

        public override int? Rank => 1;

        public override Op? Bind(LayerBinding b)
        {
            if (b.Input is not { } input || !b.RankIs(input, 1)) return null;
            return b.Checked(new SoftmaxOp(b.Core(Name, input, input, System.Array.Empty<TensorSpec>(), 3 * Shapes.Elements(input)), Log));
        }
    }

    /// <summary>A bound softmax or log-softmax over the features of each sample.</summary>
    public sealed class SoftmaxOp : Op
    {
        internal SoftmaxOp(OpCore core, bool log)
            : base(core) => Log = log;

        public bool Log { get; }

        private string Kernel => Log ? "LogSoftmax" : "Softmax";

        public override BackwardReads BackwardReads => BackwardReads.Output;

        public override IEnumerable<NnDiagnostic> Lint(LintContext context)
        {
            if (context.Next is { } next)
            {
                yield return DiagnosticDescriptors.LayerAfterSoftmax.At(Syntax.Name.Span,
                    $"'{KindName}' is followed by '{next.KindName}': it squashes features into probabilities and belongs at the end of the chain");
            }
        }

        public override void EmitForward(Emit.OpEmitContext e, string x, string y)
        {
            e.Header();
            e.Line($"{e.Kernels}.Activations.{Kernel}Forward({x}, {y}, batch, {e.Int(OutputLength)});");
        }

        public override void EmitBackward(Emit.OpEmitContext e, string x, string y, string dy, string dx) =>
            e.Line($"{e.Guard}{e.Kernels}.Activations.{Kernel}Backward({y}, {dy}, {dx}, batch, {e.Int(OutputLength)});");

        public override void EmitInfer(Emit.OpEmitContext e, string v)
        {
            e.Header();
            e.DeclareInferOutput(v);
            e.Line($"{e.Kernels}.Activations.{Kernel}Forward(h, {v}, batch, {e.Int(OutputLength)});");
        }
    }
}
