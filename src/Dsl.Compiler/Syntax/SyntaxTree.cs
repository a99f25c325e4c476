using System.Collections.Generic;
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

    /// <summary><c>name(args) as alias</c>.</summary>
    public sealed record LayerSyntax(Identifier Name, IReadOnlyList<ArgumentSyntax> Arguments, Identifier? Alias, SourceSpan Span, bool HasArgumentList);

    /// <summary><c>model Name(input: [..]) { chain }</c>.</summary>
    public sealed record ModelSyntax(Identifier Name, IReadOnlyList<ValueSyntax> InputShape, SourceSpan InputSpan, IReadOnlyList<LayerSyntax> Layers, SourceSpan Span);

    /// <summary>A whole file: optional namespace, then models.</summary>
    public sealed record FileSyntax(IReadOnlyList<Identifier>? Namespace, IReadOnlyList<ModelSyntax> Models);
}
