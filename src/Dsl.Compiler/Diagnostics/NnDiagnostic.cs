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

        /// <summary>MSBuild's canonical form: <c>path(line,col): error NN1234: message</c>.</summary>
        public string Format(string path) =>
            $"{path}({Span.Line},{Span.Column}): {(IsError ? "error" : "warning")} {Id}: {Message}";

        public override string ToString() => Format("<input>");
    }

    /// <summary>A diagnostic code, its title and severity. Messages are composed where the finding is made.</summary>
    public sealed record DiagnosticDescriptor(string Id, Severity Severity, string Title)
    {
        public NnDiagnostic At(SourceSpan span, string message) => new(Id, Severity, message, span);
    }
}
