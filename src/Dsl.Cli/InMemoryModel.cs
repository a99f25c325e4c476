using System.Reflection;
using System.Runtime.Loader;
using Dsl.Compiler;
using Dsl.Runtime;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace Dsl.Cli;

/// <summary>Compiles a .nn model to C# and then, with Roslyn, to an assembly in memory: the generated class without a project.</summary>
public static class InMemoryModel
{
    /// <summary>The generated model named <paramref name="modelName"/> (or the file's only model), built for <paramref name="maxBatch"/>.</summary>
    /// <exception cref="InvalidDataException">The .nn file has errors, or no such model.</exception>
    public static CompiledModel Create(string nnText, string fileName, string? modelName, int maxBatch)
    {
        var generation = CodeGeneration.Generate(nnText, fileName, "NncCompare");
        var errors = generation.Diagnostics.Where(d => d.IsError).ToList();
        if (errors.Count > 0)
            throw new InvalidDataException(string.Join(Environment.NewLine, errors.Select(d => d.Format(fileName))));

        var models = generation.Models;
        var model = modelName is null
            ? models.Count == 1 ? models[0] : throw new InvalidDataException($"{fileName} declares {models.Count} models ({string.Join(", ", models.Select(m => m.Name))}); name one with --model")
            : models.FirstOrDefault(m => m.Name == modelName) ?? throw new InvalidDataException($"{fileName} has no model '{modelName}'; it declares {string.Join(", ", models.Select(m => m.Name))}");

        return Load(generation.Sources.Select(s => (s.HintName, s.Text)), $"{model.Namespace}.{model.Name}", maxBatch);
    }

    /// <summary>Compiles generated C# (one or more files) in memory and builds <paramref name="typeName"/> for <paramref name="maxBatch"/>.</summary>
    /// <exception cref="InvalidOperationException">The code does not compile.</exception>
    public static CompiledModel Load(IEnumerable<(string Path, string Text)> sources, string typeName, int maxBatch)
    {
        var references = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Where(p => Path.GetFileName(p).StartsWith("System.", StringComparison.Ordinal) || Path.GetFileName(p) is "netstandard.dll" or "mscorlib.dll")
            .Append(typeof(CompiledModel).Assembly.Location)
            .Select(p => MetadataReference.CreateFromFile(p));
        var trees = sources.Select(s => CSharpSyntaxTree.ParseText(s.Text, new CSharpParseOptions(LanguageVersion.Latest), path: s.Path));
        var compilation = CSharpCompilation.Create("NncCompare." + typeName, trees, references,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, optimizationLevel: OptimizationLevel.Release, nullableContextOptions: NullableContextOptions.Enable));
        using var image = new MemoryStream();
        var emitted = compilation.Emit(image);
        if (!emitted.Success)
        {
            // The generator's own output failed to compile: a bug of ours, reported with Roslyn's words.
            throw new InvalidOperationException("generated code did not compile:" + Environment.NewLine +
                string.Join(Environment.NewLine, emitted.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error)));
        }

        image.Position = 0;
        var context = new AssemblyLoadContext("nnc-compare", isCollectible: true);
        var assembly = context.LoadFromStream(image);
        var type = assembly.GetType(typeName) ?? throw new InvalidOperationException($"no type {typeName} in the compiled model");
        try
        {
            return (CompiledModel)Activator.CreateInstance(type, maxBatch, 0, 0)!;
        }
        catch (TargetInvocationException exception) when (exception.InnerException is not null)
        {
            throw exception.InnerException;
        }
    }
}
