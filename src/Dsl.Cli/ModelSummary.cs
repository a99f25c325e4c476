using System.Globalization;
using Dsl.Compiler.Emit;
using Dsl.Compiler.Semantics;
using Dsl.Runtime;
using Spectre.Console;

namespace Dsl.Cli;

/// <summary>torchinfo-style per-layer table of a bound model.</summary>
public static class ModelSummary
{
    public sealed record Row(string Layer, string Name, string OutputShape, long Parameters, long Flops, long ActivationBytes)
    {
        public bool IsGroup { get; init; }
    }

    public sealed record Table(string Model, string InputShape, IReadOnlyList<Row> Rows, long Parameters, long Buffers, long Flops, long ActivationBytes)
    {
        /// <summary>Floats per sample of the generated class's arena (training and inference regions, placed by live range).</summary>
        public long ArenaFloats { get; init; }

        /// <summary>Floats per sample the training regions would take without reuse.</summary>
        public long UnsharedFloats { get; init; }

        /// <summary>Floats per sample that Forward keeps for Backward (live across the gap between the calls).</summary>
        public long KeptFloats { get; init; }
    }

    public static Table Build(BoundModel model)
    {
        // The compiler builds the rows and the runtime formats them, as for a generated class's Summary(): one text for both.
        var rows = SummaryRows.Build(model).Select(r => new Row(r.Layer, r.Name, r.OutputShape, r.Parameters, r.Flops, r.ActivationBytes) { IsGroup = r.IsGroup }).ToList();
        long buffers = model.Tensors.Where(t => !t.IsParameter).Sum(t => (long)t.ElementCount);
        var memory = Dsl.Compiler.Lowering.Lowerer.Lower(model).Memory;
        return new Table(model.Name, "[B, " + string.Join(", ", model.InputShape) + "]", rows, model.ParameterCount, buffers,
            model.Flops, rows.Sum(r => r.ActivationBytes))
        {
            ArenaFloats = memory.PerSample,
            UnsharedFloats = memory.Regions.Where(r => !r.IsInference).Sum(r => (long)r.Length),
            KeptFloats = memory.Regions.Where(r => r.IsKept).Sum(r => (long)r.Length),
        };
    }

    private static LayerSummary ToRuntime(Row r) => new(r.Layer, r.Name, r.OutputShape, r.Parameters, r.Flops, r.ActivationBytes) { IsGroup = r.IsGroup };

    private static IEnumerable<string> Totals(Table t) => ModelSummaryFormat.Totals(t.Parameters, t.Buffers, t.Flops, t.ActivationBytes);

    /// <summary>
    /// The summary as JSON, for tools: one object per model (an array when several are shown) with the model's name,
    /// shapes, parameter and buffer counts, FLOPs, its <c>state_dict</c> (key, shape, dtype <c>F32</c> or <c>I64</c>,
    /// in PyTorch's order) and its layers.
    /// </summary>
    public static void WriteJson(IReadOnlyList<BoundModel> models, TextWriter writer)
    {
        using var stream = new MemoryStream();
        using (var json = new System.Text.Json.Utf8JsonWriter(stream, new System.Text.Json.JsonWriterOptions { Indented = true }))
        {
            if (models.Count != 1) json.WriteStartArray();
            foreach (var model in models) WriteModel(json, model);
            if (models.Count != 1) json.WriteEndArray();
        }

        writer.WriteLine(System.Text.Encoding.UTF8.GetString(stream.ToArray()));
    }

    private static void WriteModel(System.Text.Json.Utf8JsonWriter json, BoundModel model)
    {
        var table = Build(model);
        json.WriteStartObject();
        json.WriteString("model", model.Name);
        if (model.Namespace is { } ns) json.WriteString("namespace", ns);
        WriteShape(json, "input", model.InputShape);
        WriteShape(json, "output", model.OutputShape);
        json.WriteNumber("parameters", model.ParameterCount);
        json.WriteNumber("buffers", table.Buffers);
        json.WriteNumber("flops", model.Flops);
        json.WriteNumber("arena_floats_per_sample", table.ArenaFloats);
        json.WriteNumber("kept_for_backward_floats_per_sample", table.KeptFloats);
        json.WriteStartArray("state_dict");
        foreach (var tensor in model.Tensors)
        {
            json.WriteStartObject();
            json.WriteString("key", tensor.Name);
            WriteShape(json, "shape", tensor.Shape);
            json.WriteString("dtype", tensor.Role == TensorRole.NumBatchesTracked ? "I64" : "F32");
            json.WriteEndObject();
        }

        json.WriteEndArray();
        json.WriteStartArray("layers");
        foreach (var layer in model.Layers)
        {
            json.WriteStartObject();
            json.WriteString("name", layer.Name);
            json.WriteString("kind", layer.KindName);
            json.WriteString("source", layer.Source);
            WriteShape(json, "output", layer.OutputShape);
            json.WriteNumber("parameters", layer.ParameterCount);
            json.WriteNumber("flops", layer.Flops);
            json.WriteEndObject();
        }

        json.WriteEndArray();
        if (model.Modules is { } root && root.Children.Any(c => c.Kind is ModuleKind.Block or ModuleKind.Group))
        {
            json.WriteStartArray("modules");
            foreach (var child in root.Children) WriteModule(json, child);
            json.WriteEndArray();
        }

        json.WriteEndObject();
    }

    /// <summary>The hierarchy: each block use or group with its totals and children, each layer by name.</summary>
    private static void WriteModule(System.Text.Json.Utf8JsonWriter json, ModuleNode module)
    {
        json.WriteStartObject();
        json.WriteString("name", module.Path);
        json.WriteString("kind", module.Kind switch
        {
            ModuleKind.Block => "block",
            ModuleKind.Group => "group",
            ModuleKind.Merge => "merge",
            _ => "layer",
        });
        json.WriteString("type", module.TypeName);
        if (module.Arguments is { } arguments) json.WriteString("arguments", arguments);
        json.WriteNumber("parameters", module.ParameterCount);
        if (module.Op is null)
        {
            json.WriteStartArray("children");
            foreach (var child in module.Children) WriteModule(json, child);
            json.WriteEndArray();
        }

        json.WriteEndObject();
    }

    private static void WriteShape(System.Text.Json.Utf8JsonWriter json, string name, IReadOnlyList<int> shape)
    {
        json.WriteStartArray(name);
        foreach (int d in shape) json.WriteNumberValue(d);
        json.WriteEndArray();
    }

    /// <summary>
    /// The memory the generated class plans per sample: its arena, what the same regions would take without reuse, and
    /// what Forward keeps for Backward. Printed by <c>nnc summary</c> after the table (a generated class's Summary() has
    /// the table alone).
    /// </summary>
    public static string ArenaLine(Table t) => string.Create(CultureInfo.InvariantCulture,
        $"Arena per sample: {Size(t.ArenaFloats)} planned from live ranges (training and inference; {Size(t.UnsharedFloats)} without reuse), {Size(t.KeptFloats)} of it kept from Forward for Backward");

    private static string Size(long floats)
    {
        long bytes = 4 * floats;
        return bytes < 1024 ? $"{bytes} B" : bytes < 1024 * 1024 ? string.Create(CultureInfo.InvariantCulture, $"{bytes / 1024.0:0.0} KiB") : string.Create(CultureInfo.InvariantCulture, $"{bytes / (1024.0 * 1024):0.00} MiB");
    }

    /// <summary>Fixed-width text for pipes and logs: <see cref="ModelSummaryFormat.Plain"/>, as a generated class's Summary(), then <see cref="ArenaLine"/>.</summary>
    public static void WritePlain(Table table, TextWriter writer)
    {
        writer.Write(ModelSummaryFormat.Plain(table.Model, table.InputShape, table.Rows.Select(ToRuntime).ToList(), table.Parameters, table.Buffers, table.Flops)
            .Replace("\n", writer.NewLine, StringComparison.Ordinal));
        writer.WriteLine(ArenaLine(table));
        writer.WriteLine();
    }

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
        AnsiConsole.MarkupLine(Markup.Escape(ArenaLine(table)));
        AnsiConsole.WriteLine();
    }
}
