// Writer for the safetensors format in the canonical layout (sorted keys, space-padded header, data in key order), streamed chunk by chunk.
using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Dsl.Runtime;

/// <summary>
/// Collects tensors and metadata, then writes a safetensors file: keys sorted ordinally (<c>__metadata__</c> included in that order),
/// data stored in the same order, header padded with spaces to a multiple of 8 bytes.
/// </summary>
public sealed class SafetensorsWriter
{
    private readonly SortedDictionary<string, Entry> _tensors = new(StringComparer.Ordinal);
    private readonly SortedDictionary<string, string> _metadata = new(StringComparer.Ordinal);

    /// <summary>The floats written per call to the stream (4 MiB): large tensors go out in pieces, never as one array of bytes.</summary>
    private const int ChunkFloats = 1 << 20;

    private sealed record Entry(string DType, int[] Shape, ReadOnlyMemory<float> Floats, long[]? Longs)
    {
        public long ByteLength => Longs is null ? Floats.Length * (long)sizeof(float) : Longs.Length * (long)sizeof(long);
    }

    /// <summary>Creates an empty writer.</summary>
    public SafetensorsWriter()
    {
    }

    /// <summary>Adds an F32 tensor (the data is copied).</summary>
    /// <param name="name">Unique tensor name (not <c>__metadata__</c>).</param>
    /// <param name="data">Elements in row-major order.</param>
    /// <param name="shape">Dimensions; empty for a scalar. Their product must equal <c>data.Length</c>.</param>
    /// <exception cref="ArgumentException">Duplicate or reserved name, negative dimension, or shape/length mismatch.</exception>
    public void Add(string name, ReadOnlySpan<float> data, ReadOnlySpan<int> shape)
    {
        CheckNew(name, data.Length, shape);
        _tensors.Add(name, new Entry("F32", shape.ToArray(), data.ToArray(), null));
    }

    /// <summary>
    /// Adds an F32 tensor without copying it: its elements are read from <paramref name="data"/> when
    /// <see cref="WriteTo"/> runs, so they must not change before. This is how models and optimizers save their
    /// state: nothing as large as the state is allocated.
    /// </summary>
    /// <param name="name">Unique tensor name (not <c>__metadata__</c>).</param>
    /// <param name="data">Elements in row-major order.</param>
    /// <param name="shape">Dimensions; empty for a scalar. Their product must equal <c>data.Length</c>.</param>
    /// <exception cref="ArgumentException">Duplicate or reserved name, negative dimension, or shape/length mismatch.</exception>
    public void AddView(string name, ReadOnlyMemory<float> data, ReadOnlySpan<int> shape)
    {
        CheckNew(name, data.Length, shape);
        _tensors.Add(name, new Entry("F32", shape.ToArray(), data, null));
    }

    /// <summary>Adds an I64 tensor (the data is copied).</summary>
    /// <param name="name">Unique tensor name (not <c>__metadata__</c>).</param>
    /// <param name="data">Elements in row-major order.</param>
    /// <param name="shape">Dimensions; empty for a scalar. Their product must equal <c>data.Length</c>.</param>
    /// <exception cref="ArgumentException">Duplicate or reserved name, negative dimension, or shape/length mismatch.</exception>
    public void Add(string name, ReadOnlySpan<long> data, ReadOnlySpan<int> shape)
    {
        CheckNew(name, data.Length, shape);
        _tensors.Add(name, new Entry("I64", shape.ToArray(), default, data.ToArray()));
    }

    /// <summary>Sets a <c>__metadata__</c> entry (a later call with the same key replaces the value).</summary>
    /// <param name="key">Metadata key.</param>
    /// <param name="value">Metadata value.</param>
    public void AddMetadata(string key, string value)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(value);
        _metadata[key] = value;
    }

    /// <summary>Writes the file to <paramref name="stream"/>.</summary>
    /// <param name="stream">Writable stream.</param>
    public void WriteTo(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        byte[] header = BuildHeader();
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
        stream.Write(length);
        stream.Write(header);
        byte[]? swap = BitConverter.IsLittleEndian ? null : new byte[ChunkFloats * sizeof(float)];
        foreach (var entry in _tensors.Values)
        {
            if (entry.Longs is { } longs)
            {
                WriteLongs(stream, longs);
                continue;
            }

            for (int done = 0; done < entry.Floats.Length; done += ChunkFloats)
            {
                var part = entry.Floats.Span.Slice(done, Math.Min(ChunkFloats, entry.Floats.Length - done));
                if (swap is null)
                {
                    stream.Write(MemoryMarshal.AsBytes(part));
                    continue;
                }

                for (int i = 0; i < part.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(swap.AsSpan(i * 4), part[i]);
                stream.Write(swap, 0, part.Length * 4);
            }
        }

        stream.Flush();
    }

    private static void WriteLongs(Stream stream, long[] data)
    {
        if (BitConverter.IsLittleEndian)
        {
            stream.Write(MemoryMarshal.AsBytes(data.AsSpan()));
            return;
        }

        var bytes = new byte[data.Length * sizeof(long)];
        for (int i = 0; i < data.Length; i++) BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(i * 8), data[i]);
        stream.Write(bytes);
    }

    private byte[] BuildHeader()
    {
        var buffer = new ArrayBufferWriter<byte>();
        // Relaxed escaping keeps metadata such as .nn source ("->") readable; the header is never embedded in HTML.
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            bool metadataWritten = _metadata.Count == 0;
            long offset = 0;
            foreach (var (name, entry) in _tensors)
            {
                if (!metadataWritten && string.CompareOrdinal("__metadata__", name) < 0)
                {
                    WriteMetadata(json);
                    metadataWritten = true;
                }
                json.WriteStartObject(name);
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + entry.ByteLength);
                json.WriteEndArray();
                json.WriteString("dtype", entry.DType);
                json.WriteStartArray("shape");
                foreach (int d in entry.Shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += entry.ByteLength;
            }
            if (!metadataWritten) WriteMetadata(json);
            json.WriteEndObject();
        }

        // Padding keeps the data section 8-byte aligned, which lets readers map tensors without copying.
        int padded = (buffer.WrittenCount + 7) / 8 * 8;
        var header = new byte[padded];
        buffer.WrittenSpan.CopyTo(header);
        header.AsSpan(buffer.WrittenCount).Fill((byte)' ');
        return header;
    }

    private void WriteMetadata(Utf8JsonWriter json)
    {
        json.WriteStartObject("__metadata__");
        foreach (var (key, value) in _metadata) json.WriteString(key, value);
        json.WriteEndObject();
    }

    private void CheckNew(string name, int length, ReadOnlySpan<int> shape)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (name == "__metadata__") throw new ArgumentException("'__metadata__' is reserved and cannot be a tensor name.", nameof(name));
        if (_tensors.ContainsKey(name)) throw new ArgumentException($"A tensor named '{name}' was already added.", nameof(name));
        long count = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ArgumentException($"Tensor '{name}': negative dimension {d}.", nameof(shape));
            count = checked(count * d);
        }
        if (count != length)
        {
            throw new ArgumentException($"Tensor '{name}': shape [{string.Join(", ", shape.ToArray())}] has {count} elements but the data has {length}.", nameof(shape));
        }
    }
}
