// Reader for the safetensors format that validates the header and offsets before exposing any tensor.
using System.Buffers.Binary;
using System.Text.Json;

namespace Dsl.Runtime;

/// <summary>
/// A parsed safetensors file (https://github.com/huggingface/safetensors): 8-byte little-endian header length N,
/// N bytes of JSON header, then the tensor data. The whole file is held in memory and tensors are views into it.
/// </summary>
public sealed class SafetensorsFile
{
    /// <summary>Largest header accepted, as in the reference implementation (100 MB): protects against absurd lengths.</summary>
    private const ulong MaxHeaderLength = 100_000_000;

    private const string MetadataKey = "__metadata__";

    private static readonly Dictionary<string, (TensorDType? Supported, int Size)> DTypes = new(StringComparer.Ordinal)
    {
        ["F32"] = (TensorDType.F32, 4),
        ["I64"] = (TensorDType.I64, 8),
        // Valid safetensors dtypes that parse but are reported as unsupported on access.
        ["F64"] = (null, 8),
        ["F16"] = (null, 2),
        ["BF16"] = (null, 2),
        ["F8_E4M3"] = (null, 1),
        ["F8_E5M2"] = (null, 1),
        ["I32"] = (null, 4),
        ["I16"] = (null, 2),
        ["I8"] = (null, 1),
        ["U64"] = (null, 8),
        ["U32"] = (null, 4),
        ["U16"] = (null, 2),
        ["U8"] = (null, 1),
        ["BOOL"] = (null, 1),
    };

    private readonly Dictionary<string, SafetensorsTensor> _byName;

    private SafetensorsFile(IReadOnlyDictionary<string, string> metadata, List<SafetensorsTensor> tensors)
    {
        Metadata = metadata;
        Tensors = tensors;
        _byName = new Dictionary<string, SafetensorsTensor>(StringComparer.Ordinal);
        foreach (var t in tensors) _byName.Add(t.Name, t);
    }

    /// <summary>The <c>__metadata__</c> string map (empty if the file has none).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>All tensors, in header order.</summary>
    public IReadOnlyList<SafetensorsTensor> Tensors { get; }

    /// <summary>Looks a tensor up by name.</summary>
    /// <param name="name">Tensor name.</param>
    /// <param name="tensor">The tensor, if found.</param>
    /// <returns>Whether the tensor exists.</returns>
    public bool TryGet(string name, out SafetensorsTensor tensor) => _byName.TryGetValue(name, out tensor!);

    /// <summary>Gets a tensor by name.</summary>
    /// <param name="name">Tensor name.</param>
    /// <exception cref="KeyNotFoundException">No tensor has that name (the message names it).</exception>
    public SafetensorsTensor this[string name] =>
        _byName.TryGetValue(name, out var t) ? t : throw new KeyNotFoundException($"The safetensors file has no tensor named '{name}'.");

    /// <summary>Reads and validates a safetensors file.</summary>
    /// <param name="path">File path.</param>
    /// <returns>The parsed file.</returns>
    /// <exception cref="InvalidDataException">The file is malformed; the message says what is wrong and names the tensor involved.</exception>
    public static SafetensorsFile Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        using var stream = File.OpenRead(path);
        return Read(stream);
    }

    /// <summary>Reads and validates a safetensors stream (read to its end).</summary>
    /// <param name="stream">Readable stream positioned at the start of the file.</param>
    /// <returns>The parsed file.</returns>
    /// <exception cref="InvalidDataException">The data is malformed; the message says what is wrong and names the tensor involved.</exception>
    public static SafetensorsFile Read(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var buffer = new MemoryStream(stream.CanSeek ? (int)Math.Min(Math.Max(stream.Length - stream.Position, 0), Array.MaxLength) : 0);
        stream.CopyTo(buffer);
        return Parse(new ReadOnlyMemory<byte>(buffer.GetBuffer(), 0, (int)buffer.Length));
    }

    private static SafetensorsFile Parse(ReadOnlyMemory<byte> file)
    {
        if (file.Length < 8)
        {
            throw new InvalidDataException($"File is truncated: {file.Length} bytes, too short for the 8-byte header length.");
        }
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(file.Span);
        if (headerLength > MaxHeaderLength)
        {
            throw new InvalidDataException($"Header length {headerLength} is too large (limit {MaxHeaderLength} bytes).");
        }
        if (headerLength > (ulong)(file.Length - 8))
        {
            throw new InvalidDataException(
                $"Header length {headerLength} is too large: only {file.Length - 8} bytes follow the length prefix (file truncated or corrupt).");
        }
        if (headerLength % 8 != 0)
        {
            throw new InvalidDataException($"Header length {headerLength} is not a multiple of 8.");
        }

        int dataStart = 8 + (int)headerLength;
        ReadOnlyMemory<byte> data = file.Slice(dataStart);

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(file.Slice(8, (int)headerLength));
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"Header is not valid JSON: {e.Message}", e);
        }

        using (document)
        {
            JsonElement root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new InvalidDataException($"Header must be a JSON object, got {root.ValueKind}.");
            }

            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var tensors = new List<SafetensorsTensor>();
            var offsets = new List<(long Begin, long End, string Name)>();
            var names = new HashSet<string>(StringComparer.Ordinal);
            bool sawMetadata = false;

            foreach (JsonProperty property in root.EnumerateObject())
            {
                if (property.Name == MetadataKey)
                {
                    if (sawMetadata) throw new InvalidDataException("Header contains '__metadata__' more than once.");
                    sawMetadata = true;
                    ReadMetadata(property.Value, metadata);
                    continue;
                }

                string name = property.Name;
                if (!names.Add(name)) throw new InvalidDataException($"Duplicate tensor name '{name}' in header.");

                var (dtypeName, dtype, _, shape, count, begin, end) = ReadEntry(name, property.Value);
                if (end > data.Length)
                {
                    throw new InvalidDataException(
                        $"Tensor '{name}' data_offsets [{begin}, {end}] extend past the end of the data section ({data.Length} bytes): " +
                        "the offsets point outside the data or the file is truncated.");
                }
                offsets.Add((begin, end, name));
                tensors.Add(new SafetensorsTensor(name, dtypeName, dtype, shape, count, data.Slice((int)begin, (int)(end - begin))));
            }

            CheckLayout(offsets, data.Length);
            return new SafetensorsFile(metadata, tensors);
        }
    }

    private static void ReadMetadata(JsonElement value, Dictionary<string, string> metadata)
    {
        if (value.ValueKind != JsonValueKind.Object)
        {
            throw new InvalidDataException($"'__metadata__' must be a JSON object of strings, got {value.ValueKind}.");
        }
        foreach (JsonProperty entry in value.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.String)
            {
                throw new InvalidDataException($"'__metadata__' entry '{entry.Name}' must be a string, got {entry.Value.ValueKind}.");
            }
            if (!metadata.TryAdd(entry.Name, entry.Value.GetString()!))
            {
                throw new InvalidDataException($"Duplicate '__metadata__' key '{entry.Name}'.");
            }
        }
    }

    private static (string DTypeName, TensorDType? DType, int Size, int[] Shape, long Count, long Begin, long End) ReadEntry(string name, JsonElement entry)
    {
        if (entry.ValueKind != JsonValueKind.Object)
        {
            throw new InvalidDataException($"Tensor '{name}': header entry must be a JSON object, got {entry.ValueKind}.");
        }

        if (!entry.TryGetProperty("dtype", out JsonElement dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
        {
            throw new InvalidDataException($"Tensor '{name}': missing or non-string 'dtype'.");
        }
        string dtypeName = dtypeElement.GetString()!;
        if (!DTypes.TryGetValue(dtypeName, out var dtypeInfo))
        {
            throw new InvalidDataException($"Tensor '{name}' has unknown dtype '{dtypeName}'.");
        }

        if (!entry.TryGetProperty("shape", out JsonElement shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
        {
            throw new InvalidDataException($"Tensor '{name}': missing or non-array 'shape'.");
        }
        var shape = new int[shapeElement.GetArrayLength()];
        long count = 1;
        int d = 0;
        foreach (JsonElement dim in shapeElement.EnumerateArray())
        {
            if (dim.ValueKind != JsonValueKind.Number || !dim.TryGetInt32(out int extent) || extent < 0)
            {
                throw new InvalidDataException($"Tensor '{name}': shape entry {d} ({dim.GetRawText()}) is not a non-negative 32-bit integer.");
            }
            shape[d++] = extent;
            count = checked(count * extent);
            if (count > int.MaxValue) throw new InvalidDataException($"Tensor '{name}': shape [{string.Join(", ", shape)}] is too large.");
        }

        if (!entry.TryGetProperty("data_offsets", out JsonElement offsetsElement) || offsetsElement.ValueKind != JsonValueKind.Array
            || offsetsElement.GetArrayLength() != 2)
        {
            throw new InvalidDataException($"Tensor '{name}': 'data_offsets' must be an array [begin, end].");
        }
        long begin = ReadOffset(name, offsetsElement[0]);
        long end = ReadOffset(name, offsetsElement[1]);
        if (end < begin)
        {
            throw new InvalidDataException($"Tensor '{name}': data_offsets [{begin}, {end}] end before they begin.");
        }

        long expectedBytes = count * dtypeInfo.Size;
        if (end - begin != expectedBytes)
        {
            throw new InvalidDataException(
                $"Tensor '{name}': shape [{string.Join(", ", shape)}] with dtype {dtypeName} needs {expectedBytes} bytes " +
                $"but data_offsets [{begin}, {end}] span {end - begin} bytes (size mismatch).");
        }
        return (dtypeName, dtypeInfo.Supported, dtypeInfo.Size, shape, count, begin, end);
    }

    private static long ReadOffset(string name, JsonElement element)
    {
        if (element.ValueKind != JsonValueKind.Number || !element.TryGetInt64(out long value) || value < 0)
        {
            throw new InvalidDataException($"Tensor '{name}': data_offsets entry {element.GetRawText()} is not a non-negative integer.");
        }
        return value;
    }

    // Like the reference implementation, tensors must tile the data section exactly: no overlap, no gaps, no trailing bytes.
    private static void CheckLayout(List<(long Begin, long End, string Name)> offsets, long dataLength)
    {
        offsets.Sort((a, b) => a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin) : a.End.CompareTo(b.End));
        long position = 0;
        string? previous = null;
        foreach (var (begin, end, name) in offsets)
        {
            if (begin < position)
            {
                throw new InvalidDataException(
                    $"Tensor '{name}' data_offsets [{begin}, {end}] overlap tensor '{previous}' (which ends at {position}).");
            }
            if (begin > position)
            {
                throw new InvalidDataException(
                    previous is null
                        ? $"Tensor '{name}' data_offsets [{begin}, {end}] leave a gap: the first tensor must start at offset 0."
                        : $"Tensor '{name}' data_offsets [{begin}, {end}] leave a gap of {begin - position} bytes after tensor '{previous}'.");
            }
            position = end;
            previous = name;
        }
        if (position != dataLength)
        {
            throw new InvalidDataException(
                $"The data section has {dataLength - position} unexpected trailing bytes after the last tensor{(previous is null ? "" : $" '{previous}'")}.");
        }
    }
}
