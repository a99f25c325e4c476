using System.Collections.Generic;
using System.Linq;
using Dsl.Compiler.Graph;
using Dsl.Compiler.Ops;
using Dsl.Compiler.Syntax;

namespace Dsl.Compiler.Semantics
{
    public enum TensorRole
    {
        Weight,
        Bias,
        RunningMean,
        RunningVar,
        NumBatchesTracked,
    }

    /// <summary>A parameter or buffer as PyTorch's <c>state_dict</c> names and shapes it.</summary>
    public sealed record TensorSpec(string Name, string LocalName, IReadOnlyList<int> Shape, TensorRole Role)
    {
        public bool IsParameter => Role is TensorRole.Weight or TensorRole.Bias;

        /// <summary>Elements; the binder rejects models where this exceeds <see cref="Binder.MaxElements"/>, so it fits an int.</summary>
        public int ElementCount => (int)Shape.Aggregate(1L, (a, b) => a * b);
    }

    /// <summary>A model whose every layer bound and whose shapes all check: its ops, and the dataflow graph over them.</summary>
    public sealed class BoundModel
    {
        public BoundModel(string name, string? @namespace, IReadOnlyList<int> inputShape, IReadOnlyList<Op> layers, ModelSyntax syntax)
        {
            Name = name;
            Namespace = @namespace;
            InputShape = inputShape;
            Layers = layers;
            Syntax = syntax;
            Graph = DataflowGraph.Chain(inputShape, layers);
        }

        /// <summary>A model over a graph built by the caller (the graph language's binder, or a test).</summary>
        public BoundModel(string name, string? @namespace, DataflowGraph graph, ModelSyntax syntax)
        {
            Name = name;
            Namespace = @namespace;
            InputShape = graph.Input.Shape;
            Layers = graph.Nodes.Select(n => n.Op).ToList();
            Syntax = syntax;
            Graph = graph;
        }

        public string Name { get; }
        public string? Namespace { get; }
        public IReadOnlyList<int> InputShape { get; }

        /// <summary>The ops in source order (a v1 model is a chain: each consumes the one before).</summary>
        public IReadOnlyList<Op> Layers { get; }

        /// <summary>Values and the nodes between them; lowering and emission work from this.</summary>
        public DataflowGraph Graph { get; }
        public ModelSyntax Syntax { get; }
        public IReadOnlyList<int> OutputShape => Graph.Output.Shape;
        public int InputLength => Shapes.Length(InputShape);
        public int OutputLength => Shapes.Length(OutputShape);
        public long ParameterCount => Layers.Sum(l => l.ParameterCount);
        public long Flops => Layers.Aggregate(0L, (total, l) => total > long.MaxValue - l.Flops ? long.MaxValue : total + l.Flops);
        public IEnumerable<TensorSpec> Tensors => Layers.SelectMany(l => l.Tensors);
    }
}
