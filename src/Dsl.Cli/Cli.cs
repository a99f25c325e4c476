using Dsl.Compiler;
using Dsl.Compiler.Semantics;

namespace Dsl.Cli;

/// <summary>The <c>nnc</c> commands, written against TextWriters so tests can run them in process.</summary>
public static class Cli
{
    public const string Usage = """
        usage:
          nnc check FILE...                      report errors and warnings (exit 1 on any error)
          nnc summary FILE [--model NAME] [--format text|json]
                                                 per-layer table: shapes, parameters, FLOPs, memory
          nnc emit FILE [--namespace NS]         print the C# the source generator produces
          nnc compare MODEL.nn BUNDLE.safetensors [--model NAME] [--tolerance 1e-4] [--allow-missing]
                                                 run the model on a PyTorch reference bundle, compare every tensor
                                                 (--allow-missing: pass although the bundle lacks some references)
          nnc export pytorch FILE [--model NAME] [-o FILE.py]
                                                 a PyTorch nn.Module per model (same state_dict keys), safetensors load/save
                                                 (to stdout without -o)
          nnc export onnx FILE --weights W.safetensors [--model NAME] [-o FILE.onnx]
                                                 the inference graph with those weights (opset 17, symbolic batch;
                                                 without -o, FILE's name with .onnx)
        """;

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr, bool plain)
    {
        if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
        {
            stdout.WriteLine(Usage);
            return args.Length == 0 ? 2 : 0;
        }

        try
        {
            return args[0] switch
            {
                "check" => Check(args.Skip(1).ToList(), stdout, stderr),
                "summary" => Summary(args.Skip(1).ToList(), stdout, stderr, plain),
                "emit" => Emit(args.Skip(1).ToList(), stdout, stderr),
                "compare" => Compare.Run(args.Skip(1).ToList(), stdout, stderr, plain),
                "export" => Export.Run(args.Skip(1).ToList(), stdout, stderr),
                _ => UsageError(stderr, $"unknown command '{args[0]}'" + DidYouMean(args[0], "check", "summary", "emit", "compare", "export")),
            };
        }
        catch (UsageException exception)
        {
            return UsageError(stderr, exception.Message);
        }
        catch (IOException exception)
        {
            stderr.WriteLine($"nnc: {exception.Message}");
            return 1;
        }
        catch (UnauthorizedAccessException exception)
        {
            stderr.WriteLine($"nnc: {exception.Message}");
            return 1;
        }
    }

    internal static int UsageError(TextWriter stderr, string message)
    {
        stderr.WriteLine($"nnc: {message}");
        stderr.WriteLine(Usage);
        return 2;
    }

    private static int Check(List<string> files, TextWriter stdout, TextWriter stderr)
    {
        if (files.Count == 0) return UsageError(stderr, "check needs at least one .nn file");
        int errors = 0, warnings = 0;
        foreach (var file in files)
        {
            var result = NnCompiler.Compile(File.ReadAllText(file));
            foreach (var diagnostic in result.Diagnostics)
            {
                stdout.WriteLine(diagnostic.Format(file));
                if (diagnostic.IsError) errors++;
                else warnings++;
            }
        }

        stdout.WriteLine($"{files.Count} file(s): {errors} error(s), {warnings} warning(s)");
        return errors > 0 ? 1 : 0;
    }

    private static int Emit(List<string> args, TextWriter stdout, TextWriter stderr)
    {
        var options = Options.Parse(args, "--namespace");
        if (options.Positional.Count != 1) return UsageError(stderr, "emit takes one .nn file");
        string file = options.Positional[0];
        options.Named.TryGetValue("--namespace", out var ns);
        var result = Dsl.Compiler.CodeGeneration.Generate(File.ReadAllText(file), Path.GetFileName(file), ns);
        foreach (var diagnostic in result.Diagnostics) stderr.WriteLine(diagnostic.Format(file));
        foreach (var source in result.Sources)
        {
            stdout.WriteLine($"// ---- {source.HintName}");
            stdout.Write(source.Text);
        }

        return result.Diagnostics.Any(d => d.IsError) ? 1 : 0;
    }

    private static int Summary(List<string> args, TextWriter stdout, TextWriter stderr, bool plain)
    {
        var options = Options.Parse(args, "--model", "--format");
        if (options.Positional.Count != 1) return UsageError(stderr, "summary takes one .nn file");
        string format = options.Named.TryGetValue("--format", out var f) ? f : "text";
        if (format is not ("text" or "json")) return UsageError(stderr, $"--format takes text or json, not '{format}'" + DidYouMean(format, "text", "json"));
        string file = options.Positional[0];
        var result = NnCompiler.Compile(File.ReadAllText(file));
        foreach (var diagnostic in result.Diagnostics) stderr.WriteLine(diagnostic.Format(file));
        if (result.HasErrors) return 1;

        options.Named.TryGetValue("--model", out var wanted);
        var models = result.Models.Where(m => wanted is null || m.Name == wanted).ToList();
        if (models.Count == 0)
        {
            stderr.WriteLine($"nnc: no model '{wanted}' in {file}; it declares {string.Join(", ", result.Models.Select(m => m.Name))}"
                + DidYouMean(wanted!, result.Models.Select(m => m.Name).ToArray()));
            return 1;
        }

        if (format == "json")
        {
            ModelSummary.WriteJson(models, stdout);
            return 0;
        }

        foreach (var model in models)
        {
            var table = ModelSummary.Build(model);
            if (plain) ModelSummary.WritePlain(table, stdout);
            else ModelSummary.WriteRich(table);
        }

        return 0;
    }

    /// <summary>"; did you mean 'x'?" for the candidate nearest <paramref name="name"/> (the compiler's edit distance), or "".</summary>
    internal static string DidYouMean(string name, params string[] candidates) =>
        Dsl.Compiler.Ops.OpRegistry.Closest(name, candidates) is { } closest ? $"; did you mean '{closest}'?" : "";
}

/// <summary>A command line nnc cannot make sense of: exit code 2 and the usage.</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>Positional arguments and <c>--key value</c> options.</summary>
internal sealed record Options(List<string> Positional, Dictionary<string, string> Named)
{
    public static Options Parse(IEnumerable<string> args, params string[] valued)
    {
        var positional = new List<string>();
        var named = new Dictionary<string, string>(StringComparer.Ordinal);
        using var e = args.GetEnumerator();
        while (e.MoveNext())
        {
            if (valued.Contains(e.Current))
            {
                string key = e.Current;
                named[key] = e.MoveNext() && !e.Current.StartsWith("--", StringComparison.Ordinal) ? e.Current : throw new UsageException($"{key} needs a value");
            }
            else if (e.Current.StartsWith("--", StringComparison.Ordinal))
            {
                throw new UsageException($"unknown option '{e.Current}'" + Cli.DidYouMean(e.Current, valued));
            }
            else
            {
                positional.Add(e.Current);
            }
        }

        return new Options(positional, named);
    }
}
