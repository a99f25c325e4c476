using System.Collections.Generic;
using System.Linq;
using Dsl.Compiler.Diagnostics;
using Dsl.Compiler.Semantics;

namespace Dsl.Compiler.Ops
{
    /// <summary><c>group_norm</c>: PyTorch's <c>nn.GroupNorm</c>, statistics per sample and group of channels.</summary>
    public sealed class GroupNormDefinition : OpDefinition
    {
        private static readonly ParameterSpec[] GroupNormParameters =
        {
            new("num_groups", ParameterType.Integer, true, "groups"),
            new("num_channels", ParameterType.Integer, false, "channels"),
            new("eps", ParameterType.Decimal, false),
            new("affine", ParameterType.Boolean, false),
        };

        public GroupNormDefinition()
            : base("group_norm", GroupNormParameters)
        {
        }

        public override string Example => "group_norm(4)";

        public override Op? Bind(LayerBinding b)
        {
            var args = b.Arguments;
            int errorsBefore = b.ErrorCount();
            int groups = args.Int("num_groups", 1, 1, "at least 1");
            int numChannels = args.Int("num_channels", 0, 1, "at least 1");
            double eps = args.Decimal("eps", 1e-5, v => (float)v > 0, "greater than 0 in float32 (at least 1.4e-45)");
            bool affine = args.Bool("affine", true);
            if (b.ErrorCount() != errorsBefore || b.Input is not { } input) return null;
            int channels = input[0];
            if (args.Has("num_channels") && numChannels != channels)
            {
                b.Report(DiagnosticDescriptors.NumFeaturesMismatch, b.SpanOf("num_channels"),
                    $"'group_norm' declares num_channels {numChannels} but its input has {channels} {(input.Count == 1 ? "features" : "channels")} ({b.Origin(input)}); write group_norm({groups}, {channels}) or leave it out");
                return null;
            }

            if (channels % groups != 0)
            {
                var divisors = Enumerable.Range(1, channels).Where(d => channels % d == 0).ToList();
                int nearest = divisors.OrderBy(d => System.Math.Abs(d - groups)).ThenByDescending(d => d).First();
                b.Report(DiagnosticDescriptors.NumGroupsDoNotDivide, b.SpanOf("num_groups"),
                    $"num_groups {groups} does not divide the {channels} channels of {b.Origin(input)}; write group_norm({nearest}) (the divisors of {channels}: {string.Join(", ", divisors)})");
                return null;
            }

            var tensors = new List<TensorSpec>();
            if (affine)
            {
                tensors.Add(new TensorSpec($"{b.Name}.weight", "weight", new[] { channels }, TensorRole.Weight));
                tensors.Add(new TensorSpec($"{b.Name}.bias", "bias", new[] { channels }, TensorRole.Bias));
            }

            var core = b.Core("group_norm", input, input, tensors, 5 * Shapes.Elements(input));
            return b.Checked(new GroupNormOp(core, groups, eps, affine));
        }
    }

    /// <summary>A bound group norm: each sample's groups of channels by their own mean and biased variance, in training and inference.</summary>
    public sealed class GroupNormOp : Op
    {
        internal GroupNormOp(OpCore core, int groups, double eps, bool affine)
            : base(core)
        {
            Groups = groups;
            Eps = eps;
            Affine = affine;
        }

        public int Groups { get; }
        public double Eps { get; }
        public bool Affine { get; }

        public override string Describe() => $"group_norm({Groups}, {Channels}, eps: {Number(Eps)}, affine: {Flag(Affine)})";

        public override BackwardReads BackwardReads => BackwardReads.Input;

        /// <summary>Each group's mean and 1/√(var + ε); with affine parameters, each channel's Σdy and Σdy·x for dγ.</summary>
        public override int SavedLength => 2 * Groups + (Affine ? 2 * Channels : 0);

        public override void EmitReset(Emit.OpEmitContext e) => NormalizationEmit.ResetAffine(e, Affine, Channels);

        public override void EmitForward(Emit.OpEmitContext e, string x, string y)
        {
            e.Header(" — per-sample statistics of each group");
            string g = Statistics(e);
            e.Line($"{e.Kernels}.GroupNorm.Forward({x}, {NormalizationEmit.Gamma(e, Affine, Channels)}, {NormalizationEmit.Beta(e, Affine, Channels)}, {y}, {e.Saved("0", g)}, {e.Saved(g, g)},");
            e.Line($"    {e.Float(Eps)}, {Dims(e)}, Pool);");
        }

        public override void EmitBackward(Emit.OpEmitContext e, string x, string y, string dy, string dx) =>
            NormalizationEmit.Backward(e, "GroupNorm", dy, x, dx, Affine, Statistics(e), Dims(e));

        public override void EmitInfer(Emit.OpEmitContext e, string v)
        {
            e.Header(" — per-sample statistics, as in training");
            e.DeclareInferOutput(v);
            e.Line($"{e.Kernels}.GroupNorm.Infer(h, {NormalizationEmit.Gamma(e, Affine, Channels)}, {NormalizationEmit.Beta(e, Affine, Channels)}, {v}, {e.Float(Eps)}, {Dims(e)}, Pool);");
        }

        private string Statistics(Emit.OpEmitContext e) => $"batch * {e.Int(Groups)}";

        private string Dims(Emit.OpEmitContext e) => $"batch, {e.Int(Channels)}, {e.Int(Spatial)}, {e.Int(Groups)}";
    }

    /// <summary>What group and instance norm print alike: affine parameters per channel and the backward call.</summary>
    internal static class NormalizationEmit
    {
        public static string Gamma(Emit.OpEmitContext e, bool affine, int channels, string array = "parameters") => affine ? e.Param("Weight", channels, array) : "default";

        public static string Beta(Emit.OpEmitContext e, bool affine, int channels, string array = "parameters") => affine ? e.Param("Bias", channels, array) : "default";

        public static void ResetAffine(Emit.OpEmitContext e, bool affine, int channels)
        {
            if (!affine) return;
            e.Line($"// {e.Op.Name}: γ = 1, β = 0");
            e.Line($"{Gamma(e, true, channels)}.Fill(1f);");
            e.Line($"{Beta(e, true, channels)}.Clear();");
        }

        /// <summary>The backward call; <paramref name="statistics"/> is the length of the saved means (and of the 1/std after them).</summary>
        public static void Backward(Emit.OpEmitContext e, string kernel, string dy, string x, string dx, bool affine, string statistics, string dims)
        {
            int channels = e.Op.Channels;
            string gGamma = Gamma(e, affine, channels, "gradients");
            string gBeta = Beta(e, affine, channels, "gradients");
            e.ClearGradientsAfterZeroGrad(gGamma, gBeta);
            string partials = affine ? e.Saved($"2 * {statistics}", $"batch * {e.Int(2 * channels)}") : "default";
            e.Line("// through the per-sample statistics: dx = invstd·(γ·dy − mean(γ·dy) − x̂·mean(γ·dy·x̂)) over each group");
            e.Line($"{e.Kernels}.{kernel}.Backward({dy}, {x}, {Gamma(e, affine, channels)}, {e.Saved("0", statistics)}, {e.Saved(statistics, statistics)},");
            e.Line($"    {partials}, {dx}, {gGamma}, {gBeta}, {dims}, Pool);");
        }
    }
}
