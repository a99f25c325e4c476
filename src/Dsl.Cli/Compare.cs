using System.Globalization;
using Dsl.Runtime;
using Spectre.Console;

namespace Dsl.Cli;

/// <summary>
/// <c>nnc compare MODEL.nn BUNDLE.safetensors</c>: runs the model on a PyTorch reference bundle and
/// checks every tensor the bundle expects (train.output, train.input_grad, train.grad.*, train.state.*,
/// eval.output, whichever it holds). This is what a user porting a PyTorch model runs.
/// </summary>
public static class Compare
{
    public sealed record Row(string Tensor, double MaxAbs, double MaxRel, double Tolerance, bool Pass, string Note = "");

    public static int Run(List<string> args, TextWriter stdout, TextWriter stderr, bool plain)
    {
        var options = Options.Parse(args, "--model", "--tolerance");
        if (options.Positional.Count != 2) return Cli.UsageError(stderr, "compare takes a .nn file and a .safetensors bundle");
        string nnPath = options.Positional[0], bundlePath = options.Positional[1];
        double factor = 1e-4;
        if (options.Named.TryGetValue("--tolerance", out var t)
            && !(double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out factor) && factor > 0 && double.IsFinite(factor)))
        {
            return Cli.UsageError(stderr, $"--tolerance takes a positive number such as 1e-4, not '{t}'");
        }

        SafetensorsFile bundle;
        CompiledModel model;
        try
        {
            bundle = SafetensorsFile.Read(bundlePath);
            options.Named.TryGetValue("--model", out var name);
            name ??= bundle.Metadata.TryGetValue("model", out var fromBundle) ? fromBundle : null;
            if (!bundle.TryGet("input", out var input) || input.Shape.Length == 0)
                throw new InvalidDataException("the bundle has no 'input' tensor with a batch dimension");
            int batch = input.Shape[0];
            if (bundle.Metadata.TryGetValue("batch", out var b) && b != batch.ToString(CultureInfo.InvariantCulture))
                throw new InvalidDataException($"the bundle's metadata says batch '{b}' but its input has {batch} samples");
            model = InMemoryModel.Create(File.ReadAllText(nnPath), Path.GetFileName(nnPath), name, batch);
        }
        catch (InvalidDataException exception)
        {
            stderr.WriteLine($"nnc: {exception.Message}");
            return 1;
        }
        catch (InvalidOperationException exception)
        {
            stderr.WriteLine($"nnc: {exception.Message}");
            return 1;
        }

        List<Row> rows;
        try
        {
            rows = Check(model, bundle, factor);
        }
        catch (InvalidDataException exception)
        {
            stderr.WriteLine($"nnc: {exception.Message}");
            return 1;
        }

        if (plain) WritePlain(rows, model, bundlePath, stdout);
        else WriteRich(rows, model, bundlePath);
        return rows.Count > 0 && rows.All(r => r.Pass) ? 0 : 1;
    }

    /// <summary>Loads the bundle's state into the model, replays what PyTorch did and compares each expected tensor.</summary>
    public static List<Row> Check(CompiledModel model, SafetensorsFile bundle, double factor)
    {
        var rows = new List<Row>();
        model.LoadState(bundle, allowExtra: true);
        var input = bundle["input"].ToFloatArray();
        int batch = input.Length / model.SampleInputLength;
        if (batch * model.SampleInputLength != input.Length || batch < 1)
            throw new InvalidDataException($"'input' has {input.Length} floats, not a whole batch of [{string.Join(", ", model.SampleInputShape)}]");

        bool expectsTraining = bundle.Tensors.Any(x => x.Name.StartsWith("train.", StringComparison.Ordinal));
        if (bundle.Metadata.TryGetValue("train_error", out var expectedError))
        {
            try
            {
                model.Forward(input, new float[batch * model.SampleOutputLength], batch);
                rows.Add(new Row("train (expected to fail)", double.NaN, double.NaN, 0, false, $"PyTorch raised \"{expectedError}\" but training ran"));
            }
            catch (ArgumentException exception)
            {
                rows.Add(new Row("train (expected to fail)", 0, 0, 0, true, exception.Message.Split('\n')[0]));
            }
        }
        else if (expectsTraining)
        {
            int steps = bundle.Metadata.TryGetValue("train_steps", out var s) ? int.Parse(s, CultureInfo.InvariantCulture) : 1;
            var output = new float[batch * model.SampleOutputLength];
            var inputGrad = new float[input.Length];
            bool backward = bundle.TryGet("output_grad", out var outputGradTensor);
            var outputGrad = backward ? outputGradTensor.ToFloatArray() : null;
            for (int step = 0; step < steps; step++)
            {
                model.ZeroGrad();
                model.Forward(input, output, batch);
                if (outputGrad is not null) model.Backward(outputGrad, inputGrad);
            }

            Add(rows, bundle, "train.output", output, factor);
            if (outputGrad is not null) Add(rows, bundle, "train.input_grad", inputGrad, factor);
            foreach (var tensor in model.Tensors)
            {
                switch (tensor.Storage)
                {
                    case TensorStorage.Parameter:
                        if (outputGrad is not null) Add(rows, bundle, $"train.grad.{tensor.Name}", model.Gradient(tensor.Name).ToArray(), factor);
                        break;
                    case TensorStorage.Buffer:
                        Add(rows, bundle, $"train.state.{tensor.Name}", model.Tensor(tensor.Name).ToArray(), factor);
                        break;
                    default:
                        if (bundle.TryGet($"train.state.{tensor.Name}", out var counter))
                        {
                            long expected = counter.ToInt64Array()[0], actual = model.Counter(tensor.Name);
                            rows.Add(new Row($"train.state.{tensor.Name}", Math.Abs(expected - actual), 0, 0, expected == actual, $"{actual} (expected {expected})"));
                        }

                        break;
                }
            }
        }

        if (bundle.TryGet("eval.output", out _))
        {
            var evaluated = new float[batch * model.SampleOutputLength];
            model.Infer(input, evaluated, batch);
            Add(rows, bundle, "eval.output", evaluated, factor);
        }

        return rows;
    }

    private static void Add(List<Row> rows, SafetensorsFile bundle, string name, float[] actual, double factor)
    {
        if (!bundle.TryGet(name, out var tensor)) return;
        var expected = tensor.ToFloatArray();
        if (expected.Length != actual.Length)
        {
            rows.Add(new Row(name, double.NaN, double.NaN, 0, false, $"{actual.Length} values, bundle has {expected.Length}"));
            return;
        }

        double maxAbs = 0, maxRel = 0, scale = 1;
        bool finite = true;
        for (int i = 0; i < expected.Length; i++)
        {
            double difference = Math.Abs(actual[i] - (double)expected[i]);
            if (!double.IsFinite(actual[i])) finite = false;
            maxAbs = Math.Max(maxAbs, difference);
            maxRel = Math.Max(maxRel, difference / (1 + Math.Abs(expected[i])));
            scale = Math.Max(scale, Math.Abs(expected[i]));
        }

        double tolerance = factor * scale;
        rows.Add(new Row(name, maxAbs, maxRel, tolerance, finite && maxAbs <= tolerance, finite ? "" : "non-finite values"));
    }

    private static string E(double value) => double.IsNaN(value) ? "-" : value.ToString("0.00E+00", CultureInfo.InvariantCulture);

    private static void WritePlain(List<Row> rows, CompiledModel model, string bundlePath, TextWriter writer)
    {
        writer.WriteLine($"{model.Name} against {Path.GetFileName(bundlePath)} (tolerance: max abs ≤ factor · max(1, max |reference|))");
        int width = Math.Max(6, rows.Max(r => r.Tensor.Length));
        writer.WriteLine($"{"tensor".PadRight(width)}  {"max abs",9}  {"max rel",9}  {"tolerance",9}  result");
        foreach (var r in rows)
            writer.WriteLine($"{r.Tensor.PadRight(width)}  {E(r.MaxAbs),9}  {E(r.MaxRel),9}  {E(r.Tolerance),9}  {(r.Pass ? "pass" : "FAIL")}{(r.Note.Length > 0 ? "  " + r.Note : "")}");
        int failed = rows.Count(r => !r.Pass);
        writer.WriteLine($"{rows.Count - failed} passed, {failed} failed");
    }

    private static void WriteRich(List<Row> rows, CompiledModel model, string bundlePath)
    {
        var table = new Table().Border(TableBorder.Rounded).Title($"[bold]{Markup.Escape(model.Name)}[/] against {Markup.Escape(Path.GetFileName(bundlePath))}");
        table.AddColumn("tensor").AddColumn(new TableColumn("max abs").RightAligned()).AddColumn(new TableColumn("max rel").RightAligned())
            .AddColumn(new TableColumn("tolerance").RightAligned()).AddColumn("result");
        foreach (var r in rows)
            table.AddRow(Markup.Escape(r.Tensor), E(r.MaxAbs), E(r.MaxRel), E(r.Tolerance), r.Pass ? "[green]pass[/]" : $"[red]FAIL[/] {Markup.Escape(r.Note)}");
        AnsiConsole.Write(table);
        int failed = rows.Count(r => !r.Pass);
        AnsiConsole.MarkupLine(failed == 0 ? $"[green]{rows.Count} passed[/], 0 failed" : $"{rows.Count - failed} passed, [red]{failed} failed[/]");
    }
}
