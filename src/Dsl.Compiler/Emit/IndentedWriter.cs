using System;
using System.Text;

namespace Dsl.Compiler.Emit
{
    /// <summary>Writes indented C# with '\n' line endings on every platform, so output is byte-identical everywhere.</summary>
    internal sealed class IndentedWriter
    {
        private readonly StringBuilder _builder = new();
        private int _depth;

        public void Line(string text = "")
        {
            if (text.Length > 0) _builder.Append(' ', 4 * _depth).Append(text);
            _builder.Append('\n');
        }

        /// <summary>Writes <c>{</c>, indents until disposed, then writes <c>}</c> (plus an optional suffix such as <c>;</c>).</summary>
        public IDisposable Block(string? header = null, string closing = "}")
        {
            if (header is not null) Line(header);
            Line("{");
            _depth++;
            return new Scope(this, closing);
        }

        public override string ToString() => _builder.ToString();

        private sealed class Scope : IDisposable
        {
            private readonly IndentedWriter _writer;
            private readonly string _closing;

            public Scope(IndentedWriter writer, string closing)
            {
                _writer = writer;
                _closing = closing;
            }

            public void Dispose()
            {
                _writer._depth--;
                _writer.Line(_closing);
            }
        }
    }
}
