using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using Dsl.Compiler.Diagnostics;
using Dsl.Compiler.Graph;
using Dsl.Compiler.Ops;
using Dsl.Compiler.Syntax;
using Dsl.Compiler.Text;

namespace Dsl.Compiler.Semantics
{
    /// <summary>
    /// The graph language's half of the binder: bodies of statements, values and merges, groups, repetition and block
    /// uses, built into a <see cref="DataflowGraph"/> with PyTorch's <c>state_dict</c> names.
    /// </summary>
    /// <remarks>
    /// Each block is checked once where it is declared (names, children, statement structure, the calls it makes: what
    /// does not depend on how it is used), then bound per use with the use's arguments and input shape. An error of a
    /// use (a shape, an argument's value) is reported at the use, with the block's arguments in the message and the
    /// layer inside the block as a secondary location; an error of the block's own text is reported once, in the block.
    /// </remarks>
    public sealed partial class Binder
    {
        /// <summary>A value while binding: its graph value and shape, unknown (null) after an error.</summary>
        private sealed record BoundValue(Value? Graph, IReadOnlyList<int>? Shape, Op? Producer)
        {
            public static readonly BoundValue Unknown = new(null, null, null);
            public bool IsKnown => Graph is not null;
        }

        /// <summary>A name bound by <c>name = chain;</c>.</summary>
        private sealed class NameBinding
        {
            public NameBinding(Identifier name, BoundValue value)
            {
                Name = name;
                Value = value;
            }

            public Identifier Name { get; }
            public BoundValue Value { get; }
            public bool Used { get; set; }
        }

        /// <summary>One use of a block being bound: its call, its arguments (substituted), its path.</summary>
        private sealed class BlockFrame
        {
            public BlockFrame(BlockSyntax block, LayerSyntax call, IReadOnlyDictionary<string, ValueSyntax> arguments, BlockFrame? outer, string path)
            {
                Block = block;
                Call = call;
                Arguments = arguments;
                Outer = outer;
                Path = path;
            }

            public BlockSyntax Block { get; }
            public LayerSyntax Call { get; }
            public IReadOnlyDictionary<string, ValueSyntax> Arguments { get; }
            public BlockFrame? Outer { get; }
            public string Path { get; }

            /// <summary><c>BasicBlock(inplanes: 16, planes: 32, stride: 1)</c>.</summary>
            public string Describe() =>
                $"{Block.Name.Text}({string.Join(", ", Block.Parameters.Select(p => $"{p.Name.Text}: {ValueText(Arguments[p.Name.Text])}"))})";

            public bool Uses(BlockSyntax block) => Block == block || (Outer?.Uses(block) ?? false);
        }

        /// <summary>A body being bound: the model's, a block use's or a group's.</summary>
        private sealed class Scope
        {
            public Scope(string prefix, BoundValue input, BlockFrame? frame, ModuleNode.Builder module, bool isGroup)
            {
                Prefix = prefix;
                Input = input;
                Frame = frame;
                Module = module;
                IsGroup = isGroup;
            }

            public string Prefix { get; }
            public BoundValue Input { get; }
            public BlockFrame? Frame { get; }
            public ModuleNode.Builder Module { get; }
            public bool IsGroup { get; }
            public Dictionary<string, NameBinding> Names { get; } = new(StringComparer.Ordinal);

            /// <summary>Names bound anywhere in the body, to tell "used before it is bound" from "bound nowhere".</summary>
            public Dictionary<string, Identifier> Targets { get; } = new(StringComparer.Ordinal);

            public Dictionary<string, Identifier> ChildNames { get; } = new(StringComparer.Ordinal);
            public Dictionary<string, int> MergeCounts { get; } = new(StringComparer.Ordinal);
            public int NextChild { get; set; }
        }

        private DataflowGraph.Builder? _graph;
        private Dictionary<string, BlockSyntax> _blocks = new(StringComparer.Ordinal);
        private readonly HashSet<BlockSyntax> _brokenBlocks = new();
        private readonly HashSet<BlockSyntax> _inCycle = new();

        /// <summary>The spans (starts) of block-parameter references, which take the use's values.</summary>
        private readonly HashSet<int> _substituted = new();

        /// <summary>Whether errors of a body's own text are reported in this pass (not in a block's per-use pass).</summary>
        private bool _reportText = true;

        /// <summary>Whether ops are bound (not in a block's declaration pass, which checks only its text).</summary>
        private bool _bindOps = true;

        private BlockFrame? _frame;

        /// <summary>The block whose text the declaration pass is checking.</summary>
        private BlockSyntax? _declaring;
        private int _nodes;
        private bool _tooLarge;

        // ---- Blocks, once, where declared ----

        private void DeclareBlocks(FileSyntax file)
        {
            _blocks = new Dictionary<string, BlockSyntax>(StringComparer.Ordinal);
            foreach (var block in file.Blocks)
            {
                if (_blocks.TryGetValue(block.Name.Text, out var first))
                {
                    ReportText(DiagnosticDescriptors.InvalidBlock, block.Name.Span,
                        $"block '{block.Name.Text}' is already declared at ({first.Name.Span.Line},{first.Name.Span.Column}); give each block its own name");
                    _brokenBlocks.Add(block);
                    continue;
                }

                _blocks.Add(block.Name.Text, block);
                if (!char.IsUpper(block.Name.Text[0]))
                {
                    ReportText(DiagnosticDescriptors.InvalidBlock, block.Name.Span,
                        $"block names start with an upper-case letter (layer names are lower-case, so the two never collide); write '{char.ToUpperInvariant(block.Name.Text[0])}{block.Name.Text.Substring(1)}'");
                }

                if (file.Models.FirstOrDefault(m => m.Name.Text == block.Name.Text) is { } model)
                {
                    ReportText(DiagnosticDescriptors.InvalidBlock, block.Name.Span,
                        $"'{block.Name.Text}' names both a model at ({model.Name.Span.Line},{model.Name.Span.Column}) and this block; give the block another name");
                }

                var parameters = new Dictionary<string, Identifier>(StringComparer.Ordinal);
                foreach (var parameter in block.Parameters)
                {
                    string name = parameter.Name.Text;
                    if (parameters.TryGetValue(name, out var earlier))
                    {
                        ReportText(DiagnosticDescriptors.InvalidBlock, parameter.Name.Span,
                            $"parameter '{name}' of block '{block.Name.Text}' is already declared at ({earlier.Span.Line},{earlier.Span.Column})");
                    }
                    else if (name == "input")
                    {
                        ReportText(DiagnosticDescriptors.InvalidBlock, parameter.Name.Span,
                            "'input' is the value that reaches the block and cannot name a parameter; choose another name (e.g. in_channels)");
                    }
                    else
                    {
                        parameters.Add(name, parameter.Name);
                    }

                    if (parameter.Default is { Kind: ValueKind.Word } word)
                    {
                        ReportText(DiagnosticDescriptors.WrongValueKind, word.Span,
                            $"the default of '{name}' must be a number, a pair, true, false or none, not '{word.Text}'");
                    }
                }

                foreach (var later in block.Parameters.SkipWhile(p => p.Default is null).Where(p => p.Default is null))
                {
                    ReportText(DiagnosticDescriptors.InvalidBlock, later.Name.Span,
                        $"parameter '{later.Name.Text}' has no default but follows one that has; give it a default or move it before '{block.Parameters.First(p => p.Default is not null).Name.Text}'");
                }

                foreach (var reference in ParameterReferences(block)) _substituted.Add(reference.Span.Start);
            }

            // One error per cycle: at the call that closes it, seen from the first of its blocks in the file.
            foreach (var block in file.Blocks)
            {
                if (!_inCycle.Contains(block)) CheckRecursion(block);
            }

            // The text of every block, checked once: names, children, statements, the calls it makes.
            foreach (var block in file.Blocks.Where(b => _blocks.TryGetValue(b.Name.Text, out var declared) && declared == b))
            {
                int before = ErrorCount;
                _bindOps = false;
                _frame = null;
                _declaring = block;
                var scope = new Scope("", BoundValue.Unknown, null, new ModuleNode.Builder("", "", ModuleKind.Block, block.Name.Text, block.Span), isGroup: false);
                BindBody(block.Body, scope, block);
                _bindOps = true;
                _declaring = null;
                if (ErrorCount != before) _brokenBlocks.Add(block);
            }
        }

        /// <summary>The words of a block's body that name its parameters (argument values and repetition counts).</summary>
        private static IEnumerable<ValueSyntax> ParameterReferences(BlockSyntax block)
        {
            var names = new HashSet<string>(block.Parameters.Select(p => p.Name.Text), StringComparer.Ordinal);
            foreach (var layer in block.Body.AllLayers)
            {
                foreach (var value in layer.Arguments.Select(a => a.Value).Append(layer.Repeat))
                {
                    if (value is { Kind: ValueKind.Word } && names.Contains(value.Text)) yield return value;
                }
            }

            foreach (var group in Groups(block.Body))
            {
                if (group.Repeat is { Kind: ValueKind.Word } count && names.Contains(count.Text)) yield return count;
            }
        }

        private static IEnumerable<GroupSyntax> Groups(BodySyntax body)
        {
            static IEnumerable<GroupSyntax> Of(ChainSyntax chain) =>
                chain.Items.OfType<GroupSyntax>().SelectMany(g => new[] { g }.Concat(Of(g.Chain)));
            return body.Statements.SelectMany(s => Of(s.Chain));
        }

        /// <summary>Reports a block that uses itself, directly or not, at the call that closes the cycle.</summary>
        private void CheckRecursion(BlockSyntax start)
        {
            var path = new List<(BlockSyntax Block, LayerSyntax? Call)> { (start, null) };
            var done = new HashSet<BlockSyntax>();

            bool Visit(BlockSyntax block)
            {
                foreach (var call in block.Body.AllLayers.Where(l => IsBlockName(l.Name.Text)))
                {
                    if (!_blocks.TryGetValue(call.Name.Text, out var callee) || done.Contains(callee)) continue;
                    if (callee == start)
                    {
                        string cycle = string.Join(" → ", path.Select(p => p.Block.Name.Text).Append(start.Name.Text));
                        ReportText(DiagnosticDescriptors.RecursiveBlock, call.Name.Span,
                            $"block '{start.Name.Text}' uses itself ({cycle}): a block cannot contain itself; repeat it instead, e.g. {start.Name.Text}(...) * 2");
                        foreach (var (member, _) in path)
                        {
                            _brokenBlocks.Add(member);
                            _inCycle.Add(member);
                        }

                        return true;
                    }

                    if (path.Any(p => p.Block == callee)) continue;
                    path.Add((callee, call));
                    bool found = Visit(callee);
                    path.RemoveAt(path.Count - 1);
                    if (found) return true;
                    done.Add(callee);
                }

                return false;
            }

            Visit(start);
        }

        private static bool IsBlockName(string name) => name.Length > 0 && char.IsUpper(name[0]);

        // ---- Bodies ----

        /// <summary>A model's graph from its body; null (with diagnostics) when anything fails.</summary>
        private (DataflowGraph? Graph, ModuleNode? Modules) BindModelBody(ModelSyntax model, IReadOnlyList<int>? inputShape)
        {
            _graph = inputShape is null ? null : new DataflowGraph.Builder(inputShape);
            _frame = null;
            _nodes = 0;
            _tooLarge = false;
            var input = _graph is null ? BoundValue.Unknown : new BoundValue(_graph.Input, inputShape, null);
            var module = new ModuleNode.Builder("", "", ModuleKind.Model, model.Name.Text, model.Span);
            var output = BindBody(model.Body, new Scope("", input, null, module, isGroup: false), null);
            var builder = _graph;
            _graph = null;
            if (!output.IsKnown || builder is null) return (null, null);
            var graph = builder.Build(output.Graph!);
            if (output.Graph == graph.Input)
            {
                ReportText(DiagnosticDescriptors.MisplacedStatement, model.Name.Span,
                    $"model '{model.Name.Text}' computes nothing: its output is its input; end its body with a layer");
                return (null, null);
            }

            return Prune(graph, module);
        }

        /// <summary>
        /// Drops the nodes whose value never reaches the output (behind an unused name, NN2008): they would be computed
        /// for nothing and have no gradient. Their layers leave the hierarchy and the state_dict too.
        /// </summary>
        private static (DataflowGraph, ModuleNode) Prune(DataflowGraph graph, ModuleNode.Builder module)
        {
            var live = new HashSet<Node>();
            var pending = new Stack<Value>();
            pending.Push(graph.Output);
            while (pending.Count > 0)
            {
                var value = pending.Pop();
                if (value.Producer is not { } node || !live.Add(node)) continue;
                foreach (var input in node.Inputs) pending.Push(input);
            }

            if (live.Count == graph.Nodes.Count) return (graph, module.Build());
            var rebuilt = new DataflowGraph.Builder(graph.Input.Shape);
            var map = new Dictionary<Value, Value> { [graph.Input] = rebuilt.Input };
            foreach (var node in graph.Nodes.Where(live.Contains))
                map[node.Output] = rebuilt.Add(node.Op, node.Inputs.Select(v => map[v]).ToArray());
            var ops = new HashSet<Op>(live.Select(n => n.Op));
            module.RemoveWhere(b => b.Op is { } op ? !ops.Contains(op) : false);
            return (rebuilt.Build(map[graph.Output]), module.Build());
        }

        /// <summary>Binds the statements of a body; returns its output (the last statement's value).</summary>
        private BoundValue BindBody(BodySyntax body, Scope scope, BlockSyntax? block)
        {
            if (body.Statements.Count == 0)
            {
                ReportText(DiagnosticDescriptors.MisplacedStatement, body.Close,
                    $"this {(block is null ? "model" : "block")} is empty; write a chain of layers, e.g. conv(1, 8, 3) -> relu");
                return BoundValue.Unknown;
            }

            foreach (var statement in body.Statements)
            {
                if (statement.Target is { } target && !scope.Targets.ContainsKey(target.Text)) scope.Targets.Add(target.Text, target);
            }

            BoundValue output = BoundValue.Unknown;
            for (int i = 0; i < body.Statements.Count; i++)
            {
                var statement = body.Statements[i];
                bool last = i == body.Statements.Count - 1;
                var value = BindChain(statement.Chain, scope);
                if (last)
                {
                    output = value;
                    if (statement.Target is { } named)
                    {
                        ReportText(DiagnosticDescriptors.MisplacedStatement, named.Span,
                            $"the last statement is the body's output: write it without '{named.Text} =' and without ';'");
                    }
                    else if (statement.Terminator is { } semicolon)
                    {
                        ReportText(DiagnosticDescriptors.MisplacedStatement, semicolon,
                            "the last statement is the body's output: remove this ';'");
                    }
                }
                else if (statement.Target is null)
                {
                    ReportText(DiagnosticDescriptors.MisplacedStatement, statement.Chain.Span,
                        "this chain's value is never used: bind it with 'name = ...;' and use the name, or make it the body's last statement (its output)");
                }

                if (statement.Target is { } name) Bind(scope, name, value, used: last);
            }

            foreach (var binding in scope.Names.Values.Where(b => !b.Used))
            {
                ReportText(DiagnosticDescriptors.UnusedValue, binding.Name.Span,
                    $"'{binding.Name.Text}' is bound but never used, so what computes only it is left out of the model (not run, no parameters); use it (e.g. add({binding.Name.Text}, input)) or remove the statement");
            }

            return output;
        }

        private void Bind(Scope scope, Identifier name, BoundValue value, bool used)
        {
            string text = name.Text;
            if (scope.Names.TryGetValue(text, out var first))
            {
                ReportText(DiagnosticDescriptors.InvalidBinding, name.Span,
                    $"'{text}' is already bound at ({first.Name.Span.Line},{first.Name.Span.Column}); a name is bound once: choose another name");
                return;
            }

            string? problem = text == "input" ? "'input' is the value that reaches the body and cannot be bound again; choose another name"
                : OpRegistry.Find(text) is not null ? $"'{text}' is a layer and cannot name a value; choose another name (e.g. {text}_out)"
                : text is "add" or "concat" ? $"'{text}' is a merge and cannot name a value; choose another name (e.g. sum or merged)"
                : null;
            if (problem is not null) ReportText(DiagnosticDescriptors.InvalidBinding, name.Span, problem);
            scope.Names.Add(text, new NameBinding(name, value) { Used = used || problem is not null });
        }

        /// <summary>A chain: its start (an item consuming the body's input, or a value), then each item consuming the one before.</summary>
        private BoundValue BindChain(ChainSyntax chain, Scope scope)
        {
            var first = chain.Items[0];
            BoundValue current;
            if (first is MergeItemSyntax merge)
            {
                current = scope.IsGroup ? ValueInGroup(merge.Span) : BindMerge(merge.Merge, scope);
            }
            else if (first is LayerSyntax { IsBareName: true } bare && IsValueName(bare.Name.Text, scope))
            {
                current = scope.IsGroup ? ValueInGroup(bare.Span) : Resolve(bare.Name, scope);
            }
            else
            {
                current = BindItem(first, scope.Input, scope);
            }

            foreach (var item in chain.Items.Skip(1))
            {
                if (item is LayerSyntax { IsBareName: true } value && IsValueName(value.Name.Text, scope))
                {
                    ReportText(DiagnosticDescriptors.MisplacedStatement, value.Span,
                        $"'{value.Name.Text}' is a value, and only a chain's start can be a value; to combine it with this chain, bind the chain (x = ...;) and write add(x, {value.Name.Text}) or concat(x, {value.Name.Text})");
                    current = BoundValue.Unknown;
                    continue;
                }

                if (item is LayerSyntax { Name.Text: "add" or "concat" } misplaced && misplaced.HasArgumentList)
                {
                    ReportText(DiagnosticDescriptors.MisplacedStatement, misplaced.Name.Span,
                        $"'{misplaced.Name.Text}' merges values and starts a chain; bind this chain (x = ...;) and write {misplaced.Name.Text}(x, ...) -> ... on its own");
                    current = BoundValue.Unknown;
                    continue;
                }

                current = BindItem(item, current, scope);
            }

            return current;
        }

        private BoundValue ValueInGroup(SourceSpan span)
        {
            ReportText(DiagnosticDescriptors.MisplacedStatement, span,
                "a group is a sequence of layers (nn.Sequential): it starts with a layer, not a value; write the merge before the group and chain the group after it");
            return BoundValue.Unknown;
        }

        private static bool IsValueName(string name, Scope scope) =>
            name == "input" || scope.Names.ContainsKey(name) || (scope.Targets.ContainsKey(name) && OpRegistry.Find(name) is null);

        /// <summary>A name where a value belongs: <c>input</c> or a name bound before.</summary>
        private BoundValue Resolve(Identifier name, Scope scope)
        {
            if (name.Text == "input") return scope.Input;
            if (scope.Names.TryGetValue(name.Text, out var binding))
            {
                binding.Used = true;
                return binding.Value;
            }

            if (scope.Targets.TryGetValue(name.Text, out var later))
            {
                ReportText(DiagnosticDescriptors.UnknownValue, name.Span,
                    $"'{name.Text}' is used before it is bound (at ({later.Span.Line},{later.Span.Column})); move that statement before this one");
            }
            else
            {
                var known = new[] { "input" }.Concat(scope.Names.Keys).ToList();
                string? suggestion = OpRegistry.Closest(name.Text, known);
                ReportText(DiagnosticDescriptors.UnknownValue, name.Span,
                    $"unknown value '{name.Text}'" + (suggestion is not null ? $"; did you mean '{suggestion}'?" : $"; the values here are {string.Join(", ", known)}"));
            }

            return BoundValue.Unknown;
        }

        /// <summary><c>add(...)</c> or <c>concat(...)</c>: checks its arguments and shapes, adds the merge node.</summary>
        private BoundValue BindMerge(MergeSyntax merge, Scope scope)
        {
            var arguments = merge.Arguments.Select(a => a is MergeSyntax inner ? BindMerge(inner, scope) : Resolve(((NameRefSyntax)a).Name, scope)).ToList();
            string kind = merge.Kind.Text;
            if (merge.Arguments.Count < 2)
            {
                ReportText(DiagnosticDescriptors.MergeArity, merge.Span, merge.Arguments.Count == 0
                    ? $"'{kind}' needs at least two values, e.g. {kind}(out, input)"
                    : $"'{kind}' of one value is that value; give it at least two, e.g. {kind}({Text(merge.Arguments[0])}, input), or write {Text(merge.Arguments[0])} alone");
                return BoundValue.Unknown;
            }

            if (!_bindOps || arguments.Any(a => !a.IsKnown)) return BoundValue.Unknown;
            var shapes = arguments.Select(a => a.Shape!).ToList();
            for (int i = 1; i < shapes.Count; i++)
            {
                if (kind == "add" && !shapes[i].SequenceEqual(shapes[0]))
                {
                    Report(DiagnosticDescriptors.AddShapeMismatch, merge.Arguments[i].Span,
                        $"add: '{Text(merge.Arguments[i])}' is {Shapes.Text(shapes[i])} but '{Text(merge.Arguments[0])}' is {Shapes.Text(shapes[0])}; add needs equal shapes{AddFix(shapes[0], shapes[i])}");
                    return BoundValue.Unknown;
                }

                if (kind == "concat" && (shapes[i].Count != shapes[0].Count || !shapes[i].Skip(1).SequenceEqual(shapes[0].Skip(1))))
                {
                    Report(DiagnosticDescriptors.ConcatShapeMismatch, merge.Arguments[i].Span,
                        $"concat: '{Text(merge.Arguments[i])}' is {Shapes.Text(shapes[i])} but '{Text(merge.Arguments[0])}' is {Shapes.Text(shapes[0])}; concat joins channels, so every other dimension must agree{ConcatFix(shapes[0], shapes[i])}");
                    return BoundValue.Unknown;
                }
            }

            int count = scope.MergeCounts.TryGetValue(kind, out int c) ? c : 0;
            scope.MergeCounts[kind] = count + 1;
            string name = scope.Prefix + kind + (count == 0 ? "" : "_" + count.ToString(CultureInfo.InvariantCulture));
            var syntax = new LayerSyntax(merge.Kind, Array.Empty<ArgumentSyntax>(), null, merge.Span, true);
            var op = kind == "add" ? MergeOp.Add(name, syntax, shapes, TextOf(merge.Span)) : MergeOp.Concat(name, syntax, shapes, TextOf(merge.Span));
            if (!CountNode(merge.Span)) return BoundValue.Unknown;
            scope.Module.Children.Add(new ModuleNode.Builder(name.Substring(scope.Prefix.Length), name, ModuleKind.Merge, kind, merge.Span) { Op = op });
            return new BoundValue(_graph!.Add(op, arguments.Select(a => a.Graph!).ToArray()), op.OutputShape, op);
        }

        private string Text(ValueRefSyntax value) => TextOf(value.Span);

        private static string AddFix(IReadOnlyList<int> first, IReadOnlyList<int> other)
        {
            if (first.Count != 3 || other.Count != 3) return "";
            int stride = other[1] > first[1] && other[1] % first[1] == 0 ? other[1] / first[1] : 1;
            if (other[0] == first[0] && stride == 1) return "";
            string strideText = stride > 1 ? $", stride: {stride.ToString(CultureInfo.InvariantCulture)}" : "";
            return $"; for a shortcut, project it: skip = input -> (conv({other[0].ToString(CultureInfo.InvariantCulture)}, {first[0].ToString(CultureInfo.InvariantCulture)}, 1{strideText}, bias: false) -> bn2d) as downsample";
        }

        private static string ConcatFix(IReadOnlyList<int> first, IReadOnlyList<int> other) =>
            first.Count != other.Count ? $" (and both have {first.Count} dimensions)" : "";

        /// <summary>An item consuming <paramref name="input"/>: a layer or block call (repeated or not), or a group.</summary>
        private BoundValue BindItem(ItemSyntax item, BoundValue input, Scope scope)
        {
            switch (item)
            {
                case GroupSyntax group:
                    return BindGroup(group, input, scope);
                case MergeItemSyntax merge:
                    ReportText(DiagnosticDescriptors.MisplacedStatement, merge.Merge.Kind.Span,
                        $"'{merge.Merge.Kind.Text}' merges values and starts a chain; bind this chain (x = ...;) and write {merge.Merge.Kind.Text}(x, ...) on its own");
                    return BoundValue.Unknown;
                case LayerSyntax layer:
                    if (layer.Repeat is null) return BindCall(layer, input, scope);
                    int? times = RepeatCount(layer.Repeat, scope);
                    if (layer.Alias is { } alias)
                    {
                        ReportText(DiagnosticDescriptors.InvalidRepetition, alias.Span,
                            $"a repeated item takes no 'as': its copies are named by position; remove 'as {alias.Text}' (wrap the repetition in a group to name it: ({layer.Name.Text}(...) * n) as {alias.Text})");
                    }

                    if (times is null)
                    {
                        scope.NextChild++;
                        return BoundValue.Unknown;
                    }

                    var current = input;
                    for (int i = 0; i < times.Value && !_tooLarge; i++) current = BindCall(layer, current, scope);
                    return current;
                default:
                    throw new UnreachableException();
            }
        }

        /// <summary>
        /// The <c>n</c> of <c>* n</c>: an integer of at least 1, written or a block parameter's value; null after an error.
        /// A block's declaration pass checks the text and binds one copy.
        /// </summary>
        private int? RepeatCount(ValueSyntax count, Scope scope)
        {
            var value = count;
            if (count.Kind == ValueKind.Word)
            {
                if (!_bindOps)
                {
                    if (_declaring is null || !_declaring.Parameters.Any(p => p.Name.Text == count.Text))
                    {
                        ReportText(DiagnosticDescriptors.InvalidRepetition, count.Span,
                            $"'{count.Text}' is not a parameter of block '{_declaring?.Name.Text}'; the count after '*' is an integer or a parameter");
                    }

                    return 1;
                }

                if (scope.Frame is null)
                {
                    ReportText(DiagnosticDescriptors.InvalidRepetition, count.Span,
                        $"'{count.Text}' is not a number: the count after '*' is an integer of at least 1 (in a block, it may be a parameter)");
                    return null;
                }

                value = Substitute(count, scope.Frame);
                if (value.Kind == ValueKind.Word) return null; // reported where the block is declared
            }

            bool integer = value.Kind == ValueKind.Integer && int.TryParse(value.Text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _);
            int n = integer ? int.Parse(value.Text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture) : 0;
            if (!integer || n < 1)
            {
                string message = $"the count after '*' must be an integer of at least 1, not {(value.Kind == ValueKind.Integer ? value.Text : DescribeValue(value))}";
                if (ReferenceEquals(value, count)) ReportText(DiagnosticDescriptors.InvalidRepetition, count.Span, message);
                else Report(DiagnosticDescriptors.InvalidRepetition, value.Span, message);
                return null;
            }

            if (n > ModelLimits.MaxLayers)
            {
                Report(DiagnosticDescriptors.TooLarge, value.Span,
                    $"'* {value.Text}' makes more than the {ModelLimits.MaxLayers.ToString(CultureInfo.InvariantCulture)} layers a model can hold; use fewer repetitions");
                return null;
            }

            return _bindOps ? n : 1;
        }

        /// <summary><c>( chain ) as name</c>: a child whose members are named inside it.</summary>
        private BoundValue BindGroup(GroupSyntax group, BoundValue input, Scope scope)
        {
            if (group.Repeat is not null)
            {
                ReportText(DiagnosticDescriptors.InvalidRepetition, group.RepeatOperator!.Value,
                    "a group cannot be repeated: its copies would share one name; declare a block with the group's layers and repeat the block (Name(...) * n)");
            }

            string name;
            if (group.Alias is null)
            {
                ReportText(DiagnosticDescriptors.GroupWithoutName, group.Span,
                    $"a group is a child (nn.Sequential) and needs a name: write ( ... ) as name, e.g. as layer{(scope.NextChild + 1).ToString(CultureInfo.InvariantCulture)}");
                name = scope.NextChild.ToString(CultureInfo.InvariantCulture);
            }
            else
            {
                name = group.Alias.Text;
            }

            ClaimChild(scope, group.Alias, name);
            var module = new ModuleNode.Builder(name, scope.Prefix + name, ModuleKind.Group, "Sequential", group.Span);
            scope.Module.Children.Add(module);
            var inner = new Scope(scope.Prefix + name + ".", input, scope.Frame, module, isGroup: true);
            return BindChain(group.Chain, inner);
        }

        /// <summary>Takes the next position for a child; reports an <c>as</c> name already used in this body.</summary>
        private void ClaimChild(Scope scope, Identifier? alias, string name)
        {
            scope.NextChild++;
            if (alias is null) return;
            if (scope.ChildNames.TryGetValue(name, out var first))
            {
                ReportText(DiagnosticDescriptors.DuplicateLayerName, alias.Span,
                    $"layer name '{name}' is already used at ({first.Span.Line},{first.Span.Column}); state_dict names must be unique");
                return;
            }

            scope.ChildNames.Add(name, alias);
        }

        /// <summary>One copy of a layer or block call: the next child of the body.</summary>
        private BoundValue BindCall(LayerSyntax syntax, BoundValue input, Scope scope)
        {
            if (_tooLarge) return BoundValue.Unknown; // past the limit: stop, however many copies are left
            string name = syntax.Repeat is null && syntax.Alias is { } alias ? alias.Text : scope.NextChild.ToString(CultureInfo.InvariantCulture);
            ClaimChild(scope, syntax.Repeat is null ? syntax.Alias : null, name);
            return IsBlockName(syntax.Name.Text) ? BindBlockUse(syntax, input, scope, name) : BindLayer(syntax, input, scope, name);
        }

        private BoundValue BindLayer(LayerSyntax written, BoundValue input, Scope scope, string name)
        {
            var definition = OpRegistry.Find(written.Name.Text);
            if (definition is null)
            {
                string? suggestion = OpRegistry.Suggest(written.Name.Text);
                string hint = written.Name.Text is "add" or "concat"
                    ? $"; '{written.Name.Text}' merges values: write {written.Name.Text}(a, b) where a chain starts"
                    : suggestion is null ? "; see docs/language.md for the layers" : $"; did you mean '{suggestion}'?";
                ReportText(DiagnosticDescriptors.UnknownLayer, written.Name.Span, $"unknown layer '{written.Name.Text}'" + hint);
                return BoundValue.Unknown;
            }

            var syntax = scope.Frame is null ? written : Substitute(written, scope.Frame);
            string path = scope.Prefix + name;
            if (!_bindOps)
            {
                BindArguments(definition, syntax, out _, convert: false);
                scope.Module.Children.Add(new ModuleNode.Builder(name, path, ModuleKind.Layer, written.Name.Text, written.Span));
                return BoundValue.Unknown;
            }

            var arguments = BindArguments(definition, syntax, out bool argumentsOk, convert: true);
            var reader = new ArgumentReader(arguments, definition.Name, definition.Rank, Report);
            var shape = argumentsOk ? input.Shape : null;
            var binding = new LayerBinding(definition, syntax, reader, shape, path, input.Producer, Report, () => ErrorCount)
            {
                Source = ReferenceEquals(syntax, written) ? TextOf(written.Span) : Render(syntax),
            };
            var op = definition.Bind(binding);
            if (op is null || !argumentsOk || !input.IsKnown) return BoundValue.Unknown;
            if (!CountNode(written.Span)) return BoundValue.Unknown;
            var value = _graph!.Add(op, input.Graph!);
            scope.Module.Children.Add(new ModuleNode.Builder(name, path, ModuleKind.Layer, op.KindName, written.Span) { Op = op });
            return new BoundValue(value, op.OutputShape, op);
        }

        /// <summary>
        /// Counts a node. Past <see cref="ModelLimits.MaxLayers"/> the model is refused at its name once bound
        /// (<see cref="ModelLimits"/>); a tenfold excess, which only repetition reaches, stops binding here, so nested
        /// repetitions cannot make the compiler build millions of nodes.
        /// </summary>
        private bool CountNode(SourceSpan at)
        {
            if (_tooLarge) return false;
            if (++_nodes <= 10 * ModelLimits.MaxLayers) return true;
            _tooLarge = true;
            Report(DiagnosticDescriptors.TooLarge, at,
                $"the model reaches more than {(10 * ModelLimits.MaxLayers).ToString(CultureInfo.InvariantCulture)} layers here, and a model holds at most {ModelLimits.MaxLayers.ToString(CultureInfo.InvariantCulture)} (C# allows 65,534 locals in a method); use fewer repetitions or split it into several models");
            return false;
        }

        /// <summary>A block call: its arguments matched and substituted, its body bound with the block's input.</summary>
        private BoundValue BindBlockUse(LayerSyntax call, BoundValue input, Scope scope, string name)
        {
            if (!_blocks.TryGetValue(call.Name.Text, out var block))
            {
                string? suggestion = OpRegistry.Closest(call.Name.Text, _blocks.Keys.ToList());
                string? layer = OpRegistry.Find(call.Name.Text.ToLowerInvariant()) is not null ? call.Name.Text.ToLowerInvariant() : null;
                ReportText(DiagnosticDescriptors.UnknownBlock, call.Name.Span,
                    $"unknown block '{call.Name.Text}'" + (suggestion is not null ? $"; did you mean '{suggestion}'?"
                        : layer is not null ? $"; layer names are lower-case: write '{layer}'"
                        : "; declare it with block " + call.Name.Text + "(...) { ... }"));
                return BoundValue.Unknown;
            }

            var arguments = MatchBlockArguments(block, call, scope.Frame);
            string path = scope.Prefix + name;
            var module = new ModuleNode.Builder(name, path, ModuleKind.Block, block.Name.Text, call.Span);
            scope.Module.Children.Add(module);
            if (!_bindOps || arguments is null || _brokenBlocks.Contains(block) || (scope.Frame?.Uses(block) ?? false)) return BoundValue.Unknown;

            module.Arguments = string.Join(", ", block.Parameters.Select(p => ValueText(arguments[p.Name.Text])));
            var frame = new BlockFrame(block, call, arguments, scope.Frame, path);
            var outer = _frame;
            _frame = frame;
            bool reportText = _reportText;
            _reportText = false;
            try
            {
                return BindBody(block.Body, new Scope(path + ".", input, frame, module, isGroup: false), block);
            }
            finally
            {
                _frame = outer;
                _reportText = reportText;
            }
        }

        /// <summary>
        /// Matches a call's arguments to the block's parameters (positional, then named; the defaults for the rest). The
        /// mistakes of the call's text are reported where the call is written; a value of the wrong kind (against the
        /// parameter's default) is reported per use. Returns null after any error.
        /// </summary>
        private Dictionary<string, ValueSyntax>? MatchBlockArguments(BlockSyntax block, LayerSyntax call, BlockFrame? caller)
        {
            var result = new Dictionary<string, ValueSyntax>(StringComparer.Ordinal);
            bool ok = true;
            bool seenNamed = false;
            int positional = 0;
            string signature = $"{block.Name.Text}({string.Join(", ", block.Parameters.Select(p => p.Name.Text + (p.Default is null ? "" : " = " + ValueText(p.Default))))})";
            foreach (var argument in call.Arguments)
            {
                BlockParameterSyntax? parameter;
                if (argument.Name is null)
                {
                    if (seenNamed)
                    {
                        ReportText(DiagnosticDescriptors.PositionalAfterNamed, argument.Span,
                            $"a positional argument cannot follow named arguments in '{block.Name.Text}'; name it or move it first");
                        ok = false;
                        continue;
                    }

                    if (positional >= block.Parameters.Count)
                    {
                        ReportText(DiagnosticDescriptors.TooManyPositional, argument.Span, block.Parameters.Count == 0
                            ? $"'{block.Name.Text}' takes no arguments"
                            : $"'{block.Name.Text}' takes at most {block.Parameters.Count} arguments: {signature}");
                        ok = false;
                        continue;
                    }

                    parameter = block.Parameters[positional++];
                }
                else
                {
                    seenNamed = true;
                    parameter = block.Parameters.FirstOrDefault(p => p.Name.Text == argument.Name.Text);
                    if (parameter is null)
                    {
                        string? suggestion = OpRegistry.Closest(argument.Name.Text, block.Parameters.Select(p => p.Name.Text).ToList());
                        ReportText(DiagnosticDescriptors.UnknownArgument, argument.Name.Span,
                            $"block '{block.Name.Text}' has no parameter '{argument.Name.Text}'" + (suggestion is null ? $"; it takes {signature}" : $"; did you mean '{suggestion}'?"));
                        ok = false;
                        continue;
                    }
                }

                string key = parameter.Name.Text;
                if (result.TryGetValue(key, out var earlier))
                {
                    ReportText(DiagnosticDescriptors.RepeatedArgument, argument.Span,
                        $"argument '{key}' of '{block.Name.Text}' is given more than once (first at ({earlier.Span.Line},{earlier.Span.Column}))");
                    ok = false;
                    continue;
                }

                result.Add(key, argument.Value);
            }

            foreach (var missing in block.Parameters.Where(p => p.Default is null && !result.ContainsKey(p.Name.Text)))
            {
                if (!ok) break;
                ReportText(DiagnosticDescriptors.MissingArgument, call.Name.Span,
                    $"'{block.Name.Text}' needs '{missing.Name.Text}': it takes {signature}");
                ok = false;
            }

            if (!ok || !_bindOps) return ok ? result : null;

            // Values: a caller's parameter stands for the caller's value; each must be of its default's kind.
            var values = new Dictionary<string, ValueSyntax>(StringComparer.Ordinal);
            foreach (var parameter in block.Parameters)
            {
                string key = parameter.Name.Text;
                if (!result.TryGetValue(key, out var value))
                {
                    values.Add(key, parameter.Default!);
                    continue;
                }

                value = caller is null ? value : Substitute(value, caller);
                if (value.Kind == ValueKind.Word)
                {
                    Report(DiagnosticDescriptors.WrongValueKind, value.Span,
                        $"'{value.Text}' is not a value: '{key}' of '{block.Name.Text}' takes a number, a pair, true, false or none{(caller is null ? "" : " (or a parameter of the block that uses it)")}");
                    return null;
                }

                if (parameter.Default is { } fallback && !SameKind(fallback, value))
                {
                    Report(DiagnosticDescriptors.WrongValueKind, value.Span,
                        $"'{key}' of '{block.Name.Text}' must be {KindText(fallback)} like its default {ValueText(fallback)}, not {DescribeValue(value)}");
                    return null;
                }

                values.Add(key, value);
            }

            return values;
        }

        private static bool SameKind(ValueSyntax declared, ValueSyntax given) => declared.Kind switch
        {
            ValueKind.Decimal => given.Kind is ValueKind.Integer or ValueKind.Decimal,
            ValueKind.None => true,
            _ => given.Kind == declared.Kind,
        };

        private static string KindText(ValueSyntax value) => value.Kind switch
        {
            ValueKind.Integer => "an integer",
            ValueKind.Decimal => "a number",
            ValueKind.Boolean => "true or false",
            ValueKind.Pair => "a pair",
            _ => "a value",
        };

        private static string ValueText(ValueSyntax value) => value.Kind == ValueKind.Pair ? $"({value.Text})" : value.Text;

        /// <summary>A parameter reference replaced by the use's value, at the reference's span (so errors point into the block).</summary>
        private static ValueSyntax Substitute(ValueSyntax value, BlockFrame frame)
        {
            if (value.Kind != ValueKind.Word || !frame.Arguments.TryGetValue(value.Text, out var argument)) return value;
            return argument with { Span = value.Span };
        }

        private static LayerSyntax Substitute(LayerSyntax layer, BlockFrame frame)
        {
            if (!layer.Arguments.Any(a => a.Value.Kind == ValueKind.Word && frame.Arguments.ContainsKey(a.Value.Text))) return layer;
            var arguments = layer.Arguments.Select(a => a with { Value = Substitute(a.Value, frame) }).ToList();
            return layer with { Arguments = arguments };
        }

        /// <summary>A layer with its parameters substituted, as the generated code quotes it: <c>conv(16, 32, 3, stride: 2) as conv1</c>.</summary>
        private static string Render(LayerSyntax layer)
        {
            string arguments = !layer.HasArgumentList ? ""
                : "(" + string.Join(", ", layer.Arguments.Select(a => (a.Name is null ? "" : a.Name.Text + ": ") + ValueText(a.Value))) + ")";
            return layer.Name.Text + arguments + (layer.Alias is null ? "" : " as " + layer.Alias.Text);
        }

        // ---- Reporting ----

        private readonly HashSet<(string Id, SourceSpan Span, string Message, string Related)> _reported = new();

        /// <summary>An error of a body's own text: reported in the pass that reads the text (a block's, once).</summary>
        private void ReportText(DiagnosticDescriptor descriptor, SourceSpan span, string message)
        {
            if (!_reportText) return;
            Add(descriptor.At(span, message));
        }

        private void Add(NnDiagnostic diagnostic)
        {
            // A warning about a layer of a block is the same finding at every use (its message may name the use's path): once.
            var key = diagnostic.IsError
                ? (diagnostic.Id, diagnostic.Span, diagnostic.Message, string.Join(";", diagnostic.AdditionalSpans))
                : (diagnostic.Id, diagnostic.Span, "", "");
            if (!_reported.Add(key)) return;
            if (diagnostic.IsError) ErrorCount++;
            _diagnostics.Add(diagnostic);
        }

        /// <summary>
        /// An error that depends on how the body is used. Inside a block use, it is reported at the use (the call in the
        /// model), with the block's arguments, and the layer inside the block as a secondary location; except a literal
        /// value's own mistake, the same for every use, reported once where it is written.
        /// </summary>
        private void Report(DiagnosticDescriptor descriptor, SourceSpan span, string message)
        {
            if (_frame is null)
            {
                Add(descriptor.At(span, message));
                return;
            }

            bool literal = descriptor == DiagnosticDescriptors.WrongValueKind || descriptor == DiagnosticDescriptors.NumberOutOfRange
                || descriptor == DiagnosticDescriptors.ValueOutOfRange;
            if (literal && !_substituted.Contains(span.Start) && span.Start >= _frame.Block.Span.Start && span.End <= _frame.Block.Span.End)
            {
                Add(descriptor.At(span, message));
                return;
            }

            var frames = new List<BlockFrame>();
            for (var f = _frame; f is not null; f = f.Outer) frames.Insert(0, f);
            var related = frames.Skip(1).Select(f => f.Call.Span).Append(span).ToList();
            Add(descriptor.At(frames[0].Call.Span, $"in '{_frame.Path}' = {_frame.Describe()}: {message}") with { AdditionalSpans = related });
        }
    }
}
