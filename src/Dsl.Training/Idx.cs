// Reader for the IDX format of MNIST-style data sets (big-endian header, unsigned bytes), raw or gzip-compressed.
using System.Buffers.Binary;
using System.IO.Compression;

namespace Dsl.Training;

/// <summary>An IDX array of unsigned bytes: its dimensions and its values in row-major order.</summary>
/// <param name="Dimensions">The dimensions from the header, e.g. [60000, 28, 28].</param>
/// <param name="Data">The values, product-of-dimensions long.</param>
public sealed record IdxArray(int[] Dimensions, byte[] Data);

/// <summary>
/// Reads IDX files (http://yann.lecun.com/exdb/mnist/): a 4-byte magic number <c>0x00 0x00 type rank</c>, rank
/// big-endian int32 dimensions, then the data. Only unsigned bytes (type 0x08) are supported, which is what MNIST
/// and Fashion-MNIST use: images have magic <c>0x00000803</c> ([n, rows, cols]), labels <c>0x00000801</c> ([n]).
/// Gzip-compressed files (<c>.gz</c>) are recognised by their content, not their name.
/// </summary>
public static class Idx
{
    /// <summary>Magic number of an IDX file of unsigned-byte images: rank 3.</summary>
    public const int ImagesMagic = 0x00000803;

    /// <summary>Magic number of an IDX file of unsigned-byte labels: rank 1.</summary>
    public const int LabelsMagic = 0x00000801;

    /// <summary>Reads an IDX file, gzip-compressed or not.</summary>
    /// <param name="path">The file.</param>
    /// <returns>The array.</returns>
    /// <exception cref="InvalidDataException">The file is not an unsigned-byte IDX file, or is truncated or has trailing bytes; the message names the file.</exception>
    public static IdxArray Read(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var stream = File.OpenRead(path);
        try
        {
            return Read(stream);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{path}: {e.Message}", e);
        }
    }

    /// <summary>Reads an IDX array from <paramref name="stream"/> (gzip-compressed or not) to its end.</summary>
    /// <param name="stream">A readable stream at the start of the file.</param>
    /// <returns>The array.</returns>
    /// <exception cref="InvalidDataException">Not an unsigned-byte IDX file, truncated, or followed by extra bytes.</exception>
    public static IdxArray Read(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanSeek)
        {
            var copy = new MemoryStream();
            stream.CopyTo(copy);
            copy.Position = 0;
            stream = copy;
        }

        long start = stream.Position;
        int b0 = stream.ReadByte(), b1 = stream.ReadByte();
        stream.Position = start;
        if (b0 == 0x1f && b1 == 0x8b)
        {
            using var gzip = new GZipStream(stream, CompressionMode.Decompress, leaveOpen: true);
            try
            {
                return ReadRaw(gzip, compressed: true);
            }
            catch (IOException e) when (e is not EndOfStreamException)
            {
                throw new InvalidDataException($"the gzip data is corrupt: {e.Message}", e);
            }
        }

        return ReadRaw(stream, compressed: false);
    }

    /// <summary>Reads an IDX image file (magic <c>0x00000803</c>).</summary>
    /// <param name="path">The file, e.g. <c>train-images-idx3-ubyte.gz</c>.</param>
    /// <returns>Pixels [n, rows, cols] as bytes.</returns>
    /// <exception cref="InvalidDataException">Not an image file, or corrupt.</exception>
    public static IdxArray ReadImages(string path) => Expect(Read(path), ImagesMagic, path);

    /// <summary>Reads an IDX label file (magic <c>0x00000801</c>).</summary>
    /// <param name="path">The file, e.g. <c>train-labels-idx1-ubyte.gz</c>.</param>
    /// <returns>Labels [n] as bytes.</returns>
    /// <exception cref="InvalidDataException">Not a label file, or corrupt.</exception>
    public static IdxArray ReadLabels(string path) => Expect(Read(path), LabelsMagic, path);

    /// <summary>Writes <paramref name="array"/> as an unsigned-byte IDX file (for tests and tools).</summary>
    /// <param name="stream">The destination.</param>
    /// <param name="array">Dimensions and data.</param>
    public static void Write(Stream stream, IdxArray array)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(array);
        if (array.Dimensions.Length is < 1 or > 255) throw new ArgumentException("an IDX array has 1 to 255 dimensions.", nameof(array));
        long count = 1;
        foreach (int d in array.Dimensions) count *= d;
        if (count != array.Data.Length) throw new ArgumentException($"the dimensions hold {count} values but the data has {array.Data.Length}.", nameof(array));
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(word, 0x0800 | array.Dimensions.Length);
        stream.Write(word);
        foreach (int d in array.Dimensions)
        {
            BinaryPrimitives.WriteInt32BigEndian(word, d);
            stream.Write(word);
        }

        stream.Write(array.Data);
    }

    private static IdxArray Expect(IdxArray array, int magic, string path)
    {
        int rank = magic & 0xff;
        if (array.Dimensions.Length != rank)
        {
            string what = magic == ImagesMagic ? "an image file (magic 0x00000803, [n, rows, cols])" : "a label file (magic 0x00000801, [n])";
            throw new InvalidDataException($"{path}: expected {what}, found magic 0x{0x0800 | array.Dimensions.Length:X8} with dimensions [{string.Join(", ", array.Dimensions)}].");
        }

        return array;
    }

    private static IdxArray ReadRaw(Stream stream, bool compressed)
    {
        Span<byte> word = stackalloc byte[4];
        int got = ReadFully(stream, word);
        if (got < 4) throw new InvalidDataException($"truncated: {got} bytes, too short for the 4-byte IDX magic number.");
        int magic = BinaryPrimitives.ReadInt32BigEndian(word);
        if (word[0] != 0 || word[1] != 0)
            throw new InvalidDataException($"not an IDX file: the magic number 0x{magic:X8} does not start with two zero bytes{(compressed ? "" : " (nor is it gzip data)")}.");
        if (word[2] != 0x08)
            throw new InvalidDataException($"IDX element type 0x{word[2]:X2} is not supported (magic 0x{magic:X8}); only unsigned bytes (0x08) are.");
        int rank = word[3];
        if (rank == 0) throw new InvalidDataException($"IDX magic 0x{magic:X8} declares no dimensions.");

        var dims = new int[rank];
        long count = 1;
        for (int d = 0; d < rank; d++)
        {
            got = ReadFully(stream, word);
            if (got < 4) throw new InvalidDataException($"truncated in the header: dimension {d} of {rank} is missing.");
            dims[d] = BinaryPrimitives.ReadInt32BigEndian(word);
            if (dims[d] < 0) throw new InvalidDataException($"dimension {d} is negative ({dims[d]}).");
            count *= dims[d];
            if (count > Array.MaxLength) throw new InvalidDataException($"the dimensions [{string.Join(", ", dims[..(d + 1)])}…] hold more than {Array.MaxLength} values.");
        }

        var data = new byte[count];
        got = ReadFully(stream, data);
        if (got < count)
            throw new InvalidDataException($"truncated: the header declares [{string.Join(", ", dims)}] = {count} bytes of data but only {got} follow.");
        if (stream.ReadByte() >= 0)
            throw new InvalidDataException($"{count} bytes of data for [{string.Join(", ", dims)}] are followed by unexpected extra bytes.");
        return new IdxArray(dims, data);
    }

    private static int ReadFully(Stream stream, Span<byte> buffer)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int n = stream.Read(buffer[total..]);
            if (n == 0) break;
            total += n;
        }

        return total;
    }
}
