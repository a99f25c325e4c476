// The per-epoch progress display: plain lines when redirected, Spectre.Console bars otherwise.
using Spectre.Console;

namespace Dsl.Training.Tests;

public class ProgressTests
{
    private static EpochResult Epoch(IEpochProgress p, int epoch)
    {
        for (int s = 100; s <= 1000; s += 100) p.Report(s, 1000, 0.5, 0.8, s / 1000.0);
        return new EpochResult(epoch, 1000, 0.5, 0.8, 2.0, 0.05f) { TestLoss = 0.4, TestAccuracy = 0.85 };
    }

    [Fact]
    public void RedirectedOutputGetsOnePlainLinePerEpoch()
    {
        var text = new StringWriter();
        var progress = new TrainingProgress(2, interactive: false, plainOutput: text);
        progress.RunEpoch(1, p => Epoch(p, 1));
        progress.RunEpoch(2, p => Epoch(p, 2));
        progress.PrintSummary("run");
        var lines = text.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("epoch 1/2: loss 0.5000 acc 0.8000  test loss 0.4000 acc 0.8500  lr 0.05  500 samples/s  2.0 s", lines[0].TrimEnd('\r'));
        Assert.StartsWith("epoch 2/2:", lines[1]);
        Assert.Contains("summary: 2 epoch(s), 2.0 s/epoch", text.ToString());
        Assert.Equal(2, progress.Results.Count);
    }

    [Fact]
    public void ATerminalGetsAProgressBarPerEpochAndASummaryTable()
    {
        var text = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.Yes,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.Yes,
            Out = new AnsiConsoleOutput(text),
        });
        var progress = new TrainingProgress(1, interactive: true, console: console);
        progress.RunEpoch(1, p => Epoch(p, 1));
        progress.PrintSummary("run");
        string output = text.ToString();
        Assert.Contains("epoch 1/1 loss 0.5000 acc 0.8000 test 0.8500 500/s", output);
        Assert.Contains("samples/s", output); // the summary table's header
        Assert.Contains("0.8500", output);
    }
}
