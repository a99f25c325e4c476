using System.Collections.Generic;
using System.Globalization;
using Dsl.Compiler.Diagnostics;
using Dsl.Compiler.Lowering;
using Dsl.Compiler.Semantics;
using Dsl.Compiler.Syntax;
using Dsl.Contract;

namespace Dsl.Compiler.Ops
{
    /// <summary><c>bn</c>, <c>bn1d</c>, <c>bn2d</c>: PyTorch's <c>nn.BatchNorm1d</c>/<c>nn.BatchNorm2d</c>, plus <c>frozen</c>.</summary>
    public sealed class BatchNormDefinition : OpDefinition
    {
        private static readonly ParameterSpec[] BatchNormParameters =
        {
            new("num_features", ParameterType.Integer, false, "features"),
            new("eps", ParameterType.Decimal, false),
            new("momentum", ParameterType.DecimalOrNone, false),
            new("affine", ParameterType.Boolean, false),
            new("track_running_stats", ParameterType.Boolean, false),
            new("frozen", ParameterType.Boolean, false),
        };

        private readonly int? _rank;

        public BatchNormDefinition(string name, int? rank)
            : base(name, BatchNormParameters) => _rank = rank;

        public override int? Rank => _rank;

        public override Op? Bind(LayerBinding b)
        {
            var args = b.Arguments;
            int errorsBefore = b.ErrorCount();
            int numFeatures = args.Int("num_features", 0, 1, "at least 1");
            double eps = args.Decimal("eps", 1e-5, v => (float)v > 0, "greater than 0 in float32 (at least 1.4e-45)");
            double? momentum = args.IsNone("momentum") ? null : args.Decimal("momentum", 0.1, v => v >= 0 && v <= 1, "between 0 and 1 (or none)");
            bool affine = args.Bool("affine", true);
            bool track = args.Bool("track_running_stats", true);
            bool frozen = args.Bool("frozen", false);
            if (frozen && !track)
            {
                b.Report(DiagnosticDescriptors.FrozenWithoutStatistics, args["frozen"]!.Syntax.Span,
                    "'frozen: true' needs running statistics to normalize with, but 'track_running_stats: false' keeps none; drop one of the two");
            }

            if (b.ErrorCount() != errorsBefore || b.Input is not { } input) return null;
            if (!b.RankIs(input, Rank == 2 ? new[] { 1, 2 } : Rank == 3 ? new[] { 3 } : new[] { 1, 2, 3 })) return null;
            string kind = input.Count == 3 ? "bn2d" : "bn1d";
            int channels = input[0];
            if (args.Has("num_features") && numFeatures != channels)
            {
                b.Report(DiagnosticDescriptors.NumFeaturesMismatch, b.SpanOf("num_features"),
                    $"'{kind}' declares num_features {numFeatures} but its input has {channels} {(input.Count == 1 ? "features" : "channels")} ({b.Origin(input)}); write {Name}({channels}) or leave it out");
                return null;
            }

            var tensors = new List<TensorSpec>();
            if (affine)
            {
                tensors.Add(new TensorSpec($"{b.Name}.weight", "weight", new[] { channels }, TensorRole.Weight));
                tensors.Add(new TensorSpec($"{b.Name}.bias", "bias", new[] { channels }, TensorRole.Bias));
            }

            if (track)
            {
                tensors.Add(new TensorSpec($"{b.Name}.running_mean", "running_mean", new[] { channels }, TensorRole.RunningMean));
                tensors.Add(new TensorSpec($"{b.Name}.running_var", "running_var", new[] { channels }, TensorRole.RunningVar));
                tensors.Add(new TensorSpec($"{b.Name}.num_batches_tracked", "num_batches_tracked", System.Array.Empty<int>(), TensorRole.NumBatchesTracked));
            }

            var core = b.Core(kind, input, input, tensors, 2 * Shapes.Elements(input));
            return b.Checked(new BatchNormOp(core, eps, momentum, affine, track, frozen));
        }
    }

    /// <summary>A bound batch norm: batch statistics and running averages in training, folded or a scale and shift at inference.</summary>
    public sealed class BatchNormOp : Op
    {
        internal BatchNormOp(OpCore core, double eps, double? momentum, bool affine, bool trackRunningStats, bool frozen)
            : base(core)
        {
            Eps = eps;
            Momentum = momentum;
            Affine = affine;
            TrackRunningStats = trackRunningStats;
            Frozen = frozen;
        }

        public double Eps { get; }

        /// <summary>Null means <c>momentum: none</c>, PyTorch's cumulative moving average.</summary>
        public double? Momentum { get; }
        public bool Affine { get; }
        public bool TrackRunningStats { get; }
        public bool Frozen { get; }

        public override string Describe() =>
            $"{KindName}({Channels}, eps: {Number(Eps)}, momentum: {(Momentum is { } m ? Number(m) : "none")}, affine: {Flag(Affine)}, track_running_stats: {Flag(TrackRunningStats)}, frozen: {Flag(Frozen)})";

        /// <summary>Normalizes with the statistics of the batch in training (not frozen).</summary>
        public bool UsesBatchStatistics => !Frozen;

        public override BackwardReads BackwardReads => BackwardReads.Input;

        /// <summary>With running statistics, inference is a per-channel scale and shift, which can run in place.</summary>
        public override bool InfersInPlace => TrackRunningStats;

        /// <summary>Saved mean and 1/√(var + ε) per channel, one line-rounded row each.</summary>
        public int CacheLength => 2 * Alignment.Line(Channels);

        /// <summary>Folded-array floats of its inference scale and shift.</summary>
        public int ScaleShiftLength => TrackRunningStats ? 2 * Alignment.Line(Channels) : 0;

        public override IEnumerable<NnDiagnostic> Lint(LintContext context)
        {
            // Momentum only matters when the running statistics are updated: not frozen, and tracked.
            ValueSyntax? momentum = null;
            if (!Frozen && TrackRunningStats) ArgumentValues.TryGetValue("momentum", out momentum);
            if (momentum is not null && Momentum is { } m && m >= 0.9)
            {
                string pytorch = (1 - m).ToString("0.###", CultureInfo.InvariantCulture);
                yield return DiagnosticDescriptors.KerasMomentum.At(momentum.Span,
                    $"momentum {momentum.Text} makes each batch replace {(m * 100).ToString("0.#", CultureInfo.InvariantCulture)}% of the running statistics: PyTorch keeps (1 - momentum) of the old value, the opposite of Keras; if you meant Keras' {momentum.Text}, write momentum: {pytorch}");
            }

            if (momentum is not null && Momentum is 0)
            {
                yield return DiagnosticDescriptors.ZeroMomentum.At(momentum.Span,
                    "momentum 0 never updates the running statistics, so inference normalizes with their initial values; write frozen: true if that is what you want");
            }

            if (!TrackRunningStats)
            {
                yield return DiagnosticDescriptors.BatchDependentInference.At(SpanOf("track_running_stats"),
                    $"with track_running_stats: false, '{KindName}' normalizes with batch statistics at inference too: a sample's output depends on the rest of its batch{(InputShape.Count == 1 ? ", and a batch of one sample fails" : "")}");
            }

            if (context.Previous is BatchNormOp)
            {
                yield return DiagnosticDescriptors.ConsecutiveBatchNorm.At(Syntax.Name.Span,
                    $"'{KindName}' directly follows another batch norm, whose output it normalizes again; remove one of them");
            }
        }

        /// <summary>One sample has no variance per channel when each channel holds one value: PyTorch refuses it, so does the model.</summary>
        public void EmitBatchCheck(Emit.OpEmitContext e, bool inference)
        {
            bool usesBatchStatistics = inference ? !TrackRunningStats : !Frozen;
            if (Spatial != 1 || !usesBatchStatistics) return;
            e.Line($"// {Name} computes batch statistics over the batch alone: one sample has no variance (PyTorch refuses it too).");
            e.Line($"if (batch == 1) ThrowSingleValuePerChannel(\"{Name}\", \"[1, {string.Join(", ", InputShape)}]\");");
        }

        private string Gamma(Emit.OpEmitContext e) => Affine ? e.Param("Weight", Channels) : "default";

        private string Beta(Emit.OpEmitContext e) => Affine ? e.Param("Bias", Channels) : "default";

        private string Dims => $"batch, {Channels.ToString(CultureInfo.InvariantCulture)}, {Spatial.ToString(CultureInfo.InvariantCulture)}";

        public override void EmitReset(Emit.OpEmitContext e)
        {
            e.Line($"// {Name}: γ = 1, β = 0, running mean 0, running variance 1, no batch seen");
            if (Affine)
            {
                e.Line($"{e.Param("Weight", Channels)}.Fill(1f);");
                e.Line($"{e.Param("Bias", Channels)}.Clear();");
            }

            if (TrackRunningStats)
            {
                e.Line($"{e.Param("RunningMean", Channels, "buffers")}.Clear();");
                e.Line($"{e.Param("RunningVar", Channels, "buffers")}.Fill(1f);");
                e.Line($"counters[{e.N}NumBatchesTracked] = 0;");
            }
        }

        public override void EmitForward(Emit.OpEmitContext e, string x, string y)
        {
            string eps = e.Float(Eps);
            var activation = e.TrainingGroup?.Find(EpilogueKind.Activation);
            string fused = activation is null ? "" : ((ActivationOp)activation.Node.Op).BatchNormArgument(e);
            string note = activation is null ? "" : $" — then {activation.Node.Op.Name} ({activation.Node.Op.KindName}) as it writes";
            if (Frozen)
            {
                e.Header(" — frozen: running statistics, never updated");
                e.Line($"{e.Kernels}.BatchNorm.ForwardWithStatistics({x}, {Gamma(e)}, {Beta(e)}, {e.Param("RunningMean", Channels, "buffers")}, {e.Param("RunningVar", Channels, "buffers")}, {y},");
                e.Line($"    {e.Cache("SaveMean")}, {e.Cache("SaveInvStd")}, {eps}, {Dims});");
            }
            else if (!TrackRunningStats)
            {
                e.Header(" — batch statistics, no running statistics" + note);
                e.Line($"{e.Kernels}.BatchNorm.ForwardTraining({x}, {Gamma(e)}, {Beta(e)}, {y}, {e.Cache("SaveMean")}, {e.Cache("SaveInvStd")},");
                e.Line($"    default, default, 0f, {eps}, {Dims}{fused}, pool: Pool);");
            }
            else
            {
                e.Header(" — batch statistics; running statistics updated" + note);
                e.Line($"counters[{e.N}NumBatchesTracked]++;");
                string momentum = Momentum is { } value ? e.Float(value) : $"1f / counters[{e.N}NumBatchesTracked]";
                if (Momentum is null) e.Line("// momentum: none — a cumulative average, factor 1 / num_batches_tracked");
                e.Line($"{e.Kernels}.BatchNorm.ForwardTraining({x}, {Gamma(e)}, {Beta(e)}, {y}, {e.Cache("SaveMean")}, {e.Cache("SaveInvStd")},");
                e.Line($"    {e.Param("RunningMean", Channels, "buffers")}, {e.Param("RunningVar", Channels, "buffers")}, {momentum}, {eps}, {Dims}{fused}, pool: Pool);");
            }
        }

        public override void EmitBackward(Emit.OpEmitContext e, string x, string y, string dy, string dx)
        {
            string target = dx;
            if (e.IsFirst)
            {
                // dγ and dβ come out of the same pass as dx, so dx needs somewhere to go.
                e.Line($"var dx = inputGrad.IsEmpty ? {e.DiscardedInputGradient} : inputGrad;");
                target = "dx";
            }

            string gGamma = Affine ? e.Param("Weight", Channels, "gradients") : "default";
            string gBeta = Affine ? e.Param("Bias", Channels, "gradients") : "default";
            string kernel = Frozen ? "BackwardConstantStatistics" : "Backward";
            e.ClearGradientsAfterZeroGrad(gGamma, gBeta);
            e.Line(Frozen
                ? "// frozen: the statistics are constants, so dx = dy·γ/√(var + ε)"
                : "// through the batch statistics: dx = γ/√(var + ε) · (dy − mean(dy) − x̂·mean(dy·x̂))");
            e.Line($"{e.Kernels}.BatchNorm.{kernel}({dy}, {x}, {Gamma(e)}, {e.Cache("SaveMean")}, {e.Cache("SaveInvStd")}, {target},");
            e.Line($"    {gGamma}, {gBeta}, {Dims}{(Frozen ? "" : ", Pool")});");
        }

        public override void EmitInfer(Emit.OpEmitContext e, string v)
        {
            if (TrackRunningStats)
            {
                e.Header(" — running statistics as a per-channel scale and shift");
                string args = $"folded.Slice({e.N}Scale, {e.Int(Channels)}), folded.Slice({e.N}Shift, {e.Int(Channels)}), {Dims}";
                if (e.InferInPlace)
                {
                    e.DeclareInferOutput(v);
                    e.Line($"{e.Kernels}.BatchNorm.ApplyScaleShift({v}, {args});");
                }
                else
                {
                    e.DeclareInferOutput(v, " // the caller's input stays untouched");
                    e.Line($"{e.Kernels}.BatchNorm.ApplyScaleShift(h, {v}, {args});");
                }

                return;
            }

            e.Header(" — track_running_stats: false: batch statistics, as PyTorch does in eval mode");
            e.DeclareInferOutput(v);
            e.Line($"{e.Kernels}.BatchNorm.ForwardTraining(h, {Gamma(e)}, {Beta(e)}, {v}, {e.Cache("SaveMean", inference: true)}, {e.Cache("SaveInvStd", inference: true)},");
            e.Line($"    default, default, 0f, {e.Float(Eps)}, {Dims}, pool: Pool);");
        }

        /// <summary>Recomputes the scale and shift from γ, β and the running statistics, and folds them into the producer when one absorbed it.</summary>
        public void EmitRefresh(Emit.OpEmitContext e, WeightedOp? foldedInto, Emit.OpEmitContext? producer)
        {
            if (!TrackRunningStats) return;
            int c = Channels;
            e.Line();
            e.Line($"// {Name}: scale = γ/√(running_var + ε), shift = β − running_mean·scale");
            e.Line($"{e.Kernels}.BatchNorm.ScaleShift({Gamma(e)}, {Beta(e)}, {e.Param("RunningMean", c, "buffers")}, {e.Param("RunningVar", c, "buffers")}, {e.Float(Eps)},");
            e.Line($"    folded.Slice({e.N}Scale, {e.Int(c)}), folded.Slice({e.N}Shift, {e.Int(c)}));");
            if (foldedInto is null || producer is null) return;
            string pn = producer.N;
            int weights = foldedInto.WeightLength;
            e.Line($"// folded into {foldedInto.Name}: W' = W·scale per output channel, b' = b·scale + shift");
            e.Line($"{e.Kernels}.BatchNorm.Fold({producer.Weight()}, {producer.BiasOrDefault()}, folded.Slice({e.N}Scale, {e.Int(c)}), folded.Slice({e.N}Shift, {e.Int(c)}),");
            e.Line($"    folded.Slice({pn}FoldedWeight, {e.Int(weights)}), folded.Slice({pn}FoldedBias, {e.Int(c)}), {e.Int(c)}, {e.Int(weights / c)});");
        }
    }
}
