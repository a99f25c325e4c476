// The curves after every epoch: training loss (left axis) and test accuracy (right axis) as a PNG (ScottPlot 5), and a CSV.
using System.Globalization;
using Dsl.Training;
using ScottPlot;

namespace Examples.FashionMnistResNet;

internal static class Plots
{
    public static void Write(IReadOnlyList<EpochResult> results, int testImages, string pngPath, string csvPath, string title)
    {
        double[] epochs = results.Select(r => (double)r.Epoch).ToArray();
        double[] loss = results.Select(r => r.Loss).ToArray();
        double[] accuracy = results.Select(r => r.TestAccuracy ?? double.NaN).ToArray();

        var plot = new Plot();
        var lossLine = plot.Add.Scatter(epochs, loss);
        lossLine.LegendText = "training loss (with label smoothing)";
        lossLine.Color = Colors.C0;
        lossLine.LineWidth = 2;
        var accuracyLine = plot.Add.Scatter(epochs, accuracy);
        accuracyLine.LegendText = string.Create(CultureInfo.InvariantCulture, $"test accuracy (Infer, {testImages:N0} images)");
        accuracyLine.Color = Colors.C1;
        accuracyLine.LineWidth = 2;
        accuracyLine.Axes.YAxis = plot.Axes.Right;
        plot.Title(title);
        plot.XLabel("epoch");
        plot.Axes.Left.Label.Text = "training loss";
        plot.Axes.Right.Label.Text = "test accuracy";
        plot.ShowLegend(Edge.Bottom);
        plot.Axes.AutoScale();
        plot.SavePng(pngPath, 1000, 560);

        var lines = new List<string> { "epoch,train_loss,train_accuracy,test_loss,test_accuracy,learning_rate,train_seconds,test_seconds" };
        lines.AddRange(results.Select(r => string.Create(CultureInfo.InvariantCulture,
            $"{r.Epoch},{r.Loss:R},{r.Accuracy:R},{r.TestLoss:R},{r.TestAccuracy:R},{r.LearningRate:R},{r.Seconds:0.00},{r.TestSeconds:0.00}")));
        File.WriteAllLines(csvPath, lines);
    }
}
