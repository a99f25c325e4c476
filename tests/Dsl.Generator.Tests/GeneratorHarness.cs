using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Text;

namespace Dsl.Generator.Tests;

/// <summary>Runs <see cref="NnGenerator"/> in memory, as the compiler does in a build.</summary>
internal static class GeneratorHarness
{
    public static readonly CSharpParseOptions ParseOptions = new(LanguageVersion.Latest);

    /// <summary>The framework's reference assemblies plus Dsl.Runtime: what a user project compiles against.</summary>
    public static ImmutableArray<MetadataReference> References { get; } =
        ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Where(p => Path.GetFileName(p).StartsWith("System.", StringComparison.Ordinal) || Path.GetFileName(p) is "mscorlib.dll" or "netstandard.dll")
            .Append(typeof(Dsl.Runtime.CompiledModel).Assembly.Location)
            .Select(p => (MetadataReference)MetadataReference.CreateFromFile(p))
            .ToImmutableArray();

    public static CSharpCompilation Compilation(params string[] sources) => CSharpCompilation.Create(
        "UserProject",
        sources.Select((s, i) => CSharpSyntaxTree.ParseText(s, ParseOptions, path: $"User{i}.cs")),
        References,
        new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable, warningLevel: 9999));

    public static GeneratorDriver Driver(string? rootNamespace, params AdditionalText[] files) => Driver(rootNamespace, null, files);

    /// <summary>A driver as in a build that passes <c>ProjectDir</c> (the SDK does; hint names are relative to it).</summary>
    public static GeneratorDriver Driver(string? rootNamespace, string? projectDir, AdditionalText[] files) => CSharpGeneratorDriver.Create(
        new[] { new NnGenerator().AsSourceGenerator() },
        files,
        ParseOptions,
        new OptionsProvider(rootNamespace, projectDir),
        new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: true));

    /// <summary>Runs the generator over the .nn files and returns the run and the compilation with its output.</summary>
    public static (GeneratorDriverRunResult Run, Compilation Output) Run(string? rootNamespace, AdditionalText[] files, params string[] userSources)
    {
        var driver = Driver(rootNamespace, files).RunGeneratorsAndUpdateCompilation(Compilation(userSources), out var output, out _);
        return (driver.GetRunResult(), output);
    }
}

internal sealed class NnText(string path, string text) : AdditionalText
{
    public override string Path { get; } = path;

    public override SourceText GetText(CancellationToken cancellationToken = default) => SourceText.From(text);
}

internal sealed class OptionsProvider(string? rootNamespace, string? projectDir = null) : AnalyzerConfigOptionsProvider
{
    // Keys compare as in a build's .editorconfig, ignoring case (the SDK writes build_property.ProjectDir).
    public override AnalyzerConfigOptions GlobalOptions { get; } = new Options(ImmutableDictionary.Create<string, string>(AnalyzerConfigOptions.KeyComparer)
        .AddRange(new[] { ("build_property.RootNamespace", rootNamespace), ("build_property.projectdir", projectDir) }
            .Where(p => p.Item2 is not null)
            .Select(p => new KeyValuePair<string, string>(p.Item1, p.Item2!))));

    public override AnalyzerConfigOptions GetOptions(SyntaxTree tree) => GlobalOptions;

    public override AnalyzerConfigOptions GetOptions(AdditionalText textFile) => GlobalOptions;

    private sealed class Options(ImmutableDictionary<string, string> values) : AnalyzerConfigOptions
    {
        public override bool TryGetValue(string key, out string value) => values.TryGetValue(key, out value!);
    }
}
