using System.Globalization;
using Dsl.Compiler.Emit;
using Dsl.Compiler.Semantics;
using Dsl.Runtime;
using Spectre.Console;

namespace Dsl.Cli;

/// <summary>torchinfo-style per-layer table of a bound model.</summary>
public static class ModelSummary
{
    public sealed record Row(string Layer, string Name, string OutputShape, long Parameters, long Flops, long ActivationBytes);

    public sealed record Table(string Model, string InputShape, IReadOnlyList<Row> Rows, long Parameters, long Buffers, long Flops, long ActivationBytes);

    public static Table Build(BoundModel model)
    {
        // The compiler builds the rows and the runtime formats them, as for a generated class's Summary(): one text for both.
        var rows = SummaryRows.Build(model).Select(r => new Row(r.Layer, r.Name, r.OutputShape, r.Parameters, r.Flops, r.ActivationBytes)).ToList();
        long buffers = model.Tensors.Where(t => !t.IsParameter).Sum(t => (long)t.ElementCount);
        return new Table(model.Name, "[B, " + string.Join(", ", model.InputShape) + "]", rows, model.ParameterCount, buffers,
            model.Flops, rows.Sum(r => r.ActivationBytes));
    }

    private static LayerSummary ToRuntime(Row r) => new(r.Layer, r.Name, r.OutputShape, r.Parameters, r.Flops, r.ActivationBytes);

    private static IEnumerable<string> Totals(Table t) => ModelSummaryFormat.Totals(t.Parameters, t.Buffers, t.Flops, t.ActivationBytes);

    /// <summary>Fixed-width text for pipes and logs: <see cref="ModelSummaryFormat.Plain"/>, as a generated class's Summary().</summary>
    public static void WritePlain(Table table, TextWriter writer) =>
        writer.Write(ModelSummaryFormat.Plain(table.Model, table.InputShape, table.Rows.Select(ToRuntime).ToList(), table.Parameters, table.Buffers, table.Flops)
            .Replace("\n", writer.NewLine, StringComparison.Ordinal));

    /// <summary>A Spectre.Console table for a terminal.</summary>
    public static void WriteRich(Table table)
    {
        var grid = new Spectre.Console.Table().Border(TableBorder.Rounded)
            .Title($"[bold]{Markup.Escape(table.Model)}[/] input {Markup.Escape(table.InputShape)}");
        foreach (var (header, index) in ModelSummaryFormat.Header.Select((h, i) => (h, i)))
            grid.AddColumn(index >= 3 ? new TableColumn(header).RightAligned() : new TableColumn(header));
        foreach (var row in table.Rows) grid.AddRow(ModelSummaryFormat.Cells(ToRuntime(row)).Select(Markup.Escape).ToArray());
        AnsiConsole.Write(grid);
        foreach (var line in Totals(table)) AnsiConsole.MarkupLine(Markup.Escape(line));
        AnsiConsole.WriteLine();
    }
}
