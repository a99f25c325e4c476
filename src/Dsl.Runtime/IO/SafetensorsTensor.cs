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

/// <summary>A tensor read from a <see cref="SafetensorsFile"/>. Its bytes are a view into the file's buffer (no copy).</summary>
public sealed class SafetensorsTensor
{
    private readonly TensorDType? _dtype;

    internal SafetensorsTensor(string name, string dtypeName, TensorDType? dtype, int[] shape, long elementCount, ReadOnlyMemory<byte> bytes)
    {
        Name = name;
        DTypeName = dtypeName;
        _dtype = dtype;
        Shape = shape;
        ElementCount = elementCount;
        Bytes = bytes;
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

    /// <summary>Raw little-endian element bytes.</summary>
    public ReadOnlyMemory<byte> Bytes { get; }

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
        ReadOnlySpan<byte> bytes = Bytes.Span;
        if (BitConverter.IsLittleEndian)
        {
            MemoryMarshal.Cast<byte, long>(bytes).CopyTo(result);
        }
        else
        {
            for (int i = 0; i < result.Length; i++) result[i] = BinaryPrimitives.ReadInt64LittleEndian(bytes.Slice(i * 8));
        }
        return result;
    }

    /// <summary>Copies the elements into <paramref name="destination"/>, which must have exactly <see cref="ElementCount"/> elements.</summary>
    /// <param name="destination">Target buffer, e.g. a parameter of a generated model.</param>
    /// <exception cref="InvalidDataException">The dtype is not F32, or the lengths differ.</exception>
    public void CopyTo(Span<float> destination)
    {
        RequireDType(TensorDType.F32);
        if (destination.Length != ElementCount)
        {
            throw new InvalidDataException(
                $"Tensor '{Name}' has shape [{string.Join(", ", Shape)}] ({ElementCount} elements) but the destination holds {destination.Length} elements.");
        }
        ReadOnlySpan<byte> bytes = Bytes.Span;
        if (BitConverter.IsLittleEndian)
        {
            MemoryMarshal.Cast<byte, float>(bytes).CopyTo(destination);
        }
        else
        {
            for (int i = 0; i < destination.Length; i++) destination[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes.Slice(i * 4));
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
