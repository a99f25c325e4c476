// The rows of a model's summary table (nnc summary, and the SummaryLayers table every generated class carries).
using System.Collections.Generic;
using System.Linq;
using System.Text;
using Dsl.Compiler.Ops;
using Dsl.Compiler.Semantics;
using Dsl.Compiler.Syntax;

namespace Dsl.Compiler.Emit
{
    /// <summary>One layer's row: what <c>Dsl.Runtime.LayerSummary</c> holds, computed once for the CLI and the generator.</summary>
    public sealed record SummaryRow(string Layer, string Name, string OutputShape, long Parameters, long Flops, long ActivationBytes)
    {
        /// <summary>A block use or group: a heading with the totals of the rows indented under it.</summary>
        public bool IsGroup { get; init; }
    }

    /// <summary>Builds the rows of a model's summary table from its bound layers.</summary>
    public static class SummaryRows
    {
        /// <summary>
        /// One row per layer, in the order of the <c>.nn</c> file. In a graph model each block use and group is a heading
        /// row with its totals, and its layers are indented beneath it, two spaces per level.
        /// </summary>
        public static IReadOnlyList<SummaryRow> Build(BoundModel model)
        {
            if (model.Modules is null || !model.Modules.Children.Any(c => c.Kind is ModuleKind.Block or ModuleKind.Group))
                return model.Layers.Select(l => Row(l, "")).ToList();
            var rows = new List<SummaryRow>();
            foreach (var child in model.Modules.Children) Add(rows, child, "");
            return rows;
        }

        private static void Add(List<SummaryRow> rows, ModuleNode module, string indent)
        {
            if (module.Op is { } op)
            {
                rows.Add(Row(op, indent));
                return;
            }

            var ops = module.Ops.ToList();
            string label = module.Kind == ModuleKind.Block ? $"{module.TypeName}({module.Arguments})" : "group";
            rows.Add(new SummaryRow(indent + label, module.Path, ops.Count == 0 ? "" : Shape(ops[ops.Count - 1].OutputShape),
                module.ParameterCount, ops.Sum(o => o.Flops), 0) { IsGroup = true });
            foreach (var child in module.Children) Add(rows, child, indent + "  ");
        }

        private static SummaryRow Row(Op l, string indent) => new(
            indent + (l is MergeOp ? l.Source : l.Syntax.Name.Text == l.KindName ? Describe(l) : $"{Describe(l)} ({l.KindName})"),
            l is MergeOp ? "" : l.Name,
            Shape(l.OutputShape),
            l.ParameterCount,
            l.Flops,
            4L * l.OutputLength);

        private static string Shape(IReadOnlyList<int> shape) => "[B, " + string.Join(", ", shape) + "]";

        /// <summary>The layer as written: its name and arguments, e.g. <c>conv(1, 6, 5, stride: (2, 2))</c>.</summary>
        private static string Describe(Op layer)
        {
            var args = layer.Syntax.Arguments;
            return args.Count == 0 && !layer.Syntax.HasArgumentList
                ? layer.Syntax.Name.Text
                : layer.Syntax.Name.Text + "(" + string.Join(", ", args.Select(a => (a.Name is null ? "" : a.Name.Text + ": ") + (a.Value.Kind == ValueKind.Pair ? $"({a.Value.Text})" : a.Value.Text))) + ")";
        }
    }

    internal sealed partial class ModelEmitter
    {
        /// <summary>The constant table behind <c>CompiledModel.Summary()</c>: the rows <c>nnc summary</c> prints.</summary>
        private void EmitSummaryLayers()
        {
            Line();
            Line("/// <inheritdoc/>");
            Line($"protected override global::System.Collections.Generic.IReadOnlyList<{Runtime}.LayerSummary> SummaryLayers => s_summaryLayers;");
            Line();
            Line("// The rows of Summary() and `nnc summary`: layer as written, state_dict name, output, parameters, FLOPs, activation bytes (per sample).");
            Line($"private static readonly {Runtime}.LayerSummary[] s_summaryLayers = new {Runtime}.LayerSummary[]");
            Line("{");
            foreach (var r in SummaryRows.Build(_model))
                Line($"    new {Runtime}.LayerSummary({Quote(r.Layer)}, {Quote(r.Name)}, {Quote(r.OutputShape)}, {Int(r.Parameters)}, {Int(r.Flops)}, {Int(r.ActivationBytes)}){(r.IsGroup ? " { IsGroup = true }" : "")},");
            Line("};");
        }

        private static string Quote(string text)
        {
            var quoted = new StringBuilder("\"");
            foreach (char c in text) quoted.Append(c is '"' or '\\' ? "\\" + c : c.ToString());
            return quoted.Append('"').ToString();
        }
    }
}
