using System.Collections.Generic;
using Dsl.Compiler.Diagnostics;
using Dsl.Compiler.Semantics;

namespace Dsl.Compiler.Ops
{
    /// <summary><c>instance_norm</c>, <c>instance_norm1d</c>, <c>instance_norm2d</c>: PyTorch's <c>nn.InstanceNorm1d/2d</c>.</summary>
    public sealed class InstanceNormDefinition : OpDefinition
    {
        private static readonly ParameterSpec[] InstanceNormParameters =
        {
            new("num_features", ParameterType.Integer, false, "features"),
            new("eps", ParameterType.Decimal, false),
            new("momentum", ParameterType.Decimal, false),
            new("affine", ParameterType.Boolean, false),
            new("track_running_stats", ParameterType.Boolean, false),
        };

        private readonly int? _rank;

        public InstanceNormDefinition(string name, int? rank)
            : base(name, InstanceNormParameters) => _rank = rank;

        public override int? Rank => _rank;

        public override string Example => $"{Name}(8)";

        public override Op? Bind(LayerBinding b)
        {
            var args = b.Arguments;
            int errorsBefore = b.ErrorCount();
            int numFeatures = args.Int("num_features", 0, 1, "at least 1");
            double eps = args.Decimal("eps", 1e-5, v => (float)v > 0, "greater than 0 in float32 (at least 1.4e-45)");
            double momentum = args.Decimal("momentum", 0.1, v => v >= 0 && v <= 1, "between 0 and 1");
            bool affine = args.Bool("affine", false);
            bool track = args.Bool("track_running_stats", false);
            if (b.ErrorCount() != errorsBefore || b.Input is not { } input) return null;
            if (input.Count == 1)
            {
                b.Report(DiagnosticDescriptors.InstanceNormOnFeatures, args.SpanOf("num_features") ?? b.Syntax.Name.Span,
                    $"'{Name}' normalizes each channel over its positions, but {b.Origin(input)} is a feature vector with none; write layer_norm to normalize the features of each sample, or bn1d to normalize each feature over the batch");
                return null;
            }

            if (!b.RankIs(input, Rank is { } rank ? new[] { rank } : new[] { 2, 3 })) return null;
            string kind = input.Count == 3 ? "instance_norm2d" : "instance_norm1d";
            int channels = input[0];
            if (args.Has("num_features") && numFeatures != channels)
            {
                b.Report(DiagnosticDescriptors.NumFeaturesMismatch, b.SpanOf("num_features"),
                    $"'{kind}' declares num_features {numFeatures} but its input has {channels} channels ({b.Origin(input)}); write {Name}({channels}) or leave it out");
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

            var core = b.Core(kind, input, input, tensors, 5 * Shapes.Elements(input));
            return b.Checked(new InstanceNormOp(core, eps, momentum, affine, track));
        }
    }

    /// <summary>
    /// A bound instance norm: each sample's channels by their own statistics in training; at inference the same, or the
    /// running statistics when tracked (PyTorch's eval mode). Like PyTorch, it never counts batches in num_batches_tracked.
    /// </summary>
    public sealed class InstanceNormOp : Op
    {
        internal InstanceNormOp(OpCore core, double eps, double momentum, bool affine, bool trackRunningStats)
            : base(core)
        {
            Eps = eps;
            Momentum = momentum;
            Affine = affine;
            TrackRunningStats = trackRunningStats;
        }

        public double Eps { get; }
        public double Momentum { get; }
        public bool Affine { get; }
        public bool TrackRunningStats { get; }

        public override string Describe() =>
            $"{KindName}({Channels}, eps: {Number(Eps)}, momentum: {Number(Momentum)}, affine: {Flag(Affine)}, track_running_stats: {Flag(TrackRunningStats)})";

        public override BackwardReads BackwardReads => BackwardReads.Input;

        /// <summary>Each channel's mean and 1/√(var + ε); with affine parameters, its Σdy and Σdy·x for dγ.</summary>
        public override int SavedLength => 2 * Channels + (Affine ? 2 * Channels : 0);

        private string Statistics(Emit.OpEmitContext e) => $"batch * {e.Int(Channels)}";

        private string Dims(Emit.OpEmitContext e) => $"batch, {e.Int(Channels)}, {e.Int(Spatial)}";

        public override void EmitReset(Emit.OpEmitContext e)
        {
            NormalizationEmit.ResetAffine(e, Affine, Channels);
            if (!TrackRunningStats) return;
            e.Line($"// {Name}: running mean 0, running variance 1, no batch seen");
            e.Line($"{e.Param("RunningMean", Channels, "buffers")}.Clear();");
            e.Line($"{e.Param("RunningVar", Channels, "buffers")}.Fill(1f);");
            e.Line($"counters[{e.N}NumBatchesTracked] = 0;");
        }

        public override void EmitForward(Emit.OpEmitContext e, string x, string y)
        {
            e.Header(TrackRunningStats ? " — instance statistics; running statistics updated with their batch average" : " — instance statistics");
            string s = Statistics(e);
            string running = TrackRunningStats
                ? $"{e.Param("RunningMean", Channels, "buffers")}, {e.Param("RunningVar", Channels, "buffers")}"
                : "default, default";
            e.Line($"{e.Kernels}.InstanceNorm.Forward({x}, {NormalizationEmit.Gamma(e, Affine, Channels)}, {NormalizationEmit.Beta(e, Affine, Channels)}, {y}, {e.Saved("0", s)}, {e.Saved(s, s)},");
            e.Line($"    {running}, {e.Float(TrackRunningStats ? Momentum : 0)}, {e.Float(Eps)}, {Dims(e)}, Pool);");
        }

        public override void EmitBackward(Emit.OpEmitContext e, string x, string y, string dy, string dx) =>
            NormalizationEmit.Backward(e, "InstanceNorm", dy, x, dx, Affine, Statistics(e), Dims(e));

        public override void EmitInfer(Emit.OpEmitContext e, string v)
        {
            string gamma = NormalizationEmit.Gamma(e, Affine, Channels), beta = NormalizationEmit.Beta(e, Affine, Channels);
            if (TrackRunningStats)
            {
                e.Header(" — running statistics, as PyTorch's eval mode");
                e.DeclareInferOutput(v);
                e.Line($"{e.Kernels}.InstanceNorm.InferWithRunningStatistics(h, {gamma}, {beta}, {e.Param("RunningMean", Channels, "BufferStorage")}, {e.Param("RunningVar", Channels, "BufferStorage")},");
                e.Line($"    {v}, {e.Float(Eps)}, {Dims(e)}, Pool);");
                return;
            }

            e.Header(" — instance statistics, as in training");
            e.DeclareInferOutput(v);
            e.Line($"{e.Kernels}.InstanceNorm.Infer(h, {gamma}, {beta}, {v}, {e.Float(Eps)}, {Dims(e)}, Pool);");
        }
    }
}
