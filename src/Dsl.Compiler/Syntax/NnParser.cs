using System;
using System.Collections.Generic;
using System.Linq;
using Dsl.Compiler.Diagnostics;
using Dsl.Compiler.Text;

namespace Dsl.Compiler.Syntax
{
    /// <summary>The result of parsing: a tree when the text is well formed, and the diagnostics (every syntax error found, in text order).</summary>
    public sealed record ParseResult(FileSyntax? File, IReadOnlyList<NnDiagnostic> Diagnostics);

    /// <summary>Parses <c>.nn</c> text. Never throws: every failure is a diagnostic.</summary>
    public static class NnParser
    {
        public static ParseResult Parse(string text)
        {
            var lines = new LineMap(text);
            var lexical = ScanLexicalErrors(text, lines);
            if (lexical is not null) return new ParseResult(null, new[] { lexical });

            // Sprache counts lines at '\n' only; every other line break is one character too, so mapping
            // them to '\n' keeps offsets and makes token lines agree with LineMap (and Roslyn).
            var (file, failures) = RecoveringParser.Parse(NormalizeLineBreaks(text));
            if (file is null)
                return new ParseResult(null, failures.Select(f => SyntaxError(text, lines, f)).ToList());

            if (file.Models.Count == 0)
            {
                var span = lines.Span(text.Length, 0);
                return new ParseResult(file, new[]
                {
                    DiagnosticDescriptors.NoModel.At(span, "the file declares no model; write 'model Name(input: [...]) { layer -> layer }'"),
                });
            }

            return new ParseResult(file, Array.Empty<NnDiagnostic>());
        }

        private static string NormalizeLineBreaks(string text)
        {
            char[]? copy = null;
            for (int i = 0; i < text.Length; i++)
            {
                char c = text[i];
                bool lone = c == '\r' ? i + 1 >= text.Length || text[i + 1] != '\n' : c is '\u0085' or '\u2028' or '\u2029';
                if (!lone) continue;
                copy ??= text.ToCharArray();
                copy[i] = '\n';
            }

            return copy is null ? text : new string(copy);
        }

        /// <summary>
        /// Finds what the grammar would report badly: an unterminated block comment (which would
        /// otherwise swallow the rest of the file) and characters that can never be part of a
        /// <c>.nn</c> file outside a comment (a NUL byte, binary junk).
        /// </summary>
        private static NnDiagnostic? ScanLexicalErrors(string text, LineMap lines)
        {
            int i = 0;
            while (i < text.Length)
            {
                char c = text[i];
                if (c == '/' && i + 1 < text.Length && text[i + 1] == '/')
                {
                    while (i < text.Length && !LineMap.IsLineBreak(text[i])) i++;
                    continue;
                }

                if (c == '/' && i + 1 < text.Length && text[i + 1] == '*')
                {
                    int close = text.IndexOf("*/", i + 2, StringComparison.Ordinal);
                    if (close < 0)
                    {
                        return DiagnosticDescriptors.UnterminatedComment.At(
                            lines.Span(i, 2), "unterminated block comment: this '/*' has no closing '*/'");
                    }

                    i = close + 2;
                    continue;
                }

                if (!IsAllowed(c))
                {
                    return DiagnosticDescriptors.InvalidCharacter.At(
                        lines.Span(i, 1), $"invalid character {Describe(c)}: a .nn file holds only layers, numbers and punctuation outside comments");
                }

                i++;
            }

            return null;
        }

        private static bool IsAllowed(char c) =>
            char.IsLetterOrDigit(c) || char.IsWhiteSpace(c) || c == '_' || "()[]{},:;.->+/*=".IndexOf(c) >= 0;

        private static NnDiagnostic SyntaxError(string text, LineMap lines, SyntaxFailure failure)
        {
            int position = Math.Min(failure.At.Position, text.Length);
            int length = position >= text.Length ? 0 : TokenLength(text, position);
            string found = position >= text.Length ? "end of file" : length > 1 ? $"'{text.Substring(position, length)}'" : Describe(text[position]);
            var expected = failure.Expected.Distinct().ToList();
            string message = expected.Count == 0
                ? $"unexpected {found}"
                : $"unexpected {found}; expected {JoinOr(expected)}";

            return DiagnosticDescriptors.SyntaxError.At(lines.Span(position, length), message);
        }

        /// <summary>The length of the offending token, so the squiggle covers a word, not one letter.</summary>
        private static int TokenLength(string text, int position)
        {
            if (!(char.IsLetterOrDigit(text[position]) || text[position] == '_')) return 1;
            int end = position;
            while (end < text.Length && (char.IsLetterOrDigit(text[end]) || text[end] == '_' || text[end] == '.')) end++;
            return end - position;
        }

        internal static string Describe(char c)
        {
            if (c == '\'') return "\"'\"";
            if (char.IsControl(c) || char.IsWhiteSpace(c) || char.IsSurrogate(c) || c > '\u007e')
                return $"U+{(int)c:X4}";
            return $"'{c}'";
        }

        internal static string JoinOr(IReadOnlyList<string> items) =>
            items.Count == 1 ? items[0] : string.Join(", ", items.Take(items.Count - 1)) + " or " + items[items.Count - 1];
    }
}
