namespace Dsl.Compiler.Text
{
    /// <summary>A range of a <c>.nn</c> file: 0-based character offset and length, 1-based line and column of its start.</summary>
    public readonly record struct SourceSpan(int Start, int Length, int Line, int Column)
    {
        public int End => Start + Length;

        /// <summary>From the start of <paramref name="first"/> to the end of <paramref name="last"/>.</summary>
        public static SourceSpan Cover(SourceSpan first, SourceSpan last) => new(first.Start, last.End - first.Start, first.Line, first.Column);

        public override string ToString() => $"({Line},{Column})+{Length}";
    }

    /// <summary>Maps character offsets to 1-based lines and columns.</summary>
    public sealed class LineMap
    {
        private readonly int[] _lineStarts;

        public LineMap(string text)
        {
            // Line breaks as Roslyn counts them, so our line numbers agree with the IDE's.
            var starts = new System.Collections.Generic.List<int> { 0 };
            for (int i = 0; i < text.Length; i++)
            {
                char c = text[i];
                if (c == '\r' && i + 1 < text.Length && text[i + 1] == '\n') continue;
                if (IsLineBreak(c)) starts.Add(i + 1);
            }
            _lineStarts = starts.ToArray();
        }

        /// <summary>\n, \r (alone or before \n), U+0085, U+2028 and U+2029.</summary>
        public static bool IsLineBreak(char c) => c is '\n' or '\r' or '\u0085' or '\u2028' or '\u2029';

        /// <summary>1-based line and column of an offset.</summary>
        public (int Line, int Column) Locate(int offset)
        {
            int index = System.Array.BinarySearch(_lineStarts, offset);
            if (index < 0) index = ~index - 1;
            return (index + 1, offset - _lineStarts[index] + 1);
        }

        public SourceSpan Span(int start, int length)
        {
            var (line, column) = Locate(start);
            return new SourceSpan(start, length, line, column);
        }
    }
}
