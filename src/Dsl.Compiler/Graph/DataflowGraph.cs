using System;
using System.Collections.Generic;
using System.Linq;
using Dsl.Compiler.Ops;

namespace Dsl.Compiler.Graph
{
    /// <summary>A tensor flowing between ops, per sample (batch excluded). Numbered in definition order; 0 is the model input.</summary>
    public sealed class Value
    {
        internal Value(int id, IReadOnlyList<int> shape, Node? producer)
        {
            Id = id;
            Shape = shape;
            Producer = producer;
        }

        public int Id { get; }
        public IReadOnlyList<int> Shape { get; }

        /// <summary>The node that computes it; null for the model input.</summary>
        public Node? Producer { get; }

        public int Length => Shapes.Length(Shape);

        public override string ToString() => $"v{Id}{Shapes.Text(Shape)}";
    }

    /// <summary>One op applied to values, producing one value. Numbered in topological (execution) order.</summary>
    public sealed class Node
    {
        private Value? _output;

        internal Node(int id, Op op, IReadOnlyList<Value> inputs)
        {
            Id = id;
            Op = op;
            Inputs = inputs;
        }

        public int Id { get; }
        public Op Op { get; }
        public IReadOnlyList<Value> Inputs { get; }
        public Value Output => _output ?? throw new InvalidOperationException("the node's output is set as the graph is built");

        /// <summary>The first input: every op of the language but merges has exactly one.</summary>
        public Value Input => Inputs[0];

        internal void SetOutput(Value value) => _output = value;

        public override string ToString() => $"n{Id} {Op.KindName}({string.Join(", ", Inputs)}) → {Output}";
    }

    /// <summary>
    /// The compiler's intermediate representation: numbered values and the nodes that consume and produce them, in an
    /// order where every value is produced before it is consumed. A chain is the degenerate graph (each node consumes
    /// the previous node's value); lowering plans memory from each value's live range and sums the gradients of a
    /// value with several consumers. Immutable once built.
    /// </summary>
    public sealed class DataflowGraph
    {
        private readonly IReadOnlyList<IReadOnlyList<Node>> _consumers;

        private DataflowGraph(IReadOnlyList<Value> values, IReadOnlyList<Node> nodes, Value output)
        {
            Values = values;
            Nodes = nodes;
            Output = output;
            var consumers = values.Select(_ => new List<Node>()).ToArray();
            foreach (var node in nodes)
            {
                foreach (var input in node.Inputs.Distinct()) consumers[input.Id].Add(node);
            }

            _consumers = consumers;
        }

        public IReadOnlyList<Value> Values { get; }
        public IReadOnlyList<Node> Nodes { get; }
        public Value Input => Values[0];
        public Value Output { get; }

        /// <summary>The nodes that read <paramref name="value"/>, in execution order.</summary>
        public IReadOnlyList<Node> Consumers(Value value) => _consumers[value.Id];

        /// <summary>The single consumer of <paramref name="value"/>, or null when it has none or several.</summary>
        public Node? SoleConsumer(Value value) => _consumers[value.Id].Count == 1 ? _consumers[value.Id][0] : null;

        /// <summary>A chain: each op consumes the value the previous one produced.</summary>
        public static DataflowGraph Chain(IReadOnlyList<int> inputShape, IReadOnlyList<Op> ops)
        {
            var builder = new Builder(inputShape);
            var current = builder.Input;
            foreach (var op in ops) current = builder.Add(op, current);
            return builder.Build(current);
        }

        /// <summary>Builds a graph node by node; <see cref="Add"/> checks that every input already exists.</summary>
        public sealed class Builder
        {
            private readonly List<Value> _values = new();
            private readonly List<Node> _nodes = new();

            public Builder(IReadOnlyList<int> inputShape) => _values.Add(new Value(0, inputShape, null));

            public Value Input => _values[0];

            /// <summary>Appends <paramref name="op"/> reading <paramref name="inputs"/>; returns the value it produces (shape: the op's output).</summary>
            public Value Add(Op op, params Value[] inputs)
            {
                if (inputs.Length == 0) throw new ArgumentException("a node reads at least one value", nameof(inputs));
                foreach (var input in inputs)
                {
                    if (input.Id >= _values.Count || _values[input.Id] != input)
                        throw new ArgumentException($"{input} does not belong to this graph", nameof(inputs));
                }

                var node = new Node(_nodes.Count, op, inputs);
                var value = new Value(_values.Count, op.OutputShape, node);
                node.SetOutput(value);
                _nodes.Add(node);
                _values.Add(value);
                return value;
            }

            public DataflowGraph Build(Value output) => new(_values.ToArray(), _nodes.ToArray(), output);
        }
    }
}
