using System.Collections.Generic;
using System.Linq;
using Dsl.Compiler.Text;

namespace Dsl.Compiler.Syntax
{
    /// <summary>A name as written, with its span.</summary>
    public sealed record Identifier(string Text, SourceSpan Span);

    public enum ValueKind
    {
        Integer,
        Decimal,
        Boolean,
        None,
        Pair,

        /// <summary>A bare word that is not a value (<c>True</c>, <c>same</c>): the binder reports it.</summary>
        Word,
    }

    /// <summary>
    /// An argument value. Numbers keep their text: the binder converts them, so an overflowing
    /// literal becomes a diagnostic rather than a parse failure.
    /// </summary>
    public sealed record ValueSyntax(ValueKind Kind, string Text, SourceSpan Span, ValueSyntax? First = null, ValueSyntax? Second = null)
    {
        public bool BooleanValue => Kind == ValueKind.Boolean && Text == "true";
    }

    /// <summary><c>key: value</c> or a bare value.</summary>
    public sealed record ArgumentSyntax(Identifier? Name, ValueSyntax Value)
    {
        public SourceSpan Span => Name is null
            ? Value.Span
            : new SourceSpan(Name.Span.Start, Value.Span.End - Name.Span.Start, Name.Span.Line, Name.Span.Column);
    }

    /// <summary>
    /// An item of a chain: a layer or block call (<see cref="LayerSyntax"/>) or a group (<see cref="GroupSyntax"/>), or,
    /// only where a chain starts, a value (<see cref="MergeSyntax"/>; a bare name parses as a parameterless layer and the
    /// binder decides).
    /// </summary>
    public abstract record ItemSyntax
    {
        /// <summary>The item as written, its repetition included.</summary>
        public abstract SourceSpan Span { get; }
    }

    /// <summary>
    /// <c>name(args) as alias</c>, or <c>Block(args) * n</c>: a layer (lower-case name) or block call (upper-case).
    /// <see cref="Repeat"/> is the <c>n</c> of <c>* n</c> (a number, or a word naming a block parameter).
    /// </summary>
    public sealed record LayerSyntax(Identifier Name, IReadOnlyList<ArgumentSyntax> Arguments, Identifier? Alias, SourceSpan CallSpan, bool HasArgumentList) : ItemSyntax
    {
        public ValueSyntax? Repeat { get; init; }

        /// <summary>The span of the <c>*</c>, when repeated.</summary>
        public SourceSpan? RepeatOperator { get; init; }

        /// <summary>The call and its <c>as</c> name, without the repetition: what a layer's errors and comments point at.</summary>
        public override SourceSpan Span => CallSpan;

        /// <summary>Everything written, <c>* n</c> included.</summary>
        public SourceSpan FullSpan => Repeat is null ? CallSpan : SourceSpan.Cover(CallSpan, Repeat.Span);

        /// <summary>A bare word with nothing after it (<c>relu</c>, <c>out</c>): a parameterless layer or a value, as the binder decides.</summary>
        public bool IsBareName => !HasArgumentList && Alias is null && Repeat is null;
    }

    /// <summary><c>( chain ) as name</c>: an <c>nn.Sequential</c> child. <see cref="Repeat"/> is parsed to be refused with a fix.</summary>
    public sealed record GroupSyntax(ChainSyntax Chain, Identifier? Alias, SourceSpan GroupSpan) : ItemSyntax
    {
        public ValueSyntax? Repeat { get; init; }
        public SourceSpan? RepeatOperator { get; init; }
        public override SourceSpan Span => GroupSpan;
    }

    /// <summary>A value where a chain starts or a merge argument: a name (<c>input</c>, a bound value) or a merge.</summary>
    public abstract record ValueRefSyntax
    {
        public abstract SourceSpan Span { get; }
    }

    /// <summary><c>input</c> or a bound name, as a merge argument.</summary>
    public sealed record NameRefSyntax(Identifier Name) : ValueRefSyntax
    {
        public override SourceSpan Span => Name.Span;
    }

    /// <summary><c>add(a, b, ...)</c> or <c>concat(a, b, ...)</c>.</summary>
    public sealed record MergeSyntax(Identifier Kind, IReadOnlyList<ValueRefSyntax> Arguments, SourceSpan MergeSpan) : ValueRefSyntax
    {
        public override SourceSpan Span => MergeSpan;
    }

    /// <summary>A merge standing where a chain starts.</summary>
    public sealed record MergeItemSyntax(MergeSyntax Merge) : ItemSyntax
    {
        public override SourceSpan Span => Merge.Span;
    }

    /// <summary><c>start -&gt; item -&gt; item</c>. The start is an item (it consumes the body's input) or a value.</summary>
    public sealed record ChainSyntax(IReadOnlyList<ItemSyntax> Items, SourceSpan Span);

    /// <summary><c>name = chain;</c>, or a chain alone (the body's output when it is the last statement, without <c>;</c>).</summary>
    public sealed record StatementSyntax(Identifier? Target, ChainSyntax Chain, SourceSpan? Terminator, SourceSpan Span);

    /// <summary>The statements of a model or block body, and its closing brace.</summary>
    public sealed record BodySyntax(IReadOnlyList<StatementSyntax> Statements, SourceSpan Close)
    {
        /// <summary>Every layer and block call of the body, groups included, in source order.</summary>
        public IEnumerable<LayerSyntax> AllLayers => Statements.SelectMany(s => Layers(s.Chain));

        private static IEnumerable<LayerSyntax> Layers(ChainSyntax chain) => chain.Items.SelectMany(item => item switch
        {
            LayerSyntax layer => new[] { layer },
            GroupSyntax group => Layers(group.Chain),
            _ => Enumerable.Empty<LayerSyntax>(),
        });
    }

    /// <summary><c>model Name(input: [..]) { body }</c>.</summary>
    public sealed record ModelSyntax(Identifier Name, IReadOnlyList<ValueSyntax> InputShape, SourceSpan InputSpan, BodySyntax Body, SourceSpan Span)
    {
        /// <summary>Every layer and block call written in the body, in source order (a v1 model: its chain).</summary>
        public IReadOnlyList<LayerSyntax> Layers { get; } = Body.AllLayers.ToList();

        /// <summary>A v1 model: one chain of layers.</summary>
        public ModelSyntax(Identifier name, IReadOnlyList<ValueSyntax> inputShape, SourceSpan inputSpan, IReadOnlyList<LayerSyntax> layers, SourceSpan span)
            : this(name, inputShape, inputSpan, new BodySyntax(new[] { new StatementSyntax(null, new ChainSyntax(layers.ToList<ItemSyntax>(), span), null, span) }, span), span)
        {
        }
    }

    /// <summary>A block parameter: <c>name</c> or <c>name = default</c>.</summary>
    public sealed record BlockParameterSyntax(Identifier Name, ValueSyntax? Default);

    /// <summary><c>block Name(params) { body }</c>: a reusable sub-network.</summary>
    public sealed record BlockSyntax(Identifier Name, IReadOnlyList<BlockParameterSyntax> Parameters, BodySyntax Body, SourceSpan Span);

    /// <summary>A whole file: optional namespace, then models and blocks in any order.</summary>
    public sealed record FileSyntax(IReadOnlyList<Identifier>? Namespace, IReadOnlyList<ModelSyntax> Models)
    {
        public IReadOnlyList<BlockSyntax> Blocks { get; init; } = System.Array.Empty<BlockSyntax>();
    }
}
