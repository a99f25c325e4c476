using System;
using System.Collections.Concurrent;
using System.Linq;
using Dsl.Compiler.Emit;
using Dsl.Compiler.Text;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace Dsl.Generator
{
    /// <summary>
    /// .nn additional files → one C# class per model, with the front end's errors and warnings
    /// located in the .nn file. Pipeline: read each file (<see cref="FilesStep"/>), add the
    /// project's RootNamespace, compile to sources and diagnostics (<see cref="CompiledStep"/>).
    /// </summary>
    [Generator(LanguageNames.CSharp)]
    public sealed class NnGenerator : IIncrementalGenerator
    {
        /// <summary>Tracking name of the step that reads .nn files.</summary>
        public const string FilesStep = "NnFiles";

        /// <summary>Tracking name of the step that compiles them.</summary>
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

            var compiled = files.Combine(rootNamespace)
                .Select(static (input, cancellationToken) => Compile(input.Left, input.Right))
                .WithTrackingName(CompiledStep);

            context.RegisterSourceOutput(compiled, static (context, output) =>
            {
                foreach (var diagnostic in output.Diagnostics) context.ReportDiagnostic(ToDiagnostic(diagnostic));
                foreach (var source in output.Sources) context.AddSource(source.HintName, SourceText.From(source.Text, System.Text.Encoding.UTF8));
            });
        }

        private static NnOutput Compile(NnFile file, string? rootNamespace)
        {
            string fileName = FileName(file.Path);
            var result = CodeGeneration.Generate(file.Text, fileName, rootNamespace, Version);
            var lines = new LineMap(file.Text);
            var diagnostics = result.Diagnostics.Select(d =>
            {
                var (endLine, endColumn) = lines.Locate(Math.Min(d.Span.End, file.Text.Length));
                string title = Dsl.Compiler.Diagnostics.DiagnosticDescriptors.All.FirstOrDefault(x => x.Id == d.Id)?.Title ?? d.Id;
                return new DiagnosticInfo(d.Id, d.IsError, title, d.Message, file.Path, d.Span.Start, d.Span.Length,
                    d.Span.Line - 1, d.Span.Column - 1, endLine - 1, endColumn - 1);
            });
            // Two files may declare models of the same name; keep hint names unique so AddSource never throws.
            var sources = result.Sources.Select(s => new SourceInfo(Unique(fileName, s.HintName), s.Text));
            return new NnOutput(EquatableArray.From(sources), EquatableArray.From(diagnostics));
        }

        private static string Unique(string fileName, string hintName) =>
            System.IO.Path.GetFileNameWithoutExtension(fileName) + "." + hintName;

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
            var location = Location.Create(info.Path, new TextSpan(info.Start, info.Length),
                new LinePositionSpan(new LinePosition(info.StartLine, info.StartColumn), new LinePosition(info.EndLine, info.EndColumn)));
            return Diagnostic.Create(descriptor, location, info.Message);
        }
    }
}
