using System;
using System.Collections.Generic;
using System.Text;
using Dsl.Compiler.Text;

namespace Dsl.Compiler.Diagnostics
{
    public enum Severity
    {
        Warning,
        Error,
    }

    /// <summary>One finding about a <c>.nn</c> file: a value, never an exception.</summary>
    public sealed record NnDiagnostic(string Id, Severity Severity, string Message, SourceSpan Span)
    {
        public bool IsError => Severity == Severity.Error;

        /// <summary>
        /// Secondary locations (Roslyn's <c>additionalLocations</c>): for an error inside a block that comes from how the
        /// block is used, the calls of nested blocks and the layer inside the block that fails, outermost first.
        /// </summary>
        public IReadOnlyList<SourceSpan> AdditionalSpans { get; init; } = Array.Empty<SourceSpan>();

        /// <summary>
        /// MSBuild's canonical form: <c>path(line,col): error NN1234: message</c>, then one line per secondary location:
        /// <c>path(line,col): related to NN1234</c>.
        /// </summary>
        public string Format(string path)
        {
            string first = $"{path}({Span.Line},{Span.Column}): {(IsError ? "error" : "warning")} {Id}: {Message}";
            if (AdditionalSpans.Count == 0) return first;
            var text = new StringBuilder(first);
            foreach (var span in AdditionalSpans)
                text.Append(Environment.NewLine).Append($"{path}({span.Line},{span.Column}): related location of {Id}");
            return text.ToString();
        }

        public override string ToString() => Format("<input>");
    }

    /// <summary>A diagnostic code, its title and severity. Messages are composed where the finding is made.</summary>
    public sealed record DiagnosticDescriptor(string Id, Severity Severity, string Title)
    {
        public NnDiagnostic At(SourceSpan span, string message) => new(Id, Severity, message, span);
    }
}
