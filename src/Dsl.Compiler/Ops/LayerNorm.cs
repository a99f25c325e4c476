using System.Collections.Generic;
using System.Linq;
using Dsl.Compiler.Diagnostics;
using Dsl.Compiler.Semantics;

namespace Dsl.Compiler.Ops
{
    /// <summary><c>layer_norm</c>: PyTorch's <c>nn.LayerNorm</c> over the whole sample, or over its last dimension.</summary>
    public sealed class LayerNormDefinition : OpDefinition
    {
        private static readonly ParameterSpec[] LayerNormParameters =
        {
            new("normalized_shape", ParameterType.Integer, false),
            new("eps", ParameterType.Decimal, false),
            new("elementwise_affine", ParameterType.Boolean, false, "affine"),
            new("bias", ParameterType.Boolean, false),
        };

        public LayerNormDefinition()
            : base("layer_norm", LayerNormParameters)
        {
        }

        public override string Example => "layer_norm(16)";

        public override Op? Bind(LayerBinding b)
        {
            var args = b.Arguments;
            int errorsBefore = b.ErrorCount();
            int normalized = args.Int("normalized_shape", 0, 1, "at least 1");
            double eps = args.Decimal("eps", 1e-5, v => (float)v > 0, "greater than 0 in float32 (at least 1.4e-45)");
            bool affine = args.Bool("elementwise_affine", true);
            bool bias = args.Bool("bias", true);
            if (b.ErrorCount() != errorsBefore || b.Input is not { } input) return null;

            // An integer is PyTorch's normalized_shape=(n,): the last dimension, which must be n.
            int last = input[input.Count - 1];
            IReadOnlyList<int> shape = input;
            if (args.Has("normalized_shape"))
            {
                if (normalized != last)
                {
                    string whole = input.Count > 1 ? $", or leave it out to normalize the whole sample {Shapes.Text(input)}" : " or leave it out";
                    b.Report(DiagnosticDescriptors.NormalizedShapeMismatch, b.SpanOf("normalized_shape"),
                        $"'layer_norm' normalizes over the input's last dimension, which is {last} in {b.Origin(input)}, not {normalized}; write layer_norm({last}){whole}");
                    return null;
                }

                shape = new[] { last };
            }

            var tensors = new List<TensorSpec>();
            if (affine)
            {
                tensors.Add(new TensorSpec($"{b.Name}.weight", "weight", shape.ToArray(), TensorRole.Weight));
                if (bias) tensors.Add(new TensorSpec($"{b.Name}.bias", "bias", shape.ToArray(), TensorRole.Bias));
            }

            var core = b.Core("layer_norm", input, input, tensors, 5 * Shapes.Elements(input));
            return b.Checked(new LayerNormOp(core, shape, eps, affine, affine && bias));
        }
    }

    /// <summary>A bound layer norm: each sample's rows of the normalized shape by their own mean and biased variance, in training and inference.</summary>
    public sealed class LayerNormOp : Op
    {
        internal LayerNormOp(OpCore core, IReadOnlyList<int> normalizedShape, double eps, bool affine, bool bias)
            : base(core)
        {
            NormalizedShape = normalizedShape;
            Eps = eps;
            Affine = affine;
            HasBias = bias;
        }

        public IReadOnlyList<int> NormalizedShape { get; }
        public double Eps { get; }
        public bool Affine { get; }
        public bool HasBias { get; }

        /// <summary>Values normalized together.</summary>
        public int NormalizedLength => Shapes.Length(NormalizedShape);

        /// <summary>Rows normalized separately in one sample.</summary>
        public int RowsPerSample => InputLength / NormalizedLength;

        public override string Describe() =>
            $"layer_norm({Shapes.Text(NormalizedShape)}, eps: {Number(Eps)}, elementwise_affine: {Flag(Affine)}, bias: {Flag(HasBias)})";

        public override BackwardReads BackwardReads => BackwardReads.Input;

        /// <summary>Each row's mean and 1/√(var + ε).</summary>
        public override int SavedLength => 2 * RowsPerSample;

        private string Gamma(Emit.OpEmitContext e, string array = "parameters") => Affine ? e.Param("Weight", NormalizedLength, array) : "default";

        private string Beta(Emit.OpEmitContext e, string array = "parameters") => HasBias ? e.Param("Bias", NormalizedLength, array) : "default";

        private string Rows(Emit.OpEmitContext e) => RowsPerSample == 1 ? "batch" : $"batch * {e.Int(RowsPerSample)}";

        private string Dims(Emit.OpEmitContext e) => $"{Rows(e)}, {e.Int(NormalizedLength)}";

        public override void EmitReset(Emit.OpEmitContext e)
        {
            if (!Affine) return;
            e.Line($"// {Name}: γ = 1{(HasBias ? ", β = 0" : "")}");
            e.Line($"{Gamma(e)}.Fill(1f);");
            if (HasBias) e.Line($"{Beta(e)}.Clear();");
        }

        public override void EmitForward(Emit.OpEmitContext e, string x, string y)
        {
            e.Header(" — per-sample statistics");
            string rows = Rows(e);
            e.Line($"{e.Kernels}.LayerNorm.Forward({x}, {Gamma(e)}, {Beta(e)}, {y}, {e.Saved("0", rows)}, {e.Saved(rows, rows)},");
            e.Line($"    {e.Float(Eps)}, {Dims(e)}, Pool);");
        }

        public override void EmitBackward(Emit.OpEmitContext e, string x, string y, string dy, string dx)
        {
            string gGamma = Gamma(e, "gradients");
            string gBeta = Beta(e, "gradients");
            e.ClearGradientsAfterZeroGrad(gGamma, gBeta);
            e.Line("// through the row statistics: dx = invstd·(γ·dy − mean(γ·dy) − x̂·mean(γ·dy·x̂))");
            string rows = Rows(e);
            e.Line($"{e.Kernels}.LayerNorm.Backward({dy}, {x}, {Gamma(e)}, {e.Saved("0", rows)}, {e.Saved(rows, rows)}, {dx},");
            e.Line($"    {gGamma}, {gBeta}, {Dims(e)}, Pool);");
        }

        public override void EmitInfer(Emit.OpEmitContext e, string v)
        {
            e.Header(" — per-sample statistics, as in training");
            e.DeclareInferOutput(v);
            e.Line($"{e.Kernels}.LayerNorm.Infer(h, {Gamma(e)}, {Beta(e)}, {v}, {e.Float(Eps)}, {Dims(e)}, Pool);");
        }
    }
}
