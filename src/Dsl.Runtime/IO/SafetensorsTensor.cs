// One tensor of a safetensors file: name, dtype, shape and a view of its raw little-endian bytes.
using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Dsl.Runtime;

/// <summary>Element types this runtime can read and write.</summary>
public enum TensorDType
{
    /// <summary>IEEE 754 single precision (safetensors <c>"F32"</c>).</summary>
    F32,
    /// <summary>Signed 64-bit integer (safetensors <c>"I64"</c>), e.g. batch norm's <c>num_batches_tracked</c>.</summary>
    I64,
}

/// <summary>
/// A tensor read from a <see cref="SafetensorsFile"/>. Its bytes are a view into the file's buffer, or, for a large
/// file read on demand, read from the file in chunks when copied.
/// </summary>
public sealed class SafetensorsTensor
{
    private readonly TensorDType? _dtype;
    private readonly TensorSource _source;
    private readonly long _position;
    private readonly long _byteLength;
    private readonly int _chunkBytes;

    internal SafetensorsTensor(string name, string dtypeName, TensorDType? dtype, int[] shape, long elementCount, TensorSource source, long position, long byteLength, int chunkBytes)
    {
        Name = name;
        DTypeName = dtypeName;
        _dtype = dtype;
        Shape = shape;
        ElementCount = elementCount;
        _source = source;
        _position = position;
        _byteLength = byteLength;
        _chunkBytes = chunkBytes;
    }

    /// <summary>Tensor name (the header key).</summary>
    public string Name { get; }

    /// <summary>The dtype exactly as written in the header, e.g. <c>"F32"</c> or <c>"BF16"</c>.</summary>
    public string DTypeName { get; }

    /// <summary>Element type.</summary>
    /// <exception cref="NotSupportedException">The file declares a valid safetensors dtype this runtime does not support (anything but F32 and I64).</exception>
    public TensorDType DType => _dtype ?? throw new NotSupportedException(
        $"Tensor '{Name}' has dtype {DTypeName}, which is not supported (only F32 and I64 are).");

    /// <summary>Dimensions; empty for a scalar. Do not modify.</summary>
    public int[] Shape { get; }

    /// <summary>Number of elements (product of <see cref="Shape"/>; 1 for a scalar).</summary>
    public long ElementCount { get; }

    /// <summary>The size of the raw data in bytes.</summary>
    public long ByteLength => _byteLength;

    /// <summary>
    /// Raw little-endian element bytes: a view of the file's buffer when it is held in memory, otherwise read from
    /// the file into a new array on each access.
    /// </summary>
    /// <exception cref="InvalidOperationException">The tensor is larger than one array can hold (2 GiB); copy it with <see cref="CopyTo"/>.</exception>
    public ReadOnlyMemory<byte> Bytes
    {
        get
        {
            if (_source is MemorySource memory) return memory.Slice(_position, _byteLength);
            if (_byteLength > Array.MaxLength)
                throw new InvalidOperationException($"Tensor '{Name}' has {_byteLength} bytes, more than one array holds; copy it with {nameof(CopyTo)}.");
            var bytes = new byte[_byteLength];
            _source.Read(_position, bytes, Name);
            return bytes;
        }
    }

    /// <summary>Copies the elements into a new array.</summary>
    /// <returns>The elements in row-major order.</returns>
    /// <exception cref="InvalidDataException">The dtype is not F32.</exception>
    public float[] ToFloatArray()
    {
        RequireDType(TensorDType.F32);
        var result = new float[ElementCount];
        CopyTo(result);
        return result;
    }

    /// <summary>Copies the elements into a new array.</summary>
    /// <returns>The elements in row-major order.</returns>
    /// <exception cref="InvalidDataException">The dtype is not I64.</exception>
    public long[] ToInt64Array()
    {
        RequireDType(TensorDType.I64);
        var result = new long[ElementCount];
        ReadChunked(result);
        return result;
    }

    /// <summary>Copies the elements into <paramref name="destination"/>, which must have exactly <see cref="ElementCount"/> elements.</summary>
    /// <param name="destination">Target buffer, e.g. a parameter of a generated model.</param>
    /// <exception cref="InvalidDataException">The dtype is not F32, or the lengths differ, or the file was cut short since it was opened.</exception>
    public void CopyTo(Span<float> destination)
    {
        RequireDType(TensorDType.F32);
        if (destination.Length != ElementCount)
        {
            throw new InvalidDataException(
                $"Tensor '{Name}' has shape [{string.Join(", ", Shape)}] ({ElementCount} elements) but the destination holds {destination.Length} elements.");
        }

        // Chunk by chunk straight into the destination: no buffer as large as the tensor, and no byte count above int.MaxValue.
        int chunk = _chunkBytes / sizeof(float);
        for (int done = 0; done < destination.Length; done += chunk)
        {
            var part = destination.Slice(done, Math.Min(chunk, destination.Length - done));
            _source.Read(_position + (long)done * sizeof(float), MemoryMarshal.AsBytes(part), Name);
            if (!BitConverter.IsLittleEndian)
            {
                for (int i = 0; i < part.Length; i++) part[i] = BinaryPrimitives.ReadSingleLittleEndian(MemoryMarshal.AsBytes(part.Slice(i, 1)));
            }
        }
    }

    private void ReadChunked(Span<long> destination)
    {
        int chunk = _chunkBytes / sizeof(long);
        for (int done = 0; done < destination.Length; done += chunk)
        {
            var part = destination.Slice(done, Math.Min(chunk, destination.Length - done));
            _source.Read(_position + (long)done * sizeof(long), MemoryMarshal.AsBytes(part), Name);
            if (!BitConverter.IsLittleEndian)
            {
                for (int i = 0; i < part.Length; i++) part[i] = BinaryPrimitives.ReadInt64LittleEndian(MemoryMarshal.AsBytes(part.Slice(i, 1)));
            }
        }
    }

    private void RequireDType(TensorDType expected)
    {
        if (_dtype != expected)
        {
            throw new InvalidDataException($"Tensor '{Name}' has dtype {DTypeName}, expected {expected}.");
        }
    }
}

/// <summary>Where a <see cref="SafetensorsFile"/>'s bytes come from: a buffer, or the open file itself.</summary>
internal abstract class TensorSource : IDisposable
{
    /// <summary>Fills <paramref name="destination"/> with the bytes at <paramref name="position"/> of the file.</summary>
    /// <exception cref="InvalidDataException">The file ends before (it was cut short after its header was checked).</exception>
    public abstract void Read(long position, Span<byte> destination, string tensor);

    public virtual void Dispose()
    {
    }
}

/// <summary>A file held in memory whole.</summary>
internal sealed class MemorySource(byte[] bytes) : TensorSource
{
    public ReadOnlyMemory<byte> Slice(long position, long length) => bytes.AsMemory((int)position, (int)length);

    public override void Read(long position, Span<byte> destination, string tensor) =>
        bytes.AsSpan((int)position, destination.Length).CopyTo(destination);
}

/// <summary>A seekable stream read on demand: a file through its handle (no shared position), any other stream under a lock.</summary>
internal sealed class StreamSource(Stream stream, bool ownsStream) : TensorSource
{
    public override void Read(long position, Span<byte> destination, string tensor)
    {
        int done = 0;
        if (stream is FileStream file)
        {
            while (done < destination.Length)
            {
                int read = RandomAccess.Read(file.SafeFileHandle, destination.Slice(done), position + done);
                if (read == 0) throw Truncated(tensor);
                done += read;
            }

            return;
        }

        lock (stream)
        {
            stream.Position = position;
            while (done < destination.Length)
            {
                int read = stream.Read(destination.Slice(done));
                if (read == 0) throw Truncated(tensor);
                done += read;
            }
        }
    }

    private static InvalidDataException Truncated(string tensor) =>
        new($"Tensor '{tensor}': the file ends inside its data; it was cut short after its header was read.");

    public override void Dispose()
    {
        if (ownsStream) stream.Dispose();
    }
}
