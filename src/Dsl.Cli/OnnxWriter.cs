using Dsl.Compiler.Export;
using Dsl.Compiler.Semantics;
using Dsl.Runtime;
using Google.Protobuf;
using Onnx;

namespace Dsl.Cli;

/// <summary>
/// Serializes an <see cref="OnnxGraph"/> as an ONNX <c>ModelProto</c> (opset 17) with the classes protoc generates from
/// the ONNX schema, taking the <c>state_dict</c> tensors from a safetensors file. The weights are checked against the
/// model first: a missing key or another shape is refused with the key and both shapes.
/// </summary>
public static class OnnxWriter
{
    /// <exception cref="InvalidDataException">The weights do not match the model; the message names the first key that differs.</exception>
    public static byte[] Write(OnnxGraph graph, SafetensorsFile weights, string weightsName, string producerVersion)
    {
        CheckWeights(graph.StateTensors, weights, weightsName);
        var model = new ModelProto
        {
            IrVersion = OnnxGraph.IrVersion,
            ProducerName = "nnc",
            ProducerVersion = producerVersion,
            DocString = $"{graph.ModelName}: inference graph exported by nnc export onnx",
            Graph = new GraphProto { Name = graph.ModelName },
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = OnnxGraph.Opset });
        model.Graph.Input.Add(Value(OnnxGraph.InputName, graph.InputShape));
        model.Graph.Output.Add(Value(OnnxGraph.OutputName, graph.OutputShape));
        foreach (var node in graph.Nodes) model.Graph.Node.Add(Node(node));
        foreach (var initializer in graph.Initializers) model.Graph.Initializer.Add(Tensor(initializer, weights));
        return model.ToByteArray();
    }

    /// <summary>Every state tensor of the model the inference graph reads must be in the file, float32, with the model's shape.</summary>
    public static void CheckWeights(IReadOnlyList<TensorSpec> tensors, SafetensorsFile weights, string weightsName)
    {
        foreach (var spec in tensors)
        {
            if (spec.Role == TensorRole.NumBatchesTracked) continue; // a counter: inference never reads it
            string expected = Shape(spec.Shape);
            if (!weights.TryGet(spec.Name, out var tensor))
                throw new InvalidDataException($"the weights do not match the model: {weightsName} has no '{spec.Name}' (the model's has shape {expected})");
            if (!tensor.Shape.SequenceEqual(spec.Shape))
                throw new InvalidDataException($"the weights do not match the model: '{spec.Name}' has shape {expected} in the model but {Shape(tensor.Shape)} in {weightsName}");
            if (tensor.DTypeName != "F32")
                throw new InvalidDataException($"the weights do not match the model: '{spec.Name}' is F32 in the model but {tensor.DTypeName} in {weightsName}");
        }
    }

    private static string Shape(IEnumerable<int> shape) => "[" + string.Join(", ", shape) + "]";

    /// <summary>A float tensor of <c>[batch, ...shape]</c>, the batch symbolic.</summary>
    private static ValueInfoProto Value(string name, IReadOnlyList<int> sampleShape)
    {
        var shape = new TensorShapeProto();
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = OnnxGraph.BatchDimension });
        foreach (int d in sampleShape) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
        };
    }

    private static NodeProto Node(OnnxNode node)
    {
        var proto = new NodeProto { OpType = node.OpType, Name = node.Name };
        proto.Input.AddRange(node.Inputs);
        proto.Output.Add(node.Output);
        foreach (var attribute in node.Attributes)
        {
            var a = new AttributeProto { Name = attribute.Name };
            if (attribute.Int is { } i)
            {
                a.Type = AttributeProto.Types.AttributeType.Int;
                a.I = i;
            }
            else if (attribute.Float is { } f)
            {
                a.Type = AttributeProto.Types.AttributeType.Float;
                a.F = f;
            }
            else
            {
                a.Type = AttributeProto.Types.AttributeType.Ints;
                a.Ints.AddRange(attribute.Ints!);
            }

            proto.Attribute.Add(a);
        }

        return proto;
    }

    private static TensorProto Tensor(OnnxInitializer initializer, SafetensorsFile weights)
    {
        var proto = new TensorProto { Name = initializer.Name };
        proto.Dims.AddRange(initializer.Dims);
        if (initializer.Int64s is { } longs)
        {
            proto.DataType = (int)TensorProto.Types.DataType.Int64;
            proto.Int64Data.AddRange(longs);
            return proto;
        }

        proto.DataType = (int)TensorProto.Types.DataType.Float;
        float[] values = initializer.StateKey is { } key ? weights[key].ToFloatArray() : initializer.Floats!.ToArray();
        // raw_data is little-endian by the ONNX spec, as float32 is in memory on every platform .NET runs this on.
        var bytes = new byte[values.Length * sizeof(float)];
        for (int i = 0; i < values.Length; i++) System.Buffers.Binary.BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(4 * i), values[i]);
        proto.RawData = ByteString.CopyFrom(bytes);
        return proto;
    }
}
