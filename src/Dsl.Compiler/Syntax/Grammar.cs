using System.Collections.Generic;
using System.Linq;
using Dsl.Compiler.Text;
using Sprache;

namespace Dsl.Compiler.Syntax
{
    /// <summary>
    /// The v1 grammar as Sprache parsers, built bottom-up. Every token swallows the trivia
    /// (white space and comments) that follows it, so a failing token fails at its own first
    /// character and <c>XOr</c>/<c>XMany</c> report errors where they are, not after the spaces.
    /// </summary>
    internal static class Grammar
    {
        /// <summary>White space, <c>// line</c> and <c>/* block */</c> comments. Never fails.</summary>
        internal static readonly Parser<object?> Trivia = input =>
        {
            var i = input;
            var source = i.Source;
            while (!i.AtEnd)
            {
                char c = i.Current;
                if (char.IsWhiteSpace(c))
                {
                    i = i.Advance();
                    continue;
                }

                if (c == '/' && i.Position + 1 < source.Length)
                {
                    char next = source[i.Position + 1];
                    if (next == '/')
                    {
                        while (!i.AtEnd && !LineMap.IsLineBreak(i.Current)) i = i.Advance();
                        continue;
                    }

                    if (next == '*')
                    {
                        // The pre-scan in NnParser rejects an unterminated comment before we get here.
                        i = i.Advance().Advance();
                        while (!i.AtEnd && !(i.Current == '*' && i.Position + 1 < source.Length && source[i.Position + 1] == '/'))
                            i = i.Advance();
                        if (!i.AtEnd) i = i.Advance().Advance();
                        continue;
                    }
                }

                break;
            }

            return Result.Success<object?>(null, i);
        };

        private static Parser<T> Token<T>(Parser<T> parser) =>
            from value in parser
            from _ in Trivia
            select value;

        /// <summary>Runs a parser and records the span of what it consumed (trivia excluded).</summary>
        private static Parser<(T Value, SourceSpan Span)> Spanned<T>(Parser<T> parser) => input =>
        {
            var result = parser(input);
            if (!result.WasSuccessful)
                return Result.Failure<(T, SourceSpan)>(result.Remainder, result.Message, result.Expectations);
            var span = new SourceSpan(input.Position, result.Remainder.Position - input.Position, input.Line, input.Column);
            return Result.Success((result.Value, span), result.Remainder);
        };

        private static Parser<string> Symbol(string text) =>
            Token(Whole(Parse.String(text).Text())).Named($"'{text}'");

        /// <summary>
        /// A token that matches whole or fails where it starts: a lone <c>-</c> is "expected '-&gt;'" at the <c>-</c>,
        /// not "expected &gt;" at the character after it.
        /// </summary>
        private static Parser<T> Whole<T>(Parser<T> parser) => input =>
        {
            var result = parser(input);
            return result.WasSuccessful ? result : Result.Failure<T>(input, result.Message, result.Expectations);
        };

        private static readonly Parser<string> RawIdentifier =
            Parse.Identifier(Parse.Letter.Or(Parse.Char('_')), Parse.LetterOrDigit.Or(Parse.Char('_')));

        internal static readonly Parser<Identifier> Identifier =
            Token(Spanned(RawIdentifier)).Select(x => new Identifier(x.Value, x.Span)).Named("identifier");

        /// <summary>A keyword: an identifier that equals the word (so <c>modelx</c> is not <c>model</c>).</summary>
        private static Parser<Identifier> Keyword(string word) => input =>
        {
            var result = Identifier(input);
            if (result.WasSuccessful && result.Value.Text == word) return result;
            return Result.Failure<Identifier>(input, $"expected '{word}'", new[] { $"'{word}'" });
        };

        // digits ( '.' digits )? ( [eE] [+-]? digits )?, with an optional leading minus so that a
        // negative padding is reported as out of range rather than as a syntax error.
        // ASCII digits only: char.IsDigit would accept '٨' and then fail to convert it.
        private static readonly Parser<char> Digit = Parse.Chars("0123456789").Named("digit");

        private static readonly Parser<string> RawNumber =
            from minus in Parse.Char('-').Once().Text().Optional()
            from integer in Digit.AtLeastOnce().Text()
            from fraction in (from dot in Parse.Char('.') from digits in Digit.AtLeastOnce().Text() select "." + digits).Optional()
            from exponent in (from e in Parse.Chars('e', 'E')
                              from sign in Parse.Chars('+', '-').Once().Text().Optional()
                              from digits in Digit.AtLeastOnce().Text()
                              select "e" + sign.GetOrElse("") + digits).Optional()
            select minus.GetOrElse("") + integer + fraction.GetOrElse("") + exponent.GetOrElse("");

        internal static readonly Parser<ValueSyntax> Number =
            Token(Spanned(RawNumber))
                .Select(x => new ValueSyntax(
                    x.Value.IndexOfAny(new[] { '.', 'e', 'E' }) >= 0 ? ValueKind.Decimal : ValueKind.Integer, x.Value, x.Span))
                .Named("number");

        // Any other word (True, None, same) parses too, so the binder can point at it and say what to write.
        private static readonly Parser<ValueSyntax> Word =
            from id in Identifier
            select id.Text switch
            {
                "true" or "false" => new ValueSyntax(ValueKind.Boolean, id.Text, id.Span),
                "none" => new ValueSyntax(ValueKind.None, id.Text, id.Span),
                _ => new ValueSyntax(ValueKind.Word, id.Text, id.Span),
            };

        private static readonly Parser<ValueSyntax> Pair =
            from open in Token(Spanned(Parse.Char('(')))
            from first in Number
            from comma in Symbol(",")
            from second in Number
            from close in Token(Spanned(Parse.Char(')'))).Named("')'")
            select new ValueSyntax(
                ValueKind.Pair,
                first.Text + ", " + second.Text,
                new SourceSpan(open.Span.Start, close.Span.End - open.Span.Start, open.Span.Line, open.Span.Column),
                first,
                second);

        internal static readonly Parser<ValueSyntax> Value =
            Number.Or(Pair).Or(Word).Named("value (number, pair, true, false or none)");

        private static readonly Parser<ArgumentSyntax> NamedArgument =
            from name in Identifier
            from colon in Symbol(":")
            from value in Value
            select new ArgumentSyntax(name, value);

        private static readonly Parser<ArgumentSyntax> PositionalArgument =
            Value.Select(v => new ArgumentSyntax(null, v));

        private static readonly Parser<ArgumentSyntax> Argument = NamedArgument.Or(PositionalArgument).Named("argument");

        private static readonly Parser<(List<ArgumentSyntax> Arguments, SourceSpan Close)> ArgumentList =
            from open in Symbol("(")
            from args in Argument.XDelimitedBy(Symbol(",")).XOptional()
            from close in Token(Spanned(Parse.Char(')'))).Named("',' or ')'")
            select (args.GetOrElse(Enumerable.Empty<ArgumentSyntax>()).ToList(), close.Span);

        private static readonly Parser<Identifier> Alias =
            from keyword in Keyword("as")
            from name in Identifier.Named("layer name after 'as'")
            select name;

        internal static readonly Parser<LayerSyntax> Layer =
            from name in Identifier.Named("layer")
            from args in ArgumentList.XOptional()
            from alias in Alias.XOptional()
            select MakeLayer(name, args, alias);

        private static LayerSyntax MakeLayer(Identifier name, IOption<(List<ArgumentSyntax> Arguments, SourceSpan Close)> args, IOption<Identifier> alias)
        {
            var arguments = args.IsDefined ? args.Get().Arguments : new List<ArgumentSyntax>();
            int end = args.IsDefined ? args.Get().Close.End : name.Span.End;
            if (alias.IsDefined) end = alias.Get().Span.End;
            var span = new SourceSpan(name.Span.Start, end - name.Span.Start, name.Span.Line, name.Span.Column);
            return new LayerSyntax(name, arguments, alias.IsDefined ? alias.Get() : null, span, args.IsDefined);
        }

        private static readonly Parser<IEnumerable<LayerSyntax>> Chain =
            from first in Layer
            from rest in (from arrow in Symbol("->") from layer in Layer select layer).XMany()
            select new[] { first }.Concat(rest);

        private static readonly Parser<(List<ValueSyntax> Dims, SourceSpan Span)> InputShape =
            from key in Keyword("input")
            from colon in Symbol(":")
            from open in Token(Spanned(Parse.Char('['))).Named("'['")
            from dims in Number.XDelimitedBy(Symbol(",")).Optional()
            from close in Token(Spanned(Parse.Char(']'))).Named("',' or ']'")
            select (dims.GetOrElse(Enumerable.Empty<ValueSyntax>()).ToList(),
                    new SourceSpan(open.Span.Start, close.Span.End - open.Span.Start, open.Span.Line, open.Span.Column));

        internal static readonly Parser<Identifier> ModelKeyword = Keyword("model");

        /// <summary><c>model Name(input: [..]) {</c>: everything before the chain.</summary>
        internal static readonly Parser<(Identifier Keyword, Identifier Name, (List<ValueSyntax> Dims, SourceSpan Span) Input)> ModelHeader =
            from keyword in ModelKeyword
            from name in Identifier.Named("model name")
            from open in Symbol("(")
            from input in InputShape
            from close in Symbol(")")
            from brace in Symbol("{")
            select (keyword, name, input);

        /// <summary>The chain and the closing brace: what follows <see cref="ModelHeader"/>, and what error recovery resumes after a <c>-&gt;</c>.</summary>
        internal static readonly Parser<(List<LayerSyntax> Layers, SourceSpan End)> Body =
            from layers in Chain
            from end in Token(Spanned(Parse.Char('}'))).Named("'->' or '}'")
            select (layers.ToList(), end.Span);

        internal static readonly Parser<ModelSyntax> Model =
            from header in ModelHeader
            from body in Body
            select MakeModel(header.Keyword, header.Name, header.Input, body.Layers, body.End);

        internal static ModelSyntax MakeModel(Identifier keyword, Identifier name, (List<ValueSyntax> Dims, SourceSpan Span) input, List<LayerSyntax> layers, SourceSpan end) =>
            new(name, input.Dims, input.Span, layers,
                new SourceSpan(keyword.Span.Start, end.End - keyword.Span.Start, keyword.Span.Line, keyword.Span.Column));

        internal static readonly Parser<List<Identifier>> Namespace =
            from keyword in Keyword("namespace")
            from first in Identifier
            from rest in (from dot in Symbol(".") from part in Identifier select part).XMany()
            from semicolon in Symbol(";").Named("'.' or ';'")
            select new[] { first }.Concat(rest).ToList();

        internal static readonly Parser<object?> EndOfInput = input =>
            input.AtEnd
                ? Result.Success<object?>(null, input)
                : Result.Failure<object?>(input, "unexpected text", new[] { "'model'" });

        /// <summary>
        /// The whole file as one parser, which stops at the first error. <see cref="RecoveringParser"/> runs the same
        /// pieces with recovery; this definition is the reference its first error is tested against.
        /// </summary>
        internal static readonly Parser<FileSyntax> File =
            from leading in Trivia
            from ns in Namespace.XOptional()
            from models in Model.XMany()
            from end in EndOfInput
            select new FileSyntax(ns.IsDefined ? ns.Get() : null, models.ToList());
    }
}
