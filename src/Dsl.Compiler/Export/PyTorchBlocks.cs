using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using Dsl.Compiler.Ops;
using Dsl.Compiler.Semantics;
using Dsl.Compiler.Syntax;
using SemanticNode = Dsl.Compiler.Semantics.ModuleNode;

namespace Dsl.Compiler.Export
{
    /// <summary>
    /// The block half of the PyTorch export: one <c>nn.Module</c> class per <c>block</c> declaration, whose constructor
    /// takes the block's parameters and builds its children with the <c>.nn</c> names, and whose <c>forward</c> mirrors
    /// the block's statements; models that use blocks build them by name (<c>nn.Sequential(BasicBlock(16, 16), ...)</c>).
    /// </summary>
    /// <remarks>
    /// Every use of a block must build the same class text: arguments the block writes with a parameter are that
    /// parameter; the channels a layer infers (<c>bn2d</c> without <c>num_features</c>) are tracked symbolically through
    /// the block (a conv's <c>out_channels</c>, unchanged through normalizations, activations and pooling, summed by
    /// <c>concat</c>), else a parameter equal to them at every use, else the literal when every use agrees. A model whose
    /// blocks cannot be written so is exported with nested containers, as before, with a comment saying why.
    /// </remarks>
    public static partial class PyTorchExporter
    {
        /// <summary>Why a model cannot be written with block classes.</summary>
        private sealed class FallbackException(string reason) : Exception(reason);

        /// <summary>One use of a block: its module node and its parameters' values (literals, defaults included).</summary>
        private sealed record BlockUse(SemanticNode Node, IReadOnlyDictionary<string, ValueSyntax> Values);

        /// <summary>A sum of parameters and integers: the symbolic channel count of a value inside a block.</summary>
        private sealed record Channels(IReadOnlyList<string> Terms);

        private sealed record Observation(BlockUse Use, Channels? Symbolic, int Value);

        /// <summary>A child as the constructor builds it: a layer or block (no members), or a group (members).</summary>
        private sealed record Member(string Name, string Module, IReadOnlyList<Member>? Members)
        {
            public bool Positional => Members is not null && Members.Select((m, i) => m.Name == i.ToString(CultureInfo.InvariantCulture)).All(b => b);
        }

        /// <summary>What the export decided for a file's blocks and models.</summary>
        private sealed class BlockPlan
        {
            public BlockPlan(IReadOnlyList<BlockSyntax> blocks)
            {
                foreach (var block in blocks)
                {
                    if (!Blocks.ContainsKey(block.Name.Text)) Blocks.Add(block.Name.Text, block);
                }
            }

            public Dictionary<string, BlockSyntax> Blocks { get; } = new(StringComparer.Ordinal);
            public Dictionary<BlockSyntax, List<BlockUse>> Uses { get; } = new();
            public Dictionary<BlockSyntax, string> Failed { get; } = new();
            public Dictionary<BlockSyntax, BodyWalk> Classes { get; } = new();
            public Dictionary<(BlockSyntax, string, string), List<Observation>> Inferred { get; } = new();
            public Dictionary<(BlockSyntax, string, string), string> Decisions { get; } = new();
            public Dictionary<BoundModel, BodyWalk> Models { get; } = new();
            public Dictionary<BoundModel, string> Fallbacks { get; } = new();
            public Dictionary<BoundModel, HashSet<BlockSyntax>> Reached { get; } = new();

            public void Fail(BlockSyntax block, string reason)
            {
                if (!Failed.ContainsKey(block)) Failed.Add(block, reason);
            }
        }

        /// <summary>Plans the block classes of the models that use blocks; the others are left to the container export.</summary>
        private static BlockPlan PlanBlocks(IReadOnlyList<BoundModel> models, IReadOnlyList<BlockSyntax> blocks)
        {
            var plan = new BlockPlan(blocks);
            var users = models.Where(m => m.Modules is not null && Descendants(m.Modules).Any(n => n.Kind == ModuleKind.Block)).ToList();
            var reached = plan.Reached;
            foreach (var model in users)
            {
                var blocksOfModel = new HashSet<BlockSyntax>();
                reached[model] = blocksOfModel;
                try
                {
                    if (models.Any(m => plan.Blocks.ContainsKey(m.Name)))
                        throw new FallbackException($"a model and a block are both named '{models.First(m => plan.Blocks.ContainsKey(m.Name)).Name}'");
                    var walk = new BodyWalk(plan, null, model.Modules!, new Dictionary<string, ValueSyntax>(), collect: true, blocksOfModel);
                    walk.Walk(model.Syntax.Body);
                    var expected = model.Graph.Nodes.Where(n => n.Op is not MergeOp).Select(n => n.Op.Name).ToList();
                    if (!blocksOfModel.Any(plan.Failed.ContainsKey) && !walk.LayerPaths.SequenceEqual(expected))
                        throw new FallbackException("the block classes would not give the model's state_dict names (an exporter limitation)");
                }
                catch (FallbackException e)
                {
                    plan.Fallbacks[model] = e.Message;
                }
            }

            foreach (var entry in plan.Uses)
            {
                var block = entry.Key;
                var uses = entry.Value;
                if (plan.Failed.ContainsKey(block)) continue;
                try
                {
                    if (!IsIdentifier(block.Name.Text)) throw new FallbackException($"block {block.Name.Text} is not an ASCII Python class name");
                    foreach (var parameter in block.Parameters)
                    {
                        PythonName(parameter.Name.Text);
                        if (parameter.Default is { } value) PythonValue(value);
                    }

                    Decide(plan, block);
                    BodyWalk? first = null;
                    string? firstText = null;
                    foreach (var use in uses)
                    {
                        var walk = new BodyWalk(plan, block, use.Node, use.Values, collect: false, new HashSet<BlockSyntax>());
                        walk.Walk(block.Body);
                        string text = string.Join("\n", walk.Init) + "\n" + string.Join("\n", walk.Forward);
                        if (first is null)
                        {
                            first = walk;
                            firstText = text;
                            continue;
                        }

                        if (text != firstText)
                        {
                            var a = firstText!.Split('\n');
                            var b = text.Split('\n');
                            int i = 0;
                            while (i < Math.Min(a.Length, b.Length) && a[i] == b[i]) i++;
                            string Line(string[] lines) => i < lines.Length ? lines[i].Trim() : "(nothing)";
                            throw new FallbackException($"block {block.Name.Text} is built differently at {uses[0].Node.Path} ({Line(a)}) and at {use.Node.Path} ({Line(b)})");
                        }
                    }

                    plan.Classes[block] = first!;
                }
                catch (FallbackException e)
                {
                    plan.Fail(block, e.Message);
                }
            }

            foreach (var model in users)
            {
                if (plan.Fallbacks.ContainsKey(model)) continue;
                var failed = reached[model].Where(plan.Failed.ContainsKey).Select(b => plan.Failed[b]).FirstOrDefault();
                if (failed is not null)
                {
                    plan.Fallbacks[model] = failed;
                    continue;
                }

                var walk = new BodyWalk(plan, null, model.Modules!, new Dictionary<string, ValueSyntax>(), collect: false, new HashSet<BlockSyntax>());
                walk.Walk(model.Syntax.Body);
                plan.Models[model] = walk;
            }

            return plan;
        }

        private static IEnumerable<SemanticNode> Descendants(SemanticNode node) => node.Children.SelectMany(c => new[] { c }.Concat(Descendants(c)));

        /// <summary>Chooses the expression of every channel count the block's layers infer (see the class remarks).</summary>
        private static void Decide(BlockPlan plan, BlockSyntax block)
        {
            foreach (var entry in plan.Inferred.Where(e => e.Key.Item1 == block).OrderBy(e => e.Key.Item2, StringComparer.Ordinal).ThenBy(e => e.Key.Item3, StringComparer.Ordinal).ToList())
            {
                var (owner, path, parameter) = entry.Key;
                var observations = entry.Value;
                var candidates = new List<Channels>();
                if (observations[0].Symbolic is { } symbolic) candidates.Add(symbolic);
                candidates.AddRange(block.Parameters.Select(p => new Channels(new[] { p.Name.Text })));
                candidates.Add(new Channels(new[] { Int(observations[0].Value) }));
                var chosen = candidates.FirstOrDefault(c => observations.All(o => Evaluate(c, o.Use.Values) == o.Value));
                if (chosen is null)
                {
                    throw new FallbackException($"the {parameter} of '{path}' in block {block.Name.Text} is inferred ("
                        + string.Join(", ", observations.Select(o => $"{Int(o.Value)} at {o.Use.Node.Path}").Distinct().Take(3))
                        + "), and neither the channels before it, nor a parameter, nor one value gives it at every use; write it in the block");
                }

                plan.Decisions[(owner, path, parameter)] = Render(chosen);
            }
        }

        private static int? Evaluate(Channels channels, IReadOnlyDictionary<string, ValueSyntax> values)
        {
            long sum = 0;
            foreach (var term in channels.Terms)
            {
                if (int.TryParse(term, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int n)) sum += n;
                else if (values.TryGetValue(term, out var value) && value.Kind == ValueKind.Integer && int.TryParse(value.Text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int v)) sum += v;
                else return null;
            }

            return sum is >= int.MinValue and <= int.MaxValue ? (int)sum : null;
        }

        private static string Render(Channels channels) =>
            string.Join(" + ", channels.Terms.Select(t => char.IsDigit(t[0]) || t[0] == '-' ? t : PythonName(t)));

        /// <summary>A .nn name as a Python name: unchanged, or with '_' after a keyword or a name the generated code uses.</summary>
        private static string PythonName(string name)
        {
            if (!IsIdentifier(name)) throw new FallbackException($"'{name}' is not an ASCII Python name");
            return PythonKeywords.Contains(name) || name is "self" or "x" or "torch" or "nn" ? name + "_" : name;
        }

        /// <summary>A value of the .nn text as Python: a literal, or a block parameter's name.</summary>
        private static string PythonValue(ValueSyntax value) => value.Kind switch
        {
            ValueKind.Integer or ValueKind.Decimal => value.Text,
            ValueKind.Boolean => value.BooleanValue ? "True" : "False",
            ValueKind.None => "None",
            ValueKind.Pair => $"({PythonValue(value.First!)}, {PythonValue(value.Second!)})",
            _ => PythonName(value.Text),
        };

        private static bool MentionsParameter(ValueSyntax value) =>
            value.Kind == ValueKind.Word || (value.First is { } first && MentionsParameter(first)) || (value.Second is { } second && MentionsParameter(second));

        private static ValueSyntax Substitute(ValueSyntax value, IReadOnlyDictionary<string, ValueSyntax> values) => value.Kind switch
        {
            ValueKind.Word when values.TryGetValue(value.Text, out var bound) => bound,
            ValueKind.Pair => value with { First = Substitute(value.First!, values), Second = Substitute(value.Second!, values) },
            _ => value,
        };

        /// <summary>The parameters' values at a call (positional, named, then defaults), substituted into literals.</summary>
        private static Dictionary<string, ValueSyntax> MatchArguments(BlockSyntax block, LayerSyntax call, IReadOnlyDictionary<string, ValueSyntax> outer)
        {
            var result = new Dictionary<string, ValueSyntax>(StringComparer.Ordinal);
            int position = 0;
            foreach (var argument in call.Arguments)
            {
                string name = argument.Name?.Text ?? block.Parameters[position++].Name.Text;
                result[name] = Substitute(argument.Value, outer);
            }

            foreach (var parameter in block.Parameters)
            {
                if (!result.ContainsKey(parameter.Name.Text))
                    result[parameter.Name.Text] = parameter.Default ?? throw new FallbackException($"a use of {block.Name.Text} lacks '{parameter.Name.Text}'");
            }

            return result;
        }

        /// <summary>The written arguments of a layer by their parameter's name (<c>in</c> is <c>in_channels</c>).</summary>
        private static Dictionary<string, ValueSyntax> WrittenArguments(LayerSyntax layer)
        {
            var result = new Dictionary<string, ValueSyntax>(StringComparer.Ordinal);
            var definition = OpRegistry.Find(layer.Name.Text);
            if (definition is null) return result;
            int position = 0;
            foreach (var argument in layer.Arguments)
            {
                var parameter = argument.Name is null
                    ? position < definition.Parameters.Count ? definition.Parameters[position++] : null
                    : definition.Find(argument.Name.Text);
                if (parameter is not null) result[parameter.Name] = argument.Value;
            }

            return result;
        }

        private static bool IsInferred(Op op, string parameter) =>
            (op is BatchNormOp or InstanceNormOp && parameter == "num_features") || (op is GroupNormOp && parameter == "num_channels");

        /// <summary>
        /// One body (a model's or one use of a block) walked in source order, as the binder names its children: the
        /// constructor's lines, <c>forward</c>'s lines and the layers' paths. Collecting, it also records the block uses
        /// below it and the channel counts their layers infer.
        /// </summary>
        private sealed class BodyWalk
        {
            private readonly BlockPlan _plan;
            private readonly BlockSyntax? _block;
            private readonly SemanticNode _node;
            private readonly IReadOnlyDictionary<string, ValueSyntax> _values;
            private readonly bool _collect;
            private readonly HashSet<BlockSyntax> _reached;
            private readonly Dictionary<string, string> _names = new(StringComparer.Ordinal);
            private readonly Dictionary<string, Channels?> _channels = new(StringComparer.Ordinal);
            private readonly HashSet<string> _taken = new(StringComparer.Ordinal) { "x", "self", "torch", "nn" };
            private HashSet<string> _targets = new(StringComparer.Ordinal);
            private int _next;

            public BodyWalk(BlockPlan plan, BlockSyntax? block, SemanticNode node, IReadOnlyDictionary<string, ValueSyntax> values, bool collect, HashSet<BlockSyntax> reached)
            {
                _plan = plan;
                _block = block;
                _node = node;
                _values = values;
                _collect = collect;
                _reached = reached;
            }

            public List<string> Init { get; } = new();
            public List<string> Forward { get; } = new();
            public List<string> LayerPaths { get; } = new();

            public void Walk(BodySyntax body)
            {
                _names["input"] = "x";
                _channels["x"] = null;
                _targets = new HashSet<string>(body.Statements.Where(s => s.Target is not null).Select(s => s.Target!.Text), StringComparer.Ordinal);
                for (int s = 0; s < body.Statements.Count; s++)
                {
                    var statement = body.Statements[s];
                    bool last = s == body.Statements.Count - 1;
                    var items = statement.Chain.Items;
                    int k = 0;
                    string current = "x";
                    if (items[0] is MergeItemSyntax merge)
                    {
                        current = Merge(merge.Merge, nested: false);
                        k = 1;
                    }
                    else if (items[0] is LayerSyntax { IsBareName: true } bare && IsValue(bare.Name.Text))
                    {
                        current = _names[bare.Name.Text];
                        k = 1;
                    }

                    var channels = _channels.TryGetValue(current, out var known) ? known : MergeChannels(items[0]);
                    string target = statement.Target is { } name ? Fresh(name.Text) : Fresh("y");
                    bool applied = false;
                    for (; k < items.Count; k++)
                    {
                        foreach (var member in Members(items[k], _node, ref _next, ref channels))
                        {
                            string access = IsAttribute(member.Name) ? $"self.{member.Name}" : $"getattr(self, {Quote(member.Name)})";
                            CheckName(member.Name, member.Name);
                            Init.Add(IsAttribute(member.Name) ? $"self.{member.Name} = {Module(member, 0)}" : $"self.add_module({Quote(member.Name)}, {Module(member, 0)})");
                            Apply(member, access, current, target);
                            current = target;
                            applied = true;
                        }
                    }

                    if (statement.Target is { } bound)
                    {
                        if (!applied) Forward.Add($"{target} = {current}");
                        _names[bound.Text] = target;
                        _channels[target] = channels;
                    }

                    if (last) Forward.Add($"return {(applied || statement.Target is not null ? target : current)}");
                }
            }

            private bool IsValue(string name) => name == "input" || _names.ContainsKey(name) || (_targets.Contains(name) && OpRegistry.Find(name) is null);

            private string Fresh(string name)
            {
                string candidate = PythonName(name);
                while (!_taken.Add(candidate)) candidate += "_";
                return candidate;
            }

            private Channels? _lastMerge;

            private Channels? MergeChannels(ItemSyntax start) => start is MergeItemSyntax ? _lastMerge : _channels["x"];

            /// <summary><c>add</c> as <c>a + b</c> (in parentheses inside another <c>add</c>), <c>concat</c> as <c>torch.cat([a, b], dim=1)</c>; sets the merge's channels.</summary>
            private string Merge(MergeSyntax merge, bool nested)
            {
                var arguments = new List<string>();
                var channels = new List<Channels?>();
                foreach (var argument in merge.Arguments)
                {
                    if (argument is MergeSyntax inner)
                    {
                        arguments.Add(Merge(inner, nested: merge.Kind.Text == "add"));
                        channels.Add(_lastMerge);
                    }
                    else
                    {
                        string name = ((NameRefSyntax)argument).Name.Text;
                        string value = _names.TryGetValue(name, out var v) ? v : throw new FallbackException($"'{name}' is not bound where it is used");
                        arguments.Add(value);
                        channels.Add(_channels.TryGetValue(value, out var c) ? c : null);
                    }
                }

                if (merge.Kind.Text == "concat")
                {
                    _lastMerge = channels.All(c => c is not null) ? new Channels(channels.SelectMany(c => c!.Terms).ToList()) : null;
                    return $"torch.cat([{string.Join(", ", arguments)}], dim=1)";
                }

                _lastMerge = channels.FirstOrDefault(c => c is not null);
                string sum = string.Join(" + ", arguments);
                return nested ? $"({sum})" : sum;
            }

            /// <summary>The children one chain item makes: a layer or block call (n of them when repeated), or a group.</summary>
            private List<Member> Members(ItemSyntax item, SemanticNode parent, ref int next, ref Channels? channels)
            {
                var result = new List<Member>();
                switch (item)
                {
                    case LayerSyntax layer:
                    {
                        int copies = 1;
                        if (layer.Repeat is { } repeat)
                        {
                            if (repeat.Kind != ValueKind.Integer || !int.TryParse(repeat.Text, NumberStyles.None, CultureInfo.InvariantCulture, out copies))
                                throw new FallbackException($"'{layer.Name.Text}(...) * {repeat.Text}' repeats by a parameter, so the block's children differ between uses");
                        }

                        for (int i = 0; i < copies; i++)
                        {
                            string name = layer.Repeat is null && layer.Alias is { } alias ? alias.Text : (next).ToString(CultureInfo.InvariantCulture);
                            next++;
                            var child = Child(parent, name);
                            result.Add(new Member(name, Call(layer, child, ref channels), null));
                        }

                        return result;
                    }

                    case GroupSyntax group:
                    {
                        string name = group.Alias?.Text ?? throw new FallbackException("a group without a name");
                        next++;
                        var child = Child(parent, name);
                        int inner = 0;
                        var members = new List<Member>();
                        foreach (var member in group.Chain.Items) members.AddRange(Members(member, child, ref inner, ref channels));
                        result.Add(new Member(name, "", members));
                        return result;
                    }

                    default:
                        throw new FallbackException("a value inside a group");
                }
            }

            private static SemanticNode Child(SemanticNode parent, string name) =>
                parent.Children.FirstOrDefault(c => c.Kind != ModuleKind.Merge && c.Name == name)
                ?? throw new FallbackException($"'{(parent.Path.Length == 0 ? name : parent.Path + "." + name)}' is not where the source says (an exporter limitation)");

            /// <summary>The constructor of one layer or block call.</summary>
            private string Call(LayerSyntax layer, SemanticNode child, ref Channels? channels)
            {
                if (child.Kind == ModuleKind.Block)
                {
                    var block = _plan.Blocks.TryGetValue(layer.Name.Text, out var b) ? b : throw new FallbackException($"block {layer.Name.Text} is not declared in the file given");
                    if (!IsIdentifier(block.Name.Text)) throw new FallbackException($"block {block.Name.Text} is not an ASCII Python class name");
                    _reached.Add(block);
                    if (_collect)
                    {
                        var values = MatchArguments(block, layer, _values);
                        var use = new BlockUse(child, values);
                        if (!_plan.Uses.TryGetValue(block, out var uses)) _plan.Uses[block] = uses = new List<BlockUse>();
                        uses.Add(use);
                        try
                        {
                            var inner = new BodyWalk(_plan, block, child, values, collect: true, _reached);
                            inner.Walk(block.Body);
                            LayerPaths.AddRange(inner.LayerPaths);
                        }
                        catch (FallbackException e)
                        {
                            _plan.Fail(block, e.Message);
                        }
                    }

                    channels = null;
                    var arguments = layer.Arguments.Select(a => a.Name is null ? PythonValue(a.Value) : $"{PythonName(a.Name.Text)}={PythonValue(a.Value)}");
                    return $"{block.Name.Text}({string.Join(", ", arguments)})";
                }

                var op = child.Op ?? throw new FallbackException($"'{child.Path}' has no layer (an exporter limitation)");
                LayerPaths.Add(op.Name);
                var input = channels;
                var written = WrittenArguments(layer);
                channels = op switch
                {
                    ConvOp => Symbolic(written.TryGetValue("out_channels", out var outChannels) ? outChannels : null),
                    LinearOp => Symbolic(written.TryGetValue("out_features", out var outFeatures) ? outFeatures : null),
                    FlattenOp => null,
                    _ => channels,
                };
                if (_block is null) return LayerModule(op, null);
                string relative = child.Path.Substring(_node.Path.Length + 1);
                return LayerModule(op, (parameter, literal, include) =>
                {
                    if (written.TryGetValue(parameter, out var value)) return MentionsParameter(value) ? PythonValue(value) : include ? literal : null;
                    if (op is PoolOp && parameter == "stride") return null;
                    if (!IsInferred(op, parameter)) return include ? literal : null;
                    var key = (_block, relative, parameter);
                    if (!_collect) return _plan.Decisions[key];
                    if (!_plan.Inferred.TryGetValue(key, out var observations)) _plan.Inferred[key] = observations = new List<Observation>();
                    observations.Add(new Observation(new BlockUse(_node, _values), input, int.Parse(literal, CultureInfo.InvariantCulture)));
                    return literal;
                });
            }

            private static Channels? Symbolic(ValueSyntax? value) => value?.Kind switch
            {
                ValueKind.Integer or ValueKind.Word => new Channels(new[] { value.Text }),
                _ => null,
            };

            /// <summary>Runs a child in <c>forward</c>: a layer, block or positional group is called; a named group's members are called in turn.</summary>
            private void Apply(Member member, string access, string current, string target)
            {
                if (member.Members is null || member.Positional)
                {
                    Forward.Add($"{target} = {access}({current})");
                    return;
                }

                foreach (var inner in member.Members)
                {
                    CheckName(inner.Name, inner.Name);
                    Apply(inner, access + (IsAttribute(inner.Name) ? $".{inner.Name}" : $"[{Quote(inner.Name)}]"), current, target);
                    current = target;
                }
            }

            /// <summary>A member's constructor: its own, or its group's container, on one line when it is short.</summary>
            private static string Module(Member member, int depth)
            {
                if (member.Members is null) return member.Module;
                var items = member.Members.Select(m => (member.Positional ? "" : Quote(m.Name) + ": ") + Module(m, depth + 1)).ToList();
                string open = member.Positional ? "nn.Sequential(" : "nn.ModuleDict({";
                string close = member.Positional ? ")" : "})";
                string flat = open + string.Join(", ", items) + close;
                if (flat.Length + 4 * (depth + 2) + 24 <= 120 && !flat.Contains('\n')) return flat;
                string pad = new string(' ', 4 * (depth + 1));
                return $"{open}\n{string.Join("\n", items.Select(i => pad + i + ","))}\n{new string(' ', 4 * depth)}{close}";
            }
        }
    }
}
