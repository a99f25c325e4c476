namespace Dsl.Generator
{
    /// <summary>A .nn file as the pipeline sees it: path and text, nothing from Roslyn.</summary>
    internal sealed record NnFile(string Path, string Text);

    /// <summary>A diagnostic as a plain value (no Location): turned into a Roslyn Diagnostic only when reported.</summary>
    internal sealed record DiagnosticInfo(string Id, bool IsError, string Title, string Message, string Path,
        int Start, int Length, int StartLine, int StartColumn, int EndLine, int EndColumn);

    /// <summary>A generated file.</summary>
    internal sealed record SourceInfo(string HintName, string Text);

    /// <summary>What one .nn file yields: sources and diagnostics, compared by value so unchanged output stays cached.</summary>
    internal sealed record NnOutput(EquatableArray<SourceInfo> Sources, EquatableArray<DiagnosticInfo> Diagnostics);
}
