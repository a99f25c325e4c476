using System.Collections.Generic;
using System.Runtime.CompilerServices;
using Sprache;

// The tests hold the recovering parse to Grammar.File, the one-error definition of the same grammar.
[assembly: InternalsVisibleTo("Dsl.Compiler.Tests")]

namespace Dsl.Compiler.Syntax
{
    /// <summary>Where a grammar piece stopped and what it expected there.</summary>
    internal sealed record SyntaxFailure(IInput At, IEnumerable<string> Expected);

    /// <summary>
    /// Parses a file with <see cref="Grammar"/>'s pieces (namespace, model header, chain) and, after a failure, skips
    /// to a token where parsing can go on: a <c>-&gt;</c> or <c>;</c> (the next layer), a <c>}</c> (the model ends),
    /// the <c>{</c> of a broken header (its chain), or the next <c>model</c>/<c>block</c> declaration. So one pass
    /// finds every independent mistake. Its first failure is the one <see cref="Grammar.File"/> stops at: the pieces
    /// are that parser cut at its joints.
    /// </summary>
    /// <remarks>
    /// One mistake must not be reported twice. A failure at the very token parsing resumed at (<c>relu -&gt; -&gt; }</c>)
    /// is the same mistake seen again and stays quiet; a <c>}</c> right after a <c>}</c> that recovery took as the
    /// model's end (<c>conv(1, 2, 3 } }</c>: one brace typed for a parenthesis) is that model's own brace; and
    /// failures only count at positions after the previous one. Every step moves forward, so the parser ends.
    /// </remarks>
    internal sealed class RecoveringParser
    {
        private enum Sync
        {
            Arrow,
            Semicolon,
            OpenBrace,
            CloseBrace,
            Declaration,
            End,
        }

        private readonly List<SyntaxFailure> _failures = new();
        private int _resumedAt = -1;

        private RecoveringParser()
        {
        }

        /// <summary>The file's tree (null when anything failed) and every failure, in text order.</summary>
        public static (FileSyntax? File, IReadOnlyList<SyntaxFailure> Failures) Parse(string text)
        {
            var parser = new RecoveringParser();
            var file = parser.File(new Input(text));
            return parser._failures.Count == 0 ? (file, parser._failures) : (null, parser._failures);
        }

        private FileSyntax File(IInput input)
        {
            var i = Grammar.Trivia(input).Remainder;
            List<Identifier>? ns = null;
            var namespaceResult = Grammar.Namespace.XOptional()(i);
            if (namespaceResult.WasSuccessful)
            {
                if (namespaceResult.Value.IsDefined) ns = namespaceResult.Value.Get();
                i = namespaceResult.Remainder;
            }
            else
            {
                Fail(namespaceResult.Remainder, namespaceResult.Expectations);
                i = AfterNamespace(namespaceResult.Remainder);
            }

            var models = new List<ModelSyntax>();
            var blocks = new List<BlockSyntax>();
            while (!i.AtEnd)
            {
                if (Grammar.ModelKeyword(i).WasSuccessful || Grammar.BlockKeyword(i).WasSuccessful)
                {
                    i = Declaration(i, models, blocks);
                    continue;
                }

                var end = Grammar.EndOfInput(i);
                Fail(end.Remainder, end.Expectations);
                i = NextToken(i);
                while (!i.AtEnd && !IsDeclaration(i)) i = NextToken(i);
            }

            return new FileSyntax(ns, models) { Blocks = blocks };
        }

        /// <summary>Parses one model or block from its keyword; adds it when it parsed whole. Returns where the file goes on.</summary>
        private IInput Declaration(IInput start, List<ModelSyntax> models, List<BlockSyntax> blocks)
        {
            var header = Grammar.DeclarationHeader(start);
            IInput at;
            if (header.WasSuccessful)
            {
                at = header.Remainder;
            }
            else
            {
                Fail(header.Remainder, header.Expectations);
                var (sync, where) = SkipTo(header.Remainder, inHeader: true);
                if (sync is Sync.Declaration or Sync.End) return where;
                if (sync == Sync.CloseBrace) return AfterRecoveredBrace(where);
                at = Resume(where);
            }

            bool whole = header.WasSuccessful;
            var statements = new List<StatementSyntax>();
            while (true)
            {
                var body = Grammar.Body(at);
                if (body.WasSuccessful)
                {
                    statements.AddRange(body.Value.Statements);
                    if (whole)
                    {
                        var declaration = Grammar.MakeDeclaration(header.Value, statements, body.Value.End);
                        if (declaration is ModelSyntax model) models.Add(model);
                        else blocks.Add((BlockSyntax)declaration);
                    }

                    return body.Remainder;
                }

                whole = false;
                Fail(body.Remainder, body.Expectations);
                var (sync, where) = SkipTo(body.Remainder, inHeader: false);
                if (sync is Sync.Declaration or Sync.End) return where;
                if (sync == Sync.CloseBrace) return AfterRecoveredBrace(where);
                at = Resume(where);
            }
        }

        private void Fail(IInput at, IEnumerable<string> expected)
        {
            if (at.Position == _resumedAt) return;
            if (_failures.Count > 0 && at.Position <= _failures[_failures.Count - 1].At.Position) return;
            _failures.Add(new SyntaxFailure(at, expected));
        }

        /// <summary>Steps over the sync token and notes where parsing resumes.</summary>
        private IInput Resume(IInput sync)
        {
            var next = NextToken(sync);
            _resumedAt = next.Position;
            return next;
        }

        /// <summary>After the <c>}</c> that recovery took as a model's end; a second <c>}</c> right there is that model's own.</summary>
        private static IInput AfterRecoveredBrace(IInput brace)
        {
            var next = NextToken(brace);
            return !next.AtEnd && next.Current == '}' ? NextToken(next) : next;
        }

        /// <summary>The first sync token at or after <paramref name="from"/>.</summary>
        private static (Sync Sync, IInput Where) SkipTo(IInput from, bool inHeader)
        {
            var i = from;
            while (!i.AtEnd)
            {
                if (IsDeclaration(i)) return (Sync.Declaration, i);
                switch (i.Current)
                {
                    case '-' when IsArrow(i):
                        return (Sync.Arrow, i);
                    case ';':
                        return (Sync.Semicolon, i);
                    case '}':
                        return (Sync.CloseBrace, i);
                    case '{' when inHeader:
                        return (Sync.OpenBrace, i);
                }

                i = NextToken(i);
            }

            return (Sync.End, i);
        }

        /// <summary>Past a broken namespace line: after its <c>;</c>, else at the first declaration.</summary>
        private static IInput AfterNamespace(IInput from)
        {
            var i = from;
            while (!i.AtEnd && !IsDeclaration(i))
            {
                if (i.Current == ';') return NextToken(i);
                i = NextToken(i);
            }

            return i;
        }

        /// <summary><c>model</c> or <c>block</c> starting a word and followed by a name: a declaration, not a layer called <c>model</c>.</summary>
        private static bool IsDeclaration(IInput i)
        {
            if (i.Position > 0 && IsWordCharacter(i.Source[i.Position - 1])) return false;
            var word = Grammar.Identifier(i);
            if (!word.WasSuccessful || word.Value.Text is not ("model" or "block")) return false;
            var next = word.Remainder;
            return !next.AtEnd && (char.IsLetter(next.Current) || next.Current == '_');
        }

        private static bool IsArrow(IInput i) => i.Position + 1 < i.Source.Length && i.Source[i.Position + 1] == '>';

        private static bool IsWordCharacter(char c) => char.IsLetterOrDigit(c) || c == '_';

        /// <summary>Past one token (a word or number, an arrow, or one character) and the trivia after it.</summary>
        private static IInput NextToken(IInput i)
        {
            if (i.AtEnd) return i;
            if (IsWordCharacter(i.Current))
            {
                while (!i.AtEnd && IsWordCharacter(i.Current)) i = i.Advance();
            }
            else
            {
                i = i.Current == '-' && IsArrow(i) ? i.Advance().Advance() : i.Advance();
            }

            return Grammar.Trivia(i).Remainder;
        }
    }
}
