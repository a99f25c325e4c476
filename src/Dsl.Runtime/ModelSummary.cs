// The torchinfo-style table of a model: generated classes (CompiledModel.Summary) and `nnc summary` both format it here.
using System.Globalization;
using System.Text;

namespace Dsl.Runtime;

/// <summary>One row of a model's summary table: a layer as written in the <c>.nn</c> file and what it costs per sample.</summary>
/// <param name="Layer">The layer as written, e.g. <c>conv(1, 6, 5) (conv2d)</c> (the resolved kind in parentheses when it differs).</param>
/// <param name="Name">Its <c>state_dict</c> prefix, e.g. <c>conv1</c>.</param>
/// <param name="OutputShape">Its output with the batch, e.g. <c>[B, 6, 30, 30]</c>.</param>
/// <param name="Parameters">Its learnable parameters.</param>
/// <param name="Flops">Its forward FLOPs per sample (a multiply-add counts 2).</param>
/// <param name="ActivationBytes">Bytes of its float32 output per sample.</param>
public sealed record LayerSummary(string Layer, string Name, string OutputShape, long Parameters, long Flops, long ActivationBytes)
{
    /// <summary>
    /// A block use or group (graph models): a heading row whose parameters and FLOPs are the totals of the rows indented
    /// under it, and which holds no activations of its own.
    /// </summary>
    public bool IsGroup { get; init; }
}

/// <summary>Formats a model's summary table, the same text for <see cref="CompiledModel.Summary"/> and <c>nnc summary</c>.</summary>
public static class ModelSummaryFormat
{
    /// <summary>The column headers.</summary>
    public static IReadOnlyList<string> Header { get; } = ["Layer", "state_dict", "Output shape", "Params", "FLOPs", "Activations"];

    /// <summary>The cells of one row, as they are printed (numbers with thousands separators, bytes in B, KiB or MiB).</summary>
    /// <param name="row">The row.</param>
    /// <returns>One string per column of <see cref="Header"/>.</returns>
    public static string[] Cells(LayerSummary row)
    {
        ArgumentNullException.ThrowIfNull(row);
        return [row.Layer, row.Name, row.OutputShape, Count(row.Parameters), Count(row.Flops), row.IsGroup ? "" : Bytes(row.ActivationBytes)];
    }

    /// <summary>The lines under the table: parameters, buffers, FLOPs and activation memory.</summary>
    /// <param name="parameters">Learnable parameters of the model.</param>
    /// <param name="buffers">Elements of its buffers (running statistics and batch counters).</param>
    /// <param name="flops">Forward FLOPs per sample.</param>
    /// <param name="activationBytes">Bytes of every layer's float32 output per sample.</param>
    /// <returns>Four lines.</returns>
    public static string[] Totals(long parameters, long buffers, long flops, long activationBytes) =>
    [
        $"Total params: {Count(parameters)} ({Bytes(4 * parameters)})",
        $"Non-trainable buffers: {Count(buffers)} (running statistics and batch counters)",
        $"Forward FLOPs per sample: {Count(flops)} (a multiply-add counts 2)",
        $"Activations per sample: {Bytes(activationBytes)} (float32 outputs of every layer)",
    ];

    /// <summary>The whole table as fixed-width text, each line ended by <c>\n</c>, a blank line last.</summary>
    /// <param name="model">The model's name.</param>
    /// <param name="inputShape">Its input with the batch, e.g. <c>[B, 1, 34, 34]</c>.</param>
    /// <param name="rows">One row per layer.</param>
    /// <param name="parameters">Learnable parameters.</param>
    /// <param name="buffers">Buffer elements.</param>
    /// <param name="flops">Forward FLOPs per sample.</param>
    /// <returns>The text <c>nnc summary</c> prints when its output is not a terminal.</returns>
    public static string Plain(string model, string inputShape, IReadOnlyList<LayerSummary> rows, long parameters, long buffers, long flops)
    {
        ArgumentNullException.ThrowIfNull(rows);
        var cells = new List<string[]> { Header.ToArray() };
        long activations = 0;
        foreach (var row in rows)
        {
            cells.Add(Cells(row));
            activations += row.ActivationBytes;
        }

        var widths = new int[Header.Count];
        foreach (var line in cells)
        {
            for (int c = 0; c < widths.Length; c++) widths[c] = Math.Max(widths[c], line[c].Length);
        }

        int total = widths.Sum() + 2 * (widths.Length - 1);
        var text = new StringBuilder();
        void Add(string line) => text.Append(line).Append('\n');
        string Line(string[] line) => string.Join("  ", line.Select((c, i) => i >= 3 ? c.PadLeft(widths[i]) : c.PadRight(widths[i]))).TrimEnd();

        Add($"Model {model}, input {inputShape}");
        Add(new string('=', total));
        Add(Line(cells[0]));
        Add(new string('-', total));
        foreach (var line in cells.Skip(1)) Add(Line(line));
        Add(new string('=', total));
        foreach (var line in Totals(parameters, buffers, flops, activations)) Add(line);
        Add("");
        return text.ToString();
    }

    private static string Count(long value) => value.ToString("N0", CultureInfo.InvariantCulture);

    private static string Bytes(long bytes) => bytes switch
    {
        >= 1 << 20 => (bytes / 1048576.0).ToString("0.00", CultureInfo.InvariantCulture) + " MiB",
        >= 1 << 10 => (bytes / 1024.0).ToString("0.0", CultureInfo.InvariantCulture) + " KiB",
        _ => bytes.ToString(CultureInfo.InvariantCulture) + " B",
    };
}
