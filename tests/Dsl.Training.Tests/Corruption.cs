// Ways a safetensors file gets damaged, each applied to a valid file's bytes; shared by the runtime and nnc compare tests.
using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;

namespace Dsl.Training.Tests;

/// <summary>
/// Corruptions of a valid safetensors file: truncations, bad header lengths and JSON, wrong dtypes and shapes,
/// overlapping and out-of-range offsets, huge lengths. Each must be refused with a clear message and change nothing.
/// </summary>
public static class Corruption
{
    /// <summary>The names of the cases, for a theory's data.</summary>
    public static IEnumerable<string> Names => Cases.Keys;

    /// <summary>Applies case <paramref name="name"/> to <paramref name="file"/> (a valid file with at least two F32 tensors).</summary>
    public static byte[] Apply(string name, byte[] file) => Cases[name](file);

    private static readonly Dictionary<string, Func<byte[], byte[]>> Cases = new(StringComparer.Ordinal)
    {
        ["empty"] = _ => [],
        ["cut in the length prefix"] = f => f[..5],
        ["cut in the header"] = f => f[..(8 + HeaderLength(f) / 2)],
        ["cut after the header"] = f => f[..(8 + HeaderLength(f))],
        ["cut in the data"] = f => f[..^7],
        ["one byte short"] = f => f[..^1],
        ["one byte more"] = f => [.. f, 0],
        ["header length 2^63"] = f => WithLength(f, 1UL << 63),
        ["header length past the end"] = f => WithLength(f, (ulong)f.Length),
        ["header length zero"] = f => WithLength(f, 0),
        ["header not JSON"] = f => Patch(f, 8, "{\"x\"::"u8),
        ["header a JSON array"] = f => WithHeader(f, "[1,2,3]"),
        ["header of invalid UTF-8"] = f => Patch(f, 10, [0xFF, 0xFE]),
        ["dtype F32 made I32"] = f => EditTensor(f, 0, t => t["dtype"] = "I32"),
        ["dtype unknown"] = f => EditTensor(f, 0, t => t["dtype"] = "Q4"),
        ["shape transposed"] = f => EditTensor(f, LargestTensor(f), t => t["shape"] = new JsonArray(((JsonArray)t["shape"]!).Reverse().Select(d => (JsonNode?)d!.GetValue<int>()).ToArray())),
        ["shape larger than the data"] = f => EditTensor(f, 0, t => t["shape"] = new JsonArray(1_000_000)),
        ["shape of 2^31 elements"] = f => EditTensor(f, 0, t => t["shape"] = new JsonArray(65536, 32768)),
        ["negative dimension"] = f => EditTensor(f, 0, t => t["shape"] = new JsonArray(-4)),
        ["offsets overlapping"] = f => EditTensor(f, 1, t => t["data_offsets"] = new JsonArray(0, Offsets(t).End - Offsets(t).Begin)),
        ["offsets past the end"] = f => EditTensor(f, 0, t => t["data_offsets"] = new JsonArray(Offsets(t).Begin + (1L << 40), Offsets(t).End + (1L << 40))),
        ["offsets of 2^62 bytes"] = f => EditTensor(f, 0, t => t["data_offsets"] = new JsonArray(0, 1L << 62)),
        ["offsets reversed"] = f => EditTensor(f, 0, t => t["data_offsets"] = new JsonArray(Offsets(t).End, Offsets(t).Begin)),
        ["offsets missing"] = f => EditTensor(f, 0, t => t.Remove("data_offsets")),
        ["metadata not strings"] = f => EditHeader(f, h => h["__metadata__"] = new JsonObject { ["model"] = 3 }),
        ["duplicate key"] = f => DuplicateFirstKey(f),
    };

    private static int HeaderLength(byte[] f) => (int)BinaryPrimitives.ReadUInt64LittleEndian(f);

    private static byte[] WithLength(byte[] f, ulong length)
    {
        var copy = f.ToArray();
        BinaryPrimitives.WriteUInt64LittleEndian(copy, length);
        return copy;
    }

    private static byte[] Patch(byte[] f, int at, ReadOnlySpan<byte> bytes)
    {
        var copy = f.ToArray();
        bytes.CopyTo(copy.AsSpan(at));
        return copy;
    }

    private static byte[] WithHeader(byte[] f, string header)
    {
        byte[] text = Encoding.UTF8.GetBytes(header);
        var data = f.AsSpan(8 + HeaderLength(f));
        var result = new byte[8 + text.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(result, (ulong)text.Length);
        text.CopyTo(result, 8);
        data.CopyTo(result.AsSpan(8 + text.Length));
        return result;
    }

    private static JsonObject Header(byte[] f) => JsonNode.Parse(f.AsSpan(8, HeaderLength(f)))!.AsObject();

    private static byte[] EditHeader(byte[] f, Action<JsonObject> edit)
    {
        var header = Header(f);
        edit(header);
        return WithHeader(f, header.ToJsonString());
    }

    private static List<string> TensorNames(byte[] f) => Header(f).Select(p => p.Key).Where(k => k != "__metadata__").ToList();

    private static int LargestTensor(byte[] f)
    {
        var header = Header(f);
        var names = TensorNames(f);
        return names.IndexOf(names.OrderByDescending(n => ((JsonArray)header[n]!["shape"]!).Count).First());
    }

    private static byte[] EditTensor(byte[] f, int index, Action<JsonObject> edit)
    {
        string name = TensorNames(f)[index];
        return EditHeader(f, h => edit(h[name]!.AsObject()));
    }

    private static (long Begin, long End) Offsets(JsonObject tensor)
    {
        var offsets = (JsonArray)tensor["data_offsets"]!;
        return (offsets[0]!.GetValue<long>(), offsets[1]!.GetValue<long>());
    }

    private static byte[] DuplicateFirstKey(byte[] f)
    {
        string header = Encoding.UTF8.GetString(f, 8, HeaderLength(f)).TrimEnd();
        string name = TensorNames(f)[0];
        var entry = Header(f)[name]!.ToJsonString();
        return WithHeader(f, header[..^1] + $",\"{name}\":{entry}}}");
    }
}
