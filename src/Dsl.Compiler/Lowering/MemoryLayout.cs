using System;
using System.Collections.Generic;
using System.Linq;
using Dsl.Compiler.Graph;
using Dsl.Compiler.Ops;
using Dsl.Compiler.Semantics;
using Dsl.Contract;

namespace Dsl.Compiler.Lowering
{
    /// <summary>What a region of the batch-scaled arena holds.</summary>
    public enum RegionKind
    {
        /// <summary>A training value (and the views of it), from its forward step to its last reader, forward or backward.</summary>
        Value,

        /// <summary>Dropout's mask, from forward to the dropout's backward.</summary>
        Mask,

        /// <summary>Per-sample statistics (layer, group, instance norm), from forward to the op's backward.</summary>
        Saved,

        /// <summary>Max pooling's argmax (ints), from forward to the pooling's backward.</summary>
        Indices,

        /// <summary>dL/d(value) (shared with the gradients written in place over it), in backward.</summary>
        Gradient,

        /// <summary>An inference value, in <c>Infer</c>.</summary>
        Inference,

        /// <summary>
        /// One reader's share of the gradient of a value several layers read, during that reader's backward step, before
        /// it is added to what the readers after it (in forward order) wrote.
        /// </summary>
        GradientPart,
    }

    /// <summary>
    /// One region of the batch-scaled arena: <see cref="Length"/> floats per sample at <see cref="Offset"/> per sample
    /// (both × maxBatch at run time), live over [<see cref="Start"/>, <see cref="End"/>] of its timeline.
    /// </summary>
    public sealed class Region
    {
        internal Region(RegionKind kind, Value value, int length, int start, int end)
        {
            Kind = kind;
            Value = value;
            Length = length;
            Start = start;
            End = end;
        }

        public RegionKind Kind { get; }

        /// <summary>The value it is named after: the root of the views and in-place writes that share it.</summary>
        public Value Value { get; }
        public int Length { get; }
        public int Start { get; internal set; }
        public int End { get; internal set; }
        public int Offset { get; internal set; } = -1;

        /// <summary>Whether Backward reads it after Forward wrote it: it lives across the gap between the calls, to the end of Backward.</summary>
        public bool IsKept { get; internal set; }

        /// <summary>For a <see cref="RegionKind.GradientPart"/>: the reader whose share it holds.</summary>
        public Node? Reader { get; internal set; }

        /// <summary>Training regions live in Forward/Backward's timeline, inference ones in Infer's.</summary>
        public bool IsInference => Kind == RegionKind.Inference;

        public override string ToString() => $"{Kind} of {Value} [{Start}, {End}] at {Offset}+{Length}";
    }

    /// <summary>Where every value, gradient, mask and saved statistic lives. Offsets in floats; batch-scaled ones per sample.</summary>
    public sealed class MemoryPlan
    {
        internal MemoryPlan(Dictionary<Value, Region> values, Dictionary<Value, Region> gradients, Dictionary<Value, Region> inference,
            Dictionary<Node, Region> masks, Dictionary<Node, Region> indices, IReadOnlyList<Region> regions, int perSample,
            IReadOnlyList<(Node Node, int Offset)> caches, int cacheLength, IReadOnlyList<PlannedTensor> tensors, int parameterLength, int bufferLength,
            int counterLength, Dictionary<Node, int> scales, Dictionary<Node, (int Weight, int Bias)> foldedWeights, Dictionary<Node, int> packedWeights,
            Dictionary<Node, int> transformedWeights, int foldedLength, Region? discardedInputGradient, bool inputCopied, Dictionary<Node, Region> parts, Dictionary<Value, InferenceSlice> slices)
        {
            _parts = parts;
            _slices = slices;
            _values = values;
            _gradients = gradients;
            _inference = inference;
            _masks = masks;
            _indices = indices;
            Regions = regions;
            PerSample = perSample;
            Caches = caches;
            CacheLength = cacheLength;
            Tensors = tensors;
            ParameterLength = parameterLength;
            BufferLength = bufferLength;
            CounterLength = counterLength;
            _scales = scales;
            _foldedWeights = foldedWeights;
            _packedWeights = packedWeights;
            _transformedWeights = transformedWeights;
            FoldedLength = foldedLength;
            DiscardedInputGradient = discardedInputGradient;
            InputCopied = inputCopied;
        }

        private readonly Dictionary<Value, Region> _values;
        private readonly Dictionary<Value, Region> _gradients;
        private readonly Dictionary<Value, Region> _inference;
        private readonly Dictionary<Node, Region> _masks;
        private readonly Dictionary<Node, Region> _indices;
        private readonly Dictionary<Node, int> _scales;
        private readonly Dictionary<Node, (int Weight, int Bias)> _foldedWeights;
        private readonly Dictionary<Node, int> _packedWeights;
        private readonly Dictionary<Node, int> _transformedWeights;
        private readonly Dictionary<Node, Region> _parts;
        private readonly Dictionary<Value, InferenceSlice> _slices;

        /// <summary>At inference, where a concatenation's input is written in place: its slice of the concatenation's region; null when it has its own.</summary>
        public InferenceSlice? SliceOf(Value value) => _slices.TryGetValue(value, out var slice) ? slice : null;

        /// <summary>Where <paramref name="reader"/> writes its share of its input's gradient when a later reader wrote that gradient first.</summary>
        public Region? GradientPart(Node reader) => _parts.TryGetValue(reader, out var region) ? region : null;

        /// <summary>Every batch-scaled region, training then inference.</summary>
        public IReadOnlyList<Region> Regions { get; }

        /// <summary>Floats per sample of the batch-scaled arena.</summary>
        public int PerSample { get; }

        /// <summary>Batch norm's saved statistics: each node's offset in the cache (training; inference adds <see cref="CacheLength"/>).</summary>
        public IReadOnlyList<(Node Node, int Offset)> Caches { get; }
        public int CacheLength { get; }

        /// <summary>Parameters (and gradients), running statistics and counters, in state_dict order.</summary>
        public IReadOnlyList<PlannedTensor> Tensors { get; }
        public int ParameterLength { get; }
        public int BufferLength { get; }
        public int CounterLength { get; }

        /// <summary>Floats of folded weights, scales and shifts, packed weights and Winograd's transformed weights.</summary>
        public int FoldedLength { get; }

        /// <summary>Where a first batch norm writes dL/d(input) that the caller did not ask for.</summary>
        public Region? DiscardedInputGradient { get; }

        /// <summary>Whether Forward copies the input, because a backward reads it.</summary>
        public bool InputCopied { get; }

        /// <summary>The training region holding <paramref name="value"/> (its root's), or null for an input not copied.</summary>
        public Region? ValueRegion(Value value) => _values.TryGetValue(value, out var region) ? region : null;

        /// <summary>The region holding dL/d<paramref name="value"/>, or null for the model input (the caller's span).</summary>
        public Region? GradientRegion(Value value) => _gradients.TryGetValue(value, out var region) ? region : null;

        /// <summary>The inference region holding <paramref name="value"/>, or null for the caller's input.</summary>
        public Region? InferenceRegion(Value value) => _inference.TryGetValue(value, out var region) ? region : null;

        public Region? Mask(Node node) => _masks.TryGetValue(node, out var region) ? region : null;

        public Region? Indices(Node node) => _indices.TryGetValue(node, out var region) ? region : null;

        public int CacheOffset(Node node) => Caches.First(c => c.Node == node).Offset;

        public int? ScaleShift(Node node) => _scales.TryGetValue(node, out int offset) ? offset : null;

        public (int Weight, int Bias)? FoldedWeight(Node node) => _foldedWeights.TryGetValue(node, out var offsets) ? offsets : null;

        public int? PackedWeight(Node node) => _packedWeights.TryGetValue(node, out int offset) ? offset : null;

        /// <summary>Where a Winograd convolution's transformed (folded) weights lie in the folded storage, for Infer; null for any other node.</summary>
        public int? TransformedWeight(Node node) => _transformedWeights.TryGetValue(node, out int offset) ? offset : null;
    }

    /// <summary>
    /// A value a conv writes straight into its slice of a concatenation's output at inference: sample s at
    /// <c>s·Stride + Offset</c> floats into <see cref="Region"/> (the concatenation's), <see cref="Concat"/> copying nothing for it.
    /// </summary>
    public sealed record InferenceSlice(Node Concat, Region Region, int Offset, int Stride);

    public enum StorageKind
    {
        Parameter,
        Buffer,
        Counter,
    }

    /// <summary>A tensor's place in one of the model's flat arrays.</summary>
    public sealed record PlannedTensor(TensorSpec Spec, StorageKind Storage, int Offset, Node Owner);

    /// <summary>
    /// Pass 3: memory from live ranges. Training runs on one timeline (forward steps, the gap between Forward and
    /// Backward, backward steps in reverse); a value lives from its step to its last reader, which may be a
    /// backward step; a gradient from the first backward step that writes it to its producer's backward step. Views
    /// and in-place writes share their input's region. Inference values live on Infer's own timeline and may reuse
    /// any training region that nothing needs across the gap. Regions are placed greedily, largest first, at the
    /// lowest cache-line offset no overlapping region occupies.
    /// </summary>
    public static class MemoryLayout
    {
        /// <summary>Lays out <paramref name="graph"/>; <paramref name="kernels"/> (kernel selection's choices) gives the Winograd convolutions their transformed weights.</summary>
        public static MemoryPlan Run(DataflowGraph graph, FusionPlan training, FusionPlan inferencePlan, IReadOnlyDictionary<Node, ConvAlgorithm> kernels)
        {
            int n = graph.Nodes.Count;
            int Forward(Node node) => 2 * (node.Id + 1);
            int outputCopy = 2 * n + 1;
            int gap = 2 * n + 2;
            int outputGradCopy = 2 * n + 3;
            int Backward(Node node) => 2 * n + 2 + 2 * (n - node.Id);

            // Training values: views and batch-norm-written activations share their input's region.
            Value Root(Value value) =>
                value.Producer is { } p && (p.Op.IsView || training.IsEpilogue(p)) ? Root(p.Input) : value;

            var regions = new List<Region>();
            var values = new Dictionary<Value, Region>();
            var rootRegions = new Dictionary<Value, Region>();
            foreach (var value in graph.Values)
            {
                var root = Root(value);
                if (!rootRegions.TryGetValue(root, out var region))
                {
                    int start = root.Producer is { } producer ? Forward(producer) : 0;
                    region = new Region(RegionKind.Value, root, Alignment.Line(root.Length), start, start);
                    rootRegions.Add(root, region);
                    regions.Add(region);
                }

                values[value] = region;
                foreach (var consumer in graph.Consumers(value))
                {
                    region.End = Math.Max(region.End, Forward(consumer));
                    if ((consumer.Op.BackwardReads & BackwardReads.Input) != 0) region.End = Math.Max(region.End, Backward(consumer));
                }

                if (value.Producer is { } node && (node.Op.BackwardReads & BackwardReads.Output) != 0) region.End = Math.Max(region.End, Backward(node));
                if (value == graph.Output) region.End = Math.Max(region.End, outputCopy);
            }

            // The input is copied only when a backward reads it; otherwise Forward reads the caller's span.
            bool inputCopied = rootRegions[graph.Input].End > gap;
            if (!inputCopied)
            {
                regions.Remove(rootRegions[graph.Input]);
                foreach (var value in graph.Values.Where(v => values[v] == rootRegions[graph.Input]).ToList()) values.Remove(value);
            }

            var masks = new Dictionary<Node, Region>();
            var indices = new Dictionary<Node, Region>();
            foreach (var node in graph.Nodes)
            {
                if (node.Op.MaskLength > 0)
                {
                    masks[node] = new Region(RegionKind.Mask, node.Output, Alignment.Line(node.Op.MaskLength), Forward(node), Backward(node));
                    regions.Add(masks[node]);
                }

                if (node.Op.SavedLength > 0)
                {
                    // Keyed by node like a mask (no op has both).
                    masks[node] = new Region(RegionKind.Saved, node.Output, Alignment.Line(node.Op.SavedLength), Forward(node), Backward(node));
                    regions.Add(masks[node]);
                }

                if (node.Op.IndicesLength > 0)
                {
                    indices[node] = new Region(RegionKind.Indices, node.Output, Alignment.Line(node.Op.IndicesLength), Forward(node), Backward(node));
                    regions.Add(indices[node]);
                }
            }

            // Gradients: a sole consumer that writes dL/dx over dL/dy (or is a view) shares its output gradient's region.
            var gradients = new Dictionary<Value, Region>();
            Region GradientOf(Value value)
            {
                if (gradients.TryGetValue(value, out var known)) return known;
                Region region;
                if (graph.SoleConsumer(value) is { } consumer && (consumer.Op.BackwardInPlace || consumer.Op.IsView))
                {
                    region = GradientOf(consumer.Output);
                }
                else
                {
                    // A value nothing reads (a dead branch) has a zero gradient, there when its producer's backward runs.
                    int start = value == graph.Output ? outputGradCopy
                        : graph.Consumers(value).Count == 0 ? Backward(value.Producer!) : graph.Consumers(value).Min(Backward);
                    region = new Region(RegionKind.Gradient, value, Alignment.Line(value.Length), start, start);
                    regions.Add(region);
                }

                if (value.Producer is { } producer) region.End = Math.Max(region.End, Backward(producer));
                gradients[value] = region;
                return region;
            }

            foreach (var value in graph.Values.Skip(1).Reverse()) GradientOf(value);
            // A value several layers read: the last reader (the first to run backward) writes its gradient; every other
            // reader but a merge (which adds in place) computes its share apart, then adds it.
            var parts = new Dictionary<Node, Region>();
            foreach (var value in graph.Values)
            {
                var readers = graph.Consumers(value);
                if (readers.Count < 2) continue;
                int lastReader = readers.Max(r => r.Id);
                foreach (var reader in readers)
                {
                    if (reader.Id == lastReader || reader.Op is MergeOp) continue;
                    int at = Backward(reader);
                    parts[reader] = new Region(RegionKind.GradientPart, value, Alignment.Line(value.Length), at, at) { Reader = reader };
                    regions.Add(parts[reader]);
                }
            }

            Region? discarded = null;
            // The first layer's batch norm writes dL/d(input) even when the caller did not ask for it (the last reader only).
            if (graph.Consumers(graph.Input).Count > 0 && graph.Consumers(graph.Input).OrderBy(c => c.Id).Last() is { Op: BatchNormOp } firstWriter)
            {
                int at = Backward(firstWriter);
                discarded = new Region(RegionKind.Gradient, graph.Input, Alignment.Line(graph.Input.Length), at, at);
                regions.Add(discarded);
            }

            // Backward may run more than once after one Forward (gradients accumulate), so whatever it reads lives to the end.
            int last = Backward(graph.Nodes[0]);
            foreach (var region in regions)
            {
                if (region.Kind is RegionKind.Value or RegionKind.Mask or RegionKind.Saved or RegionKind.Indices && region.Start < gap && region.End > gap)
                {
                    region.End = last;
                    region.IsKept = true;
                }
            }

            // Inference: each group's kernel writes its last member's value; identities pass their input on; a group
            // that can write over its input does so when nothing after it reads that input.
            int Step(Node node) => node.Id + 1;
            var inference = new Dictionary<Value, Region>();

            // Concatenations in place: an input that only the concat reads, written by a conv's group, is written by that
            // conv straight into its slice of the concat's output (its kernels take a sample stride); the concat's region
            // then lives from the first such conv's step, and the concat copies only the other inputs.
            var slices = new Dictionary<Value, InferenceSlice>();
            var concatRegions = new Dictionary<Node, Region>();
            var inPlace = new Dictionary<Value, (Node Concat, int Offset)>();
            foreach (var node in graph.Nodes)
            {
                if (node.Op is not MergeOp { IsConcat: true } || inferencePlan.Identities.Contains(node)) continue;
                int offset = 0;
                foreach (var input in node.Inputs)
                {
                    if (graph.SoleConsumer(input) == node && node.Inputs.Count(v => v == input) == 1 && input.Producer is { } producer
                        && inferencePlan.GroupOf(producer) is { Producer.Op: ConvOp } group && group.Last == producer
                        && group.Find(EpilogueKind.ResidualAdd) is null && group.Find(EpilogueKind.MaxPool2x2) is null)
                    {
                        inPlace[input] = (node, offset);
                    }

                    offset += input.Length;
                }
            }

            Region ConcatRegion(Node concat, int start)
            {
                if (!concatRegions.TryGetValue(concat, out var region))
                {
                    region = new Region(RegionKind.Inference, concat.Output, Alignment.Line(concat.Output.Length), start, start);
                    concatRegions[concat] = region;
                    regions.Add(region);
                }

                return region;
            }

            foreach (var node in graph.Nodes)
            {
                if (inference.ContainsKey(node.Output)) continue; // written by an earlier group's kernel
                if (concatRegions.TryGetValue(node, out var concatRegion))
                {
                    inference[node.Output] = concatRegion; // its in-place inputs wrote their slices already
                    continue;
                }

                if (inferencePlan.Identities.Contains(node))
                {
                    if (inference.TryGetValue(node.Input, out var passed)) inference[node.Output] = passed;
                    continue;
                }

                var group = inferencePlan.LedBy(node) ?? throw new UnreachableException();
                var written = group.Last.Output;
                if (inPlace.TryGetValue(written, out var slice))
                {
                    var into = ConcatRegion(slice.Concat, Step(node));
                    slices[written] = new InferenceSlice(slice.Concat, into, slice.Offset, slice.Concat.Output.Length);
                    foreach (var member in group.Members) inference[member.Output] = into;
                    continue;
                }

                Region? region = null;
                if (node.Op.InfersInPlace && inference.TryGetValue(node.Input, out var source)
                    && !graph.Nodes.Any(later => later.Id > node.Id && !group.Members.Contains(later) && later.Inputs.Any(v => inference.TryGetValue(v, out var r) && r == source)))
                {
                    region = source;
                }

                if (region is null)
                {
                    region = new Region(RegionKind.Inference, written, Alignment.Line(written.Length), Step(node), Step(node));
                    regions.Add(region);
                }

                foreach (var member in group.Members) inference[member.Output] = region;
            }

            foreach (var pair in inference)
            {
                foreach (var consumer in graph.Consumers(pair.Key)) pair.Value.End = Math.Max(pair.Value.End, Step(consumer));
                if (pair.Key == graph.Output) pair.Value.End = Math.Max(pair.Value.End, n + 1);
            }

            bool Conflict(Region a, Region b) =>
                a.IsInference == b.IsInference ? a.Start <= b.End && b.Start <= a.End : a.IsInference ? b.IsKept : a.IsKept;
            int perSample = Place(regions, Conflict);

            // Batch norm's saved statistics: one copy for training, one for inference (after CacheLength).
            var caches = new List<(Node, int)>();
            int cache = 0;
            foreach (var node in graph.Nodes)
            {
                if (node.Op is not BatchNormOp bn) continue;
                caches.Add((node, cache));
                cache += bn.CacheLength;
            }

            // Parameters (gradients at the same offsets), running statistics and counters, in state_dict order.
            var tensors = new List<PlannedTensor>();
            int parameters = 0, buffers = 0, counters = 0;
            foreach (var node in graph.Nodes)
            {
                foreach (var tensor in node.Op.Tensors)
                {
                    switch (tensor.Role)
                    {
                        case TensorRole.Weight:
                        case TensorRole.Bias:
                            tensors.Add(new PlannedTensor(tensor, StorageKind.Parameter, parameters, node));
                            parameters += tensor.ElementCount;
                            break;
                        case TensorRole.RunningMean:
                        case TensorRole.RunningVar:
                            tensors.Add(new PlannedTensor(tensor, StorageKind.Buffer, buffers, node));
                            buffers += tensor.ElementCount;
                            break;
                        case TensorRole.NumBatchesTracked:
                            tensors.Add(new PlannedTensor(tensor, StorageKind.Counter, counters, node));
                            counters += 1;
                            break;
                        default:
                            throw new UnreachableException();
                    }
                }
            }

            // Folded storage: each batch norm's scale and shift, then the weights of the conv or linear it folds into;
            // then every linear layer's weight packed for the GEMM; then every Winograd convolution's weight (folded or
            // not) transformed, U = G·g·Gᵀ, which Infer would otherwise recompute on every call.
            var scales = new Dictionary<Node, int>();
            var foldedWeights = new Dictionary<Node, (int, int)>();
            var packed = new Dictionary<Node, int>();
            int folded = 0;
            foreach (var node in graph.Nodes)
            {
                if (node.Op is not BatchNormOp { TrackRunningStats: true } bn) continue;
                scales[node] = folded;
                folded += bn.ScaleShiftLength;
                if (inferencePlan.GroupOf(node) is { } group && group.Find(EpilogueKind.FoldedBatchNorm)?.Node == node)
                {
                    int weight = folded;
                    folded = Alignment.Line(folded + ((WeightedOp)group.Producer.Op).WeightLength);
                    foldedWeights[group.Producer] = (weight, folded);
                    folded += Alignment.Line(bn.Channels);
                }
            }

            foreach (var node in graph.Nodes)
            {
                if (node.Op is not LinearOp linear) continue;
                packed[node] = folded;
                folded = Alignment.Line(folded + linear.PackedWeightLength);
            }

            var transformed = new Dictionary<Node, int>();
            foreach (var node in graph.Nodes)
            {
                if (node.Op is not ConvOp conv || !kernels.TryGetValue(node, out var algorithm) || algorithm != ConvAlgorithm.Winograd) continue;
                transformed[node] = folded;
                folded = Alignment.Line(folded + conv.TransformedWeightLength);
            }

            return new MemoryPlan(values, gradients, inference, masks, indices, regions, perSample, caches, cache, tensors, parameters, buffers, counters,
                scales, foldedWeights, packed, transformed, folded, discarded, inputCopied, parts, slices);
        }

        /// <summary>
        /// Places regions largest first (then earliest, then in order of creation), each at the lowest line-aligned
        /// offset that overlaps no placed region it conflicts with; returns the floats per sample spanned.
        /// </summary>
        internal static int Place(IReadOnlyList<Region> regions, Func<Region, Region, bool> conflict)
        {
            var placed = new List<Region>();
            int total = 0;
            var order = regions.Select((r, i) => (r, i)).OrderByDescending(x => x.r.Length).ThenBy(x => x.r.Start).ThenBy(x => x.i).Select(x => x.r);
            foreach (var region in order)
            {
                var taken = placed.Where(p => conflict(p, region)).OrderBy(p => p.Offset).ToList();
                int offset = 0;
                foreach (var other in taken)
                {
                    if (offset + region.Length <= other.Offset) break;
                    offset = Math.Max(offset, other.Offset + other.Length);
                }

                region.Offset = offset;
                total = Math.Max(total, offset + region.Length);
                placed.Add(region);
            }

            return total;
        }
    }
}
