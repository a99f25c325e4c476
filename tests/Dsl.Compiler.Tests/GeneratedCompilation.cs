using System.Reflection;
using System.Runtime.Loader;
using Dsl.Compiler.Emit;
using Dsl.Runtime;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace Dsl.Compiler.Tests;

/// <summary>
/// Builds what the generator emits for one or more <c>.nn</c> files into one assembly in memory, as a project build
/// would (Roslyn, nullable on, warnings not errors), and runs the models it holds.
/// </summary>
internal static class GeneratedCompilation
{
    private static readonly Lazy<MetadataReference[]> References = new(() =>
        ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Where(p => Path.GetFileName(p).StartsWith("System.", StringComparison.Ordinal) || Path.GetFileName(p) is "netstandard.dll" or "mscorlib.dll")
            .Append(typeof(CompiledModel).Assembly.Location)
            .Select(p => (MetadataReference)MetadataReference.CreateFromFile(p))
            .ToArray());

    /// <summary>Roslyn's errors for the sources (empty when they build), and the loaded assembly when they do.</summary>
    public static (IReadOnlyList<string> Errors, Assembly? Assembly) Build(IEnumerable<GeneratedSource> sources, bool load = true)
    {
        var parse = new CSharpParseOptions(LanguageVersion.Latest);
        var trees = sources.Select((s, i) => CSharpSyntaxTree.ParseText(s.Text, parse, path: i + "." + s.HintName)).ToList();
        var compilation = CSharpCompilation.Create("Fuzz" + Guid.NewGuid().ToString("N"), trees, References.Value,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, optimizationLevel: OptimizationLevel.Debug,
                nullableContextOptions: NullableContextOptions.Enable));
        using var image = new MemoryStream();
        var emitted = load ? compilation.Emit(image) : null;
        var errors = (emitted?.Diagnostics ?? compilation.GetDiagnostics())
            .Where(d => d.Severity == DiagnosticSeverity.Error)
            .Select(d => d.ToString())
            .ToList();
        if (errors.Count > 0 || !load) return (errors, null);
        image.Position = 0;
        return (errors, new AssemblyLoadContext("fuzz", isCollectible: true).LoadFromStream(image));
    }

    /// <summary>The generated sources of a file that must compile clean.</summary>
    public static IReadOnlyList<GeneratedSource> Generate(string nn, string fileName = "fuzz.nn", string? rootNamespace = null)
    {
        var generation = CodeGeneration.Generate(nn, fileName, rootNamespace);
        var errors = generation.Diagnostics.Where(d => d.IsError).ToList();
        Assert.True(errors.Count == 0, string.Join("\n", errors.Select(d => d.Format(fileName))) + "\n" + nn);
        return generation.Sources;
    }

    /// <summary>
    /// Builds the model, then trains it one step and infers at batch 2: Forward, Backward (input gradient included),
    /// Infer. Every output must be finite.
    /// </summary>
    public static void Run(Type type, int seed = 1)
    {
        CompiledModel model;
        try
        {
            model = (CompiledModel)Activator.CreateInstance(type, 2, seed, 1)!;
        }
        catch (TargetInvocationException exception) when (exception.InnerException is not null)
        {
            throw exception.InnerException;
        }

        const int batch = 2;
        var random = new Random(seed);
        var input = new float[batch * model.SampleInputLength];
        var output = new float[batch * model.SampleOutputLength];
        var outputGrad = new float[output.Length];
        var inputGrad = new float[input.Length];
        for (int i = 0; i < input.Length; i++) input[i] = (float)(random.NextDouble() * 2 - 1);
        for (int i = 0; i < outputGrad.Length; i++) outputGrad[i] = (float)(random.NextDouble() * 2 - 1);

        model.Forward(input, output, batch);
        AssertFinite(output, type.Name + ".Forward");
        model.ZeroGrad();
        model.Backward(outputGrad, inputGrad);
        AssertFinite(inputGrad, type.Name + ".Backward (input gradient)");
        AssertFinite(model.Gradients.ToArray(), type.Name + ".Backward (parameter gradients)");
        model.Infer(input, output, batch);
        AssertFinite(output, type.Name + ".Infer");
    }

    private static void AssertFinite(float[] values, string what)
    {
        int bad = Array.FindIndex(values, v => !float.IsFinite(v));
        Assert.True(bad < 0, $"{what}: element {bad} is {(bad < 0 ? 0 : values[bad])}");
    }
}
