using System;
using System.Collections.Generic;
using System.Linq;
using Dsl.Compiler.Diagnostics;
using Dsl.Compiler.Syntax;
using Dsl.Compiler.Text;

namespace Dsl.Compiler.Semantics
{
    public enum ParameterType
    {
        Integer,
        Decimal,
        Boolean,
        IntegerOrPair,
        DecimalOrNone,
    }

    /// <summary>One argument a layer takes: its PyTorch name, short forms, type and whether it is required.</summary>
    public sealed record ParameterSpec(string Name, ParameterType Type, bool Required, params string[] Aliases)
    {
        public string Describe() => Type switch
        {
            ParameterType.Integer => "an integer",
            ParameterType.Decimal => "a number",
            ParameterType.Boolean => "true or false",
            ParameterType.IntegerOrPair => "an integer or a pair (h, w)",
            ParameterType.DecimalOrNone => "a number or none",
            _ => throw new UnreachableException(),
        };
    }

    /// <summary>An argument matched to its parameter and converted (null for <c>none</c>).</summary>
    public sealed record BoundArgument(ParameterSpec Spec, ValueSyntax Syntax, object? Value);

    /// <summary>
    /// A layer's converted arguments, read by its op with the defaults and ranges it owns: each getter reports a
    /// value out of range at the value's span and returns it anyway, so every argument is checked in one pass.
    /// </summary>
    public sealed class ArgumentReader
    {
        private readonly IReadOnlyDictionary<string, BoundArgument> _arguments;
        private readonly string _layer;
        private readonly int? _rank;
        private readonly Action<DiagnosticDescriptor, SourceSpan, string> _report;

        internal ArgumentReader(IReadOnlyDictionary<string, BoundArgument> arguments, string layer, int? rank, Action<DiagnosticDescriptor, SourceSpan, string> report)
        {
            _arguments = arguments;
            _layer = layer;
            _rank = rank;
            _report = report;
            Values = arguments.ToDictionary(kv => kv.Key, kv => kv.Value.Syntax);
        }

        /// <summary>The value written for each argument, by PyTorch name.</summary>
        public IReadOnlyDictionary<string, ValueSyntax> Values { get; }

        public bool Has(string name) => _arguments.ContainsKey(name);

        public BoundArgument? this[string name] => _arguments.TryGetValue(name, out var argument) ? argument : null;

        public IEnumerable<BoundArgument> All => _arguments.Values;

        public SourceSpan? SpanOf(string name) => _arguments.TryGetValue(name, out var argument) ? argument.Syntax.Span : null;

        public int Int(string name, int fallback, int min, string rule)
        {
            if (!_arguments.TryGetValue(name, out var arg)) return fallback;
            int value = (int)arg.Value!;
            if (value < min) _report(DiagnosticDescriptors.ValueOutOfRange, arg.Syntax.Span, $"'{name}' of '{_layer}' must be {rule}, got {arg.Syntax.Text}");
            return value;
        }

        public (int H, int W) Pair(string name, (int, int) fallback, int min, string rule)
        {
            if (!_arguments.TryGetValue(name, out var arg)) return fallback;
            var value = ((int, int))arg.Value!;
            if (_rank == 2 && arg.Syntax.Kind == ValueKind.Pair)
            {
                _report(DiagnosticDescriptors.WrongValueKind, arg.Syntax.Span,
                    $"'{name}' of '{_layer}' must be a single integer (a 1-d layer has one spatial dimension), not the pair ({arg.Syntax.Text})");
                return value;
            }

            if (value.Item1 < min || value.Item2 < min)
            {
                string shown = arg.Syntax.Kind == ValueKind.Pair ? $"({arg.Syntax.Text})" : arg.Syntax.Text;
                _report(DiagnosticDescriptors.ValueOutOfRange, arg.Syntax.Span, $"'{name}' of '{_layer}' must be {rule}, got {shown}");
            }

            return value;
        }

        public bool Bool(string name, bool fallback) => _arguments.TryGetValue(name, out var arg) ? (bool)arg.Value! : fallback;

        public double Decimal(string name, double fallback, Func<double, bool> valid, string rule)
        {
            if (!_arguments.TryGetValue(name, out var arg) || arg.Value is null) return fallback;
            double value = (double)arg.Value;
            if (float.IsInfinity((float)value))
            {
                _report(DiagnosticDescriptors.ValueOutOfRange, arg.Syntax.Span, $"'{name}' of '{_layer}' is {arg.Syntax.Text}, beyond the range of float32 (±3.4e38)");
                return fallback;
            }

            if (!valid(value)) _report(DiagnosticDescriptors.ValueOutOfRange, arg.Syntax.Span, $"'{name}' of '{_layer}' must be {rule}, got {arg.Syntax.Text}");
            return value;
        }

        /// <summary>Whether the argument was written as <c>none</c>.</summary>
        public bool IsNone(string name) => _arguments.TryGetValue(name, out var arg) && arg.Value is null;
    }
}
