using System;
using System.Collections.Generic;
using System.Linq;
using Dsl.Compiler.Graph;
using Dsl.Compiler.Ops;
using Dsl.Compiler.Semantics;

namespace Dsl.Compiler.Export
{
    /// <summary>An ONNX attribute: an int, a float or a list of ints (all this exporter writes).</summary>
    public sealed record OnnxAttribute(string Name, long? Int = null, float? Float = null, IReadOnlyList<long>? Ints = null);

    /// <summary>One ONNX node: its operator, inputs and single output by name.</summary>
    public sealed record OnnxNode(string OpType, string Name, IReadOnlyList<string> Inputs, string Output, IReadOnlyList<OnnxAttribute> Attributes);

    /// <summary>
    /// A constant of the graph: a <c>state_dict</c> tensor of the model (<see cref="StateKey"/>, whose values come from the
    /// weights file, written with <see cref="Dims"/>, which may add unit axes) or literal values.
    /// </summary>
    public sealed record OnnxInitializer(string Name, IReadOnlyList<long> Dims, string? StateKey = null, IReadOnlyList<float>? Floats = null, IReadOnlyList<long>? Int64s = null);

    /// <summary>
    /// A model's inference graph in ONNX's terms, without weights and without protobuf: what an ONNX writer needs to
    /// serialize it. Input <c>input</c> and output <c>output</c> have a symbolic batch dimension (<c>batch</c>).
    /// </summary>
    public sealed record OnnxGraph(string ModelName, IReadOnlyList<int> InputShape, IReadOnlyList<int> OutputShape, IReadOnlyList<OnnxNode> Nodes,
        IReadOnlyList<OnnxInitializer> Initializers, IReadOnlyList<TensorSpec> StateTensors)
    {
        public const string InputName = "input";
        public const string OutputName = "output";
        public const string BatchDimension = "batch";
        public const long Opset = 17;

        /// <summary>The IR version that goes with opset 17.</summary>
        public const long IrVersion = 8;
    }

    /// <summary>
    /// Translates a bound model's graph into ONNX opset 17 operators for inference. Batch norm with running statistics is a
    /// <c>BatchNormalization</c> node (not folded, so the file keeps PyTorch's parameters and reads like the model);
    /// without them, it normalizes with the batch's statistics (ReduceMean), as PyTorch does in eval mode. What opset 17
    /// lacks is decomposed: GELU (erf), SiLU (x·σ(x)), group norm (reshape to groups, InstanceNormalization, reshape back,
    /// per-channel affine).
    /// </summary>
    public static class OnnxGraphBuilder
    {
        /// <exception cref="ExportException">The model holds an op the exporter does not know.</exception>
        public static OnnxGraph Build(BoundModel model)
        {
            var b = new GraphBuilder();
            var names = new Dictionary<int, string> { [model.Graph.Input.Id] = OnnxGraph.InputName };
            foreach (var node in model.Graph.Nodes)
            {
                string output = node.Output == model.Graph.Output ? OnnxGraph.OutputName : $"v{node.Output.Id}";
                var inputs = node.Inputs.Select(v => names[v.Id]).ToList();
                Translate(b, node, inputs, output);
                names[node.Output.Id] = output;
            }

            return new OnnxGraph(model.Name, model.InputShape, model.OutputShape, b.Nodes, b.Initializers, model.Tensors.ToList());
        }

        private static void Translate(GraphBuilder b, Node node, List<string> inputs, string output)
        {
            var op = node.Op;
            string x = inputs[0];
            string p = op.Name;
            switch (op)
            {
                case MergeOp merge when merge.IsConcat:
                    b.Node("Concat", p, inputs, output, new OnnxAttribute("axis", Int: 1));
                    break;
                case MergeOp:
                {
                    string sum = inputs[0];
                    for (int i = 1; i < inputs.Count; i++)
                    {
                        string next = i == inputs.Count - 1 ? output : $"{p}.sum{i}";
                        b.Node("Add", $"{p}.add{i}", new[] { sum, inputs[i] }, next);
                        sum = next;
                    }

                    break;
                }

                case ConvOp conv:
                {
                    bool oneD = conv.KindName == "conv1d";
                    IReadOnlyList<long> Pair((int H, int W) v) => oneD ? new long[] { v.W } : new long[] { v.H, v.W };
                    var pads = oneD ? new long[] { conv.Padding.W, conv.Padding.W } : new long[] { conv.Padding.H, conv.Padding.W, conv.Padding.H, conv.Padding.W };
                    var convInputs = new List<string> { x, b.State(op.Tensors[0]) };
                    if (conv.Bias) convInputs.Add(b.State(op.Tensors[1]));
                    b.Node("Conv", p, convInputs, output,
                        new OnnxAttribute("kernel_shape", Ints: Pair(conv.Kernel)), new OnnxAttribute("strides", Ints: Pair(conv.Stride)),
                        new OnnxAttribute("pads", Ints: pads), new OnnxAttribute("dilations", Ints: Pair(conv.Dilation)), new OnnxAttribute("group", Int: conv.Groups));
                    break;
                }

                case LinearOp linear:
                {
                    var gemmInputs = new List<string> { x, b.State(op.Tensors[0]) };
                    if (linear.Bias) gemmInputs.Add(b.State(op.Tensors[1]));
                    b.Node("Gemm", p, gemmInputs, output, new OnnxAttribute("transB", Int: 1));
                    break;
                }

                case BatchNormOp bn:
                    Normalize(b, op, x, output, bn.Affine, bn.TrackRunningStats, bn.Eps, rank: op.InputShape.Count);
                    break;
                case InstanceNormOp instance when instance.TrackRunningStats:
                    // In eval mode PyTorch's instance norm with running statistics normalizes with them, as batch norm does.
                    Normalize(b, op, x, output, instance.Affine, true, instance.Eps, rank: op.InputShape.Count);
                    break;
                case InstanceNormOp instance:
                {
                    var (scale, shift) = b.Affine(op, instance.Affine, instance.Channels);
                    b.Node("InstanceNormalization", p, new[] { x, scale, shift }, output, new OnnxAttribute("epsilon", Float: (float)instance.Eps));
                    break;
                }

                case LayerNormOp layer:
                {
                    var shape = layer.NormalizedShape.Select(d => (long)d).ToArray();
                    string scale = layer.Affine ? b.State(op.Tensors[0]) : b.Floats($"{p}.ones", shape, Enumerable.Repeat(1f, layer.NormalizedLength).ToArray());
                    var lnInputs = new List<string> { x, scale };
                    if (layer.Affine && layer.HasBias) lnInputs.Add(b.State(op.Tensors[1]));
                    b.Node("LayerNormalization", p, lnInputs, output, new OnnxAttribute("axis", Int: -shape.Length), new OnnxAttribute("epsilon", Float: (float)layer.Eps));
                    break;
                }

                case GroupNormOp group:
                {
                    // GroupNormalization is opset 18: reshape to [N, G, rest], normalize each group as an instance, reshape back.
                    var sample = op.InputShape.Select(d => (long)d).ToArray();
                    string grouped = b.Node("Reshape", $"{p}.groups", new[] { x, b.Int64s($"{p}.groups_shape", new long[] { 0, group.Groups, -1 }) }, $"{p}.grouped");
                    var ones = Enumerable.Repeat(1f, group.Groups).ToArray();
                    string normalized = b.Node("InstanceNormalization", $"{p}.normalize",
                        new[] { grouped, b.Floats($"{p}.group_ones", new long[] { group.Groups }, ones), b.Floats($"{p}.group_zeros", new long[] { group.Groups }, new float[group.Groups]) },
                        $"{p}.normalized", new OnnxAttribute("epsilon", Float: (float)group.Eps));
                    string plain = b.Node("Reshape", $"{p}.back", new[] { normalized, b.Int64s($"{p}.sample_shape", new long[] { 0 }.Concat(sample).ToArray()) },
                        group.Affine ? $"{p}.plain" : output);
                    if (group.Affine) ChannelAffine(b, op, plain, output, op.Tensors[0], op.Tensors[1]);
                    break;
                }

                case ActivationOp activation:
                    Activate(b, activation, x, output);
                    break;
                case PoolOp pool:
                {
                    bool oneD = pool.KindName.EndsWith("1d", StringComparison.Ordinal);
                    IReadOnlyList<long> Pair((int H, int W) v) => oneD ? new long[] { v.W } : new long[] { v.H, v.W };
                    var pads = oneD ? new long[] { pool.Padding.W, pool.Padding.W } : new long[] { pool.Padding.H, pool.Padding.W, pool.Padding.H, pool.Padding.W };
                    var attributes = new List<OnnxAttribute>
                    {
                        new("kernel_shape", Ints: Pair(pool.Kernel)), new("strides", Ints: Pair(pool.Stride)), new("pads", Ints: pads),
                        new("ceil_mode", Int: pool.CeilMode ? 1 : 0),
                    };
                    if (pool.Max) attributes.Add(new OnnxAttribute("dilations", Ints: Pair(pool.Dilation)));
                    else attributes.Add(new OnnxAttribute("count_include_pad", Int: pool.CountIncludePad ? 1 : 0));
                    b.Node(pool.Max ? "MaxPool" : "AveragePool", p, new[] { x }, output, attributes.ToArray());
                    break;
                }

                case GlobalAvgPoolOp:
                {
                    string pooled = b.Node("GlobalAveragePool", p, new[] { x }, $"{p}.pooled");
                    b.Node("Flatten", $"{p}.flatten", new[] { pooled }, output, new OnnxAttribute("axis", Int: 1));
                    break;
                }

                case FlattenOp:
                    b.Node("Flatten", p, new[] { x }, output, new OnnxAttribute("axis", Int: 1));
                    break;
                case DropoutOp:
                    b.Node("Identity", p, new[] { x }, output);
                    break;
                case SoftmaxOp softmax:
                    b.Node(softmax.Log ? "LogSoftmax" : "Softmax", p, new[] { x }, output, new OnnxAttribute("axis", Int: 1));
                    break;
                default:
                    throw new ExportException($"'{op.KindName}' ({op.Name}) has no ONNX translation in the exporter yet");
            }
        }

        /// <summary>Batch or instance norm in eval mode: with running statistics a BatchNormalization node, else the batch's own statistics.</summary>
        private static void Normalize(GraphBuilder b, Op op, string x, string output, bool affine, bool running, double eps, int rank)
        {
            string p = op.Name;
            var tensors = op.Tensors.ToDictionary(t => t.Role);
            int channels = op.Channels;
            if (running)
            {
                var (scale, shift) = b.Affine(op, affine, channels);
                b.Node("BatchNormalization", p, new[] { x, scale, shift, b.State(tensors[TensorRole.RunningMean]), b.State(tensors[TensorRole.RunningVar]) }, output,
                    new OnnxAttribute("epsilon", Float: (float)eps));
                return;
            }

            // track_running_stats: false: PyTorch normalizes with the batch's mean and biased variance in eval mode too.
            var axes = new long[] { 0 }.Concat(Enumerable.Range(2, rank - 1).Select(i => (long)i)).ToArray();
            string mean = b.Node("ReduceMean", $"{p}.mean", new[] { x }, $"{p}.mean", new OnnxAttribute("axes", Ints: axes), new OnnxAttribute("keepdims", Int: 1));
            string centered = b.Node("Sub", $"{p}.center", new[] { x, mean }, $"{p}.centered");
            string squared = b.Node("Mul", $"{p}.square", new[] { centered, centered }, $"{p}.squared");
            string variance = b.Node("ReduceMean", $"{p}.variance", new[] { squared }, $"{p}.var", new OnnxAttribute("axes", Ints: axes), new OnnxAttribute("keepdims", Int: 1));
            string shifted = b.Node("Add", $"{p}.eps", new[] { variance, b.Floats($"{p}.epsilon", Array.Empty<long>(), new[] { (float)eps }) }, $"{p}.var_eps");
            string deviation = b.Node("Sqrt", $"{p}.sqrt", new[] { shifted }, $"{p}.std");
            string normalized = b.Node("Div", $"{p}.normalize", new[] { centered, deviation }, affine ? $"{p}.normalized" : output);
            if (affine) ChannelAffine(b, op, normalized, output, tensors[TensorRole.Weight], tensors[TensorRole.Bias]);
        }

        /// <summary>y = x·γ + β per channel: γ and β written with unit axes after the channel so they broadcast over [N, C, ...].</summary>
        private static void ChannelAffine(GraphBuilder b, Op op, string x, string output, TensorSpec weight, TensorSpec bias)
        {
            var dims = new long[] { op.Channels }.Concat(Enumerable.Repeat(1L, op.InputShape.Count - 1)).ToArray();
            string scaled = b.Node("Mul", $"{op.Name}.scale", new[] { x, b.State(weight, dims) }, $"{op.Name}.scaled");
            b.Node("Add", $"{op.Name}.shift", new[] { scaled, b.State(bias, dims) }, output);
        }

        private static void Activate(GraphBuilder b, ActivationOp activation, string x, string output)
        {
            string p = activation.Name;
            switch (activation.Function.Name)
            {
                case "relu":
                    b.Node("Relu", p, new[] { x }, output);
                    break;
                case "sigmoid":
                    b.Node("Sigmoid", p, new[] { x }, output);
                    break;
                case "tanh":
                    b.Node("Tanh", p, new[] { x }, output);
                    break;
                case "leaky_relu":
                    b.Node("LeakyRelu", p, new[] { x }, output, new OnnxAttribute("alpha", Float: (float)activation.NegativeSlope));
                    break;
                case "silu":
                {
                    string sigmoid = b.Node("Sigmoid", $"{p}.sigmoid", new[] { x }, $"{p}.sigmoid");
                    b.Node("Mul", p, new[] { x, sigmoid }, output);
                    break;
                }

                case "gelu":
                {
                    // The exact GELU, x·(1 + erf(x/√2))/2 (Gelu is opset 20).
                    string scaled = b.Node("Mul", $"{p}.scale", new[] { x, b.Floats($"{p}.rsqrt2", Array.Empty<long>(), new[] { (float)(1 / Math.Sqrt(2)) }) }, $"{p}.scaled");
                    string erf = b.Node("Erf", $"{p}.erf", new[] { scaled }, $"{p}.erf");
                    string plusOne = b.Node("Add", $"{p}.one", new[] { erf, b.Floats($"{p}.one", Array.Empty<long>(), new[] { 1f }) }, $"{p}.plus_one");
                    string half = b.Node("Mul", $"{p}.half", new[] { plusOne, b.Floats($"{p}.half", Array.Empty<long>(), new[] { 0.5f }) }, $"{p}.halved");
                    b.Node("Mul", p, new[] { x, half }, output);
                    break;
                }

                default:
                    throw new ExportException($"the activation '{activation.Function.Name}' ({p}) has no ONNX translation in the exporter yet");
            }
        }

        /// <summary>Collects nodes and initializers; a state tensor becomes one initializer per shape it is used with.</summary>
        private sealed class GraphBuilder
        {
            public List<OnnxNode> Nodes { get; } = new();
            public List<OnnxInitializer> Initializers { get; } = new();

            public string Node(string opType, string name, IReadOnlyList<string> inputs, string output, params OnnxAttribute[] attributes)
            {
                Nodes.Add(new OnnxNode(opType, name, inputs, output, attributes));
                return output;
            }

            public string State(TensorSpec tensor, IReadOnlyList<long>? dims = null)
            {
                dims ??= tensor.Shape.Select(d => (long)d).ToArray();
                string name = dims.Count == tensor.Shape.Count ? tensor.Name : $"{tensor.Name}.{string.Join("x", dims)}";
                if (Initializers.All(i => i.Name != name)) Initializers.Add(new OnnxInitializer(name, dims, StateKey: tensor.Name));
                return name;
            }

            public string Floats(string name, IReadOnlyList<long> dims, IReadOnlyList<float> values)
            {
                Initializers.Add(new OnnxInitializer(name, dims, Floats: values));
                return name;
            }

            public string Int64s(string name, IReadOnlyList<long> values)
            {
                Initializers.Add(new OnnxInitializer(name, new long[] { values.Count }, Int64s: values));
                return name;
            }

            /// <summary>γ and β, or ones and zeros when the layer has none (ONNX's normalizations require them).</summary>
            public (string Scale, string Shift) Affine(Op op, bool affine, int channels)
            {
                if (affine)
                {
                    var tensors = op.Tensors.ToDictionary(t => t.Role);
                    return (State(tensors[TensorRole.Weight]), State(tensors[TensorRole.Bias]));
                }

                return (Floats($"{op.Name}.ones", new long[] { channels }, Enumerable.Repeat(1f, channels).ToArray()),
                    Floats($"{op.Name}.zeros", new long[] { channels }, new float[channels]));
            }
        }
    }
}
