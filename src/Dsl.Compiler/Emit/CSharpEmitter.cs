using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using Dsl.Compiler.Graph;
using Dsl.Compiler.Lowering;
using Dsl.Compiler.Ops;
using Dsl.Compiler.Semantics;

namespace Dsl.Compiler.Emit
{
    /// <summary>
    /// Writes one C# class per model from its lowered form: constants for every shape and offset, the ops' forward
    /// and backward blocks in training mode, and the inference pass with batch norm folded. It prints; the lowering
    /// passes decide. The text is deterministic: it depends only on the lowered model and the file name.
    /// </summary>
    public static class CSharpEmitter
    {
        /// <summary>The user-facing runtime namespace (CompiledModel, AlignedFloats, TensorInfo).</summary>
        public const string Runtime = "global::Dsl.Runtime";

        /// <summary>The namespace of the kernels generated code calls.</summary>
        public const string Kernels = "global::Dsl.Runtime.Kernels";

        /// <summary>Prints a lowered model (see <see cref="Lowerer"/>) as one C# class.</summary>
        public static string Emit(LoweredModel model, string fileName, string toolVersion = "0.1.0") =>
            new ModelEmitter(model, fileName, toolVersion).Emit();

        /// <summary>A float literal that round-trips, in the invariant culture.</summary>
        internal static string Float(double value)
        {
            float f = (float)value;
            string text = f.ToString("R", CultureInfo.InvariantCulture);
            if (text.IndexOfAny(new[] { '.', 'E' }) < 0) text += ".0";
            return text + "f";
        }

        internal static string Int(long value) => value.ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>The class of one model; per-op blocks come from the ops' own emitters.</summary>
    internal sealed partial class ModelEmitter
    {
        private const string Runtime = CSharpEmitter.Runtime;
        private const string Kernels = CSharpEmitter.Kernels;

        private static readonly string[] MemberSuffixes =
        {
            "Weight", "Bias", "RunningMean", "RunningVar", "NumBatchesTracked", "Out", "Mask", "Indices", "SaveMean", "SaveInvStd",
            "Scale", "Shift", "FoldedWeight", "FoldedBias", "Geometry", "Grad", "GradPart", "Infer", "PackedWeight", "TransformedWeight",
        };

        /// <summary>The longest member prefix taken from a layer name; longer names are cut (they stay whole in state_dict names).</summary>
        private const int MaxPrefixLength = 200;

        private readonly BoundModel _model;
        private readonly DataflowGraph _graph;
        private readonly MemoryPlan _memory;
        private readonly string _fileName;
        private readonly string _toolVersion;
        private readonly Dictionary<Node, string> _names = new();

        public ModelEmitter(LoweredModel lowered, string fileName, string toolVersion)
        {
            Lowered = lowered;
            _model = lowered.Model;
            _graph = lowered.Graph;
            _memory = lowered.Memory;
            _fileName = fileName;
            _toolVersion = toolVersion;
            // Each node's members are <prefix><suffix>. No two may coincide (layers 'fc' and 'fc_packed' both give
            // FcPackedWeight; 'a_b' and 'a__b' both give AB), nor match a fixed member (a layer 'input' gives InputGrad), a
            // CompiledModel member, or the class's own name (model FcPackedWeight, CS0542): a clash adds At<node id>, then a
            // counter, until every member is unique. Prefixes are cut to MaxPrefixLength, so a layer name of any length
            // gives member names far below C#'s 1,023-byte limit (CS7013).
            var suffixes = MemberSuffixes.Concat(_graph.Nodes.SelectMany(n => n.Op.Tensors).Select(t => CSharpNames.Pascal(t.LocalName)))
                .Distinct(StringComparer.Ordinal).ToList();
            var members = new HashSet<string>(StringComparer.Ordinal) { _model.Name };
            foreach (var node in _graph.Nodes)
            {
                string prefix = CSharpNames.Pascal(node.Op.Name);
                if (prefix.Length > MaxPrefixLength) prefix = prefix.Substring(0, char.IsHighSurrogate(prefix[MaxPrefixLength - 1]) ? MaxPrefixLength - 1 : MaxPrefixLength);
                string name = prefix;
                for (int attempt = 0; suffixes.Any(suffix => members.Contains(name + suffix) || CSharpNames.IsGeneratedMember(name + suffix)); attempt++)
                    name = prefix + "At" + CSharpEmitter.Int(node.Id) + (attempt == 0 ? "" : "_" + CSharpEmitter.Int(attempt));
                foreach (var suffix in suffixes) members.Add(name + suffix);
                _names[node] = name;
            }
        }

        public LoweredModel Lowered { get; }
        public IndentedWriter Writer { get; } = new();

        public string NameOf(Node node) => _names[node];

        private IEnumerable<OpEmitContext> Contexts => _graph.Nodes.Select(n => new OpEmitContext(this, n));
        private bool HasBatchNorm => _memory.CacheLength > 0;
        private bool HasMaxPool => _graph.Nodes.Any(n => n.Op.IndicesLength > 0);
        private bool HasDropout => _graph.Nodes.Any(n => n.Op.MaskLength > 0);
        private bool HasGemm => _graph.Nodes.Any(n => n.Op.UsesScratch);
        private bool HasFolding => _memory.FoldedLength > 0;
        private bool HasParameters => _graph.Nodes.Any(n => n.Op.ParameterCount > 0);

        private void Line(string text = "") => Writer.Line(text);

        private static string Int(long value) => CSharpEmitter.Int(value);

        private static string Shape(IReadOnlyList<int> shape) => "[" + string.Join(", ", shape) + "]";

        private static string BatchShape(IReadOnlyList<int> shape) => "[N, " + string.Join(", ", shape) + "]";

        public void Header(Node node, string note)
        {
            var op = node.Op;
            Line($"// {op.Name}: {op.Source} — {_fileName}({op.Span.Line},{op.Span.Column}) — {BatchShape(op.InputShape)} → {BatchShape(op.OutputShape)}{note}");
        }

        public string Emit()
        {
            Line("// <auto-generated/>");
            Line($"// Generated by Dsl.Generator {_toolVersion} from {_fileName}. Edit the .nn file, not this one.");
            Line("#nullable enable");
            Line();
            if (_model.Namespace is { } ns)
            {
                using (Writer.Block($"namespace {ns}"))
                    EmitClass();
            }
            else
            {
                EmitClass();
            }

            return Writer.ToString();
        }

        private void EmitClass()
        {
            var m = _model;
            Line("/// <summary>");
            Line($"/// <c>{m.Name}</c> from {_fileName}({m.Syntax.Span.Line},{m.Syntax.Span.Column}): input {BatchShape(m.InputShape)} → output {BatchShape(m.OutputShape)},");
            Line($"/// {Int(m.ParameterCount)} parameters. Layers: {string.Join(" → ", m.Layers.Select(l => l.KindName))}.");
            Line("/// </summary>");
            Line($"[global::System.CodeDom.Compiler.GeneratedCode(\"Dsl.Generator\", \"{_toolVersion}\")]");
            using (Writer.Block($"public sealed partial class {m.Name} : {Runtime}.CompiledModel"))
            {
                EmitConstants();
                EmitFields();
                EmitConstructor();
                EmitReset();
                EmitForward();
                EmitBackward();
                EmitInfer();
                EmitRefresh();
                EmitIndicesView();
                EmitSummaryLayers();
            }
        }

        /// <summary>The constant naming a region of the batch-scaled arena.</summary>
        private string RegionName(Region region) => region.Kind switch
        {
            RegionKind.Value => region.Value.Producer is { } node ? $"{_names[node]}Out" : "InputCopy",
            RegionKind.Mask => $"{_names[region.Value.Producer!]}Mask",
            RegionKind.Saved => $"{_names[region.Value.Producer!]}Saved",
            RegionKind.Indices => $"{_names[region.Value.Producer!]}Indices",
            RegionKind.Gradient => region.Value.Producer is { } node ? $"{_names[node]}Grad" : "InputGrad",
            RegionKind.Inference => $"{_names[region.Value.Producer!]}Infer",
            RegionKind.GradientPart => $"{_names[region.Reader!]}GradPart",
            _ => throw new UnreachableException(),
        };

        private string RegionComment(Region region)
        {
            string what = region.Value.Producer is { } node ? $"{node.Op.Name} output" : "the input";
            return region.Kind switch
            {
                RegionKind.Value => $"{what} {Shape(region.Value.Shape)}{(region.IsKept ? ", kept for backward" : "")}",
                RegionKind.Mask => $"{region.Value.Producer!.Op.Name} dropout mask",
                RegionKind.Saved => $"{region.Value.Producer!.Op.Name} per-sample statistics",
                RegionKind.Indices => $"{region.Value.Producer!.Op.Name} argmax (ints)",
                RegionKind.Gradient => region.Value.Producer is null ? "dL/d(input) when the caller does not ask for it" : $"dL/d({what})",
                RegionKind.Inference => $"{what} at inference",
                RegionKind.GradientPart => $"{region.Reader!.Op.Name}'s share of dL/d({what}), before it is added",
                _ => throw new UnreachableException(),
            };
        }

        private void EmitConstants()
        {
            var m = _model;
            Line($"/// <summary>Floats in one input sample, {Shape(m.InputShape)}.</summary>");
            Line($"public const int InputLength = {Int(m.InputLength)};");
            Line();
            Line($"/// <summary>Floats in one output sample, {Shape(m.OutputShape)}.</summary>");
            Line($"public const int OutputLength = {Int(m.OutputLength)};");
            Line();
            Line("/// <summary>Learnable parameters (PyTorch's <c>sum(p.numel() for p in model.parameters())</c>).</summary>");
            Line($"public const int ParameterCount = {Int(m.ParameterCount)};");
            Line();
            Line("/// <summary>The shape of one input sample, batch excluded.</summary>");
            Line($"public static global::System.ReadOnlySpan<int> InputShape => new int[] {{ {string.Join(", ", m.InputShape)} }};");
            Line();
            Line("/// <summary>The shape of one output sample, batch excluded.</summary>");
            Line($"public static global::System.ReadOnlySpan<int> OutputShape => new int[] {{ {string.Join(", ", m.OutputShape)} }};");
            Line();

            Line("// Offsets of parameters (and their gradients), running statistics and batch counters, in state_dict order.");
            foreach (var t in _memory.Tensors)
                Line($"private const int {_names[t.Owner]}{CSharpNames.Pascal(t.Spec.LocalName)} = {Int(t.Offset)}; // {t.Spec.Name} {Shape(t.Spec.Shape)}");

            Line();
            Line("// The batch-scaled arena, per sample (× maxBatch), planned from live ranges: a training value lives from its");
            Line("// forward step to its last reader (kept for backward when a backward reads it), masks and argmax to their");
            Line("// backward, gradients within Backward, inference values within Infer; regions whose lives do not meet share memory.");
            foreach (var kind in new[] { RegionKind.Value, RegionKind.Mask, RegionKind.Saved, RegionKind.Indices, RegionKind.Gradient, RegionKind.GradientPart, RegionKind.Inference })
            {
                foreach (var region in _memory.Regions.Where(r => r.Kind == kind).OrderBy(r => r.Value.Id))
                    Line($"private const int {RegionName(region)} = {Int(region.Offset)}; // {RegionComment(region)}");
            }

            Line($"private const int ArenaPerSample = {Int(_memory.PerSample)};");

            if (HasBatchNorm)
            {
                Line();
                Line("// Batch norm's batch mean and 1/sqrt(var + eps) per channel: kept by Forward for Backward; Infer uses a second copy.");
                Line($"private const int CacheLength = {Int(_memory.CacheLength)};");
                foreach (var (node, offset) in _memory.Caches)
                {
                    Line($"private const int {_names[node]}SaveMean = {Int(offset)};");
                    Line($"private const int {_names[node]}SaveInvStd = {Int(offset + ((BatchNormOp)node.Op).CacheLength / 2)};");
                }
            }

            if (HasFolding)
            {
                Line();
                Line("// Inference: batch norm as per-channel scale and shift, conv/linear weights with it folded in, linear weights packed for the GEMM,");
                Line("// Winograd convolutions' weights transformed.");
                Line($"private const int FoldedLength = {Int(_memory.FoldedLength)};");
                foreach (var node in _graph.Nodes)
                {
                    if (_memory.ScaleShift(node) is { } scale)
                    {
                        Line($"private const int {_names[node]}Scale = {Int(scale)};");
                        Line($"private const int {_names[node]}Shift = {Int(scale + ((BatchNormOp)node.Op).ScaleShiftLength / 2)};");
                    }

                    if (_memory.FoldedWeight(node) is { } weights)
                    {
                        Line($"private const int {_names[node]}FoldedWeight = {Int(weights.Weight)};");
                        Line($"private const int {_names[node]}FoldedBias = {Int(weights.Bias)};");
                    }

                    if (_memory.PackedWeight(node) is { } packed) Line($"private const int {_names[node]}PackedWeight = {Int(packed)};");
                    if (_memory.TransformedWeight(node) is { } transformed) Line($"private const int {_names[node]}TransformedWeight = {Int(transformed)};");
                }
            }

            Line();
            foreach (var e in Contexts)
            {
                if (e.Op is ConvOp conv) conv.EmitGeometry(e);
                else if (e.Op is PoolOp pool) pool.EmitGeometry(e);
            }

            if (HasGemm)
            {
                var lengths = Contexts.Where(e => e.Op is ConvOp).Select(e => ((ConvOp)e.Op).ScratchLength(e)).Prepend($"{Kernels}.Gemm.ScratchLength").ToList();
                string max = lengths[lengths.Count - 1];
                for (int i = lengths.Count - 2; i >= 0; i--) max = $"global::System.Math.Max({lengths[i]}, {max})";
                Line("// Scratch per thread for packed GEMM panels, im2col columns and private weight gradients: the most any conv or linear layer needs.");
                Line($"private static readonly int s_scratchLength = {Runtime}.AlignedFloats.RoundUp({max});");
            }

            Line();
            Line($"private static readonly {Runtime}.TensorInfo[] s_tensors =");
            using (Writer.Block(null, "};"))
            {
                foreach (var t in _memory.Tensors)
                {
                    string shape = t.Spec.Shape.Count == 0 ? "global::System.Array.Empty<int>()" : $"new[] {{ {string.Join(", ", t.Spec.Shape)} }}";
                    Line($"new(\"{t.Spec.Name}\", {shape}, {Runtime}.TensorStorage.{t.Storage}, {Int(t.Offset)}, {Int(Math.Max(1, t.Spec.ElementCount))}),");
                }
            }

            Line();
            Line($"private static readonly int[] s_inputShape = {{ {string.Join(", ", m.InputShape)} }};");
            Line($"private static readonly int[] s_outputShape = {{ {string.Join(", ", m.OutputShape)} }};");
            Line();
        }

        private void EmitFields()
        {
            Line("// One arena for everything but parameters, gradients and running statistics; the offsets above and below are where each region starts.");
            Line($"private readonly {Runtime}.AlignedFloats _arena; // element 0 on a cache line, and every region starts on one");
            if (HasGemm) Line("private readonly int _scratch; // GEMM panels and im2col columns");
            if (HasBatchNorm) Line("private readonly int _cache;");
            if (HasFolding)
            {
                Line("private readonly int _folded;");
                Line("private int _foldedVersion = -1;");
            }

            if (HasDropout)
            {
                Line($"private {Kernels}.SplitMix64 _dropoutRng;");
                Line();
                Line("/// <inheritdoc/>");
                Line("protected override ulong? GetDropoutRandomState() => _dropoutRng.State;");
                Line();
                Line("/// <inheritdoc/>");
                Line("protected override void SetDropoutRandomState(ulong? state)");
                Line("{");
                Line($"    if (state is {{ }} value) _dropoutRng = new {Kernels}.SplitMix64(value);");
                Line("}");
            }

            Line();
            Line("/// <inheritdoc/>");
            Line($"public override string Name => \"{_model.Name}\";");
            Line();
            Line("/// <inheritdoc/>");
            Line("protected override string Architecture => base.Architecture + ArchitectureLayers;");
            Line();
            Line("// Every layer with its arguments resolved: two models whose tensors agree (an activation more) still differ.");
            Line($"private const string ArchitectureLayers = \"{string.Concat(_graph.Nodes.Select(n => $"n{n.Id} {n.Op.Describe()} <- {string.Join(", ", n.Inputs.Select(v => $"v{v.Id}"))}\\n"))}\";");
            Line();
            Line("/// <inheritdoc/>");
            Line("public override int SampleInputLength => InputLength;");
            Line();
            Line("/// <inheritdoc/>");
            Line("public override int SampleOutputLength => OutputLength;");
            Line();
            Line("/// <inheritdoc/>");
            Line("public override global::System.Collections.Generic.IReadOnlyList<int> SampleInputShape => s_inputShape;");
            Line();
            Line("/// <inheritdoc/>");
            Line("public override global::System.Collections.Generic.IReadOnlyList<int> SampleOutputShape => s_outputShape;");
            Line();
            if (InferenceChunk() is var (chunk, floats))
            {
                Line("/// <inheritdoc/>");
                Line($"protected override int InferenceChunk => {chunk}; // samples whose largest convolution input + output ({floats} floats each) fit in 4 MiB");
                Line();
            }
        }

        // Inference in chunks (CompiledModel.InferenceChunk) for a network with a convolution: the most samples, a multiple of 8
        // and at least 8, for which the largest convolution's input and output (per sample, summed) fit in 4 MiB of floats.
        // Never where inference itself mixes samples: batch norm without running statistics normalizes over the whole batch.
        private (int Chunk, int Floats)? InferenceChunk()
        {
            var convolutions = _graph.Nodes.Where(n => n.Op is ConvOp).ToList();
            if (convolutions.Count == 0 || _graph.Nodes.Any(n => n.Op is BatchNormOp { TrackRunningStats: false })) return null;
            int floats = convolutions.Max(n => n.Input.Length + n.Output.Length);
            return (Math.Max(8, (1 << 20) / floats / 8 * 8), floats);
        }

        private void EmitConstructor()
        {
            Line("/// <summary>Allocates everything the model will ever use, then initializes it as PyTorch does by default.</summary>");
            Line("/// <param name=\"maxBatch\">The largest batch that Forward and Infer will be given.</param>");
            Line("/// <param name=\"seed\">Seeds the parameter initialization and the dropout masks.</param>");
            Line("/// <param name=\"threads\">Threads for large layers: 0 (the default) for every core, 1 to stay on the caller's thread.</param>");
            using (Writer.Block($"public {_model.Name}(int maxBatch, int seed = 0, int threads = 0) : base(maxBatch, s_tensors, threads)"))
            {
                var fixedParts = new List<string>();
                if (HasGemm) fixedParts.Add("(long)Threads * s_scratchLength");
                if (HasBatchNorm) fixedParts.Add("2L * CacheLength");
                if (HasFolding) fixedParts.Add("FoldedLength");
                Line($"long length = (long)maxBatch * ArenaPerSample{string.Concat(fixedParts.Select(p => " + " + p))};");
                using (Writer.Block("if (length > global::System.Array.MaxLength)"))
                {
                    Line("throw new global::System.ArgumentOutOfRangeException(nameof(maxBatch), maxBatch,");
                    Line($"    $\"{_model.Name} with maxBatch {{maxBatch}} needs {{length}} floats of activations and scratch, more than one array holds ({{(global::System.Array.MaxLength)}}); use a smaller maxBatch.\");");
                }

                Line();
                Line("// The arena's layout, fixed at compile time: the batch-scaled regions, then the rest.");
                string end = "maxBatch * ArenaPerSample";
                if (HasGemm)
                {
                    Line($"_scratch = {end};");
                    end = "_scratch + Threads * s_scratchLength";
                }

                if (HasBatchNorm)
                {
                    Line($"_cache = {end};");
                    end = "_cache + 2 * CacheLength";
                }

                if (HasFolding)
                {
                    Line($"_folded = {end};");
                    end = "_folded + FoldedLength";
                }

                Line($"_arena = new {Runtime}.AlignedFloats({end});");
                Line("ResetParameters(seed);");
            }

            Line();
        }

        private void EmitReset()
        {
            Line("/// <inheritdoc/>");
            using (Writer.Block("public override void ResetParameters(int seed)"))
            {
                Line($"var rng = new {Kernels}.SplitMix64(unchecked((ulong)seed));");
                Line("var parameters = ParameterStorage;");
                if (_memory.BufferLength > 0) Line("var buffers = BufferStorage;");
                if (_memory.CounterLength > 0) Line("var counters = CounterStorage;");
                foreach (var e in Contexts) e.Op.EmitReset(e);
                if (HasDropout) Line($"_dropoutRng = new {Kernels}.SplitMix64(unchecked((ulong)seed) ^ 0x9E3779B97F4A7C15UL);");
                Line("ParametersChanged();");
            }

            Line();
        }

        /// <summary>The variable holding a training value: x (the input or its copy) or y&lt;producer&gt;.</summary>
        public string ValueName(Value value) => value.Producer is { } node ? $"y{node.Id}" : _memory.InputCopied ? "x" : "input";

        private static string GradientName(Value value) => $"g{value.Producer!.Id}";

        private string Span(Region region, int length) => $"_arena.AsSpan({RegionName(region)} * MaxBatch, batch * {Int(length)})";

        /// <summary>Declares the views of the training values; in Backward only those a backward reads.</summary>
        private void DeclareActivations(bool backward)
        {
            if (_memory.InputCopied) Line($"var x = _arena.AsSpan({RegionName(_memory.ValueRegion(_graph.Input)!)} * MaxBatch, batch * InputLength);");
            foreach (var node in _graph.Nodes)
            {
                var region = _memory.ValueRegion(node.Output);
                if (backward && region is not { IsKept: true }) continue;
                var op = node.Op;
                if (op.IsView)
                    Line($"var y{node.Id} = {ValueName(node.Input)}; // {op.Name}: {op.KindName} shares its input's memory");
                else if (Lowered.Training.IsEpilogue(node))
                    Line($"var y{node.Id} = {ValueName(node.Input)}; // {op.Name}: {op.KindName}, written by {Lowered.Training.GroupOf(node)!.Producer.Op.Name} (batch norm) as it normalizes");
                else
                    Line($"var y{node.Id} = {Span(region!, node.Output.Length)};");
            }
        }

        private void EmitBatchChecks(bool inference)
        {
            foreach (var e in Contexts)
            {
                if (e.Op is BatchNormOp bn) bn.EmitBatchCheck(e, inference);
            }
        }

        private void EmitForward()
        {
            Line("/// <inheritdoc/>");
            using (Writer.Block("protected override void ForwardCore(global::System.ReadOnlySpan<float> input, global::System.Span<float> output, int batch)"))
            {
                EmitBatchChecks(inference: false);
                Line("var parameters = ParameterStorage;");
                if (_memory.BufferLength > 0) Line("var buffers = BufferStorage;");
                if (_memory.CounterLength > 0) Line("var counters = CounterStorage;");
                if (HasGemm) Line("var scratch = _arena.AsSpan(_scratch, Threads * s_scratchLength);");
                DeclareActivations(backward: false);
                if (_memory.InputCopied) Line("input.CopyTo(x); // a backward reads the input");
                foreach (var e in Contexts)
                {
                    Line();
                    e.Op.EmitForward(e, ValueName(e.Node.Input), $"y{e.Node.Id}");
                }

                Line();
                Line($"{ValueName(_graph.Output)}.CopyTo(output);");
            }

            Line();
        }

        private void EmitBackward()
        {
            if (HasParameters)
            {
                Line("/// <inheritdoc/>");
                Line("protected override bool WritesGradientsAfterZeroGrad => true;");
                Line();
            }

            Line("/// <inheritdoc/>");
            using (Writer.Block("protected override void BackwardCore(global::System.ReadOnlySpan<float> outputGrad, global::System.Span<float> inputGrad, int batch)"))
            {
                Line("var parameters = ParameterStorage;");
                Line("var gradients = GradientStorage;");
                if (HasParameters)
                {
                    Line("// After ZeroGrad the gradients are written, not added to: linear layers write theirs, the others clear theirs first.");
                    Line("bool accumulate = BeginGradients();");
                }

                if (HasGemm) Line("var scratch = _arena.AsSpan(_scratch, Threads * s_scratchLength);");
                if (_memory.BufferLength > 0 && _graph.Nodes.Any(n => n.Op is BatchNormOp { Frozen: true })) Line("var buffers = BufferStorage;");
                DeclareActivations(backward: true);
                Line();
                Line("// g<i> is dL/d(output of layer i), in its planned region; element-wise layers write dL/dx over dL/dy.");
                if (_graph.Values.Any(v => _graph.Consumers(v).Count > 1))
                    Line("// A value read by several layers sums their shares: the last reader writes it, the others add theirs.");
                var output = _graph.Output;
                Line($"var {GradientName(output)} = _arena.AsSpan({RegionName(_memory.GradientRegion(output)!)} * MaxBatch, batch * OutputLength);");
                Line($"outputGrad.CopyTo({GradientName(output)});");
                var written = new HashSet<Value>(); // values whose gradient some reader has written already
                foreach (var node in _graph.Nodes.Reverse())
                {
                    Line();
                    if (node.Op is MergeOp)
                    {
                        var targets = new List<(string?, bool, string)>();
                        foreach (var input in node.Inputs)
                        {
                            bool first = written.Add(input);
                            if (input == _graph.Input)
                            {
                                targets.Add(("inputGrad", !first, "if (!inputGrad.IsEmpty) "));
                                continue;
                            }

                            if (first) Line($"var {GradientName(input)} = {Span(_memory.GradientRegion(input)!, input.Length)};");
                            targets.Add((GradientName(input), !first, ""));
                        }

                        var merge = new OpEmitContext(this, node) { InputGradients = targets };
                        merge.Header(" — backward");
                        node.Op.EmitBackward(merge, ValueName(node.Input), $"y{node.Id}", GradientName(node.Output), "");
                        continue;
                    }

                    var value = node.Input;
                    bool writes = written.Add(value);
                    string dy = GradientName(node.Output);
                    if (writes)
                    {
                        var e = new OpEmitContext(this, node, isFirst: value == _graph.Input);
                        string dx = "inputGrad";
                        if (!e.IsFirst)
                        {
                            dx = GradientName(value);
                            var region = _memory.GradientRegion(value)!;
                            Line(region == _memory.GradientRegion(node.Output) ? $"var {dx} = {dy};" : $"var {dx} = {Span(region, value.Length)};");
                        }

                        e.Header(" — backward");
                        node.Op.EmitBackward(e, ValueName(value), $"y{node.Id}", dy, dx);
                        ReportGradients(node);
                        continue;
                    }

                    // Another reader already wrote this value's gradient: compute this share apart, then add it.
                    string part = $"part{node.Id}";
                    var share = new OpEmitContext(this, node);
                    Line($"var {part} = {Span(_memory.GradientPart(node)!, value.Length)};");
                    share.Header(" — backward, its share added to what the later readers wrote");
                    node.Op.EmitBackward(share, ValueName(value), $"y{node.Id}", dy, part);
                    Line(value == _graph.Input
                        ? $"if (!inputGrad.IsEmpty) {Kernels}.Merges.Accumulate({part}, inputGrad, Pool);"
                        : $"{Kernels}.Merges.Accumulate({part}, {GradientName(value)}, Pool);");
                    ReportGradients(node);
                }
            }

            Line();
        }

        // After a layer's backward: its parameters' gradients are final and nothing later in the pass reads those
        // parameters (each layer reads only its own), so a fused optimizer step may update them now. One call per
        // run of contiguous parameter tensors (weight and bias are adjacent in state_dict order).
        private void ReportGradients(Node node)
        {
            var tensors = _memory.Tensors.Where(t => t.Owner == node && t.Spec.IsParameter).OrderBy(t => t.Offset).ToList();
            int i = 0;
            while (i < tensors.Count)
            {
                int j = i + 1, end = tensors[i].Offset + tensors[i].Spec.ElementCount;
                while (j < tensors.Count && tensors[j].Offset == end) end += tensors[j++].Spec.ElementCount;
                string names = string.Join(", ", tensors.Skip(i).Take(j - i).Select(t => t.Spec.Name));
                Line($"GradientsReady({_names[node]}{CSharpNames.Pascal(tensors[i].Spec.LocalName)}, {Int(end - tensors[i].Offset)}); // {names}: final, for an optimizer step fused into backward");
                i = j;
            }
        }

        public bool InferInPlace(Node node)
        {
            var group = Lowered.Inference.LedBy(node)!;
            var written = _memory.InferenceRegion(group.Last.Output);
            // A concatenation's region also holds the inputs written into it in place: that is not writing over its input.
            return written is not null && written == _memory.InferenceRegion(node.Input) && _memory.SliceOf(node.Input) is null;
        }

        public void DeclareInferOutput(Node node, string variable, string comment)
        {
            var group = Lowered.Inference.LedBy(node)!;
            if (_memory.SliceOf(group.Last.Output) is { } slice)
            {
                int length = group.Last.Output.Length;
                string start = slice.Offset == 0 ? $"{RegionName(slice.Region)} * MaxBatch" : $"{RegionName(slice.Region)} * MaxBatch + {Int(slice.Offset)}";
                Line($"var {variable} = _arena.AsSpan({start}, (batch - 1) * {Int(slice.Stride)} + {Int(length)}); " +
                    $"// its slice of {slice.Concat.Op.Name}'s output, in place: floats {Int(slice.Offset)}–{Int(slice.Offset + length - 1)} of each sample's {Int(slice.Stride)}");
                return;
            }

            Line(InferInPlace(node)
                ? $"var {variable} = {InferName(node.Input)}; // in place"
                : $"var {variable} = {Span(_memory.InferenceRegion(group.Last.Output)!, group.Last.Output.Length)};{comment}");
        }

        /// <summary>The inference variable holding <paramref name="value"/>: the caller's input, or the h&lt;k&gt; its group declared.</summary>
        public string InferName(Value value) => _inferNames.TryGetValue(value, out var name) ? name : "input";

        private readonly Dictionary<Value, string> _inferNames = new();

        private void EmitInfer()
        {
            Line("/// <inheritdoc/>");
            using (Writer.Block("protected override void InferCore(global::System.ReadOnlySpan<float> input, global::System.Span<float> output, int batch, int version)"))
            {
                EmitBatchChecks(inference: true);
                if (HasFolding)
                {
                    Line("// Parameters or running statistics changed since the last fold: fold again.");
                    using (Writer.Block("if (_foldedVersion != version)"))
                    {
                        Line("RefreshFolded();");
                        Line("_foldedVersion = version;");
                    }

                    Line();
                }

                Line("var parameters = ParameterStorage;");
                if (HasFolding) Line("var folded = _arena.AsSpan(_folded, FoldedLength);");
                if (HasGemm) Line("var scratch = _arena.AsSpan(_scratch, Threads * s_scratchLength);");
                Line("global::System.ReadOnlySpan<float> h = input; // the current activation");
                int counter = 0;
                var current = _graph.Input;
                foreach (var e in Contexts)
                {
                    var node = e.Node;
                    Line();
                    if (Lowered.Inference.Identities.Contains(node))
                    {
                        e.Header(" — identity at inference");
                        if (_inferNames.TryGetValue(node.Input, out var passed)) _inferNames[node.Output] = passed;
                        if (current == node.Input) current = node.Output;
                        continue;
                    }

                    if (Lowered.Inference.IsEpilogue(node))
                    {
                        var group = Lowered.Inference.GroupOf(node)!;
                        var producer = group.Producer.Op;
                        var epilogue = group.Epilogues.First(x => x.Node == node);
                        e.Header(epilogue.Kind switch
                        {
                            EpilogueKind.FoldedBatchNorm => $" — folded into {producer.Name}",
                            EpilogueKind.ResidualAdd => $" — no pass of its own: {producer.Name} ({producer.KindName}) added {e.InferSourceOf(epilogue.Residual!)} as it wrote its output",
                            _ => $" — applied by {producer.Name} ({producer.KindName}) as it wrote its output",
                        });
                        continue;
                    }

                    // A graph: this node reads a value other than the one just computed.
                    if (node.Op is not MergeOp && current != node.Input)
                        Line($"h = {InferName(node.Input)}; // another branch: {node.Op.Name} reads {(node.Input.Producer is { } from ? from.Op.Name + "'s output" : "the model input")}");
                    string v = $"h{counter++}";
                    node.Op.EmitInfer(e, v);
                    Line($"h = {v};");
                    var led = Lowered.Inference.LedBy(node)!;
                    foreach (var member in led.Members) _inferNames[member.Output] = v;
                    current = led.Last.Output;
                }

                Line();
                Line("h.CopyTo(output);");
            }

            Line();
        }

        private void EmitIndicesView()
        {
            if (!HasMaxPool) return;
            Line();
            Line("/// <summary>Max pooling's argmax at per-sample <paramref name=\"offset\"/>, an int view of its region of the arena.</summary>");
            Line("private global::System.Span<int> Indices(int offset, int length) =>");
            Line("    global::System.Runtime.InteropServices.MemoryMarshal.Cast<float, int>(_arena.AsSpan(offset * MaxBatch, length));");
        }

        private void EmitRefresh()
        {
            if (!HasFolding) return;
            Line("/// <summary>");
            Line("/// Recomputes batch norm's scale and shift from γ, β and the running statistics, folds them into the preceding conv or linear,");
            Line("/// transforms the Winograd convolutions' weights and packs the linear weights.");
            Line("/// </summary>");
            using (Writer.Block("private void RefreshFolded()"))
            {
                Line("var parameters = ParameterStorage;");
                Line("var buffers = BufferStorage;");
                Line("var folded = _arena.AsSpan(_folded, FoldedLength);");
                foreach (var e in Contexts)
                {
                    // A Winograd convolution's weight is transformed as soon as it is final: right after the fold, or at the layer.
                    if (e.Op is ConvOp conv && _memory.TransformedWeight(e.Node) is not null && e.Group?.Find(EpilogueKind.FoldedBatchNorm) is null)
                    {
                        Line();
                        conv.EmitWeightTransform(e);
                    }

                    if (e.Op is not BatchNormOp bn) continue;
                    var group = Lowered.Inference.GroupOf(e.Node);
                    bool folds = group?.Find(EpilogueKind.FoldedBatchNorm)?.Node == e.Node;
                    bn.EmitRefresh(e, folds ? (WeightedOp)group!.Producer.Op : null, folds ? e.For(group!.Producer) : null);
                    if (folds && group!.Producer.Op is ConvOp folded && _memory.TransformedWeight(group.Producer) is not null) folded.EmitWeightTransform(e.For(group.Producer));
                }

                foreach (var e in Contexts)
                {
                    if (e.Op is LinearOp linear) linear.EmitPacking(e);
                }
            }
        }
    }
}
