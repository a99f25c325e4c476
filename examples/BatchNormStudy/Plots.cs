// PNG plots with ScottPlot 5.
using ScottPlot;

namespace Examples.BatchNormStudy;

internal sealed record Series(string Label, double[] X, double[] Y, bool Dashed = false, int Color = 0);

internal static class Plots
{
    private static readonly Color[] Palette =
    [
        Colors.C0, Colors.C1, Colors.C2, Colors.C3, Colors.C4, Colors.C5, Colors.C6, Colors.C7, Colors.C8, Colors.C9,
    ];

    public static void Lines(string path, string title, string xLabel, string yLabel, IEnumerable<Series> series, double? yMin = null, double? yMax = null,
        (double[] Positions, string[] Labels)? xTicks = null)
    {
        var plot = new Plot();
        foreach (var s in series)
        {
            // Divergence leaves NaN: plot only the finite points.
            var keep = Enumerable.Range(0, s.X.Length).Where(i => double.IsFinite(s.X[i]) && double.IsFinite(s.Y[i])).ToArray();
            if (keep.Length == 0) continue;
            var line = plot.Add.Scatter(keep.Select(i => s.X[i]).ToArray(), keep.Select(i => s.Y[i]).ToArray());
            line.LegendText = s.Label;
            line.Color = Palette[s.Color % Palette.Length];
            line.LineWidth = 2;
            line.MarkerSize = keep.Length <= 12 ? 6 : 0;
            if (s.Dashed) line.LinePattern = LinePattern.Dashed;
        }

        plot.Title(title);
        plot.XLabel(xLabel);
        plot.YLabel(yLabel);
        plot.ShowLegend(Edge.Right); // outside the data area: no curve hidden under it
        if (xTicks is { } ticks) plot.Axes.Bottom.SetTicks(ticks.Positions, ticks.Labels);
        plot.Axes.AutoScale();
        if (yMin is not null || yMax is not null)
        {
            var limits = plot.Axes.GetLimits();
            plot.Axes.SetLimitsY(yMin ?? limits.Bottom, yMax ?? limits.Top);
        }

        plot.SavePng(path, 1100, 560);
    }
}
