using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.RegularExpressions;
using Dsl.Compiler.Diagnostics;
using Dsl.Compiler.Emit;
using Dsl.Compiler.Lowering;
using Dsl.Compiler.Semantics;

namespace Dsl.Compiler
{
    /// <summary>One generated C# file: the class <paramref name="QualifiedName"/>, declared at <paramref name="NameSpan"/> of the .nn file.</summary>
    public sealed record GeneratedSource(string HintName, string Text, string QualifiedName, Text.SourceSpan NameSpan);

    /// <summary>What the build gets from one <c>.nn</c> file: C# for every valid model, and the diagnostics.</summary>
    public sealed record GenerationResult(IReadOnlyList<GeneratedSource> Sources, IReadOnlyList<NnDiagnostic> Diagnostics, IReadOnlyList<BoundModel> Models);

    /// <summary>
    /// The whole pipeline for one file, shared by the source generator, <c>nnc emit</c> and <c>nnc compare</c>.
    /// A model with errors yields a placeholder class with the same name and constructor, so that user code
    /// that mentions it compiles and the build shows only the <c>.nn</c> errors, not a cascade of C# ones.
    /// </summary>
    public static class CodeGeneration
    {
        private static readonly Regex ModelName = new(@"\bmodel\s+([\p{L}_][\p{L}\p{Nd}_]*)", RegexOptions.CultureInvariant);

        // When the file does not parse, the namespace is recovered the same way as the model names.
        private static readonly Regex NamespaceLine = new(@"^\s*namespace\s+([\p{L}_][\p{L}\p{Nd}_.]*)\s*;", RegexOptions.CultureInvariant | RegexOptions.Multiline);

        private static readonly Regex QualifiedName = new(@"^[\p{L}_][\p{L}\p{Nd}_]*(\.[\p{L}_][\p{L}\p{Nd}_]*)*$", RegexOptions.CultureInvariant);

        /// <summary>The project's RootNamespace when it is a usable C# namespace (MSBuild does not check), else none.</summary>
        public static string? UsableNamespace(string? rootNamespace) =>
            rootNamespace is not null && QualifiedName.IsMatch(rootNamespace) && !rootNamespace.Split('.').Any(p => CSharpNames.IsKeyword(p) || p == "global")
                ? rootNamespace
                : null;

        public static GenerationResult Generate(string text, string fileName, string? rootNamespace, string toolVersion = "0.1.0")
        {
            rootNamespace = UsableNamespace(rootNamespace);
            var result = NnCompiler.Compile(text, rootNamespace);
            var sources = new List<GeneratedSource>();
            var generated = new HashSet<string>(StringComparer.Ordinal);
            try
            {
                foreach (var model in result.Models)
                {
                    if (!generated.Add(model.Name)) continue;
                    sources.Add(new GeneratedSource(HintName(model.Namespace, model.Name), CSharpEmitter.Emit(Lowerer.Lower(model), fileName, toolVersion),
                        Qualified(model.Namespace, model.Name), model.Syntax.Name.Span));
                }
            }
            catch (Exception exception) when (exception is not OutOfMemoryException)
            {
                string where = exception.StackTrace?.Split('\n').FirstOrDefault()?.Trim() ?? "";
                var internalError = DiagnosticDescriptors.InternalError.At(new Text.SourceSpan(0, 0, 1, 1),
                    $"internal compiler error while emitting C#: {exception.GetType().Name}: {exception.Message} {where}; please report it with this file");
                return new GenerationResult(Array.Empty<GeneratedSource>(), result.Diagnostics.Concat(new[] { internalError }).ToList(), result.Models);
            }

            if (result.HasErrors)
            {
                string? ns = result.Syntax is { } parsed
                    ? parsed.Namespace is { } parts ? string.Join(".", parts.Select(p => p.Text)) : rootNamespace
                    : NamespaceLine.Match(text) is { Success: true } match ? match.Groups[1].Value : rootNamespace;
                ns = UsableNamespace(ns);
                var lines = new Text.LineMap(text);
                var names = result.Syntax is { } syntax
                    ? syntax.Models.Select(m => (m.Name.Text, m.Name.Span))
                    : ModelName.Matches(text).Cast<Match>().Select(m => (m.Groups[1].Value, lines.Span(m.Groups[1].Index, m.Groups[1].Length)));
                foreach (var (name, span) in names)
                {
                    if (CSharpNames.ModelNameProblem(name, ns) is not null || !generated.Add(name)) continue;
                    sources.Add(new GeneratedSource(HintName(ns, name), Placeholder(name, ns, fileName, toolVersion), Qualified(ns, name), span));
                }
            }

            return new GenerationResult(sources, result.Diagnostics, result.Models);
        }

        public static string HintName(string? ns, string model) => Qualified(ns, model) + ".g.cs";

        private static string Qualified(string? ns, string model) => (ns is null ? "" : ns + ".") + model;

        /// <summary>Same name, base class and constructor as the real model; every call throws. Never runs: the build fails on the .nn errors.</summary>
        private static string Placeholder(string name, string? ns, string fileName, string toolVersion)
        {
            var w = new IndentedWriter();
            w.Line("// <auto-generated/>");
            w.Line($"// Generated by Dsl.Generator {toolVersion} from {fileName}, which has errors: this placeholder only stops C# errors from piling up on top of them.");
            w.Line("#nullable enable");
            w.Line();
            IDisposable? scope = ns is null ? null : w.Block($"namespace {ns}");
            w.Line($"/// <summary><c>{name}</c> could not be compiled: see the errors reported for {fileName}.</summary>");
            w.Line($"[global::System.CodeDom.Compiler.GeneratedCode(\"Dsl.Generator\", \"{toolVersion}\")]");
            using (w.Block($"public sealed partial class {name} : {CSharpEmitter.Runtime}.CompiledModel"))
            {
                string fail = $"throw new global::System.InvalidOperationException(\"{name} did not compile: fix the errors in {fileName}.\")";
                w.Line("/// <summary>Unknown until the model compiles.</summary>");
                w.Line("public const int InputLength = 0;");
                w.Line("/// <summary>Unknown until the model compiles.</summary>");
                w.Line("public const int OutputLength = 0;");
                w.Line("/// <summary>Unknown until the model compiles.</summary>");
                w.Line("public const int ParameterCount = 0;");
                w.Line("/// <summary>Unknown until the model compiles.</summary>");
                w.Line("public static global::System.ReadOnlySpan<int> InputShape => default;");
                w.Line("/// <summary>Unknown until the model compiles.</summary>");
                w.Line("public static global::System.ReadOnlySpan<int> OutputShape => default;");
                w.Line("/// <summary>Fails: the model did not compile.</summary>");
                w.Line($"public {name}(int maxBatch, int seed = 0, int threads = 0) : base(maxBatch, global::System.Array.Empty<{CSharpEmitter.Runtime}.TensorInfo>(), threads) => {fail};");
                w.Line("/// <inheritdoc/>");
                w.Line($"public override string Name => \"{name}\";");
                w.Line("/// <inheritdoc/>");
                w.Line("public override int SampleInputLength => 0;");
                w.Line("/// <inheritdoc/>");
                w.Line("public override int SampleOutputLength => 0;");
                w.Line("/// <inheritdoc/>");
                w.Line("public override global::System.Collections.Generic.IReadOnlyList<int> SampleInputShape => global::System.Array.Empty<int>();");
                w.Line("/// <inheritdoc/>");
                w.Line("public override global::System.Collections.Generic.IReadOnlyList<int> SampleOutputShape => global::System.Array.Empty<int>();");
                w.Line("/// <inheritdoc/>");
                w.Line($"public override void ResetParameters(int seed) => {fail};");
                w.Line("/// <inheritdoc/>");
                w.Line($"protected override void ForwardCore(global::System.ReadOnlySpan<float> input, global::System.Span<float> output, int batch) => {fail};");
                w.Line("/// <inheritdoc/>");
                w.Line($"protected override void BackwardCore(global::System.ReadOnlySpan<float> outputGrad, global::System.Span<float> inputGrad, int batch) => {fail};");
                w.Line("/// <inheritdoc/>");
                w.Line($"protected override void InferCore(global::System.ReadOnlySpan<float> input, global::System.Span<float> output, int batch, int version) => {fail};");
            }

            scope?.Dispose();
            return w.ToString();
        }
    }
}
