using System;
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
        public BoundModel(string name, string? @namespace, DataflowGraph graph, ModelSyntax syntax, ModuleNode? modules = null)
        {
            Name = name;
            Namespace = @namespace;
            InputShape = graph.Input.Shape;
            Layers = graph.Nodes.Select(n => n.Op).ToList();
            Syntax = syntax;
            Graph = graph;
            Modules = modules;
        }

        /// <summary>
        /// The model's children as PyTorch nests them (blocks and groups, their layers), for summaries and exporters; null
        /// for a graph built by hand, whose ops are all direct children.
        /// </summary>
        public ModuleNode? Modules { get; }

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

namespace Dsl.Compiler.Semantics
{
    public enum ModuleKind
    {
        Model,
        Block,
        Group,
        Layer,

        /// <summary>An <c>add</c> or <c>concat</c>: listed where it runs, but not a PyTorch child (no name, no position, no tensors).</summary>
        Merge,
    }

    /// <summary>
    /// One module of a model's hierarchy: the model, a block use, a group (<c>nn.Sequential</c>) or a layer. Its
    /// <see cref="Path"/> is the <c>state_dict</c> prefix of its tensors (<c>layer2.0.downsample</c>).
    /// </summary>
    public sealed class ModuleNode
    {
        private ModuleNode(Builder builder)
        {
            Name = builder.Name;
            Path = builder.Path;
            Kind = builder.Kind;
            TypeName = builder.TypeName;
            Arguments = builder.Arguments;
            Span = builder.Span;
            Op = builder.Op;
            Children = builder.Children.Select(c => c.Build()).ToList();
        }

        /// <summary>Its name in its parent: the <c>as</c> name or the position (<c>"0"</c>); empty for the model.</summary>
        public string Name { get; }

        public string Path { get; }
        public ModuleKind Kind { get; }

        /// <summary>The model or block name, <c>Sequential</c> for a group, the layer's kind (<c>conv2d</c>).</summary>
        public string TypeName { get; }

        /// <summary>A block use's argument values, in parameter order (<c>16, 32, 2</c>); null otherwise.</summary>
        public string? Arguments { get; }

        public Text.SourceSpan Span { get; }

        /// <summary>The layer's op; null for models, blocks and groups.</summary>
        public Op? Op { get; }

        public IReadOnlyList<ModuleNode> Children { get; }

        /// <summary>The layers under it, in order.</summary>
        public IEnumerable<Op> Ops => Op is not null ? new[] { Op } : Children.SelectMany(c => c.Ops);

        public long ParameterCount => Ops.Sum(o => o.ParameterCount);

        /// <summary>Builds the tree as the binder walks the bodies.</summary>
        internal sealed class Builder
        {
            public Builder(string name, string path, ModuleKind kind, string typeName, Text.SourceSpan span)
            {
                Name = name;
                Path = path;
                Kind = kind;
                TypeName = typeName;
                Span = span;
            }

            public string Name { get; }
            public string Path { get; }
            public ModuleKind Kind { get; }
            public string TypeName { get; }
            public Text.SourceSpan Span { get; }
            public string? Arguments { get; set; }
            public Op? Op { get; set; }
            public List<Builder> Children { get; } = new();

            public ModuleNode Build() => new(this);

            /// <summary>Removes the layers <paramref name="dead"/> selects, and the blocks and groups left empty.</summary>
            public void RemoveWhere(Func<Builder, bool> dead)
            {
                Children.RemoveAll(c => dead(c));
                foreach (var child in Children) child.RemoveWhere(dead);
                Children.RemoveAll(c => c.Op is null && c.Children.Count == 0);
            }
        }
    }
}
