// Reader for the safetensors format that validates the header and offsets before exposing any tensor.
using System.Buffers.Binary;
using System.Text.Json;
using System.Text.Unicode;

namespace Dsl.Runtime;

/// <summary>
/// A parsed safetensors file (https://github.com/huggingface/safetensors): 8-byte little-endian header length N,
/// N bytes of JSON header, then the tensor data. The header is validated whole before any tensor is exposed. A file
/// of up to 64 MiB is read into memory at once; a larger one stays open and each tensor is read from it, in chunks,
/// straight into its destination when copied (so files above 2 GiB load without one buffer holding them). Dispose
/// the instance to close such a file; until then the file must not be rewritten in place (<see cref="AtomicFile"/>
/// replaces it by a rename, which is safe).
/// </summary>
public sealed class SafetensorsFile : IDisposable
{
    /// <summary>Largest header accepted, as in the reference implementation (100 MB): protects against absurd lengths.</summary>
    private const ulong MaxHeaderLength = 100_000_000;

    /// <summary>Files (or seekable streams) up to this many bytes are read into memory whole; larger ones are read tensor by tensor.</summary>
    internal const long DefaultInMemoryLimit = 64L << 20;

    /// <summary>The most bytes one read moves from the file into a destination.</summary>
    internal const int DefaultChunkBytes = 1 << 20;

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
    private readonly TensorSource _source;

    private SafetensorsFile(IReadOnlyDictionary<string, string> metadata, List<SafetensorsTensor> tensors, TensorSource source)
    {
        Metadata = metadata;
        Tensors = tensors;
        _source = source;
        _byName = new Dictionary<string, SafetensorsTensor>(StringComparer.Ordinal);
        foreach (var t in tensors) _byName.Add(t.Name, t);
    }

    /// <summary>The <c>__metadata__</c> string map (empty if the file has none).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>All tensors, in header order.</summary>
    public IReadOnlyList<SafetensorsTensor> Tensors { get; }

    /// <summary>Whether the tensors are read from the file on demand (a file above 64 MiB) rather than held in memory.</summary>
    public bool IsStreamed => _source is not MemorySource;

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

    /// <summary>Closes the file when its tensors are read on demand (nothing to do for one held in memory).</summary>
    public void Dispose() => _source.Dispose();

    /// <summary>Reads and validates a safetensors file.</summary>
    /// <param name="path">File path.</param>
    /// <returns>The parsed file; dispose it to close a large file read on demand.</returns>
    /// <exception cref="InvalidDataException">The file is malformed; the message says what is wrong and names the tensor involved.</exception>
    public static SafetensorsFile Read(string path) => Read(path, DefaultInMemoryLimit, DefaultChunkBytes);

    /// <summary>Reads and validates a safetensors file, with the memory limit and chunk size given (tests use small ones).</summary>
    internal static SafetensorsFile Read(string path, long inMemoryLimit, int chunkBytes)
    {
        ArgumentNullException.ThrowIfNull(path);
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.RandomAccess);
        try
        {
            return Read(stream, inMemoryLimit, chunkBytes, ownsStream: true);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Reads and validates a safetensors stream from its current position. A seekable stream of up to 64 MiB, or one
    /// that cannot seek, is read to its end into memory; a larger seekable stream is read tensor by tensor when the
    /// tensors are copied, so it must stay open (and unmoved by others) until then.
    /// </summary>
    /// <param name="stream">Readable stream positioned at the start of the file.</param>
    /// <returns>The parsed file.</returns>
    /// <exception cref="InvalidDataException">The data is malformed; the message says what is wrong and names the tensor involved.</exception>
    public static SafetensorsFile Read(Stream stream) => Read(stream, DefaultInMemoryLimit, DefaultChunkBytes, ownsStream: false);

    /// <summary>Reads a stream with the memory limit and chunk size given; closes it on failure or with the file when <paramref name="ownsStream"/>.</summary>
    internal static SafetensorsFile Read(Stream stream, long inMemoryLimit, int chunkBytes, bool ownsStream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkBytes, 8);
        if (!stream.CanSeek || stream.Length - stream.Position <= Math.Max(inMemoryLimit, 8))
        {
            byte[] bytes = ReadToEnd(stream);
            if (ownsStream) stream.Dispose();
            var memory = new MemorySource(bytes);
            ReadOnlySpan<byte> span = bytes;
            if (span.Length < 8)
                throw new InvalidDataException($"File is truncated: {span.Length} bytes, too short for the 8-byte header length.");
            int headerLength = CheckHeaderLength(BinaryPrimitives.ReadUInt64LittleEndian(span), span.Length - 8L);
            return Parse(span.Slice(8, headerLength), span.Length - 8L - headerLength, memory, 8 + headerLength, chunkBytes);
        }

        long start = stream.Position;
        long fileLength = stream.Length - start;
        Span<byte> prefix = stackalloc byte[8];
        stream.ReadExactly(prefix); // the in-memory branch took every stream of 8 bytes or fewer
        int length = CheckHeaderLength(BinaryPrimitives.ReadUInt64LittleEndian(prefix), fileLength - 8);
        var header = new byte[length];
        stream.ReadExactly(header);
        var source = new StreamSource(stream, ownsStream);
        return Parse(header, fileLength - 8 - length, source, start + 8 + length, chunkBytes);
    }

    private static byte[] ReadToEnd(Stream stream)
    {
        if (stream.CanSeek)
        {
            var bytes = new byte[Math.Max(0, stream.Length - stream.Position)];
            stream.ReadExactly(bytes);
            return bytes;
        }

        var buffer = new MemoryStream();
        try
        {
            stream.CopyTo(buffer);
        }
        catch (IOException e) when (buffer.Length > int.MaxValue / 2)
        {
            throw new InvalidDataException("The safetensors data is over 2 GiB and its stream cannot seek: read it from a file instead.", e);
        }

        return buffer.ToArray();
    }

    private static int CheckHeaderLength(ulong headerLength, long available)
    {
        if (headerLength > MaxHeaderLength)
        {
            throw new InvalidDataException($"Header length {headerLength} is too large (limit {MaxHeaderLength} bytes).");
        }
        if (headerLength > (ulong)available)
        {
            throw new InvalidDataException(
                $"Header length {headerLength} is too large: only {available} bytes follow the length prefix (file truncated or corrupt).");
        }

        // The format pads the header to a multiple of 8 for aligned data, but does not require it: some writers omit
        // the padding, and copying each tensor out needs no alignment. Our writer still pads.
        return (int)headerLength;
    }

    private static SafetensorsFile Parse(ReadOnlySpan<byte> header, long dataLength, TensorSource source, long dataStart, int chunkBytes)
    {
        if (!Utf8.IsValid(header))
        {
            throw new InvalidDataException("Header is not valid UTF-8.");
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(header.ToArray());
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

            try
            {
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
                    if (end > dataLength)
                    {
                        throw new InvalidDataException(
                            $"Tensor '{name}' data_offsets [{begin}, {end}] extend past the end of the data section ({dataLength} bytes): " +
                            "the offsets point outside the data or the file is truncated.");
                    }
                    offsets.Add((begin, end, name));
                    tensors.Add(new SafetensorsTensor(name, dtypeName, dtype, shape, count, source, dataStart + begin, end - begin, chunkBytes));
                }
            }
            catch (InvalidOperationException e)
            {
                // System.Text.Json's own complaint about text it cannot turn into a string (already excluded above).
                throw new InvalidDataException($"Header is malformed: {e.Message}", e);
            }

            CheckLayout(offsets, dataLength);
            return new SafetensorsFile(metadata, tensors, source);
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
