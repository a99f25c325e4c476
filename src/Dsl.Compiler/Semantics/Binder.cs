using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using Dsl.Compiler.Diagnostics;
using Dsl.Compiler.Syntax;
using Dsl.Compiler.Text;

namespace Dsl.Compiler.Semantics
{
    /// <summary>
    /// Resolves layer names and arguments and infers every shape with PyTorch's rules. A model
    /// binds only when it has no error; after the first shape error in a chain, later layers
    /// still have their arguments checked but not their shapes, so one mistake yields one error.
    /// </summary>
    public sealed class Binder
    {
        /// <summary>
        /// The most floats a model may hold per sample in activations, or in parameters: 2^29 (2 GiB of
        /// float32). Generated code indexes with <c>int</c>, and its arena is one array.
        /// </summary>
        public const long MaxElements = 1L << 29;

        private readonly List<NnDiagnostic> _diagnostics = new();

        private Binder()
        {
        }

        public static (IReadOnlyList<BoundModel> Models, IReadOnlyList<NnDiagnostic> Diagnostics) Bind(FileSyntax file, string? defaultNamespace)
        {
            var binder = new Binder();
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
            else if (CSharpNames.ModelNameProblem(model.Name.Text) is { } problem)
            {
                Report(DiagnosticDescriptors.InvalidName, model.Name.Span, problem);
            }

            IReadOnlyList<int>? shape = BindInputShape(model);
            var layers = new List<BoundLayer>();
            var aliases = new Dictionary<string, Identifier>(StringComparer.Ordinal);
            for (int index = 0; index < model.Layers.Count; index++)
            {
                var syntax = model.Layers[index];
                if (syntax.Alias is { } alias)
                {
                    if (aliases.TryGetValue(alias.Text, out var first))
                    {
                        Report(DiagnosticDescriptors.DuplicateLayerName, alias.Span,
                            $"layer name '{alias.Text}' is already used at ({first.Span.Line},{first.Span.Column}); state_dict names must be unique");
                    }
                    else
                    {
                        aliases.Add(alias.Text, alias);
                    }
                }

                var signature = LayerCatalog.Find(syntax.Name.Text);
                if (signature is null)
                {
                    string? suggestion = LayerCatalog.Suggest(syntax.Name.Text);
                    Report(DiagnosticDescriptors.UnknownLayer, syntax.Name.Span,
                        $"unknown layer '{syntax.Name.Text}'" + (suggestion is null ? "; see docs/language.md for the layers of v1" : $"; did you mean '{suggestion}'?"));
                    shape = null;
                    continue;
                }

                var arguments = BindArguments(signature, syntax, out bool argumentsOk);
                var attributes = BindAttributes(signature, syntax, arguments);
                if (shape is null || !argumentsOk || attributes is null)
                {
                    shape = null;
                    continue;
                }

                string name = syntax.Alias?.Text ?? index.ToString(CultureInfo.InvariantCulture);
                var previous = layers.Count > 0 ? layers[layers.Count - 1] : null;
                var layer = InferShape(signature, syntax, arguments, attributes, shape, index, name, previous);
                if (layer is null)
                {
                    shape = null;
                    continue;
                }

                layers.Add(layer);
                shape = layer.OutputShape;
            }

            if (ErrorCount != errorsBefore || shape is null) return null;
            long activations = layers.Sum(l => (long)l.OutputLength) + layers[0].InputLength;
            long parameters = layers.Sum(l => l.ParameterCount);
            if (activations > MaxElements || parameters > MaxElements)
            {
                Report(DiagnosticDescriptors.TooLarge, model.Name.Span, activations > MaxElements
                    ? $"model '{model.Name.Text}' keeps {activations} activation values per sample for training, more than the {MaxElements} (2 GiB of float32) it can hold"
                    : $"model '{model.Name.Text}' has {parameters} parameters, more than the {MaxElements} (2 GiB of float32) it can hold");
                return null;
            }

            var bound = new BoundModel(model.Name.Text, ns, layers[0].InputShape, layers, model);
            _diagnostics.AddRange(Lints.Check(bound));
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
                    $"the input {LayerNames.Shape(dims)} has {elements} values per sample, more than the {MaxElements} (2 GiB of float32) a model can hold");
                return null;
            }

            return dims;
        }

        private static string Text(IReadOnlyList<ValueSyntax> dims) => "[" + string.Join(", ", dims.Select(d => d.Text)) + "]";

        private sealed record BoundArgument(ParameterSpec Spec, ValueSyntax Syntax, object? Value);

        /// <summary>Matches arguments to parameters; returns those that converted, so each can still be range-checked.</summary>
        private Dictionary<string, BoundArgument> BindArguments(LayerSignature signature, LayerSyntax layer, out bool ok)
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
                        Report(DiagnosticDescriptors.PositionalAfterNamed, argument.Span,
                            $"a positional argument cannot follow named arguments in '{signature.Name}'; name it or move it first");
                        ok = false;
                        continue;
                    }

                    if (positional >= signature.Parameters.Count)
                    {
                        Report(DiagnosticDescriptors.TooManyPositional, argument.Span, signature.Parameters.Count == 0
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
                        string? suggestion = LayerCatalog.Closest(argument.Name.Text, names);
                        string message = names.Count == 0
                            ? $"'{signature.Name}' takes no arguments"
                            : $"'{signature.Name}' has no argument '{argument.Name.Text}'" + (suggestion is null
                                ? $"; it takes {string.Join(", ", signature.Parameters.Select(p => p.Name))}"
                                : $"; did you mean '{suggestion}'?");
                        Report(DiagnosticDescriptors.UnknownArgument, argument.Name.Span, message);
                        ok = false;
                        continue;
                    }
                }

                if (result.TryGetValue(spec.Name, out var first))
                {
                    Report(DiagnosticDescriptors.RepeatedArgument, argument.Span,
                        $"argument '{spec.Name}' of '{signature.Name}' is given more than once (first at ({first.Syntax.Span.Line},{first.Syntax.Span.Column}))");
                    ok = false;
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
                Report(DiagnosticDescriptors.MissingArgument, layer.Name.Span,
                    $"'{signature.Name}' needs '{spec.Name}' (it requires {string.Join(", ", required)}), e.g. {Example(signature)}");
                ok = false;
            }

            return result;
        }

        private static string Example(LayerSignature signature) => signature.Family switch
        {
            LayerFamily.Conv => $"{signature.Name}(1, 6, 5)",
            LayerFamily.Linear => "linear(128, 10)",
            _ => $"{signature.Name}(2)",
        };

        private bool TryConvert(LayerSignature signature, ParameterSpec spec, ValueSyntax value, out object? result)
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
            }

            Report(DiagnosticDescriptors.WrongValueKind, value.Span, WrongKind());
            return false;
        }

        /// <summary>What to say about a bare word where a value belongs: most are Python spellings.</summary>
        private static string WordMessage(LayerSignature signature, ParameterSpec spec, string word)
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

        /// <summary>Reads the arguments into attributes and checks each one's range, independently of shapes.</summary>
        private LayerAttributes? BindAttributes(LayerSignature signature, LayerSyntax layer, Dictionary<string, BoundArgument> args)
        {
            int errorsBefore = ErrorCount;
            var a = new LayerAttributes();
            string layerName = signature.Name;

            int Int(string name, int fallback, int min, string rule)
            {
                if (!args.TryGetValue(name, out var arg)) return fallback;
                int value = (int)arg.Value!;
                if (value < min) Report(DiagnosticDescriptors.ValueOutOfRange, arg.Syntax.Span, $"'{name}' of '{layerName}' must be {rule}, got {arg.Syntax.Text}");
                return value;
            }

            (int, int) Pair(string name, (int, int) fallback, int min, string rule)
            {
                if (!args.TryGetValue(name, out var arg)) return fallback;
                var value = ((int, int))arg.Value!;
                if (signature.Rank == 2 && arg.Syntax.Kind == ValueKind.Pair)
                {
                    Report(DiagnosticDescriptors.WrongValueKind, arg.Syntax.Span,
                        $"'{name}' of '{layerName}' must be a single integer (a 1-d layer has one spatial dimension), not the pair ({arg.Syntax.Text})");
                    return value;
                }

                if (value.Item1 < min || value.Item2 < min)
                {
                    string shown = arg.Syntax.Kind == ValueKind.Pair ? $"({arg.Syntax.Text})" : arg.Syntax.Text;
                    Report(DiagnosticDescriptors.ValueOutOfRange, arg.Syntax.Span, $"'{name}' of '{layerName}' must be {rule}, got {shown}");
                }

                return value;
            }

            bool Bool(string name, bool fallback) => args.TryGetValue(name, out var arg) ? (bool)arg.Value! : fallback;

            double Dec(string name, double fallback, Func<double, bool> valid, string rule)
            {
                if (!args.TryGetValue(name, out var arg) || arg.Value is null) return fallback;
                double value = (double)arg.Value;
                if (float.IsInfinity((float)value))
                {
                    Report(DiagnosticDescriptors.ValueOutOfRange, arg.Syntax.Span, $"'{name}' of '{layerName}' is {arg.Syntax.Text}, beyond the range of float32 (±3.4e38)");
                    return fallback;
                }

                if (!valid(value)) Report(DiagnosticDescriptors.ValueOutOfRange, arg.Syntax.Span, $"'{name}' of '{layerName}' must be {rule}, got {arg.Syntax.Text}");
                return value;
            }

            switch (signature.Family)
            {
                case LayerFamily.Conv:
                    a.InChannels = Int("in_channels", 0, 1, "at least 1");
                    a.OutChannels = Int("out_channels", 0, 1, "at least 1");
                    a.Kernel = Pair("kernel_size", (1, 1), 1, "at least 1");
                    a.Stride = Pair("stride", (1, 1), 1, "at least 1");
                    a.Padding = Pair("padding", (0, 0), 0, "at least 0");
                    a.Dilation = Pair("dilation", (1, 1), 1, "at least 1");
                    a.Groups = Int("groups", 1, 1, "at least 1");
                    a.Bias = Bool("bias", true);
                    if (ErrorCount == errorsBefore && args.TryGetValue("groups", out var groups)
                        && (a.InChannels % a.Groups != 0 || a.OutChannels % a.Groups != 0))
                    {
                        Report(DiagnosticDescriptors.GroupsDoNotDivide, groups.Syntax.Span,
                            $"groups {a.Groups} must divide both in_channels {a.InChannels} and out_channels {a.OutChannels}");
                    }

                    break;
                case LayerFamily.BatchNorm:
                    a.NumFeatures = Int("num_features", 0, 1, "at least 1");
                    a.Eps = Dec("eps", 1e-5, v => (float)v > 0, "greater than 0 in float32 (at least 1.4e-45)");
                    a.Momentum = args.TryGetValue("momentum", out var momentum) && momentum.Value is null
                        ? null
                        : Dec("momentum", 0.1, v => v >= 0 && v <= 1, "between 0 and 1 (or none)");
                    a.Affine = Bool("affine", true);
                    a.TrackRunningStats = Bool("track_running_stats", true);
                    a.Frozen = Bool("frozen", false);
                    if (a.Frozen && !a.TrackRunningStats)
                    {
                        Report(DiagnosticDescriptors.FrozenWithoutStatistics, args["frozen"].Syntax.Span,
                            "'frozen: true' needs running statistics to normalize with, but 'track_running_stats: false' keeps none; drop one of the two");
                    }

                    break;
                case LayerFamily.Linear:
                    a.InFeatures = Int("in_features", 0, 1, "at least 1");
                    a.OutFeatures = Int("out_features", 0, 1, "at least 1");
                    a.Bias = Bool("bias", true);
                    break;
                case LayerFamily.Activation:
                    a.NegativeSlope = Dec("negative_slope", 0.01, v => true, "a number");
                    break;
                case LayerFamily.MaxPool:
                case LayerFamily.AvgPool:
                    a.Kernel = Pair("kernel_size", (1, 1), 1, "at least 1");
                    a.Stride = Pair("stride", a.Kernel, 1, "at least 1");
                    a.Padding = Pair("padding", (0, 0), 0, "at least 0");
                    a.Dilation = Pair("dilation", (1, 1), 1, "at least 1");
                    a.CeilMode = Bool("ceil_mode", false);
                    a.CountIncludePad = Bool("count_include_pad", true);
                    if (ErrorCount == errorsBefore && args.TryGetValue("padding", out var padding))
                    {
                        // PyTorch's pool2d_shape_check: "pad should be smaller than or equal to half of kernel size".
                        int limitH = a.Kernel.H / 2;
                        int limitW = a.Kernel.W / 2;
                        if (a.Padding.H > limitH || a.Padding.W > limitW)
                        {
                            Report(DiagnosticDescriptors.PoolPaddingTooLarge, padding.Syntax.Span,
                                $"padding of '{layerName}' must be at most half the kernel: at most {Show((limitH, limitW))} for kernel {Show(a.Kernel)}, got {Show(a.Padding)}");
                        }
                    }

                    break;
                case LayerFamily.Dropout:
                    a.P = Dec("p", 0.5, v => v >= 0 && v < 1, "at least 0 and less than 1");
                    break;
            }

            return ErrorCount == errorsBefore ? a : null;
        }

        private static string Show((int H, int W) pair) => pair.H == pair.W ? pair.H.ToString(CultureInfo.InvariantCulture) : $"({pair.H}, {pair.W})";

        private BoundLayer? InferShape(LayerSignature signature, LayerSyntax syntax, Dictionary<string, BoundArgument> args,
            LayerAttributes a, IReadOnlyList<int> input, int index, string name, BoundLayer? previous)
        {
            int rank = input.Count;
            string shown = LayerNames.Shape(input);
            var values = args.ToDictionary(kv => kv.Key, kv => kv.Value.Syntax);
            SourceSpan ArgumentSpan(string key) => args.TryGetValue(key, out var arg) ? arg.Syntax.Span : syntax.Name.Span;

            bool RankIs(params int[] allowed)
            {
                if (Array.IndexOf(allowed, rank) >= 0) return true;
                string expected = string.Join(" or ", allowed.Select(r => r switch { 1 => "[F]", 2 => "[C, L]", _ => "[C, H, W]" }));
                string fix = rank > 1 && allowed.Contains(1) && !allowed.Contains(rank) ? "; insert 'flatten' before it" : "";
                Report(DiagnosticDescriptors.WrongRank, syntax.Name.Span, $"'{syntax.Name.Text}' takes an input of shape {expected} but receives {shown}{fix}");
                return false;
            }

            BoundLayer? Make(LayerKind kind, IReadOnlyList<int> output, IReadOnlyList<TensorSpec> tensors, long flops)
            {
                long outputElements = output.Aggregate(1L, (x, y) => x * y);
                var largest = tensors.OrderByDescending(t => t.Shape.Aggregate(1L, (x, y) => x * y)).FirstOrDefault();
                long tensorElements = largest?.Shape.Aggregate(1L, (x, y) => x * y) ?? 0;
                if (outputElements > MaxElements || tensorElements > MaxElements)
                {
                    string what = outputElements > MaxElements
                        ? $"produces {outputElements} values per sample ({LayerNames.Shape(output)})"
                        : $"has a {largest!.LocalName} of {tensorElements} values ({LayerNames.Shape(largest.Shape)})";
                    Report(DiagnosticDescriptors.TooLarge, syntax.Name.Span,
                        $"'{LayerNames.Of(kind)}' {what}, more than the {MaxElements} (2 GiB of float32) a model can hold");
                    return null;
                }

                return new BoundLayer(index, name, kind, syntax, a, input, output, tensors, flops) { ArgumentValues = values };
            }

            long inputLength = input.Aggregate(1L, (x, y) => x * y);
            if (rank == 2 && signature.Rank is null && signature.Family is LayerFamily.Conv or LayerFamily.MaxPool or LayerFamily.AvgPool)
            {
                // conv, maxpool and avgpool become 1-d layers on [C, L]: a pair has no second dimension to apply to.
                var pair = args.Values.FirstOrDefault(arg => arg.Syntax.Kind == ValueKind.Pair);
                if (pair is not null)
                {
                    Report(DiagnosticDescriptors.WrongValueKind, pair.Syntax.Span,
                        $"'{pair.Spec.Name}' of '{syntax.Name.Text}' must be a single integer on a [C, L] input (a 1-d layer has one spatial dimension), not the pair ({pair.Syntax.Text})");
                    return null;
                }
            }

            switch (signature.Family)
            {
                case LayerFamily.Conv:
                {
                    if (!RankIs(signature.Rank is { } r ? new[] { r } : new[] { 2, 3 })) return null;
                    var kind = rank == 2 ? LayerKind.Conv1d : LayerKind.Conv2d;
                    if (a.InChannels != input[0])
                    {
                        Report(DiagnosticDescriptors.ChannelMismatch, ArgumentSpan("in_channels"),
                            $"'{LayerNames.Of(kind)}' expects {a.InChannels} input channels but receives {input[0]} ({Origin(previous, input)}); write {signature.Name}({input[0]}, {a.OutChannels}, ...)");
                        return null;
                    }

                    var spatial = SpatialOutput(kind, syntax, args, input, a.Kernel, a.Stride, a.Padding, a.Dilation, ceilMode: false);
                    if (spatial is null) return null;
                    var output = new[] { a.OutChannels }.Concat(spatial).ToArray();
                    int perGroup = a.InChannels / a.Groups;
                    var weightShape = rank == 2
                        ? new[] { a.OutChannels, perGroup, a.Kernel.W }
                        : new[] { a.OutChannels, perGroup, a.Kernel.H, a.Kernel.W };
                    var tensors = new List<TensorSpec> { new($"{name}.weight", "weight", weightShape, TensorRole.Weight) };
                    if (a.Bias) tensors.Add(new TensorSpec($"{name}.bias", "bias", new[] { a.OutChannels }, TensorRole.Bias));
                    long outputLength = output.Aggregate(1L, (x, y) => x * y);
                    long kernelArea = rank == 2 ? a.Kernel.W : (long)a.Kernel.H * a.Kernel.W;
                    long flops = 2 * outputLength * perGroup * kernelArea + (a.Bias ? outputLength : 0);
                    return Make(kind, output, tensors, flops);
                }

                case LayerFamily.BatchNorm:
                {
                    if (!RankIs(signature.Rank == 2 ? new[] { 1, 2 } : signature.Rank == 3 ? new[] { 3 } : new[] { 1, 2, 3 })) return null;
                    var kind = rank == 3 ? LayerKind.BatchNorm2d : LayerKind.BatchNorm1d;
                    int channels = input[0];
                    if (args.ContainsKey("num_features") && a.NumFeatures != channels)
                    {
                        Report(DiagnosticDescriptors.NumFeaturesMismatch, ArgumentSpan("num_features"),
                            $"'{LayerNames.Of(kind)}' declares num_features {a.NumFeatures} but its input has {channels} {(rank == 1 ? "features" : "channels")} ({Origin(previous, input)}); write {signature.Name}({channels}) or leave it out");
                        return null;
                    }

                    a.NumFeatures = channels;
                    var tensors = new List<TensorSpec>();
                    if (a.Affine)
                    {
                        tensors.Add(new TensorSpec($"{name}.weight", "weight", new[] { channels }, TensorRole.Weight));
                        tensors.Add(new TensorSpec($"{name}.bias", "bias", new[] { channels }, TensorRole.Bias));
                    }

                    if (a.TrackRunningStats)
                    {
                        tensors.Add(new TensorSpec($"{name}.running_mean", "running_mean", new[] { channels }, TensorRole.RunningMean));
                        tensors.Add(new TensorSpec($"{name}.running_var", "running_var", new[] { channels }, TensorRole.RunningVar));
                        tensors.Add(new TensorSpec($"{name}.num_batches_tracked", "num_batches_tracked", Array.Empty<int>(), TensorRole.NumBatchesTracked));
                    }

                    return Make(kind, input, tensors, 2 * inputLength);
                }

                case LayerFamily.Linear:
                {
                    if (!RankIs(1)) return null;
                    if (a.InFeatures != input[0])
                    {
                        string message = previous is { Kind: LayerKind.Flatten } flatten && flatten.InputShape.Count > 1
                            ? $"'flatten' yields {input[0]} features ({string.Join("×", flatten.InputShape)}) but 'linear' expects {a.InFeatures}; write linear({input[0]}, {a.OutFeatures})"
                            : $"'linear' expects {a.InFeatures} input features but receives {input[0]} ({Origin(previous, input)}); write linear({input[0]}, {a.OutFeatures})";
                        Report(DiagnosticDescriptors.FeatureMismatch, ArgumentSpan("in_features"), message);
                        return null;
                    }

                    var tensors = new List<TensorSpec> { new($"{name}.weight", "weight", new[] { a.OutFeatures, a.InFeatures }, TensorRole.Weight) };
                    if (a.Bias) tensors.Add(new TensorSpec($"{name}.bias", "bias", new[] { a.OutFeatures }, TensorRole.Bias));
                    long flops = 2L * a.InFeatures * a.OutFeatures + (a.Bias ? a.OutFeatures : 0);
                    return Make(LayerKind.Linear, new[] { a.OutFeatures }, tensors, flops);
                }

                case LayerFamily.Activation:
                {
                    var kind = signature.Name switch
                    {
                        "relu" => LayerKind.Relu,
                        "sigmoid" => LayerKind.Sigmoid,
                        "tanh" => LayerKind.Tanh,
                        _ => LayerKind.LeakyRelu,
                    };
                    return Make(kind, input, Array.Empty<TensorSpec>(), inputLength);
                }

                case LayerFamily.MaxPool:
                case LayerFamily.AvgPool:
                {
                    if (!RankIs(signature.Rank is { } r ? new[] { r } : new[] { 2, 3 })) return null;
                    bool max = signature.Family == LayerFamily.MaxPool;
                    var kind = max ? (rank == 2 ? LayerKind.MaxPool1d : LayerKind.MaxPool2d) : (rank == 2 ? LayerKind.AvgPool1d : LayerKind.AvgPool2d);
                    if (rank == 2)
                    {
                        // A 1-d layer works on [C, L] as a 2-d one on [C, 1, L].
                        a.Kernel = (1, a.Kernel.W);
                        a.Stride = (1, a.Stride.W);
                        a.Padding = (0, a.Padding.W);
                        a.Dilation = (1, a.Dilation.W);
                    }

                    var spatial = SpatialOutput(kind, syntax, args, input, a.Kernel, a.Stride, a.Padding, a.Dilation, a.CeilMode);
                    if (spatial is null) return null;
                    var output = new[] { input[0] }.Concat(spatial).ToArray();
                    long outputLength = output.Aggregate(1L, (x, y) => x * y);
                    return Make(kind, output, Array.Empty<TensorSpec>(), outputLength * a.Kernel.H * a.Kernel.W);
                }

                case LayerFamily.GlobalAvgPool:
                    if (!RankIs(2, 3)) return null;
                    return Make(LayerKind.GlobalAvgPool, new[] { input[0] }, Array.Empty<TensorSpec>(), inputLength);

                case LayerFamily.Flatten:
                    return Make(LayerKind.Flatten, new[] { (int)inputLength }, Array.Empty<TensorSpec>(), 0); // inputLength ≤ MaxElements

                case LayerFamily.Dropout:
                    return Make(LayerKind.Dropout, input, Array.Empty<TensorSpec>(), 0);

                case LayerFamily.Softmax:
                    if (!RankIs(1)) return null;
                    return Make(signature.Name == "softmax" ? LayerKind.Softmax : LayerKind.LogSoftmax, input, Array.Empty<TensorSpec>(), 3 * inputLength);
            }

            return null;
        }

        private static string Origin(BoundLayer? previous, IReadOnlyList<int> input) =>
            previous is null ? $"the model input {LayerNames.Shape(input)}" : $"the output of '{previous.KindName}', {LayerNames.Shape(input)}";

        /// <summary>PyTorch's output size per spatial dimension; reports a size that reaches zero.</summary>
        private int[]? SpatialOutput(LayerKind kind, LayerSyntax syntax, Dictionary<string, BoundArgument> args, IReadOnlyList<int> input,
            (int H, int W) kernel, (int H, int W) stride, (int H, int W) padding, (int H, int W) dilation, bool ceilMode)
        {
            bool oneD = input.Count == 2;
            var dims = oneD
                ? new[] { ("length", input[1], kernel.W, stride.W, padding.W, dilation.W) }
                : new[] { ("height", input[1], kernel.H, stride.H, padding.H, dilation.H), ("width", input[2], kernel.W, stride.W, padding.W, dilation.W) };
            var output = new int[dims.Length];
            for (int i = 0; i < dims.Length; i++)
            {
                var (label, size, k, s, p, d) = dims[i];
                long size64 = OutputSize(size, k, s, p, d, ceilMode);
                if (size64 < 1)
                {
                    var span = args.TryGetValue("kernel_size", out var kernelArg) ? kernelArg.Syntax.Span : syntax.Name.Span;
                    Report(DiagnosticDescriptors.SpatialSizeNotPositive, span,
                        $"'{LayerNames.Of(kind)}' reduces the {label} to {size64}: an input {label} of {size} is too small for kernel {k} (stride {s}, padding {p}, dilation {d}); use a smaller kernel, more padding or a larger input");
                    return null;
                }

                if (size64 > MaxElements)
                {
                    Report(DiagnosticDescriptors.TooLarge, syntax.Name.Span,
                        $"'{LayerNames.Of(kind)}' makes the {label} {size64}, more than the {MaxElements} a model can hold");
                    return null;
                }

                output[i] = (int)size64;
            }

            return output;
        }

        /// <summary>
        /// <c>floor((in + 2p − d(k−1) − 1) / s) + 1</c>, or with ceil_mode the ceiling, dropping a
        /// last window that would start in the right padding (PyTorch's pooling_output_shape).
        /// </summary>
        internal static long OutputSize(long size, long k, long s, long p, long d, bool ceilMode)
        {
            // PyTorch: div_rtn(in + 2p − d(k−1) − 1 + (ceil_mode ? s − 1 : 0), s) + 1, rounding toward −∞.
            long numerator = size + 2 * p - d * (k - 1) - 1 + (ceilMode ? s - 1 : 0);
            long output = (numerator >= 0 ? numerator / s : -((-numerator + s - 1) / s)) + 1;
            if (ceilMode && (output - 1) * s >= size + p) output--;
            return output;
        }

        private int ErrorCount { get; set; }

        private void Report(DiagnosticDescriptor descriptor, SourceSpan span, string message)
        {
            var diagnostic = descriptor.At(span, message);
            if (diagnostic.IsError) ErrorCount++;
            _diagnostics.Add(diagnostic);
        }
    }
}
