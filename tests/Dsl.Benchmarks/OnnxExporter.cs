// A minimal ONNX exporter: writes our model's current parameters and running statistics as an ONNX
// ModelProto (opset 17) with the protobuf wire format encoded by hand, so no Python or protobuf
// compiler is needed. Field numbers are those of onnx/onnx.proto3.
using System.Buffers.Binary;
using System.Text;
using Dsl.Runtime;

namespace Dsl.Benchmarks;

public static class OnnxExporter
{
    public const string InputName = "input";
    public const string OutputName = "output";
    public const long OpsetVersion = 17;
    public const long IrVersion = 8; // the IR version that goes with opset 17

    private const int TensorFloat = 1; // TensorProto.DataType.FLOAT

    // AttributeProto.AttributeType
    private const int AttrFloat = 1;
    private const int AttrInt = 2;
    private const int AttrInts = 7;

    /// <summary>The ONNX model (bytes of a ModelProto) of <paramref name="network"/> with <paramref name="model"/>'s current state.</summary>
    public static byte[] Export(Network network, CompiledModel model)
    {
        if (network.ExportOnnx is { } export) return export(model); // a graph network: the compiler's exporter (GraphExport)
        var graph = new ProtoWriter();
        var initializers = new List<byte[]>();
        string current = InputName;
        int index = 0;
        foreach (var layer in network.Layers)
        {
            string output = index == network.Layers.Count - 1 ? OutputName : $"{layer.Name}_out";
            var inputs = new List<string> { current };
            var attributes = new List<byte[]>();
            string op;
            switch (layer)
            {
                case Conv2dLayer c:
                    op = "Conv";
                    inputs.Add(Initializer(initializers, model, $"{c.Name}.weight"));
                    if (c.Bias) inputs.Add(Initializer(initializers, model, $"{c.Name}.bias"));
                    attributes.Add(Ints("kernel_shape", c.Kernel, c.Kernel));
                    attributes.Add(Ints("pads", c.Padding, c.Padding, c.Padding, c.Padding));
                    attributes.Add(Ints("strides", 1, 1));
                    attributes.Add(Ints("dilations", 1, 1));
                    attributes.Add(Int("group", 1));
                    break;
                case BatchNormLayer b:
                    op = "BatchNormalization"; // inference mode (training_mode = 0): uses the running statistics
                    inputs.Add(Initializer(initializers, model, $"{b.Name}.weight"));
                    inputs.Add(Initializer(initializers, model, $"{b.Name}.bias"));
                    inputs.Add(Initializer(initializers, model, $"{b.Name}.running_mean"));
                    inputs.Add(Initializer(initializers, model, $"{b.Name}.running_var"));
                    attributes.Add(Float("epsilon", (float)BatchNormLayer.Eps));
                    attributes.Add(Float("momentum", (float)(1 - BatchNormLayer.Momentum))); // ONNX's momentum is PyTorch's 1 − m
                    break;
                case LayerNormLayer ln:
                    op = "LayerNormalization"; // opset 17: over the last len(shape) axes
                    inputs.Add(Initializer(initializers, model, $"{ln.Name}.weight"));
                    inputs.Add(Initializer(initializers, model, $"{ln.Name}.bias"));
                    attributes.Add(Int("axis", -ln.Shape.Length));
                    attributes.Add(Float("epsilon", (float)LayerNormLayer.Eps));
                    break;
                case GroupNormLayer gn:
                {
                    // GroupNormalization is opset 18; in opset 17: reshape to [N, G, rest], instance-normalize each
                    // group, reshape back, then the per-channel affine.
                    var shape = network.ShapeBefore(gn);
                    string p = gn.Name;
                    graph.Message(1, Node("Reshape", $"Reshape_{p}_groups", [current, Constant(initializers, $"{p}.groups_shape", [0, gn.Groups, -1])], $"{p}_grouped", []));
                    graph.Message(1, Node("InstanceNormalization", $"InstanceNormalization_{p}",
                        [$"{p}_grouped", Floats(initializers, $"{p}.ones", Enumerable.Repeat(1f, gn.Groups).ToArray(), [gn.Groups]), Floats(initializers, $"{p}.zeros", new float[gn.Groups], [gn.Groups])],
                        $"{p}_normalized", [Float("epsilon", (float)GroupNormLayer.Eps)]));
                    graph.Message(1, Node("Reshape", $"Reshape_{p}_back", [$"{p}_normalized", Constant(initializers, $"{p}.sample_shape", [0, .. shape.Select(d => (long)d)])], $"{p}_plain", []));
                    graph.Message(1, Node("Mul", $"Mul_{p}", [$"{p}_plain", Floats(initializers, $"{p}.weight_c11", model.Tensor($"{p}.weight").ToArray(), [gn.Channels, 1, 1])], $"{p}_scaled", []));
                    op = "Add";
                    inputs = [$"{p}_scaled", Floats(initializers, $"{p}.bias_c11", model.Tensor($"{p}.bias").ToArray(), [gn.Channels, 1, 1])];
                    break;
                }

                case ReluLayer:
                    op = "Relu";
                    break;
                case MaxPool2dLayer m:
                    op = "MaxPool";
                    attributes.Add(Ints("kernel_shape", m.Kernel, m.Kernel));
                    attributes.Add(Ints("strides", m.Kernel, m.Kernel));
                    break;
                case FlattenLayer:
                    op = "Flatten";
                    attributes.Add(Int("axis", 1));
                    break;
                case LinearLayer l:
                    op = "Gemm"; // Y = A·Bᵀ + C with B = weight [out, in]
                    inputs.Add(Initializer(initializers, model, $"{l.Name}.weight"));
                    if (l.Bias) inputs.Add(Initializer(initializers, model, $"{l.Name}.bias"));
                    attributes.Add(Int("transB", 1));
                    break;
                default:
                    throw new NotSupportedException(layer.ToString());
            }

            graph.Message(1, Node(op, $"{op}_{layer.Name}", inputs, output, attributes)); // GraphProto.node
            current = output;
            index++;
        }

        graph.String(2, network.Name); // GraphProto.name
        foreach (var initializer in initializers) graph.Message(5, initializer); // GraphProto.initializer
        graph.Message(11, ValueInfo(InputName, network.InputShape)); // GraphProto.input
        graph.Message(12, ValueInfo(OutputName, network.OutputShape)); // GraphProto.output

        var opset = new ProtoWriter();
        opset.String(1, ""); // OperatorSetIdProto.domain: the default ONNX domain
        opset.Int64(2, OpsetVersion);

        var modelProto = new ProtoWriter();
        modelProto.Int64(1, IrVersion); // ModelProto.ir_version
        modelProto.String(2, "Dsl.Benchmarks"); // producer_name
        modelProto.String(3, "0.1.0"); // producer_version
        modelProto.Message(7, graph.ToArray()); // graph
        modelProto.Message(8, opset.ToArray()); // opset_import
        return modelProto.ToArray();
    }

    /// <summary>Adds the TensorProto of our tensor <paramref name="name"/> and returns its name.</summary>
    private static string Initializer(List<byte[]> initializers, CompiledModel model, string name)
    {
        var info = model.Info(name);
        var values = model.Tensor(name);
        var raw = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(raw.AsSpan(4 * i), values[i]);
        var tensor = new ProtoWriter();
        foreach (int d in info.Shape) tensor.Int64(1, d); // dims
        tensor.Int64(2, TensorFloat); // data_type
        tensor.String(8, name); // name
        tensor.Bytes(9, raw); // raw_data: little-endian float32
        initializers.Add(tensor.ToArray());
        return name;
    }

    /// <summary>Adds an int64 tensor initializer (a shape operand) and returns its name.</summary>
    private static string Constant(List<byte[]> initializers, string name, long[] values)
    {
        var raw = new byte[values.Length * 8];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteInt64LittleEndian(raw.AsSpan(8 * i), values[i]);
        var tensor = new ProtoWriter();
        tensor.Int64(1, values.Length); // dims
        tensor.Int64(2, 7); // data_type: INT64
        tensor.String(8, name);
        tensor.Bytes(9, raw);
        initializers.Add(tensor.ToArray());
        return name;
    }

    /// <summary>Adds a float tensor initializer of the given dims and returns its name.</summary>
    private static string Floats(List<byte[]> initializers, string name, float[] values, long[] dims)
    {
        var raw = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(raw.AsSpan(4 * i), values[i]);
        var tensor = new ProtoWriter();
        foreach (long d in dims) tensor.Int64(1, d);
        tensor.Int64(2, TensorFloat);
        tensor.String(8, name);
        tensor.Bytes(9, raw);
        initializers.Add(tensor.ToArray());
        return name;
    }

    private static byte[] Node(string op, string name, List<string> inputs, string output, List<byte[]> attributes)
    {
        var node = new ProtoWriter();
        foreach (var input in inputs) node.String(1, input); // NodeProto.input
        node.String(2, output); // output
        node.String(3, name); // name
        node.String(4, op); // op_type
        foreach (var attribute in attributes) node.Message(5, attribute); // attribute
        return node.ToArray();
    }

    private static byte[] Ints(string name, params long[] values)
    {
        var attribute = new ProtoWriter();
        attribute.String(1, name);
        foreach (long v in values) attribute.Int64(8, v); // AttributeProto.ints
        attribute.Int64(20, AttrInts); // type
        return attribute.ToArray();
    }

    private static byte[] Int(string name, long value)
    {
        var attribute = new ProtoWriter();
        attribute.String(1, name);
        attribute.Int64(3, value); // AttributeProto.i
        attribute.Int64(20, AttrInt);
        return attribute.ToArray();
    }

    private static byte[] Float(string name, float value)
    {
        var attribute = new ProtoWriter();
        attribute.String(1, name);
        attribute.Fixed32(2, BitConverter.SingleToUInt32Bits(value)); // AttributeProto.f
        attribute.Int64(20, AttrFloat);
        return attribute.ToArray();
    }

    /// <summary>ValueInfoProto of a float tensor [N, ...sample shape] with a symbolic batch dimension.</summary>
    private static byte[] ValueInfo(string name, int[] sampleShape)
    {
        var shape = new ProtoWriter(); // TensorShapeProto
        var batch = new ProtoWriter();
        batch.String(2, "N"); // Dimension.dim_param
        shape.Message(1, batch.ToArray());
        foreach (int d in sampleShape)
        {
            var dim = new ProtoWriter();
            dim.Int64(1, d); // Dimension.dim_value
            shape.Message(1, dim.ToArray());
        }

        var tensorType = new ProtoWriter(); // TypeProto.Tensor
        tensorType.Int64(1, TensorFloat); // elem_type
        tensorType.Message(2, shape.ToArray()); // shape
        var type = new ProtoWriter(); // TypeProto
        type.Message(1, tensorType.ToArray()); // tensor_type
        var valueInfo = new ProtoWriter();
        valueInfo.String(1, name);
        valueInfo.Message(2, type.ToArray());
        return valueInfo.ToArray();
    }
}

/// <summary>The protobuf wire format, enough for ONNX: varints, fixed32 and length-delimited fields.</summary>
public sealed class ProtoWriter
{
    private const int WireVarint = 0;
    private const int WireLengthDelimited = 2;
    private const int WireFixed32 = 5;

    private readonly MemoryStream _stream = new();

    public void Int64(int field, long value)
    {
        Tag(field, WireVarint);
        Varint(unchecked((ulong)value)); // negative int64 values take 10 bytes, as protobuf encodes them
    }

    public void Fixed32(int field, uint value)
    {
        Tag(field, WireFixed32);
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, value);
        _stream.Write(bytes);
    }

    public void String(int field, string value) => Bytes(field, Encoding.UTF8.GetBytes(value));

    public void Message(int field, byte[] message) => Bytes(field, message);

    public void Bytes(int field, ReadOnlySpan<byte> value)
    {
        Tag(field, WireLengthDelimited);
        Varint((ulong)value.Length);
        _stream.Write(value);
    }

    public byte[] ToArray() => _stream.ToArray();

    private void Tag(int field, int wireType) => Varint(((ulong)field << 3) | (uint)wireType);

    private void Varint(ulong value)
    {
        while (value >= 0x80)
        {
            _stream.WriteByte((byte)(value | 0x80));
            value >>= 7;
        }

        _stream.WriteByte((byte)value);
    }
}
