using System;
using System.Collections.Generic;
using System.Linq;
using Dsl.Compiler.Diagnostics;
using Dsl.Compiler.Semantics;
using Dsl.Compiler.Syntax;
using Dsl.Compiler.Text;

namespace Dsl.Compiler.Ops
{
    /// <summary>
    /// A layer name of the language (<c>conv</c>, <c>conv2d</c>, <c>bn</c>, <c>relu</c>, …): its arguments in PyTorch's
    /// positional order, and how a use of it binds into an <see cref="Op"/>. One registry (<see cref="OpRegistry"/>)
    /// lists them all; everything else the compiler knows about a layer lives in its op's file.
    /// </summary>
    public abstract class OpDefinition
    {
        protected OpDefinition(string name, IReadOnlyList<ParameterSpec> parameters)
        {
            Name = name;
            Parameters = parameters;
        }

        /// <summary>The name as written in <c>.nn</c>.</summary>
        public string Name { get; }

        public IReadOnlyList<ParameterSpec> Parameters { get; }

        /// <summary>The input rank this name fixes (<c>conv2d</c>: 3), or null when the input decides (<c>conv</c>).</summary>
        public virtual int? Rank => null;

        /// <summary>A complete use of the layer, for "e.g." in a missing-argument message.</summary>
        public virtual string Example => $"{Name}(2)";

        public ParameterSpec? Find(string name) =>
            Parameters.FirstOrDefault(p => p.Name == name || Array.IndexOf(p.Aliases, name) >= 0);

        /// <summary>
        /// Reads the arguments (reporting each out-of-range value) and, when <see cref="LayerBinding.Input"/> is known,
        /// infers the output shape with PyTorch's rules. Returns null after any error.
        /// </summary>
        public abstract Op? Bind(LayerBinding binding);
    }

    /// <summary>What the binder hands an op definition: the use's syntax, its arguments, the shape that reaches it.</summary>
    public sealed class LayerBinding
    {
        private readonly Action<DiagnosticDescriptor, SourceSpan, string> _report;

        internal LayerBinding(OpDefinition definition, LayerSyntax syntax, ArgumentReader arguments, IReadOnlyList<int>? input, string name,
            Op? previous, Action<DiagnosticDescriptor, SourceSpan, string> report, Func<int> errorCount)
        {
            Definition = definition;
            Syntax = syntax;
            Arguments = arguments;
            Input = input;
            Name = name;
            Previous = previous;
            _report = report;
            ErrorCount = errorCount;
        }

        public OpDefinition Definition { get; }
        public LayerSyntax Syntax { get; }
        public ArgumentReader Arguments { get; }

        /// <summary>The per-sample shape that reaches the layer, or null when an earlier error left it unknown.</summary>
        public IReadOnlyList<int>? Input { get; }

        /// <summary>The <c>state_dict</c> prefix: the <c>as</c> name, else the position in the chain.</summary>
        public string Name { get; }

        /// <summary>The op before this one, for messages that say where a shape came from.</summary>
        public Op? Previous { get; }

        internal Func<int> ErrorCount { get; }

        public void Report(DiagnosticDescriptor descriptor, SourceSpan span, string message) => _report(descriptor, span, message);

        /// <summary>The span of an argument as written, else the layer's name.</summary>
        public SourceSpan SpanOf(string parameter) => Arguments.SpanOf(parameter) ?? Syntax.Name.Span;

        /// <summary>"the model input [..]" or "the output of 'conv2d', [..]".</summary>
        public string Origin(IReadOnlyList<int> input) =>
            Previous is null ? $"the model input {Shapes.Text(input)}" : $"the output of '{Previous.KindName}', {Shapes.Text(input)}";

        /// <summary>Checks the input rank; reports NN1013 with a fix and returns false when it is not one of <paramref name="allowed"/>.</summary>
        public bool RankIs(IReadOnlyList<int> input, params int[] allowed)
        {
            if (Array.IndexOf(allowed, input.Count) >= 0) return true;
            string expected = string.Join(" or ", allowed.Select(r => r switch { 1 => "[F]", 2 => "[C, L]", _ => "[C, H, W]" }));
            string fix = RankedKind(Syntax.Name.Text, input.Count) is { } kind ? $"; did you mean '{kind}'?"
                : input.Count > 1 && allowed.Contains(1) && !allowed.Contains(input.Count) ? "; insert 'flatten' before it" : "";
            Report(DiagnosticDescriptors.WrongRank, Syntax.Name.Span, $"'{Syntax.Name.Text}' takes an input of shape {expected} but receives {Shapes.Text(input)}{fix}");
            return false;
        }

        /// <summary>
        /// The layer of the same family that takes an input of <paramref name="rank"/> (bn2d on [F] → bn1d, conv2d on
        /// [C, L] → conv1d, …), or null when the family has none.
        /// </summary>
        internal static string? RankedKind(string written, int rank)
        {
            string? family = written switch
            {
                "bn1d" or "bn2d" or "batchnorm1d" or "batchnorm2d" => "bn",
                "conv1d" or "conv2d" => "conv",
                "maxpool1d" or "maxpool2d" => "maxpool",
                "avgpool1d" or "avgpool2d" => "avgpool",
                _ => null,
            };
            return (family, rank) switch
            {
                ("bn", 1 or 2) => "bn1d",
                ("bn", 3) => "bn2d",
                (not null and not "bn", 2) => family + "1d",
                (not null and not "bn", 3) => family + "2d",
                _ => null,
            };
        }

        /// <summary>The common fields of every op bound here.</summary>
        public OpCore Core(string kindName, IReadOnlyList<int> input, IReadOnlyList<int> output, IReadOnlyList<TensorSpec> tensors, long flops) =>
            new(Name, kindName, Syntax, input, output, tensors, flops, Arguments.Values) { Source = Source };

        /// <summary>The layer as written, white space collapsed: what the generated code quotes over its block.</summary>
        public string? Source { get; internal set; }

        /// <summary>
        /// Refuses an op whose output or largest tensor would not fit the 2^29-float cap (<see cref="Binder.MaxElements"/>),
        /// else returns it.
        /// </summary>
        public Op? Checked(Op op)
        {
            long outputElements = Shapes.Elements(op.OutputShape);
            var largest = op.Tensors.OrderByDescending(t => Shapes.Elements(t.Shape)).FirstOrDefault();
            long tensorElements = largest is null ? 0 : Shapes.Elements(largest.Shape);
            if (outputElements <= Binder.MaxElements && tensorElements <= Binder.MaxElements) return op;
            string what = outputElements > Binder.MaxElements
                ? $"produces {outputElements} values per sample ({Shapes.Text(op.OutputShape)})"
                : $"has a {largest!.LocalName} of {tensorElements} values ({Shapes.Text(largest.Shape)})";
            Report(DiagnosticDescriptors.TooLarge, Syntax.Name.Span, $"'{op.KindName}' {what}, more than the {Binder.MaxElements} (2 GiB of float32) a model can hold");
            return null;
        }
    }

    /// <summary>The fields every bound op has, built by <see cref="LayerBinding.Core"/>.</summary>
    public sealed record OpCore(string Name, string KindName, LayerSyntax Syntax, IReadOnlyList<int> InputShape, IReadOnlyList<int> OutputShape,
        IReadOnlyList<TensorSpec> Tensors, long Flops, IReadOnlyDictionary<string, ValueSyntax> ArgumentValues)
    {
        /// <summary>The layer as written in the <c>.nn</c> file, on one line; the kind name when there is no text.</summary>
        public string? Source { get; init; }
    }

    /// <summary>Which of its forward values an op's backward reads.</summary>
    [Flags]
    public enum BackwardReads
    {
        None = 0,
        Input = 1,
        Output = 2,
    }

    /// <summary>
    /// One use of a layer, bound: its resolved arguments, shapes (per sample, batch excluded), <c>state_dict</c>
    /// tensors and FLOPs; the facts the lowering passes ask of it; its lints; and the C# it emits for Reset,
    /// Forward, Backward and Infer. Immutable.
    /// </summary>
    public abstract class Op
    {
        protected Op(OpCore core)
        {
            Name = core.Name;
            KindName = core.KindName;
            Syntax = core.Syntax;
            InputShape = core.InputShape;
            OutputShape = core.OutputShape;
            Tensors = core.Tensors;
            Flops = core.Flops;
            ArgumentValues = core.ArgumentValues;
            Source = core.Source ?? core.KindName;
        }

        /// <summary>The <c>state_dict</c> prefix: the <c>as</c> name, else the position in the chain.</summary>
        public string Name { get; }

        /// <summary>The canonical spelling, resolved by input rank: <c>conv2d</c>, <c>bn1d</c>, <c>maxpool2d</c>.</summary>
        public string KindName { get; }

        public LayerSyntax Syntax { get; }
        public IReadOnlyList<int> InputShape { get; }
        public IReadOnlyList<int> OutputShape { get; }
        public IReadOnlyList<TensorSpec> Tensors { get; }

        /// <summary>Forward floating-point operations per sample (a multiply-add counts 2).</summary>
        public long Flops { get; }

        /// <summary>The value written for each argument, by PyTorch name, so findings can point at it.</summary>
        public IReadOnlyDictionary<string, ValueSyntax> ArgumentValues { get; }

        /// <summary>The layer as written in the <c>.nn</c> file, on one line (white space collapsed).</summary>
        public string Source { get; }

        public SourceSpan Span => Syntax.Span;
        public int InputLength => Shapes.Length(InputShape);
        public int OutputLength => Shapes.Length(OutputShape);
        public long ParameterCount => Tensors.Where(t => t.IsParameter).Sum(t => (long)t.ElementCount);

        /// <summary>Channels (or features) and values per channel per sample of the input.</summary>
        public int Channels => InputShape[0];
        public int Spatial => Shapes.Length(InputShape.Skip(1).ToList());

        /// <summary>The span of an argument as written, else of the layer's name.</summary>
        public SourceSpan SpanOf(string parameter) => ArgumentValues.TryGetValue(parameter, out var value) ? value.Span : Syntax.Name.Span;

        /// <summary>
        /// The layer with every argument resolved (defaults included), in one canonical line: what the model's
        /// architecture fingerprint is made of, so that spelling and layout of the <c>.nn</c> file do not change it.
        /// </summary>
        public virtual string Describe() => KindName;

        /// <summary>A number as it appears in <see cref="Describe"/>: round-trip and culture-free.</summary>
        protected static string Number(double value) => value.ToString("R", System.Globalization.CultureInfo.InvariantCulture);

        protected static string Flag(bool value) => value ? "true" : "false";

        // ---- What the lowering passes ask ----

        /// <summary>The output is the input's memory in training and inference (flatten; dropout with p = 0).</summary>
        public virtual bool IsView => false;

        /// <summary>Passes its input on unchanged at inference (dropout).</summary>
        public virtual bool IsIdentityAtInference => IsView;

        /// <summary>The forward values its backward reads, which training must keep until then.</summary>
        public virtual BackwardReads BackwardReads => BackwardReads.None;

        /// <summary>Its backward may write dL/dx over dL/dy (element-wise layers).</summary>
        public virtual bool BackwardInPlace => false;

        /// <summary>Floats per sample it keeps from forward for backward besides values (dropout's mask).</summary>
        public virtual int MaskLength => 0;

        /// <summary>Floats per sample it keeps from forward for backward besides values: per-sample statistics (layer, group and instance norm).</summary>
        public virtual int SavedLength => 0;

        /// <summary>Ints per sample it keeps from forward for backward (max pooling's argmax).</summary>
        public virtual int IndicesLength => 0;

        /// <summary>At inference, may write its output over its input (element-wise layers).</summary>
        public virtual bool InfersInPlace => false;

        /// <summary>Runs a GEMM-family kernel that needs per-thread scratch.</summary>
        public virtual bool UsesScratch => false;

        // ---- Lints ----

        /// <summary>The warnings about this layer a careful reviewer would give, knowing its neighbours.</summary>
        public virtual IEnumerable<NnDiagnostic> Lint(LintContext context) => Array.Empty<NnDiagnostic>();

        // ---- Emission ----

        /// <summary>Initializes its parameters and buffers as PyTorch does by default.</summary>
        public virtual void EmitReset(Emit.OpEmitContext e)
        {
        }

        /// <summary>Training forward: reads <paramref name="x"/>, writes <paramref name="y"/> (span expressions).</summary>
        public abstract void EmitForward(Emit.OpEmitContext e, string x, string y);

        /// <summary>
        /// Training backward: given dL/dy, writes dL/dx (for the first layer only when the caller asked, see
        /// <see cref="Emit.OpEmitContext.Guard"/>) and its parameters' gradients.
        /// </summary>
        public abstract void EmitBackward(Emit.OpEmitContext e, string x, string y, string dy, string dx);

        /// <summary>Inference: reads h, writes the variable <paramref name="v"/> it declares.</summary>
        public abstract void EmitInfer(Emit.OpEmitContext e, string v);
    }

    /// <summary>What a lint sees around an op: its neighbours in the graph (in a chain, the layers before and after).</summary>
    public sealed class LintContext
    {
        private readonly Graph.DataflowGraph _graph;
        private readonly Graph.Node _node;

        internal LintContext(Graph.DataflowGraph graph, Graph.Node node)
        {
            _graph = graph;
            _node = node;
        }

        /// <summary>The op that produces this one's input, when it has one input (not a merge) and it is not the model input.</summary>
        public Op? Previous => _node.Inputs.Count == 1 ? _node.Input.Producer?.Op : null;

        /// <summary>The op that reads this one's output, when it is the only one.</summary>
        public Op? Next => _graph.SoleConsumer(_node.Output)?.Op;

        /// <summary>The ops this one's output reaches, in execution order.</summary>
        public IEnumerable<Op> Later
        {
            get
            {
                var reached = new HashSet<Graph.Value> { _node.Output };
                foreach (var node in _graph.Nodes.Skip(_node.Id + 1))
                {
                    if (!node.Inputs.Any(reached.Contains)) continue;
                    reached.Add(node.Output);
                    yield return node.Op;
                }
            }
        }
    }

    /// <summary>Shape arithmetic and text shared by the ops.</summary>
    public static class Shapes
    {
        public static string Text(IReadOnlyList<int> shape) => "[" + string.Join(", ", shape) + "]";

        public static long Elements(IReadOnlyList<int> shape) => shape.Aggregate(1L, (a, b) => a * b);

        /// <summary>Elements as an int: the binder caps every shape at <see cref="Binder.MaxElements"/>.</summary>
        public static int Length(IReadOnlyList<int> shape) => (int)Elements(shape);
    }
}
