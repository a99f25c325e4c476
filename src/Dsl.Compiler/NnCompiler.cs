using System;
using System.Collections.Generic;
using System.Linq;
using Dsl.Compiler.Diagnostics;
using Dsl.Compiler.Semantics;
using Dsl.Compiler.Syntax;
using Dsl.Compiler.Text;

namespace Dsl.Compiler
{
    /// <summary>Everything the front end learned about one file.</summary>
    public sealed record CompilationResult(FileSyntax? Syntax, IReadOnlyList<BoundModel> Models, IReadOnlyList<NnDiagnostic> Diagnostics)
    {
        public bool HasErrors => Diagnostics.Any(d => d.IsError);
    }

    /// <summary>The front end's entry point: text → syntax → bound models, with diagnostics. Never throws.</summary>
    public static class NnCompiler
    {
        public static CompilationResult Compile(string text, string? defaultNamespace = null)
        {
            try
            {
                var parsed = NnParser.Parse(text ?? string.Empty);
                if (parsed.File is null || parsed.Diagnostics.Any(d => d.IsError))
                    return new CompilationResult(parsed.File, Array.Empty<BoundModel>(), parsed.Diagnostics);

                var (bound, diagnostics) = Binder.Bind(parsed.File, defaultNamespace, text ?? string.Empty);
                var all = diagnostics.ToList();
                var models = ModelLimits.Check(bound, all);
                var ordered = all.OrderBy(d => d.Span.Start).ThenBy(d => d.Id, StringComparer.Ordinal).ToList();
                return new CompilationResult(parsed.File, models, ordered);
            }
            catch (Exception exception) when (exception is not OutOfMemoryException)
            {
                // A bug of ours must not crash the generator (which would silently emit nothing).
                var diagnostic = DiagnosticDescriptors.InternalError.At(new SourceSpan(0, 0, 1, 1),
                    $"internal compiler error: {exception.GetType().Name}: {exception.Message}; please report it with this file");
                return new CompilationResult(null, Array.Empty<BoundModel>(), new[] { diagnostic });
            }
        }
    }
}
