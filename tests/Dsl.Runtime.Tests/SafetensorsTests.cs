// Safetensors: round trip, canonical layout, golden files, and rejection of each kind of corruption with a specific message.
using System.Buffers.Binary;
using System.Text;

namespace Dsl.Runtime.Tests;

public class SafetensorsTests
{
    private static byte[] Write(SafetensorsWriter writer)
    {
        using var stream = new MemoryStream();
        writer.WriteTo(stream);
        return stream.ToArray();
    }

    /// <summary>Builds a file by hand from a header string (padded with spaces to a multiple of 8) and a data section.</summary>
    private static byte[] Build(string header, byte[] data, bool pad = true)
    {
        var headerBytes = Encoding.UTF8.GetBytes(header).ToList();
        while (pad && headerBytes.Count % 8 != 0) headerBytes.Add((byte)' ');
        var file = new byte[8 + headerBytes.Count + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)headerBytes.Count);
        headerBytes.CopyTo(file, 8);
        data.CopyTo(file, 8 + headerBytes.Count);
        return file;
    }

    private static string Rejected(byte[] file)
    {
        var e = Assert.Throws<InvalidDataException>(() => SafetensorsFile.Read(new MemoryStream(file)));
        return e.Message;
    }

    [Fact]
    public void RoundTripPreservesTensorsAndMetadata()
    {
        var writer = new SafetensorsWriter();
        float[] weight = [1.5f, -2f, float.NaN, float.PositiveInfinity, 0f, -0f];
        writer.Add("b.weight", weight, [2, 3]);
        writer.Add("a.count", new long[] { 42 }, []);
        writer.Add("c.empty", ReadOnlySpan<float>.Empty, [0, 4]);
        writer.Add("big", new long[] { long.MinValue, long.MaxValue }, [2]);
        writer.AddMetadata("nn", "model M(input: [1]) { relu -> linear(1, 1) } é \"quoted\"");
        writer.AddMetadata("batch", "4");

        var file = SafetensorsFile.Read(new MemoryStream(Write(writer)));

        Assert.Equal(["a.count", "b.weight", "big", "c.empty"], file.Tensors.Select(t => t.Name));
        var w = file["b.weight"];
        Assert.Equal(TensorDType.F32, w.DType);
        Assert.Equal([2, 3], w.Shape);
        Assert.Equal(6, w.ElementCount);
        Assert.Equal(weight.Select(BitConverter.SingleToInt32Bits), w.ToFloatArray().Select(BitConverter.SingleToInt32Bits));
        var destination = new float[6];
        w.CopyTo(destination);
        Assert.Equal(w.ToFloatArray(), destination);

        Assert.True(file.TryGet("a.count", out var count));
        Assert.Equal(TensorDType.I64, count.DType);
        Assert.Empty(count.Shape);
        Assert.Equal(1, count.ElementCount);
        Assert.Equal([42L], count.ToInt64Array());
        Assert.Equal([long.MinValue, long.MaxValue], file["big"].ToInt64Array());
        Assert.Equal(0, file["c.empty"].ElementCount);
        Assert.Empty(file["c.empty"].ToFloatArray());

        Assert.Equal("4", file.Metadata["batch"]);
        Assert.Equal("model M(input: [1]) { relu -> linear(1, 1) } é \"quoted\"", file.Metadata["nn"]);
        Assert.False(file.TryGet("missing", out _));
    }

    [Fact]
    public void WriterUsesCanonicalLayout()
    {
        var writer = new SafetensorsWriter();
        writer.Add("z", [1f], [1]);
        writer.Add("B", [2f, 3f], [2]);
        writer.Add("a", [4f], [1]);
        writer.AddMetadata("k", "v");
        var bytes = Write(writer);

        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0UL, headerLength % 8);
        string header = Encoding.UTF8.GetString(bytes, 8, (int)headerLength);
        Assert.Equal(
            """{"B":{"data_offsets":[0,8],"dtype":"F32","shape":[2]},"__metadata__":{"k":"v"},"a":{"data_offsets":[8,12],"dtype":"F32","shape":[1]},"z":{"data_offsets":[12,16],"dtype":"F32","shape":[1]}}""",
            header.TrimEnd(' '));
        // Data follows in key order: B, a, z.
        var data = bytes.AsSpan(8 + (int)headerLength);
        Assert.Equal([2f, 3f, 4f, 1f], System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(data).ToArray());
    }

    [Fact]
    public void RewritingAGoldenFileReproducesItByteForByte()
    {
        string path = Path.Combine(AppContext.BaseDirectory, "Golden", "eps_momentum.safetensors");
        var original = File.ReadAllBytes(path);
        var file = SafetensorsFile.Read(path);
        Assert.Equal("EpsMomentum", file.Metadata["model"]);

        var writer = new SafetensorsWriter();
        foreach (var t in file.Tensors)
        {
            if (t.DType == TensorDType.F32) writer.Add(t.Name, t.ToFloatArray(), t.Shape);
            else writer.Add(t.Name, t.ToInt64Array(), t.Shape);
        }
        foreach (var (key, value) in file.Metadata) writer.AddMetadata(key, value);
        Assert.Equal(original, Write(writer));
    }

    [Fact]
    public void MissingTensorNamesItInKeyNotFoundException()
    {
        var writer = new SafetensorsWriter();
        writer.Add("x", [1f], [1]);
        var file = SafetensorsFile.Read(new MemoryStream(Write(writer)));
        var e = Assert.Throws<KeyNotFoundException>(() => file["conv1.weight"]);
        Assert.Contains("conv1.weight", e.Message);
    }

    [Fact]
    public void WrongDTypeOrLengthOnAccessIsRejected()
    {
        var writer = new SafetensorsWriter();
        writer.Add("steps", new long[] { 1 }, []);
        writer.Add("w", [1f, 2f], [2]);
        var file = SafetensorsFile.Read(new MemoryStream(Write(writer)));

        Assert.Contains("steps", Assert.Throws<InvalidDataException>(() => file["steps"].ToFloatArray()).Message);
        Assert.Contains("steps", Assert.Throws<InvalidDataException>(() => file["steps"].CopyTo(new float[1])).Message);
        Assert.Contains("w", Assert.Throws<InvalidDataException>(() => file["w"].ToInt64Array()).Message);
        Assert.Contains("3 elements", Assert.Throws<InvalidDataException>(() => file["w"].CopyTo(new float[3])).Message);
    }

    [Fact]
    public void UnsupportedButValidDTypeParsesAndIsFlaggedOnAccess()
    {
        var file = SafetensorsFile.Read(new MemoryStream(Build("""{"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}""", new byte[4])));
        var t = file["h"];
        Assert.Equal("F16", t.DTypeName);
        Assert.Equal(2, t.ElementCount);
        Assert.Contains("F16", Assert.Throws<NotSupportedException>(() => t.DType).Message);
        Assert.Contains("F16", Assert.Throws<InvalidDataException>(() => t.ToFloatArray()).Message);
    }

    [Fact]
    public void WriterRejectsBadArguments()
    {
        var writer = new SafetensorsWriter();
        writer.Add("a", [1f, 2f], [2]);
        Assert.Throws<ArgumentException>(() => writer.Add("a", [1f], [1]));
        Assert.Throws<ArgumentException>(() => writer.Add("b", [1f, 2f], [3]));
        Assert.Throws<ArgumentException>(() => writer.Add("__metadata__", [1f], [1]));
        Assert.Throws<ArgumentException>(() => writer.Add("c", [1f], [-1]));
    }

    private const string Valid = """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}""";

    [Fact]
    public void HandBuiltValidFileParses()
    {
        var file = SafetensorsFile.Read(new MemoryStream(Build(Valid, new byte[12])));
        Assert.Equal(2, file.Tensors.Count);
        Assert.Empty(file.Metadata);
    }

    [Fact]
    public void TooShortForTheLengthPrefixIsRejected() =>
        Assert.Contains("truncated", Rejected([1, 0, 0]));

    [Fact]
    public void HeaderLengthBeyondTheFileIsRejected()
    {
        var file = Build(Valid, new byte[12]);
        BinaryPrimitives.WriteUInt64LittleEndian(file, 1UL << 20);
        Assert.Contains("Header length 1048576 is too large", Rejected(file));
        BinaryPrimitives.WriteUInt64LittleEndian(file, ulong.MaxValue);
        Assert.Contains("too large", Rejected(file));
    }

    [Fact]
    public void AnUnpaddedHeaderIsRead()
    {
        // Issue #16 item 5: the format pads the header to a multiple of 8 but does not require it, and other writers omit it.
        string header = Valid;
        while (header.Length % 8 != 1) header += " ";
        var data = new byte[12];
        BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(8), 2.5f);
        var file = SafetensorsFile.Read(new MemoryStream(Build(header, data, pad: false)));
        Assert.Equal([2.5f], file["b"].ToFloatArray());
        Assert.Equal(0UL, BinaryPrimitives.ReadUInt64LittleEndian(Write(new SafetensorsWriter())) % 8); // ours stay padded
    }

    [Fact]
    public void AHeaderKeyOfInvalidUtf8IsInvalidData()
    {
        // Issue #16 item 5: this was an InvalidOperationException from System.Text.Json, not the documented InvalidDataException.
        var file = Build(Valid.Replace("\"b\"", "\"\u00ff\""), new byte[12]);
        int at = Array.IndexOf(file, (byte)0xC3);
        file[at] = 0xFF; // ÿ's lead byte (0xC3) becomes 0xFF, which never occurs in UTF-8
        file[at + 1] = (byte)'b';
        Assert.Contains("not valid UTF-8", Rejected(file));
    }

    [Fact]
    public void InvalidJsonIsRejected()
    {
        Assert.Contains("not valid JSON", Rejected(Build("""{"a":{"dtype":"F32",""", [])));
        Assert.Contains("must be a JSON object", Rejected(Build("[1, 2]", [])));
    }

    [Fact]
    public void UnknownDTypeIsRejectedNamingTheTensor()
    {
        string message = Rejected(Build("""{"conv.w":{"dtype":"Q7","shape":[1],"data_offsets":[0,4]}}""", new byte[4]));
        Assert.Contains("unknown dtype 'Q7'", message);
        Assert.Contains("conv.w", message);
    }

    [Fact]
    public void ShapeOffsetSizeMismatchIsRejectedNamingTheTensor()
    {
        string message = Rejected(Build("""{"fc.bias":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", new byte[8]));
        Assert.Contains("size mismatch", message);
        Assert.Contains("fc.bias", message);
    }

    [Fact]
    public void OverlappingOffsetsAreRejectedNamingTheTensors()
    {
        string message = Rejected(Build(
            """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", new byte[12]));
        Assert.Contains("overlap", message);
        Assert.Contains("'a'", message);
        Assert.Contains("'b'", message);
    }

    [Fact]
    public void OffsetsOutsideTheDataAreRejectedNamingTheTensor()
    {
        string message = Rejected(Build(
            """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"far":{"dtype":"F32","shape":[1],"data_offsets":[100,104]}}""", new byte[12]));
        Assert.Contains("past the end of the data", message);
        Assert.Contains("far", message);
    }

    [Fact]
    public void TruncatedDataIsRejectedNamingTheTensor()
    {
        var writer = new SafetensorsWriter();
        writer.Add("first", [1f, 2f], [2]);
        writer.Add("second", [3f, 4f], [2]);
        var bytes = Write(writer);
        string message = Rejected(bytes[..^3]);
        Assert.Contains("truncated", message);
        Assert.Contains("second", message);
    }

    [Fact]
    public void DuplicateNamesAreRejected()
    {
        string message = Rejected(Build(
            """{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", new byte[8]));
        Assert.Contains("Duplicate tensor name 'w'", message);
    }

    [Fact]
    public void GapsAndTrailingBytesAreRejected()
    {
        Assert.Contains("gap", Rejected(Build("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", new byte[8])));
        Assert.Contains("trailing", Rejected(Build("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", new byte[8])));
    }

    [Fact]
    public void MalformedEntriesAreRejectedNamingTheTensor()
    {
        Assert.Contains("'x': missing or non-array 'shape'", Rejected(Build("""{"x":{"dtype":"F32","data_offsets":[0,4]}}""", new byte[4])));
        Assert.Contains("'x': shape entry 0", Rejected(Build("""{"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}""", new byte[4])));
        Assert.Contains("'x': 'data_offsets'", Rejected(Build("""{"x":{"dtype":"F32","shape":[1],"data_offsets":[0]}}""", new byte[4])));
        Assert.Contains("'x': data_offsets [4, 0] end before", Rejected(Build("""{"x":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}""", new byte[4])));
        Assert.Contains("'x': missing or non-string 'dtype'", Rejected(Build("""{"x":{"shape":[1],"data_offsets":[0,4]}}""", new byte[4])));
        Assert.Contains("'__metadata__' entry 'k' must be a string", Rejected(Build("""{"__metadata__":{"k":1}}""", [])));
    }
}
