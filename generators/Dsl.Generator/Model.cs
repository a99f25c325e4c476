namespace Dsl.Generator
{
    /// <summary>A .nn file as the pipeline sees it: path and text, nothing from Roslyn.</summary>
    internal sealed record NnFile(string Path, string Text);

    /// <summary>What the generator reads from the project: RootNamespace and the project's folder (for hint names).</summary>
    internal sealed record NnOptions(string? RootNamespace, string? ProjectDirectory);

    /// <summary>A place in a .nn file as plain values, turned into a Roslyn Location only when reported.</summary>
    internal sealed record LocationInfo(string Path, int Start, int Length, int StartLine, int StartColumn, int EndLine, int EndColumn);

    /// <summary>A diagnostic as a plain value: its id (which names its descriptor), message and place.</summary>
    internal sealed record DiagnosticInfo(string Id, string Message, LocationInfo Location)
    {
        /// <summary>Secondary locations (an error of a block's use: the layer inside the block that fails).</summary>
        public EquatableArray<LocationInfo> Additional { get; init; } = EquatableArray.From(System.Array.Empty<LocationInfo>());
    }

    /// <summary>A generated file and the class it declares (no positions: a comment edit must not change it).</summary>
    internal sealed record SourceInfo(string HintName, string Text, string QualifiedName);

    /// <summary>Everything one .nn file yields. Its diagnostics and declarations hold positions; its sources do not.</summary>
    internal sealed record NnAnalysis(string Path, EquatableArray<SourceInfo> Sources, EquatableArray<DiagnosticInfo> Diagnostics, EquatableArray<DeclaredClass> Declarations);

    /// <summary>The generated part of an analysis, compared by value so output that did not change stays cached.</summary>
    internal sealed record NnGenerated(string Path, EquatableArray<SourceInfo> Sources);

    /// <summary>A class some .nn file of the project declares, where (for NN1016 across files).</summary>
    internal sealed record DeclaredClass(string QualifiedName, LocationInfo Declaration);

    /// <summary>A class and the file that declares it, without a position: which file keeps a class shared by two does not depend on where.</summary>
    internal sealed record ClassFile(string QualifiedName, string Path);
}
