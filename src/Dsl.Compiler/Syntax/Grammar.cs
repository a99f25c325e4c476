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

        /// <summary><c>* n</c>: the operator's span and the count (a number, or a word naming a block parameter).</summary>
        private static readonly Parser<(SourceSpan Operator, ValueSyntax Count)> Repetition =
            from star in Token(Spanned(Parse.Char('*'))).Named("'*'")
            from count in Number.Or(Word).Named("repetition count")
            select (star.Span, count);

        /// <summary>A layer or block call: <c>name(args) as alias</c>, then an optional <c>* n</c>.</summary>
        internal static readonly Parser<LayerSyntax> Layer =
            from name in Identifier.Named("layer")
            from args in ArgumentList.XOptional()
            from alias in Alias.XOptional()
            from repeat in Repetition.XOptional()
            select MakeLayer(name, args, alias, repeat);

        private static LayerSyntax MakeLayer(Identifier name, IOption<(List<ArgumentSyntax> Arguments, SourceSpan Close)> args, IOption<Identifier> alias,
            IOption<(SourceSpan Operator, ValueSyntax Count)> repeat)
        {
            var arguments = args.IsDefined ? args.Get().Arguments : new List<ArgumentSyntax>();
            int end = args.IsDefined ? args.Get().Close.End : name.Span.End;
            if (alias.IsDefined) end = alias.Get().Span.End;
            var span = new SourceSpan(name.Span.Start, end - name.Span.Start, name.Span.Line, name.Span.Column);
            return new LayerSyntax(name, arguments, alias.IsDefined ? alias.Get() : null, span, args.IsDefined)
            {
                Repeat = repeat.IsDefined ? repeat.Get().Count : null,
                RepeatOperator = repeat.IsDefined ? repeat.Get().Operator : null,
            };
        }

        private static readonly Parser<Identifier> MergeKeyword = input =>
        {
            var result = Identifier(input);
            if (result.WasSuccessful && result.Value.Text is "add" or "concat") return result;
            return Result.Failure<Identifier>(input, "expected 'add' or 'concat'", new[] { "'add'", "'concat'" });
        };

        /// <summary>A merge argument: a merge, or a name.</summary>
        private static readonly Parser<ValueRefSyntax> ValueRef =
            Parse.Ref(() => Merge).Select(m => (ValueRefSyntax)m).Or(Identifier.Select(id => (ValueRefSyntax)new NameRefSyntax(id))).Named("value");

        /// <summary><c>add(a, b, ...)</c> or <c>concat(a, b, ...)</c>; its arguments are values, not layers.</summary>
        internal static readonly Parser<MergeSyntax> Merge =
            from kind in MergeKeyword
            from open in Symbol("(")
            from args in ValueRef.XDelimitedBy(Symbol(",")).XOptional()
            from close in Token(Spanned(Parse.Char(')'))).Named("',' or ')'")
            select new MergeSyntax(kind, args.GetOrElse(Enumerable.Empty<ValueRefSyntax>()).ToList(), SourceSpan.Cover(kind.Span, close.Span));

        /// <summary><c>( chain ) as name</c>, with an optional <c>* n</c> (refused by the binder, with the fix).</summary>
        private static readonly Parser<GroupSyntax> Group =
            from open in Token(Spanned(Parse.Char('('))).Named("'('")
            from chain in Parse.Ref(() => Chain)
            from close in Token(Spanned(Parse.Char(')'))).Named("'->' or ')'")
            from alias in Alias.XOptional()
            from repeat in Repetition.XOptional()
            select new GroupSyntax(chain, alias.IsDefined ? alias.Get() : null,
                SourceSpan.Cover(open.Span, alias.IsDefined ? alias.Get().Span : close.Span))
            {
                Repeat = repeat.IsDefined ? repeat.Get().Count : null,
                RepeatOperator = repeat.IsDefined ? repeat.Get().Operator : null,
            };

        /// <summary>An item after <c>-&gt;</c>: a group or a layer/block call.</summary>
        private static readonly Parser<ItemSyntax> Item = input =>
            Group.Select(g => (ItemSyntax)g).XOr(Layer.Select(l => (ItemSyntax)l)).Named("layer")(input);

        /// <summary>Where a chain starts: a merge (a value), or an item (a bare name may be a value too: the binder decides).</summary>
        private static readonly Parser<ItemSyntax> ChainStart = input =>
        {
            var merge = Merge(input);
            if (merge.WasSuccessful) return Result.Success<ItemSyntax>(new MergeItemSyntax(merge.Value), merge.Remainder);
            // 'add' not followed by '(' is a word like any other; 'add(' that fails inside is that merge's error.
            if (MergeKeyword(input).WasSuccessful && merge.Remainder.Position > MergeKeyword(input).Remainder.Position)
                return Result.Failure<ItemSyntax>(merge.Remainder, merge.Message, merge.Expectations);
            return Item(input);
        };

        internal static readonly Parser<ChainSyntax> Chain =
            from first in ChainStart
            from rest in (from arrow in Symbol("->") from item in Item select item).XMany()
            select MakeChain(new[] { first }.Concat(rest).ToList());

        private static ChainSyntax MakeChain(List<ItemSyntax> items)
        {
            var last = items[items.Count - 1] is LayerSyntax { FullSpan: var full } ? full
                : items[items.Count - 1] is GroupSyntax { Repeat: { } count } ? count.Span
                : items[items.Count - 1].Span;
            return new ChainSyntax(items, SourceSpan.Cover(items[0].Span, last));
        }

        /// <summary><c>name = chain</c> or a chain alone (a bare statement: the binder says where one may stand).</summary>
        private static readonly Parser<StatementSyntax> Statement = input =>
        {
            Identifier? target = null;
            var at = input;
            var name = Identifier(input);
            if (name.WasSuccessful && !name.Remainder.AtEnd && name.Remainder.Current == '=')
            {
                target = name.Value;
                at = Symbol("=")(name.Remainder).Remainder;
            }

            var chain = Chain(at);
            if (!chain.WasSuccessful) return Result.Failure<StatementSyntax>(chain.Remainder, chain.Message, chain.Expectations);
            var span = target is null ? chain.Value.Span : SourceSpan.Cover(target.Span, chain.Value.Span);
            return Result.Success(new StatementSyntax(target, chain.Value, null, span), chain.Remainder);
        };

        private static readonly Parser<SourceSpan> Semicolon = Token(Spanned(Parse.Char(';'))).Select(x => x.Span).Named("';'");

        private static readonly Parser<SourceSpan> CloseBrace = Token(Spanned(Parse.Char('}'))).Select(x => x.Span).Named("'->', ';' or '}'");

        private static readonly Parser<(List<ValueSyntax> Dims, SourceSpan Span)> InputShape =
            from key in Keyword("input")
            from colon in Symbol(":")
            from open in Token(Spanned(Parse.Char('['))).Named("'['")
            from dims in Number.XDelimitedBy(Symbol(",")).Optional()
            from close in Token(Spanned(Parse.Char(']'))).Named("',' or ']'")
            select (dims.GetOrElse(Enumerable.Empty<ValueSyntax>()).ToList(),
                    new SourceSpan(open.Span.Start, close.Span.End - open.Span.Start, open.Span.Line, open.Span.Column));

        internal static readonly Parser<Identifier> ModelKeyword = Keyword("model");

        internal static readonly Parser<Identifier> BlockKeyword = Keyword("block");

        /// <summary>The parts of a declaration before its body.</summary>
        internal sealed record Header(Identifier Keyword, Identifier Name, (List<ValueSyntax> Dims, SourceSpan Span)? Input, List<BlockParameterSyntax>? Parameters);

        /// <summary><c>model Name(input: [..]) {</c>: everything before the body.</summary>
        internal static readonly Parser<Header> ModelHeader =
            from keyword in ModelKeyword
            from name in Identifier.Named("model name")
            from open in Symbol("(")
            from input in InputShape
            from close in Symbol(")")
            from brace in Symbol("{")
            select new Header(keyword, name, input, null);

        private static readonly Parser<BlockParameterSyntax> BlockParameter =
            from name in Identifier.Named("parameter name")
            from value in (from eq in Symbol("=") from v in Value select v).XOptional()
            select new BlockParameterSyntax(name, value.IsDefined ? value.Get() : null);

        /// <summary><c>block Name(a, b = 1) {</c>.</summary>
        internal static readonly Parser<Header> BlockHeader =
            from keyword in BlockKeyword
            from name in Identifier.Named("block name")
            from open in Symbol("(")
            from parameters in BlockParameter.XDelimitedBy(Symbol(",")).XOptional()
            from close in Symbol(")").Named("',' or ')'")
            from brace in Symbol("{")
            select new Header(keyword, name, null, parameters.GetOrElse(Enumerable.Empty<BlockParameterSyntax>()).ToList());

        internal static readonly Parser<Header> DeclarationHeader = input =>
            (BlockKeyword(input).WasSuccessful ? BlockHeader : ModelHeader)(input);

        /// <summary>
        /// Statements separated by <c>;</c> and the closing brace: what follows a header, and what error recovery resumes
        /// after a <c>-&gt;</c> or <c>;</c>. Which statement may be named or end with <c>;</c> is the binder's to say.
        /// </summary>
        internal static readonly Parser<(List<StatementSyntax> Statements, SourceSpan End)> Body = input =>
        {
            var statements = new List<StatementSyntax>();
            var i = input;
            while (true)
            {
                if (!i.AtEnd && i.Current == '}')
                {
                    var close = CloseBrace(i);
                    return Result.Success((statements, close.Value), close.Remainder);
                }

                var statement = Statement(i);
                if (!statement.WasSuccessful)
                    return Result.Failure<(List<StatementSyntax>, SourceSpan)>(statement.Remainder, statement.Message, statement.Expectations);
                i = statement.Remainder;
                var semicolon = Semicolon(i);
                if (semicolon.WasSuccessful)
                {
                    statements.Add(statement.Value with { Terminator = semicolon.Value });
                    i = semicolon.Remainder;
                    continue;
                }

                statements.Add(statement.Value);
                var end = CloseBrace(i);
                if (!end.WasSuccessful) return Result.Failure<(List<StatementSyntax>, SourceSpan)>(end.Remainder, end.Message, end.Expectations);
                return Result.Success((statements, end.Value), end.Remainder);
            }
        };

        internal static readonly Parser<object> Declaration = input =>
        {
            var header = DeclarationHeader(input);
            if (!header.WasSuccessful) return Result.Failure<object>(header.Remainder, header.Message, header.Expectations);
            var body = Body(header.Remainder);
            if (!body.WasSuccessful) return Result.Failure<object>(body.Remainder, body.Message, body.Expectations);
            return Result.Success(MakeDeclaration(header.Value, body.Value.Statements, body.Value.End), body.Remainder);
        };

        /// <summary>A <see cref="ModelSyntax"/> or <see cref="BlockSyntax"/> from its header and body.</summary>
        internal static object MakeDeclaration(Header header, List<StatementSyntax> statements, SourceSpan end)
        {
            var span = SourceSpan.Cover(header.Keyword.Span, end);
            var body = new BodySyntax(statements, end);
            return header.Input is { } input
                ? new ModelSyntax(header.Name, input.Dims, input.Span, body, span)
                : new BlockSyntax(header.Name, header.Parameters!, body, span);
        }

        internal static readonly Parser<List<Identifier>> Namespace =
            from keyword in Keyword("namespace")
            from first in Identifier
            from rest in (from dot in Symbol(".") from part in Identifier select part).XMany()
            from semicolon in Symbol(";").Named("'.' or ';'")
            select new[] { first }.Concat(rest).ToList();

        internal static readonly Parser<object?> EndOfInput = input =>
            input.AtEnd
                ? Result.Success<object?>(null, input)
                : Result.Failure<object?>(input, "unexpected text", new[] { "'model'", "'block'" });

        /// <summary>
        /// The whole file as one parser, which stops at the first error. <see cref="RecoveringParser"/> runs the same
        /// pieces with recovery; this definition is the reference its first error is tested against.
        /// </summary>
        internal static readonly Parser<FileSyntax> File =
            from leading in Trivia
            from ns in Namespace.XOptional()
            from declarations in Declaration.XMany()
            from end in EndOfInput
            select new FileSyntax(ns.IsDefined ? ns.Get() : null, declarations.OfType<ModelSyntax>().ToList())
            {
                Blocks = declarations.OfType<BlockSyntax>().ToList(),
            };
    }
}
