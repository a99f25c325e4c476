using System;
using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Linq;
using System.Text;
using System.Threading;
using Dsl.Compiler.Emit;
using Dsl.Compiler.Text;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace Dsl.Generator
{
    /// <summary>
    /// .nn additional files → one C# class per model, with the front end's errors and warnings
    /// located in the .nn file. Pipeline: read each file (<see cref="FilesStep"/>), add the
    /// project's RootNamespace, compile to sources and diagnostics (<see cref="CompiledStep"/>),
    /// then check across files that no two declare the same class.
    /// </summary>
    [Generator(LanguageNames.CSharp)]
    public sealed class NnGenerator : IIncrementalGenerator
    {
        /// <summary>Tracking name of the step that reads .nn files.</summary>
        public const string FilesStep = "NnFiles";

        /// <summary>Tracking name of the step that analyzes them (sources, diagnostics, declarations with positions).</summary>
        public const string AnalyzedStep = "NnAnalyzed";

        /// <summary>Tracking name of the step that holds the generated sources alone.</summary>
        public const string CompiledStep = "NnCompiled";

        private const string Version = "0.1.0";

        public void Initialize(IncrementalGeneratorInitializationContext context)
        {
            var rootNamespace = context.AnalyzerConfigOptionsProvider.Select(static (options, _) =>
                options.GlobalOptions.TryGetValue("build_property.RootNamespace", out var ns) && !string.IsNullOrWhiteSpace(ns) ? ns.Trim() : null);

            var files = context.AdditionalTextsProvider
                .Where(static file => file.Path.EndsWith(".nn", StringComparison.OrdinalIgnoreCase))
                .Select(static (file, cancellationToken) => new NnFile(file.Path, file.GetText(cancellationToken)?.ToString() ?? string.Empty))
                .WithTrackingName(FilesStep);

            var analyzed = files.Combine(rootNamespace)
                .Select(static (input, cancellationToken) => Analyze(input.Left, input.Right, cancellationToken))
                .WithTrackingName(AnalyzedStep);

            var generated = analyzed
                .Select(static (analysis, _) => new NnGenerated(analysis.Path, analysis.Sources))
                .WithTrackingName(CompiledStep);

            // Every class any file declares: two files declaring the same class would give C# a cascade of errors,
            // so the class is generated once, from the file whose path sorts first, and the others get NN1016.
            var declared = analyzed.SelectMany(static (analysis, _) => analysis.Declarations).Collect();

            context.RegisterSourceOutput(analyzed.Select(static (analysis, _) => analysis.Diagnostics), static (context, diagnostics) =>
            {
                foreach (var diagnostic in diagnostics) context.ReportDiagnostic(ToDiagnostic(diagnostic));
            });

            context.RegisterSourceOutput(declared, static (context, all) =>
            {
                foreach (var declaration in all)
                {
                    var owner = Owner(all, declaration.QualifiedName);
                    if (owner.Path == declaration.Declaration.Path) continue;
                    context.ReportDiagnostic(ToDiagnostic(new DiagnosticInfo("NN1016", true, "Duplicate model name",
                        $"model '{declaration.QualifiedName}' is also declared in {FileName(owner.Path)}({owner.StartLine + 1},{owner.StartColumn + 1}); two models of a project cannot share a class name",
                        declaration.Declaration)));
                }
            });

            context.RegisterSourceOutput(generated.Combine(declared), static (context, input) =>
            {
                var (output, all) = input;
                foreach (var source in output.Sources)
                {
                    if (Owner(all, source.QualifiedName).Path != output.Path) continue;
                    context.AddSource(source.HintName, SourceText.From(source.Text, Encoding.UTF8));
                }
            });
        }

        /// <summary>The declaration that keeps the class: the first by path, then position, so every build picks the same one.</summary>
        private static LocationInfo Owner(ImmutableArray<DeclaredClass> all, string qualifiedName) =>
            all.Where(d => d.QualifiedName == qualifiedName)
                .Select(d => d.Declaration)
                .OrderBy(l => l.Path, StringComparer.Ordinal)
                .ThenBy(l => l.Start)
                .First();

        private static NnAnalysis Analyze(NnFile file, string? rootNamespace, CancellationToken cancellationToken)
        {
            cancellationToken.ThrowIfCancellationRequested();
            string fileName = FileName(file.Path);
            var result = CodeGeneration.Generate(file.Text, fileName, rootNamespace, Version);
            var lines = new LineMap(file.Text);
            LocationInfo Locate(SourceSpan span)
            {
                var (endLine, endColumn) = lines.Locate(Math.Min(span.End, file.Text.Length));
                return new LocationInfo(file.Path, span.Start, span.Length, span.Line - 1, span.Column - 1, endLine - 1, endColumn - 1);
            }

            var diagnostics = result.Diagnostics.Select(d =>
            {
                string title = Dsl.Compiler.Diagnostics.DiagnosticDescriptors.All.FirstOrDefault(x => x.Id == d.Id)?.Title ?? d.Id;
                return new DiagnosticInfo(d.Id, d.IsError, title, d.Message, Locate(d.Span));
            });
            // Hint names must be unique across the project and use only safe characters: the file's stem
            // (sanitized) and a hash of its path keep lenet.nn and sub/lenet.nn apart.
            string prefix = Sanitize(System.IO.Path.GetFileNameWithoutExtension(fileName)) + "." + Fnv1a(file.Path).ToString("x8", System.Globalization.CultureInfo.InvariantCulture);
            var sources = result.Sources.Select(s => new SourceInfo(prefix + "." + Sanitize(s.HintName), s.Text, s.QualifiedName));
            var declarations = result.Sources.Select(s => new DeclaredClass(s.QualifiedName, Locate(s.NameSpan)));
            return new NnAnalysis(file.Path, EquatableArray.From(sources), EquatableArray.From(diagnostics), EquatableArray.From(declarations));
        }

        private static string Sanitize(string name)
        {
            var builder = new StringBuilder(name.Length);
            foreach (char c in name) builder.Append(c is >= 'a' and <= 'z' or >= 'A' and <= 'Z' or >= '0' and <= '9' or '.' or '_' or '-' ? c : '_');
            return builder.ToString();
        }

        private static uint Fnv1a(string text)
        {
            uint hash = 2166136261;
            foreach (char c in text)
            {
                hash ^= c;
                hash *= 16777619;
            }

            return hash;
        }

        private static string FileName(string path)
        {
            int slash = Math.Max(path.LastIndexOf('/'), path.LastIndexOf('\\'));
            return slash >= 0 ? path.Substring(slash + 1) : path;
        }

        private static readonly ConcurrentDictionary<(string, bool, string), DiagnosticDescriptor> Descriptors = new();

        private static Diagnostic ToDiagnostic(DiagnosticInfo info)
        {
            var descriptor = Descriptors.GetOrAdd((info.Id, info.IsError, info.Title), key => new DiagnosticDescriptor(
                key.Item1, key.Item3, "{0}", "Dsl.Nn", key.Item2 ? DiagnosticSeverity.Error : DiagnosticSeverity.Warning,
                isEnabledByDefault: true));
            var l = info.Location;
            var location = Location.Create(l.Path, new TextSpan(l.Start, l.Length),
                new LinePositionSpan(new LinePosition(l.StartLine, l.StartColumn), new LinePosition(l.EndLine, l.EndColumn)));
            return Diagnostic.Create(descriptor, location, info.Message);
        }
    }
}
