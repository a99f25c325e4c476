using System.Globalization;
using Dsl.Compiler.Semantics;
using Spectre.Console;

namespace Dsl.Cli;

/// <summary>torchinfo-style per-layer table of a bound model.</summary>
public static class ModelSummary
{
    public sealed record Row(string Layer, string Name, string OutputShape, long Parameters, long Flops, long ActivationBytes);

    public sealed record Table(string Model, string InputShape, IReadOnlyList<Row> Rows, long Parameters, long Buffers, long Flops, long ActivationBytes);

    public static Table Build(BoundModel model)
    {
        var rows = model.Layers.Select(l => new Row(
            l.Syntax.Name.Text == l.KindName ? Describe(l) : $"{Describe(l)} ({l.KindName})",
            l.Name,
            "[B, " + string.Join(", ", l.OutputShape) + "]",
            l.ParameterCount,
            l.Flops,
            4L * l.OutputLength)).ToList();
        long buffers = model.Tensors.Where(t => !t.IsParameter).Sum(t => (long)t.ElementCount);
        return new Table(model.Name, "[B, " + string.Join(", ", model.InputShape) + "]", rows, model.ParameterCount, buffers,
            model.Flops, rows.Sum(r => r.ActivationBytes));
    }

    private static string Describe(Dsl.Compiler.Ops.Op layer)
    {
        var args = layer.Syntax.Arguments;
        return args.Count == 0 && !layer.Syntax.HasArgumentList
            ? layer.Syntax.Name.Text
            : layer.Syntax.Name.Text + "(" + string.Join(", ", args.Select(a => (a.Name is null ? "" : a.Name.Text + ": ") + (a.Value.Kind == Dsl.Compiler.Syntax.ValueKind.Pair ? $"({a.Value.Text})" : a.Value.Text))) + ")";
    }

    private static string N(long value) => value.ToString("N0", CultureInfo.InvariantCulture);

    private static string Bytes(long bytes) => bytes switch
    {
        >= 1 << 20 => (bytes / 1048576.0).ToString("0.00", CultureInfo.InvariantCulture) + " MiB",
        >= 1 << 10 => (bytes / 1024.0).ToString("0.0", CultureInfo.InvariantCulture) + " KiB",
        _ => bytes.ToString(CultureInfo.InvariantCulture) + " B",
    };

    private static string[] Header => new[] { "Layer", "state_dict", "Output shape", "Params", "FLOPs", "Activations" };

    private static string[] Cells(Row r) => new[] { r.Layer, r.Name, r.OutputShape, N(r.Parameters), N(r.Flops), Bytes(r.ActivationBytes) };

    private static IEnumerable<string> Totals(Table t) => new[]
    {
        $"Total params: {N(t.Parameters)} ({Bytes(4 * t.Parameters)})",
        $"Non-trainable buffers: {N(t.Buffers)} (running statistics and batch counters)",
        $"Forward FLOPs per sample: {N(t.Flops)} (a multiply-add counts 2)",
        $"Activations per sample: {Bytes(t.ActivationBytes)} (float32 outputs of every layer)",
    };

    /// <summary>Fixed-width text for pipes and logs.</summary>
    public static void WritePlain(Table table, TextWriter writer)
    {
        var rows = new List<string[]> { Header };
        rows.AddRange(table.Rows.Select(Cells));
        var widths = Enumerable.Range(0, Header.Length).Select(c => rows.Max(r => r[c].Length)).ToArray();
        string Line(string[] cells) => string.Join("  ", cells.Select((c, i) => i >= 3 ? c.PadLeft(widths[i]) : c.PadRight(widths[i]))).TrimEnd();
        int total = widths.Sum() + 2 * (widths.Length - 1);

        writer.WriteLine($"Model {table.Model}, input {table.InputShape}");
        writer.WriteLine(new string('=', total));
        writer.WriteLine(Line(rows[0]));
        writer.WriteLine(new string('-', total));
        foreach (var row in rows.Skip(1)) writer.WriteLine(Line(row));
        writer.WriteLine(new string('=', total));
        foreach (var line in Totals(table)) writer.WriteLine(line);
        writer.WriteLine();
    }

    /// <summary>A Spectre.Console table for a terminal.</summary>
    public static void WriteRich(Table table)
    {
        var grid = new Spectre.Console.Table().Border(TableBorder.Rounded)
            .Title($"[bold]{Markup.Escape(table.Model)}[/] input {Markup.Escape(table.InputShape)}");
        foreach (var (header, index) in Header.Select((h, i) => (h, i)))
            grid.AddColumn(index >= 3 ? new TableColumn(header).RightAligned() : new TableColumn(header));
        foreach (var row in table.Rows) grid.AddRow(Cells(row).Select(Markup.Escape).ToArray());
        AnsiConsole.Write(grid);
        foreach (var line in Totals(table)) AnsiConsole.MarkupLine(Markup.Escape(line));
        AnsiConsole.WriteLine();
    }
}
