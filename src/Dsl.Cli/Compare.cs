using System.Globalization;
using Dsl.Runtime;
using Spectre.Console;

namespace Dsl.Cli;

/// <summary>
/// <c>nnc compare MODEL.nn BUNDLE.safetensors</c>: runs the model on a PyTorch reference bundle and
/// checks every tensor the bundle expects (train.output, train.input_grad, train.grad.*, train.state.*,
/// eval.output). A reference the model should be checked on but the bundle lacks (no gradients for a model with
/// parameters, no eval.output, …) fails the run unless <c>--allow-missing</c>; a malformed bundle is an error
/// message and exit 1. This is what a user porting a PyTorch model runs.
/// </summary>
public static class Compare
{
    /// <summary>One check: a tensor compared with its reference, or the expected failure of training.</summary>
    public sealed record Row(string Tensor, double MaxAbs, double MaxRel, double Tolerance, bool Pass, string Note = "", bool IsTensor = true);

    /// <summary>The checks, and the reference tensors the model should be checked on but the bundle lacks (by kind).</summary>
    public sealed record Outcome(List<Row> Rows, List<string> Missing)
    {
        /// <summary>How many tensors were compared.</summary>
        public int Compared => Rows.Count(r => r.IsTensor);
    }

    /// <summary>More training passes than any reference bundle replays: a larger <c>train_steps</c> is a corrupt bundle, not a long test.</summary>
    public const int MaxTrainSteps = 10_000;

    public static int Run(List<string> args, TextWriter stdout, TextWriter stderr, bool plain)
    {
        bool allowMissing = args.Remove("--allow-missing");
        var options = Options.Parse(args, "--model", "--tolerance");
        if (options.Positional.Count != 2) return Cli.UsageError(stderr, "compare takes a .nn file and a .safetensors bundle");
        string nnPath = options.Positional[0], bundlePath = options.Positional[1];
        double factor = 1e-4;
        if (options.Named.TryGetValue("--tolerance", out var t)
            && !(double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out factor) && factor > 0 && double.IsFinite(factor)))
        {
            return Cli.UsageError(stderr, $"--tolerance takes a positive number such as 1e-4, not '{t}'");
        }

        // Whatever a malformed bundle makes go wrong is reported as nnc's message with exit 1, never as a crash.
        try
        {
            using var bundle = SafetensorsFile.Read(bundlePath);
            options.Named.TryGetValue("--model", out var chosen);
            string? name = chosen ?? (bundle.Metadata.TryGetValue("model", out var fromBundle) ? fromBundle : null);
            if (!bundle.TryGet("input", out var input) || input.Shape.Length == 0)
                throw new InvalidDataException("the bundle has no 'input' tensor with a batch dimension");
            int batch = input.Shape[0];
            if (batch < 1) throw new InvalidDataException($"'input' has shape [{string.Join(", ", input.Shape)}]: no samples");
            if (bundle.Metadata.TryGetValue("batch", out var b) && b != batch.ToString(CultureInfo.InvariantCulture))
                throw new InvalidDataException($"the bundle's metadata says batch '{b}' but its input has {batch} samples");
            var model = InMemoryModel.Create(File.ReadAllText(nnPath), Path.GetFileName(nnPath), name, batch);
            // A model named with --model is the user's choice: the bundle's own model name does not have to match it.
            var outcome = Check(model, bundle, factor, allowArchitectureMismatch: chosen is not null);
            if (outcome.Rows.Count == 0)
                throw new InvalidDataException($"the bundle holds nothing to compare {model.Name} with (no train.*, eval.output or train_error)");

            if (plain) WritePlain(outcome, model, bundlePath, allowMissing, stdout);
            else WriteRich(outcome, model, bundlePath, allowMissing);
            if (outcome.Missing.Count > 0 && !allowMissing)
            {
                stderr.WriteLine($"nnc: the bundle lacks {string.Join("; ", outcome.Missing)}; pass --allow-missing to compare only what it holds");
                return 1;
            }

            return outcome.Rows.All(r => r.Pass) ? 0 : 1;
        }
        catch (Exception exception) when (exception is InvalidDataException or InvalidOperationException or ArgumentException or NotSupportedException
                                              or KeyNotFoundException or FormatException or OverflowException or IndexOutOfRangeException)
        {
            stderr.WriteLine($"nnc: {exception.Message}");
            return 1;
        }
    }

    /// <summary>Loads the bundle's state into the model, replays what PyTorch did and compares each expected tensor.</summary>
    /// <exception cref="InvalidDataException">The bundle is malformed or does not fit the model; the message says how.</exception>
    public static Outcome Check(CompiledModel model, SafetensorsFile bundle, double factor, bool allowArchitectureMismatch = false)
    {
        var rows = new List<Row>();
        var missing = new List<string>();
        model.LoadState(bundle, allowExtra: true, allowArchitectureMismatch);
        var inputTensor = bundle["input"];
        if (inputTensor.ElementCount != inputTensor.Shape[0] * (long)model.SampleInputLength)
        {
            throw new InvalidDataException(
                $"'input' has shape [{string.Join(", ", inputTensor.Shape)}], not {inputTensor.Shape[0]} samples of [{string.Join(", ", model.SampleInputShape)}]");
        }

        var input = inputTensor.ToFloatArray();
        int batch = inputTensor.Shape[0];

        bool expectsTraining = bundle.Tensors.Any(x => x.Name.StartsWith("train.", StringComparison.Ordinal));
        if (bundle.Metadata.TryGetValue("train_error", out var expectedError))
        {
            try
            {
                model.Forward(input, new float[batch * model.SampleOutputLength], batch);
                rows.Add(new Row("train (expected to fail)", double.NaN, double.NaN, 0, false, $"PyTorch raised \"{expectedError}\" but training ran", IsTensor: false));
            }
            catch (ArgumentException exception)
            {
                rows.Add(new Row("train (expected to fail)", 0, 0, 0, true, exception.Message.Split('\n')[0], IsTensor: false));
            }
        }
        else
        {
            if (!expectsTraining) missing.Add("training results (train.output, ...)");
            else Train(model, bundle, input, batch, factor, rows, missing);
        }

        if (bundle.TryGet("eval.output", out _))
        {
            var evaluated = new float[batch * model.SampleOutputLength];
            model.Infer(input, evaluated, batch);
            Add(rows, bundle, "eval.output", evaluated, factor);
        }
        else
        {
            missing.Add("the inference output (eval.output)");
        }

        return new Outcome(rows, missing);
    }

    private static void Train(CompiledModel model, SafetensorsFile bundle, float[] input, int batch, double factor, List<Row> rows, List<string> missing)
    {
        int steps = 1;
        if (bundle.Metadata.TryGetValue("train_steps", out var s)
            && !(int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out steps) && steps >= 1 && steps <= MaxTrainSteps))
        {
            throw new InvalidDataException($"the bundle's metadata train_steps is '{s}', not a whole number from 1 to {MaxTrainSteps}");
        }

        var output = new float[batch * model.SampleOutputLength];
        var inputGrad = new float[input.Length];
        float[]? outputGrad = null;
        if (bundle.TryGet("output_grad", out var outputGradTensor))
        {
            if (outputGradTensor.ElementCount != output.Length)
            {
                throw new InvalidDataException(
                    $"'output_grad' has shape [{string.Join(", ", outputGradTensor.Shape)}], not {batch} samples of [{string.Join(", ", model.SampleOutputShape)}] like the output");
            }

            outputGrad = outputGradTensor.ToFloatArray();
        }

        try
        {
            for (int step = 0; step < steps; step++)
            {
                model.ZeroGrad();
                model.Forward(input, output, batch);
                if (outputGrad is not null) model.Backward(outputGrad, inputGrad);
            }
        }
        catch (ArgumentException exception)
        {
            throw new InvalidDataException($"training {model.Name} on the bundle's input failed ({exception.Message.Split('\n')[0]}), but the bundle records no train_error: PyTorch trained", exception);
        }

        Add(rows, bundle, "train.output", output, factor, missing, "the training output");
        if (outputGrad is not null) Add(rows, bundle, "train.input_grad", inputGrad, factor, missing, "the input gradient");
        var gradients = model.Tensors.Where(x => x.Storage == TensorStorage.Parameter).ToList();
        var state = model.Tensors.Where(x => x.Storage != TensorStorage.Parameter).ToList();
        if (outputGrad is null && gradients.Count > 0) missing.Add($"output_grad, so none of {model.Name}'s {gradients.Count} parameter gradients (train.grad.*) can be checked");
        foreach (var tensor in outputGrad is null ? [] : gradients)
            Add(rows, bundle, $"train.grad.{tensor.Name}", model.Gradient(tensor.Name).ToArray(), factor, missing, "parameter gradient");
        foreach (var tensor in state)
        {
            string name = $"train.state.{tensor.Name}";
            if (tensor.Storage == TensorStorage.Buffer)
            {
                Add(rows, bundle, name, model.Tensor(tensor.Name).ToArray(), factor, missing, "running statistic");
                continue;
            }

            if (!bundle.TryGet(name, out var counter))
            {
                missing.Add($"running statistic {name}");
                continue;
            }

            if (counter.DTypeName != "I64" || counter.ElementCount != 1)
                throw new InvalidDataException($"'{name}' is {counter.DTypeName} [{string.Join(", ", counter.Shape)}], not an I64 scalar");
            long expected = counter.ToInt64Array()[0], actual = model.Counter(tensor.Name);
            rows.Add(new Row(name, Math.Abs((double)expected - actual), 0, 0, expected == actual, $"{actual} (expected {expected})"));
        }
    }

    private static void Add(List<Row> rows, SafetensorsFile bundle, string name, float[] actual, double factor, List<string> missing, string kind)
    {
        if (!bundle.TryGet(name, out _))
        {
            missing.Add($"{kind} {name}");
            return;
        }

        Add(rows, bundle, name, actual, factor);
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

    private static string Summary(Outcome outcome, bool allowMissing)
    {
        int failed = outcome.Rows.Count(r => !r.Pass);
        string text = $"compared {outcome.Compared} tensor(s): {outcome.Rows.Count - failed} passed, {failed} failed";
        return outcome.Missing.Count == 0 ? text : text + $"; {outcome.Missing.Count} missing{(allowMissing ? " (allowed)" : "")}";
    }

    private static void WritePlain(Outcome outcome, CompiledModel model, string bundlePath, bool allowMissing, TextWriter writer)
    {
        var rows = outcome.Rows;
        writer.WriteLine($"{model.Name} against {Path.GetFileName(bundlePath)} (tolerance: max abs ≤ factor · max(1, max |reference|))");
        int width = Math.Max(6, rows.Max(r => r.Tensor.Length));
        writer.WriteLine($"{"tensor".PadRight(width)}  {"max abs",9}  {"max rel",9}  {"tolerance",9}  result");
        foreach (var r in rows)
            writer.WriteLine($"{r.Tensor.PadRight(width)}  {E(r.MaxAbs),9}  {E(r.MaxRel),9}  {E(r.Tolerance),9}  {(r.Pass ? "pass" : "FAIL")}{(r.Note.Length > 0 ? "  " + r.Note : "")}");
        foreach (var m in outcome.Missing) writer.WriteLine($"missing: {m}");
        writer.WriteLine(Summary(outcome, allowMissing));
    }

    private static void WriteRich(Outcome outcome, CompiledModel model, string bundlePath, bool allowMissing)
    {
        var table = new Table().Border(TableBorder.Rounded).Title($"[bold]{Markup.Escape(model.Name)}[/] against {Markup.Escape(Path.GetFileName(bundlePath))}");
        table.AddColumn("tensor").AddColumn(new TableColumn("max abs").RightAligned()).AddColumn(new TableColumn("max rel").RightAligned())
            .AddColumn(new TableColumn("tolerance").RightAligned()).AddColumn("result");
        foreach (var r in outcome.Rows)
            table.AddRow(Markup.Escape(r.Tensor), E(r.MaxAbs), E(r.MaxRel), E(r.Tolerance), r.Pass ? "[green]pass[/]" : $"[red]FAIL[/] {Markup.Escape(r.Note)}");
        AnsiConsole.Write(table);
        foreach (var m in outcome.Missing) AnsiConsole.MarkupLine($"[yellow]missing:[/] {Markup.Escape(m)}");
        bool ok = outcome.Rows.All(r => r.Pass) && (allowMissing || outcome.Missing.Count == 0);
        AnsiConsole.MarkupLine(ok ? $"[green]{Markup.Escape(Summary(outcome, allowMissing))}[/]" : $"[red]{Markup.Escape(Summary(outcome, allowMissing))}[/]");
    }
}
