using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using Dsl.Compiler.Diagnostics;
using Dsl.Compiler.Ops;
using Dsl.Compiler.Syntax;
using Dsl.Compiler.Text;

namespace Dsl.Compiler.Semantics
{
    /// <summary>
    /// Resolves layer names and arguments and infers every shape with PyTorch's rules. A model
    /// binds only when it has no error; after the first shape error in a chain, later layers
    /// still have their arguments checked but not their shapes, so one mistake yields one error.
    /// </summary>
    public sealed partial class Binder
    {
        /// <summary>
        /// The most floats a model may hold per sample in activations, or in parameters: 2^29 (2 GiB of
        /// float32). Generated code indexes with <c>int</c>, and its arena is one array.
        /// </summary>
        public const long MaxElements = 1L << 29;

        private readonly List<NnDiagnostic> _diagnostics = new();
        private string _text = "";

        /// <summary>The text a span covers, on one line.</summary>
        private string TextOf(SourceSpan span)
        {
            int start = Math.Min(span.Start, _text.Length);
            int length = Math.Min(span.Length, _text.Length - start);
            return length <= 0 ? "" : System.Text.RegularExpressions.Regex.Replace(_text.Substring(start, length), @"\s+", " ");
        }

        private Binder()
        {
        }

        public static (IReadOnlyList<BoundModel> Models, IReadOnlyList<NnDiagnostic> Diagnostics) Bind(FileSyntax file, string? defaultNamespace, string text = "")
        {
            var binder = new Binder { _text = text };
            var models = binder.BindFile(file, defaultNamespace);
            return (models, binder._diagnostics);
        }

        private List<BoundModel> BindFile(FileSyntax file, string? defaultNamespace)
        {
            string? ns = defaultNamespace;
            if (file.Namespace is not null)
            {
                foreach (var part in file.Namespace)
                {
                    if (CSharpNames.IsKeyword(part.Text) || part.Text == "global")
                        Report(DiagnosticDescriptors.InvalidName, part.Span, $"'{part.Text}' is a C# keyword and cannot be part of a namespace");
                }

                ns = string.Join(".", file.Namespace.Select(p => p.Text));
            }

            DeclareBlocks(file);
            var models = new List<BoundModel>();
            var seen = new Dictionary<string, Identifier>(StringComparer.Ordinal);
            foreach (var model in file.Models)
            {
                if (seen.TryGetValue(model.Name.Text, out var first))
                {
                    Report(DiagnosticDescriptors.DuplicateModel, model.Name.Span,
                        $"model '{model.Name.Text}' is already declared at ({first.Span.Line},{first.Span.Column}); give each model its own name");
                    continue;
                }
                else
                {
                    seen.Add(model.Name.Text, model.Name);
                }

                var bound = BindModel(model, ns);
                if (bound is not null) models.Add(bound);
            }

            return models;
        }

        private BoundModel? BindModel(ModelSyntax model, string? ns)
        {
            int errorsBefore = ErrorCount;
            if (CSharpNames.IsKeyword(model.Name.Text))
            {
                Report(DiagnosticDescriptors.InvalidName, model.Name.Span,
                    $"'{model.Name.Text}' is a C# keyword and cannot name a model (it becomes a class); choose another name");
            }
            else if (CSharpNames.ModelNameProblem(model.Name.Text, ns) is { } problem)
            {
                Report(DiagnosticDescriptors.InvalidName, model.Name.Span, problem);
            }

            IReadOnlyList<int>? shape = BindInputShape(model);
            var (graph, modules) = BindModelBody(model, shape);
            if (ErrorCount != errorsBefore || graph is null) return null;
            long activations = graph.Values.Sum(v => (long)v.Length);
            long parameters = graph.Nodes.Sum(n => n.Op.ParameterCount);
            if (activations > MaxElements || parameters > MaxElements)
            {
                Report(DiagnosticDescriptors.TooLarge, model.Name.Span, activations > MaxElements
                    ? $"model '{model.Name.Text}' keeps {activations} activation values per sample for training, more than the {MaxElements} (2 GiB of float32) it can hold"
                    : $"model '{model.Name.Text}' has {parameters} parameters, more than the {MaxElements} (2 GiB of float32) it can hold");
                return null;
            }

            var bound = new BoundModel(model.Name.Text, ns, graph, model, modules);
            foreach (var node in graph.Nodes)
            {
                foreach (var finding in node.Op.Lint(new LintContext(graph, node))) Add(finding);
            }

            return bound;
        }

        private IReadOnlyList<int>? BindInputShape(ModelSyntax model)
        {
            if (model.InputShape.Count is < 1 or > 3)
            {
                Report(DiagnosticDescriptors.InvalidInputShape, model.InputSpan,
                    $"the input shape {Text(model.InputShape)} must have 1 to 3 dimensions: [features], [channels, length] or [channels, height, width] (batch excluded)");
                return null;
            }

            var dims = new List<int>();
            foreach (var dim in model.InputShape)
            {
                if (!TryInteger(dim, out int value)) return null;
                if (value < 1)
                {
                    Report(DiagnosticDescriptors.InvalidInputShape, dim.Span, $"input dimension {dim.Text} must be at least 1");
                    return null;
                }

                dims.Add(value);
            }

            long elements = dims.Aggregate(1L, (a, b) => a * b);
            if (elements > MaxElements)
            {
                Report(DiagnosticDescriptors.TooLarge, model.InputSpan,
                    $"the input {Shapes.Text(dims)} has {elements} values per sample, more than the {MaxElements} (2 GiB of float32) a model can hold");
                return null;
            }

            return dims;
        }

        private static string Text(IReadOnlyList<ValueSyntax> dims) => "[" + string.Join(", ", dims.Select(d => d.Text)) + "]";

        /// <summary>Matches arguments to parameters; returns those that converted, so each can still be range-checked.</summary>
        private Dictionary<string, BoundArgument> BindArguments(OpDefinition signature, LayerSyntax layer, out bool ok, bool convert = true)
        {
            var result = new Dictionary<string, BoundArgument>(StringComparer.Ordinal);
            ok = true;
            bool seenNamed = false;
            int positional = 0;
            foreach (var argument in layer.Arguments)
            {
                ParameterSpec? spec;
                if (argument.Name is null)
                {
                    if (seenNamed)
                    {
                        ReportText(DiagnosticDescriptors.PositionalAfterNamed, argument.Span,
                            $"a positional argument cannot follow named arguments in '{signature.Name}'; name it or move it first");
                        ok = false;
                        continue;
                    }

                    if (positional >= signature.Parameters.Count)
                    {
                        ReportText(DiagnosticDescriptors.TooManyPositional, argument.Span, signature.Parameters.Count == 0
                            ? $"'{signature.Name}' takes no arguments"
                            : $"'{signature.Name}' takes at most {signature.Parameters.Count} positional arguments ({string.Join(", ", signature.Parameters.Select(p => p.Name))})");
                        ok = false;
                        continue;
                    }

                    spec = signature.Parameters[positional++];
                }
                else
                {
                    seenNamed = true;
                    spec = signature.Find(argument.Name.Text);
                    if (spec is null)
                    {
                        var names = signature.Parameters.SelectMany(p => new[] { p.Name }.Concat(p.Aliases)).ToList();
                        string? suggestion = OpRegistry.Closest(argument.Name.Text, names);
                        string message = names.Count == 0
                            ? $"'{signature.Name}' takes no arguments"
                            : $"'{signature.Name}' has no argument '{argument.Name.Text}'" + (suggestion is null
                                ? $"; it takes {string.Join(", ", signature.Parameters.Select(p => p.Name))}"
                                : $"; did you mean '{suggestion}'?");
                        ReportText(DiagnosticDescriptors.UnknownArgument, argument.Name.Span, message);
                        ok = false;
                        continue;
                    }
                }

                if (result.TryGetValue(spec.Name, out var first))
                {
                    ReportText(DiagnosticDescriptors.RepeatedArgument, argument.Span,
                        $"argument '{spec.Name}' of '{signature.Name}' is given more than once (first at ({first.Syntax.Span.Line},{first.Syntax.Span.Column}))");
                    ok = false;
                    continue;
                }

                if (!convert)
                {
                    result.Add(spec.Name, new BoundArgument(spec, argument.Value, null));
                    continue;
                }

                if (!TryConvert(signature, spec, argument.Value, out object? value))
                {
                    ok = false;
                    continue;
                }

                result.Add(spec.Name, new BoundArgument(spec, argument.Value, value));
            }

            foreach (var spec in signature.Parameters.Where(p => p.Required && !result.ContainsKey(p.Name)))
            {
                if (!ok) break; // a misspelt argument already explains the gap
                var required = signature.Parameters.Where(p => p.Required).Select(p => p.Name);
                ReportText(DiagnosticDescriptors.MissingArgument, layer.Name.Span,
                    $"'{signature.Name}' needs '{spec.Name}' (it requires {string.Join(", ", required)}), e.g. {signature.Example}");
                ok = false;
            }

            return result;
        }

        private bool TryConvert(OpDefinition signature, ParameterSpec spec, ValueSyntax value, out object? result)
        {
            result = null;
            if (value.Kind == ValueKind.Word)
            {
                Report(DiagnosticDescriptors.WrongValueKind, value.Span, WordMessage(signature, spec, value.Text));
                return false;
            }

            string WrongKind() => $"'{spec.Name}' of '{signature.Name}' must be {spec.Describe()}, not {DescribeValue(value)}";
            switch (spec.Type)
            {
                case ParameterType.Integer:
                    if (value.Kind != ValueKind.Integer) break;
                    if (!TryInteger(value, out int integer)) return false;
                    result = integer;
                    return true;
                case ParameterType.IntegerOrPair:
                    if (value.Kind == ValueKind.Integer)
                    {
                        if (!TryInteger(value, out int single)) return false;
                        result = (single, single);
                        return true;
                    }

                    if (value.Kind == ValueKind.Pair)
                    {
                        if (value.First!.Kind != ValueKind.Integer || value.Second!.Kind != ValueKind.Integer) break;
                        if (!TryInteger(value.First, out int h) || !TryInteger(value.Second, out int w)) return false;
                        result = (h, w);
                        return true;
                    }

                    break;
                case ParameterType.Decimal:
                case ParameterType.DecimalOrNone:
                    if (value.Kind == ValueKind.None && spec.Type == ParameterType.DecimalOrNone)
                    {
                        result = null;
                        return true;
                    }

                    if (value.Kind is not (ValueKind.Integer or ValueKind.Decimal)) break;
                    if (!double.TryParse(value.Text, NumberStyles.Float, CultureInfo.InvariantCulture, out double number)
                        || double.IsInfinity(number) || double.IsNaN(number))
                    {
                        Report(DiagnosticDescriptors.NumberOutOfRange, value.Span, $"the number '{value.Text}' is out of range");
                        return false;
                    }

                    result = number;
                    return true;
                case ParameterType.Boolean:
                    if (value.Kind != ValueKind.Boolean) break;
                    result = value.BooleanValue;
                    return true;
                default:
                    throw new UnreachableException();
            }

            Report(DiagnosticDescriptors.WrongValueKind, value.Span, WrongKind());
            return false;
        }

        /// <summary>What to say about a bare word where a value belongs: most are Python spellings.</summary>
        private static string WordMessage(OpDefinition signature, ParameterSpec spec, string word)
        {
            string lower = word.ToLowerInvariant();
            if (lower is "true" or "false" or "none")
                return $"'{word}' is not a value; write '{lower}' (values are lowercase)";
            if (spec.Name == "padding" && lower is "same" or "valid")
                return $"padding '{word}' is not in v1; write the padding in pixels, e.g. padding: 1 for a 3×3 kernel (or 0 for 'valid')";
            return $"'{word}' is not a value: '{spec.Name}' of '{signature.Name}' must be {spec.Describe()}";
        }

        private static string DescribeValue(ValueSyntax value) => value.Kind switch
        {
            ValueKind.Integer => $"the integer {value.Text}",
            ValueKind.Decimal => $"the decimal {value.Text}",
            ValueKind.Boolean => value.Text,
            ValueKind.None => "none",
            ValueKind.Pair => $"the pair ({value.Text})",
            _ => value.Text,
        };

        private bool TryInteger(ValueSyntax value, out int result)
        {
            if (value.Kind != ValueKind.Integer)
            {
                Report(DiagnosticDescriptors.WrongValueKind, value.Span, $"expected an integer, not {DescribeValue(value)}");
                result = 0;
                return false;
            }

            if (!int.TryParse(value.Text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out result))
            {
                Report(DiagnosticDescriptors.NumberOutOfRange, value.Span,
                    $"the integer '{value.Text}' is out of range (it must lie within ±{int.MaxValue})");
                return false;
            }

            return true;
        }

        private int ErrorCount { get; set; }


    }
}
