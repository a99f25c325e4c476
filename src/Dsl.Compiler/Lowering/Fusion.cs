using System.Collections.Generic;
using System.Linq;
using Dsl.Compiler.Graph;
using Dsl.Compiler.Ops;

namespace Dsl.Compiler.Lowering
{
    /// <summary>What a node fused into another does there.</summary>
    public enum EpilogueKind
    {
        /// <summary>A batch norm with running statistics folded into the conv or linear before it (weights and bias rescaled).</summary>
        FoldedBatchNorm,

        /// <summary>A batch norm's per-channel scale and shift applied by the pooling or activation before it as it writes.</summary>
        ScaleShift,

        /// <summary>An activation applied by the conv or linear (inference) or batch norm (training) before it as it writes.</summary>
        Activation,

        /// <summary>
        /// A 2×2 stride-2 max pooling applied as a convolution writes: in a Winograd convolution's output transform (one
        /// window per tile), or in a direct convolution's tiles (two output rows at a time).
        /// </summary>
        MaxPool2x2,

        /// <summary>
        /// A graph's <c>add(a, b)</c> done by the conv or linear that produces one input (through its folded batch norm)
        /// as it writes: it adds the other input, the residual, before the activation after the add (if any).
        /// </summary>
        ResidualAdd,
    }

    /// <summary>A node whose work another node's kernel does; for a <see cref="EpilogueKind.ResidualAdd"/>, the value it adds.</summary>
    public sealed record Epilogue(Node Node, EpilogueKind Kind, Value? Residual = null);

    /// <summary>A producer and the nodes it applies as it writes, in graph order: one kernel call, one pass over memory.</summary>
    public sealed record FusedGroup(Node Producer, IReadOnlyList<Epilogue> Epilogues)
    {
        public Epilogue? Find(EpilogueKind kind) => Epilogues.FirstOrDefault(e => e.Kind == kind);

        /// <summary>The node whose value the group's kernel writes: its last member.</summary>
        public Node Last => Epilogues.Count == 0 ? Producer : Epilogues[Epilogues.Count - 1].Node;

        public IEnumerable<Node> Members => new[] { Producer }.Concat(Epilogues.Select(e => e.Node));
    }

    /// <summary>The fused groups of one mode (training or inference), and the nodes that do nothing in it.</summary>
    public sealed class FusionPlan
    {
        private readonly Dictionary<Node, FusedGroup> _groupOf;

        internal FusionPlan(IReadOnlyList<FusedGroup> groups, IReadOnlyCollection<Node> identities)
        {
            Groups = groups;
            Identities = identities;
            _groupOf = new Dictionary<Node, FusedGroup>();
            foreach (var group in groups)
            {
                foreach (var member in group.Members) _groupOf[member] = group;
            }
        }

        /// <summary>In graph order of their producers.</summary>
        public IReadOnlyList<FusedGroup> Groups { get; }

        /// <summary>Nodes that pass their input on (views, and dropout at inference).</summary>
        public IReadOnlyCollection<Node> Identities { get; }

        /// <summary>The group a node belongs to; null for identities.</summary>
        public FusedGroup? GroupOf(Node node) => _groupOf.TryGetValue(node, out var group) ? group : null;

        /// <summary>The group a node leads, or null when it is an epilogue of another or an identity.</summary>
        public FusedGroup? LedBy(Node node) => GroupOf(node) is { } group && group.Producer == node ? group : null;

        /// <summary>The value the node's group writes for it: an epilogue's value is written by its producer's kernel.</summary>
        public bool IsEpilogue(Node node) => GroupOf(node) is { } group && group.Producer != node;
    }

    /// <summary>
    /// Pass 2: which nodes run inside another's kernel. Training: a ReLU after a batch norm with batch statistics is
    /// written by the batch norm. Inference: a batch norm with running statistics folds into the conv or linear
    /// before it, else rides on the pooling or activation before it as a scale and shift; a ReLU, SiLU or GELU after a
    /// conv or linear (through a folded batch norm) is applied by it; a residual <c>add</c> is done by the conv or linear
    /// that writes one of its inputs, before the activation after it; a 2×2 max pooling after a Winograd convolution
    /// (through its ReLU) is applied in its output transform. A value read by more than one node is never fused away.
    /// </summary>
    public static class Fusion
    {
        public static FusionPlan Training(DataflowGraph graph)
        {
            var identities = graph.Nodes.Where(n => n.Op.IsView).ToList();
            var groups = new List<FusedGroup>();
            var taken = new HashSet<Node>();
            foreach (var node in graph.Nodes)
            {
                if (node.Op.IsView || taken.Contains(node)) continue;
                var epilogues = new List<Epilogue>();
                // Nothing reads the batch norm's output: its backward needs its input, the ReLU's backward its output.
                if (node.Op is BatchNormOp { UsesBatchStatistics: true } && graph.SoleConsumer(node.Output) is { Op: ActivationOp { Function: { FusesIntoBatchNorm: true, BackwardReads: BackwardReads.Output } } } relu)
                {
                    epilogues.Add(new Epilogue(relu, EpilogueKind.Activation));
                    taken.Add(relu);
                }

                groups.Add(new FusedGroup(node, epilogues));
            }

            return new FusionPlan(groups, identities);
        }

        public static FusionPlan Inference(DataflowGraph graph, IReadOnlyDictionary<Node, ConvAlgorithm> kernels)
        {
            var identities = graph.Nodes.Where(n => n.Op.IsIdentityAtInference).ToList();
            var epilogues = graph.Nodes.ToDictionary(n => n, _ => new List<Epilogue>());
            var fused = new HashSet<Node>();

            // The node whose value reaches this one at inference, stepping back over identities, when it is read by nothing else.
            Node? Source(Node node)
            {
                var value = node.Input;
                while (true)
                {
                    if (graph.Consumers(value).Count != 1 || value.Producer is not { } producer) return null;
                    if (!producer.Op.IsIdentityAtInference) return producer;
                    value = producer.Input;
                }
            }

            // Batch norm: fold into an adjacent conv/linear, else ride on a pooling or activation that has the same channels.
            foreach (var node in graph.Nodes)
            {
                if (node.Op is not BatchNormOp { TrackRunningStats: true } bn) continue;
                var producer = node.Input.Producer;
                if (producer is { Op: WeightedOp } && graph.Consumers(node.Input).Count == 1 && !fused.Contains(producer))
                {
                    epilogues[producer].Add(new Epilogue(node, EpilogueKind.FoldedBatchNorm));
                    fused.Add(node);
                    continue;
                }

                if (Source(node) is { } carrier && !fused.Contains(carrier) && epilogues[carrier].Count == 0 && CanCarryScaleShift(carrier.Op)
                    && carrier.Op.OutputShape.SequenceEqual(bn.InputShape))
                {
                    epilogues[carrier].Add(new Epilogue(node, EpilogueKind.ScaleShift));
                    fused.Add(node);
                }
            }

            // A residual add: add(a, b) where a conv or linear (through its folded batch norm) writes a for the add alone and
            // runs after b exists; its kernel adds b as it writes. When both inputs qualify, the later producer takes it
            // (the other value is then ready). The residual stays live to the add's step in the memory plan, past the
            // producer's step, so nothing the producer writes overlaps it.
            foreach (var node in graph.Nodes)
            {
                if (node.Op is not MergeOp { IsConcat: false } || node.Inputs.Count != 2 || node.Inputs[0] == node.Inputs[1]) continue;
                Node? best = null;
                Value? residual = null;
                for (int i = 0; i < 2; i++)
                {
                    if (Owner(node.Inputs[i]) is not { Op: WeightedOp } producer || fused.Contains(producer)) continue;
                    var other = node.Inputs[1 - i];
                    if (other.Producer is { } before && before.Id >= producer.Id) continue;
                    if (best is null || producer.Id > best.Id)
                    {
                        best = producer;
                        residual = other;
                    }
                }

                if (best is null) continue;
                epilogues[best].Add(new Epilogue(node, EpilogueKind.ResidualAdd, residual));
                fused.Add(node);
            }

            // An activation the producer's kernel can apply, right after a conv or linear (or the batch norm folded into one).
            foreach (var node in graph.Nodes)
            {
                if (node.Op is not ActivationOp { Function.FusesIntoWeighted: true } || fused.Contains(node) || epilogues[node].Count > 0) continue;
                if (Owner(node.Input) is not { Op: WeightedOp } producer || fused.Contains(producer)) continue;
                if (epilogues[producer].Any(e => e.Kind == EpilogueKind.Activation)) continue;
                epilogues[producer].Add(new Epilogue(node, EpilogueKind.Activation));
                fused.Add(node);
            }

            // A 2×2 max pooling right after a Winograd or direct convolution (or the activation it applies).
            foreach (var node in graph.Nodes)
            {
                if (node.Op is not PoolOp { IsMaxPool2x2: true } || fused.Contains(node) || epilogues[node].Count > 0) continue;
                if (Owner(node.Input) is not { } producer || fused.Contains(producer)) continue;
                if (!kernels.TryGetValue(producer, out var algorithm) || algorithm is not (ConvAlgorithm.Winograd or ConvAlgorithm.Direct)) continue;
                if (epilogues[producer].Any(e => e.Kind == EpilogueKind.ResidualAdd)) continue; // the sum is written whole, then pooled
                // The maximum commutes with ReLU, not with SiLU or GELU (not monotonic): those pool after the activation.
                if (epilogues[producer].FirstOrDefault(e => e.Kind == EpilogueKind.Activation) is { Node.Op: ActivationOp { Function: var function } } && function != ActivationFunction.Relu) continue;
                epilogues[producer].Add(new Epilogue(node, EpilogueKind.MaxPool2x2));
                fused.Add(node);
            }

            // The producer whose kernel writes this value: its own node, or the one that carries it as its last epilogue.
            Node? Owner(Value value)
            {
                if (graph.Consumers(value).Count != 1 || value.Producer is not { } node) return null;
                if (!fused.Contains(node)) return epilogues[node].Count == 0 || epilogues[node].All(e => e.Kind == EpilogueKind.FoldedBatchNorm) ? node : null;
                var owner = epilogues.First(kv => kv.Value.Any(e => e.Node == node)).Key;
                var last = epilogues[owner][epilogues[owner].Count - 1];
                return last.Node == node ? owner : null;
            }

            var groups = graph.Nodes.Where(n => !n.Op.IsIdentityAtInference && !fused.Contains(n))
                .Select(n => new FusedGroup(n, epilogues[n])).ToList();
            return new FusionPlan(groups, identities);
        }

        /// <summary>Pooling and the activations with a scale-and-shift kernel can apply a batch norm as they write.</summary>
        private static bool CanCarryScaleShift(Op op) => op is PoolOp or GlobalAvgPoolOp || op is ActivationOp { Function.HasEpilogue: true };
    }
}
