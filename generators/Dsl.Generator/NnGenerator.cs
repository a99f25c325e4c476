using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using System.Text;
using System.Threading;
using Dsl.Compiler;
using Dsl.Compiler.Text;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace Dsl.Generator
{
    /// <summary>
    /// .nn additional files → one C# class per model, with the front end's errors and warnings located in the .nn
    /// file. Per file: read it (<see cref="FilesStep"/>), compile it to sources and diagnostics
    /// (<see cref="AnalyzedStep"/>), then split that into the sources alone (<see cref="CompiledStep"/>) and the
    /// diagnostics alone (<see cref="DiagnosticsStep"/>). Across files: which file declares which class
    /// (<see cref="ClassesStep"/>, no positions) decides the sources each file keeps (<see cref="OwnedStep"/>), and a
    /// class declared by two files is NN1016 at the second (<see cref="ConflictsStep"/>).
    /// </summary>
    /// <remarks>
    /// Positions reach only the diagnostics. The sources quote their own file's lines in comments, so an edit that
    /// moves a line regenerates that file; nothing the other files' outputs depend on moves with it, so they stay cached.
    /// </remarks>
    [Generator(LanguageNames.CSharp)]
    public sealed class NnGenerator : IIncrementalGenerator
    {
        /// <summary>Tracking name of the step that reads .nn files.</summary>
        public const string FilesStep = "NnFiles";

        /// <summary>Tracking name of the step that analyzes them (sources, diagnostics, declarations with positions).</summary>
        public const string AnalyzedStep = "NnAnalyzed";

        /// <summary>Tracking name of the step that holds a file's generated sources alone.</summary>
        public const string CompiledStep = "NnCompiled";

        /// <summary>Tracking name of the step that holds a file's diagnostics alone.</summary>
        public const string DiagnosticsStep = "NnDiagnostics";

        /// <summary>Tracking name of the step that lists, for the whole project, which file declares which class (no positions).</summary>
        public const string ClassesStep = "NnClasses";

        /// <summary>Tracking name of the step that holds the sources a file keeps: those of the classes it owns.</summary>
        public const string OwnedStep = "NnOwned";

        /// <summary>Tracking name of the step that finds classes declared by two files (NN1016, with positions).</summary>
        public const string ConflictsStep = "NnConflicts";

        private const string Version = "0.1.0";

        public void Initialize(IncrementalGeneratorInitializationContext context)
        {
            var options = context.AnalyzerConfigOptionsProvider.Select(static (provider, _) => new NnOptions(
                provider.GlobalOptions.TryGetValue("build_property.RootNamespace", out var ns) && !string.IsNullOrWhiteSpace(ns) ? ns.Trim() : null,
                provider.GlobalOptions.TryGetValue("build_property.ProjectDir", out var dir) && !string.IsNullOrWhiteSpace(dir) ? dir.Trim() : null));

            var files = context.AdditionalTextsProvider
                .Where(static file => file.Path.EndsWith(".nn", StringComparison.OrdinalIgnoreCase))
                .Select(static (file, cancellationToken) => new NnFile(file.Path, file.GetText(cancellationToken)?.ToString() ?? string.Empty))
                .WithTrackingName(FilesStep);

            var analyzed = files.Combine(options)
                .Select(static (input, cancellationToken) => Analyze(input.Left, input.Right, cancellationToken))
                .WithTrackingName(AnalyzedStep);

            var generated = analyzed
                .Select(static (analysis, _) => new NnGenerated(analysis.Path, analysis.Sources))
                .WithTrackingName(CompiledStep);

            var diagnostics = analyzed
                .Select(static (analysis, _) => analysis.Diagnostics)
                .WithTrackingName(DiagnosticsStep);

            // Two files declaring the same class would give C# a cascade of errors, so the class is generated once,
            // from the file whose path sorts first. Which file that is depends on paths alone, not on positions.
            var classes = generated
                .SelectMany(static (file, _) => file.Sources.Select(source => new ClassFile(source.QualifiedName, file.Path)))
                .Collect()
                .Select(static (all, _) => EquatableArray.From(all))
                .WithTrackingName(ClassesStep);

            var owned = generated.Combine(classes)
                .Select(static (input, _) => new NnGenerated(input.Left.Path,
                    EquatableArray.From(input.Left.Sources.Where(source => Owner(input.Right, source.QualifiedName) == input.Left.Path))))
                .WithTrackingName(OwnedStep);

            var conflicts = analyzed
                .SelectMany(static (analysis, _) => analysis.Declarations)
                .Collect()
                .Select(static (all, _) => Conflicts(all))
                .WithTrackingName(ConflictsStep);

            context.RegisterSourceOutput(owned, static (context, file) =>
            {
                foreach (var source in file.Sources) context.AddSource(source.HintName, SourceText.From(source.Text, Encoding.UTF8));
            });

            context.RegisterSourceOutput(diagnostics, static (context, all) =>
            {
                foreach (var diagnostic in all) context.ReportDiagnostic(ToDiagnostic(diagnostic));
            });

            context.RegisterSourceOutput(conflicts, static (context, all) =>
            {
                foreach (var diagnostic in all) context.ReportDiagnostic(ToDiagnostic(diagnostic));
            });
        }

        /// <summary>The file that keeps a class: the first by path (ordinal), so every build picks the same one.</summary>
        private static string Owner(EquatableArray<ClassFile> all, string qualifiedName)
        {
            string? owner = null;
            foreach (var entry in all)
            {
                if (entry.QualifiedName == qualifiedName && (owner is null || string.CompareOrdinal(entry.Path, owner) < 0)) owner = entry.Path;
            }

            return owner ?? string.Empty;
        }

        /// <summary>NN1016 at every declaration of a class but its owner's, naming where the owner declares it.</summary>
        private static EquatableArray<DiagnosticInfo> Conflicts(ImmutableArray<DeclaredClass> all)
        {
            var found = new List<DiagnosticInfo>();
            foreach (var group in all.GroupBy(d => d.QualifiedName, StringComparer.Ordinal))
            {
                if (group.Count() < 2) continue;
                var owner = group.Select(d => d.Declaration).OrderBy(l => l.Path, StringComparer.Ordinal).ThenBy(l => l.Start).First();
                foreach (var declaration in group)
                {
                    if (declaration.Declaration.Path == owner.Path) continue;
                    found.Add(new DiagnosticInfo(NnDiagnosticDescriptors.DuplicateModel.Id,
                        $"model '{declaration.QualifiedName}' is also declared in {FileName(owner.Path)}({owner.StartLine + 1},{owner.StartColumn + 1}); two models of a project cannot share a class name",
                        declaration.Declaration));
                }
            }

            return EquatableArray.From(found.OrderBy(d => d.Location.Path, StringComparer.Ordinal).ThenBy(d => d.Location.Start));
        }

        private static NnAnalysis Analyze(NnFile file, NnOptions options, CancellationToken cancellationToken)
        {
            cancellationToken.ThrowIfCancellationRequested();
            string fileName = FileName(file.Path);
            var result = CodeGeneration.Generate(file.Text, fileName, options.RootNamespace, Version);
            var lines = new LineMap(file.Text);
            LocationInfo Locate(SourceSpan span)
            {
                var (endLine, endColumn) = lines.Locate(Math.Min(span.End, file.Text.Length));
                return new LocationInfo(file.Path, span.Start, span.Length, span.Line - 1, span.Column - 1, endLine - 1, endColumn - 1);
            }

            var diagnostics = result.Diagnostics.Select(d => new DiagnosticInfo(d.Id, d.Message, Locate(d.Span)) { Additional = EquatableArray.From(d.AdditionalSpans.Select(Locate)) });
            var hintNames = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            string prefix = Sanitize(ProjectRelativePath(file.Path, options.ProjectDirectory));
            var sources = result.Sources.Select(s => new SourceInfo(UniqueHintName(hintNames, prefix + "." + Sanitize(s.HintName)), s.Text, s.QualifiedName));
            var declarations = result.Sources.Select(s => new DeclaredClass(s.QualifiedName, Locate(s.NameSpan)));
            return new NnAnalysis(file.Path, EquatableArray.From(sources), EquatableArray.From(diagnostics), EquatableArray.From(declarations));
        }

        /// <summary>
        /// The path from the project's folder (<c>Models/lenet.nn</c>), the same in every clone; a file outside the
        /// project (a link), or a build that does not pass ProjectDir, gives the file name alone.
        /// </summary>
        internal static string ProjectRelativePath(string path, string? projectDirectory)
        {
            string normalized = path.Replace('\\', '/');
            if (projectDirectory is { Length: > 0 })
            {
                string directory = projectDirectory.Replace('\\', '/');
                if (!directory.EndsWith("/", StringComparison.Ordinal)) directory += "/";
                if (normalized.Length > directory.Length && normalized.StartsWith(directory, StringComparison.OrdinalIgnoreCase))
                    return normalized.Substring(directory.Length);
            }

            return FileName(normalized);
        }

        /// <summary>
        /// Roslyn compares hint names ignoring case; classes whose names differ only in case (Net, NET) in one file
        /// get a counter, in declaration order. Across files the path prefix keeps them apart.
        /// </summary>
        private static string UniqueHintName(HashSet<string> used, string hintName)
        {
            if (used.Add(hintName)) return hintName;
            string stem = hintName.EndsWith(".g.cs", StringComparison.Ordinal) ? hintName.Substring(0, hintName.Length - 5) : hintName;
            for (int n = 2; ; n++)
            {
                string candidate = stem + "." + n.ToString(System.Globalization.CultureInfo.InvariantCulture) + ".g.cs";
                if (used.Add(candidate)) return candidate;
            }
        }

        /// <summary>Letters, digits, '.', '_' and '-' stay; anything else (a '/', a space, 'é') becomes '_'.</summary>
        private static string Sanitize(string name)
        {
            var builder = new StringBuilder(name.Length);
            foreach (char c in name) builder.Append(c is >= 'a' and <= 'z' or >= 'A' and <= 'Z' or >= '0' and <= '9' or '.' or '_' or '-' ? c : '_');
            return builder.ToString();
        }

        private static string FileName(string path)
        {
            int slash = Math.Max(path.LastIndexOf('/'), path.LastIndexOf('\\'));
            return slash >= 0 ? path.Substring(slash + 1) : path;
        }

        private static Diagnostic ToDiagnostic(DiagnosticInfo info)
        {
            static Location ToLocation(LocationInfo l) => Location.Create(l.Path, new TextSpan(l.Start, l.Length),
                new LinePositionSpan(new LinePosition(l.StartLine, l.StartColumn), new LinePosition(l.EndLine, l.EndColumn)));
            return Diagnostic.Create(NnDiagnosticDescriptors.For(info.Id), ToLocation(info.Location), info.Additional.Select(ToLocation), info.Message);
        }
    }
}
