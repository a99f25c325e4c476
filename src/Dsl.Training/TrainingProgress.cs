// A Spectre.Console progress bar per epoch (loss, accuracy, samples/s); one plain line per epoch when output is redirected.
using System.Diagnostics;
using System.Globalization;
using Spectre.Console;

namespace Dsl.Training;

/// <summary>
/// Shows training progress: in a terminal, a Spectre.Console progress bar per epoch whose description carries the
/// running loss, accuracy and samples per second, left on screen when the epoch ends; when output is redirected
/// (CI, a log file), one plain line per epoch. <see cref="PrintSummary"/> ends with a table of every epoch.
/// </summary>
public sealed class TrainingProgress
{
    private readonly IAnsiConsole _console;
    private readonly TextWriter _plain;
    private readonly List<EpochResult> _results = [];

    /// <summary>Progress for a run of <paramref name="totalEpochs"/> epochs.</summary>
    /// <param name="totalEpochs">Epochs planned (for "epoch 3/20").</param>
    /// <param name="interactive">Force the progress bar (true) or plain lines (false); by default bars only when standard output is a terminal.</param>
    /// <param name="console">The console for the bars and the summary (default <see cref="AnsiConsole.Console"/>).</param>
    /// <param name="plainOutput">Where plain lines go (default <see cref="Console.Out"/>).</param>
    public TrainingProgress(int totalEpochs, bool? interactive = null, IAnsiConsole? console = null, TextWriter? plainOutput = null)
    {
        TotalEpochs = totalEpochs;
        _console = console ?? AnsiConsole.Console;
        _plain = plainOutput ?? Console.Out;
        Interactive = interactive ?? (!Console.IsOutputRedirected && _console.Profile.Capabilities.Interactive);
    }

    /// <summary>Epochs planned (for "epoch 3/20"); a run that re-plans sets the new count.</summary>
    public int TotalEpochs { get; set; }

    /// <summary>Whether progress bars are drawn (else plain lines).</summary>
    public bool Interactive { get; }

    /// <summary>The epochs reported so far.</summary>
    public IReadOnlyList<EpochResult> Results => _results;

    /// <summary>
    /// Runs one epoch under a progress bar: <paramref name="body"/> trains (reporting to the <see cref="IEpochProgress"/>
    /// it is given, e.g. through <see cref="Trainer.TrainEpoch"/>) and may evaluate; its result is shown and recorded.
    /// </summary>
    /// <param name="epoch">1-based epoch number.</param>
    /// <param name="body">Trains the epoch and returns its result.</param>
    /// <returns>The result of <paramref name="body"/>.</returns>
    public EpochResult RunEpoch(int epoch, Func<IEpochProgress, EpochResult> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        EpochResult result;
        if (Interactive)
        {
            result = _console.Progress()
                .AutoClear(false)
                .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    var task = ctx.AddTask(Markup.Escape(Label(epoch)), autoStart: true, maxValue: 1);
                    var reporter = new BarReporter(task, Label(epoch));
                    var r = body(reporter);
                    task.Description = Markup.Escape(Describe(r));
                    task.Value = task.MaxValue;
                    task.StopTask();
                    return r;
                });
        }
        else
        {
            result = body(NullReporter.Instance);
            _plain.WriteLine(result.ToLine(TotalEpochs));
            _plain.Flush();
        }

        _results.Add(result);
        return result;
    }

    /// <summary>Records an epoch that was trained without <see cref="RunEpoch"/> (and prints its line).</summary>
    /// <param name="result">The epoch's result.</param>
    public void Add(EpochResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        _results.Add(result);
        if (Interactive) _console.MarkupLine(Markup.Escape(result.ToLine(TotalEpochs)));
        else _plain.WriteLine(result.ToLine(TotalEpochs));
    }

    /// <summary>Prints every epoch (a table in a terminal, lines otherwise) and the totals: best and last test accuracy, mean seconds per epoch.</summary>
    /// <param name="title">A heading, or null.</param>
    public void PrintSummary(string? title = null)
    {
        if (_results.Count == 0) return;
        var c = CultureInfo.InvariantCulture;
        double meanSeconds = _results.Average(r => r.Seconds);
        double samplesPerSecond = _results.Sum(r => r.Samples) / Math.Max(1e-9, _results.Sum(r => r.Seconds));
        var last = _results[^1];
        // Accuracies are best when highest, errors (mse, mae) when lowest.
        bool higherIsBetter = last.MetricName.EndsWith("acc", StringComparison.Ordinal);
        var tested = _results.Where(r => r.TestAccuracy is not null);
        var best = higherIsBetter ? tested.MaxBy(r => r.TestAccuracy!.Value) : tested.MinBy(r => r.TestAccuracy!.Value);
        string metric = last.MetricName;
        string totals = string.Create(c, $"{_results.Count} epoch(s), {meanSeconds:0.0} s/epoch on average, {samplesPerSecond:0} samples/s; final train loss {last.Loss:0.0000}, train {metric} {last.Accuracy:0.0000}")
            + (last.TestAccuracy is { } acc ? string.Create(c, $", test {metric} {acc:0.0000}") : "")
            + (best is not null && best != last ? string.Create(c, $" (best {best.TestAccuracy:0.0000} at epoch {best.Epoch})") : "");
        if (!Interactive)
        {
            if (title is not null) _plain.WriteLine(title);
            _plain.WriteLine("summary: " + totals);
            _plain.Flush();
            return;
        }

        var table = new Table().RoundedBorder();
        if (title is not null) table.Title(Markup.Escape(title));
        foreach (var h in new[] { "epoch", "loss", metric, "test loss", "test " + metric, "lr", "samples/s", "s" }) table.AddColumn(new TableColumn(h).RightAligned());
        foreach (var r in _results)
        {
            table.AddRow(r.Epoch.ToString(c), r.Loss.ToString("0.0000", c), r.Accuracy.ToString("0.0000", c),
                r.TestLoss?.ToString("0.0000", c) ?? "", r.TestAccuracy?.ToString("0.0000", c) ?? "",
                r.LearningRate.ToString("G4", c), r.SamplesPerSecond.ToString("0", c), r.Seconds.ToString("0.0", c));
        }

        _console.Write(table);
        _console.MarkupLine(Markup.Escape(totals));
    }

    private string Label(int epoch) => TotalEpochs > 0 ? $"epoch {epoch}/{TotalEpochs}" : $"epoch {epoch}";

    private string Describe(EpochResult r)
    {
        var c = CultureInfo.InvariantCulture;
        string test = r.TestAccuracy is { } acc ? string.Create(c, $" test {acc:0.0000}") : "";
        return string.Create(c, $"{Label(r.Epoch)} loss {r.Loss:0.0000} {r.MetricName} {r.Accuracy:0.0000}{test} {r.SamplesPerSecond:0}/s");
    }

    private sealed class NullReporter : IEpochProgress
    {
        public static readonly NullReporter Instance = new();

        public void Report(int samples, int totalSamples, double meanLoss, double accuracy, double seconds)
        {
        }
    }

    // Updates the bar at most ten times a second: formatting a description allocates, the training step must not pay for it.
    private sealed class BarReporter(ProgressTask task, string label) : IEpochProgress
    {
        private readonly Stopwatch _sinceUpdate = Stopwatch.StartNew();

        public void Report(int samples, int totalSamples, double meanLoss, double accuracy, double seconds)
        {
            if (samples < totalSamples && _sinceUpdate.ElapsedMilliseconds < 100) return;
            _sinceUpdate.Restart();
            task.MaxValue = Math.Max(1, totalSamples);
            task.Value = samples;
            double rate = seconds > 0 ? samples / seconds : 0;
            task.Description = Markup.Escape(string.Create(CultureInfo.InvariantCulture, $"{label} loss {meanLoss:0.0000} acc {accuracy:0.0000} {rate:0}/s"));
        }
    }
}
