using System.Collections.Generic;
using System.Globalization;
using Dsl.Compiler.Diagnostics;
using Dsl.Compiler.Semantics;

namespace Dsl.Compiler.Ops
{
    /// <summary><c>dropout</c>: <c>nn.Dropout(p)</c>; identity at inference.</summary>
    public sealed class DropoutDefinition : OpDefinition
    {
        public DropoutDefinition()
            : base("dropout", new ParameterSpec[] { new("p", ParameterType.Decimal, false) })
        {
        }

        public override Op? Bind(LayerBinding b)
        {
            int errorsBefore = b.ErrorCount();
            double p = b.Arguments.Decimal("p", 0.5, v => v >= 0 && v < 1, "at least 0 and less than 1");
            if (b.ErrorCount() != errorsBefore || b.Input is not { } input) return null;
            return b.Checked(new DropoutOp(b.Core("dropout", input, input, System.Array.Empty<TensorSpec>(), 0), p));
        }
    }

    /// <summary>A bound dropout: a mask drawn per call in training, kept for backward.</summary>
    public sealed class DropoutOp : Op
    {
        internal DropoutOp(OpCore core, double p)
            : base(core) => P = p;

        public double P { get; }

        public override string Describe() => $"dropout({Number(P)})";

        /// <summary>With p = 0 nothing is dropped: the output is the input.</summary>
        public override bool IsView => P == 0;

        public override bool IsIdentityAtInference => true;

        public override bool BackwardInPlace => true;

        public override int MaskLength => IsView ? 0 : OutputLength;

        public override IEnumerable<NnDiagnostic> Lint(LintContext context)
        {
            foreach (var later in context.Later)
            {
                if (later is not BatchNormOp) continue;
                yield return DiagnosticDescriptors.DropoutBeforeBatchNorm.At(Syntax.Name.Span,
                    $"'dropout' before '{later.KindName}' at ({later.Span.Line},{later.Span.Column}): batch norm learns its running variance from dropped-out activations in training but sees undropped ones at inference (variance shift); move dropout after the last batch norm");
                yield break;
            }
        }

        public override void EmitForward(Emit.OpEmitContext e, string x, string y)
        {
            if (IsView)
            {
                e.Header(" — p = 0: nothing to drop");
                return;
            }

            e.Header($" — zero with probability {P.ToString(CultureInfo.InvariantCulture)}, scale the rest by 1/(1 - p)");
            e.Line($"{e.Kernels}.Dropout.Forward({x}, {y}, {e.Mask()}, {e.Float(P)}, ref _dropoutRng);");
        }

        public override void EmitBackward(Emit.OpEmitContext e, string x, string y, string dy, string dx)
        {
            if (IsView)
            {
                if (e.IsFirst) e.Line($"{e.Guard}{dy}.CopyTo({dx});");
                return;
            }

            e.Line($"{e.Guard}{e.Kernels}.Dropout.Backward({dy}, {e.Mask()}, {dx});");
        }

        public override void EmitInfer(Emit.OpEmitContext e, string v) => throw new UnreachableException();
    }
}
