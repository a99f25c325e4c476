using System.Reflection;
using Dsl.Compiler;
using Dsl.Compiler.Export;
using Dsl.Runtime;

namespace Dsl.Cli;

/// <summary>
/// <c>nnc export pytorch MODEL.nn [--model NAME] [-o FILE.py]</c> and
/// <c>nnc export onnx MODEL.nn --weights W.safetensors [--model NAME] [-o FILE.onnx]</c>. A file with errors prints its
/// diagnostics and exits 1; so do weights that do not match the model (the first key that differs, both shapes).
/// </summary>
public static class Export
{
    /// <summary>The version written into exported files: nnc's own.</summary>
    public static string ToolVersion =>
        typeof(Export).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    public static int Run(List<string> args, TextWriter stdout, TextWriter stderr)
    {
        if (args.Count == 0 || args[0] is not ("pytorch" or "onnx"))
        {
            string given = args.Count == 0 ? "nothing" : $"'{args[0]}'";
            return Cli.UsageError(stderr, $"export takes a format, pytorch or onnx, not {given}" + (args.Count == 0 ? "" : Cli.DidYouMean(args[0], "pytorch", "onnx")));
        }

        string format = args[0];
        var rest = args.Skip(1).Select(a => a == "-o" ? "--output" : a).ToList();
        var options = format == "onnx" ? Options.Parse(rest, "--model", "--output", "--weights") : Options.Parse(rest, "--model", "--output");
        if (options.Positional.Count != 1) return Cli.UsageError(stderr, $"export {format} takes one .nn file");
        string file = options.Positional[0];
        var result = NnCompiler.Compile(File.ReadAllText(file));
        foreach (var diagnostic in result.Diagnostics) stderr.WriteLine(diagnostic.Format(file));
        if (result.HasErrors) return 1;

        options.Named.TryGetValue("--model", out var wanted);
        var models = result.Models.Where(m => wanted is null || m.Name == wanted).ToList();
        if (models.Count == 0)
        {
            stderr.WriteLine($"nnc: no model '{wanted}' in {file}; it declares {string.Join(", ", result.Models.Select(m => m.Name))}"
                + Cli.DidYouMean(wanted!, result.Models.Select(m => m.Name).ToArray()));
            return 1;
        }

        options.Named.TryGetValue("--output", out var output);
        try
        {
            if (format == "pytorch")
            {
                string text = PyTorchExporter.Export(models, Path.GetFileName(file), ToolVersion, result.Syntax?.Blocks);
                if (output is null) stdout.Write(text);
                else File.WriteAllText(output, text);
                return 0;
            }

            if (!options.Named.TryGetValue("--weights", out var weightsPath))
                return Cli.UsageError(stderr, "export onnx needs --weights W.safetensors (the model's state_dict: nnc exports an inference graph with its weights)");
            if (models.Count > 1)
            {
                stderr.WriteLine($"nnc: {file} declares {models.Count} models ({string.Join(", ", models.Select(m => m.Name))}); name one with --model");
                return 1;
            }

            var graph = OnnxGraphBuilder.Build(models[0]);
            using var weights = SafetensorsFile.Read(weightsPath);
            var bytes = OnnxWriter.Write(graph, weights, Path.GetFileName(weightsPath), ToolVersion);
            File.WriteAllBytes(output ?? Path.ChangeExtension(file, ".onnx"), bytes);
            return 0;
        }
        catch (Exception exception) when (exception is ExportException or InvalidDataException or NotSupportedException or FormatException)
        {
            stderr.WriteLine($"nnc: {exception.Message}");
            return 1;
        }
    }
}
