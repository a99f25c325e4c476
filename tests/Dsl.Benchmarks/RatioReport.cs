// After the run: reads BenchmarkDotNet's reports and writes BenchmarkDotNet.Artifacts/ratios.md, one row
// per network × batch × workload × threads with PyTorch time / ours and ORT time / ours (> 1: we are
// faster), our GFLOP/s and its share of the measured single-core FMA peak, and allocations.
using System.Globalization;
using System.Text;
using BenchmarkDotNet.Reports;

namespace Dsl.Benchmarks;

public static class RatioReport
{
    public sealed record Measurement(string Network, int Batch, Side Side, int Threads, string Workload, int Round, double MeanNs, long? AllocatedBytes);

    public static IReadOnlyList<Measurement> Read(Summary summary) =>
        summary.Reports
            .Where(r => r.Success && r.ResultStatistics is not null)
            .Select(r =>
            {
                var c = r.BenchmarkCase;
                return new Measurement(
                    (string)c.Parameters[nameof(NetworkBenchmarks.Network)],
                    (int)c.Parameters[nameof(NetworkBenchmarks.Batch)],
                    (Side)c.Parameters[nameof(NetworkBenchmarks.Side)],
                    (int)c.Parameters[nameof(NetworkBenchmarks.Threads)],
                    c.Descriptor.WorkloadMethod.Name,
                    (int)c.Parameters[nameof(NetworkBenchmarks.Round)],
                    r.ResultStatistics!.Mean,
                    r.GcStats.GetBytesAllocatedPerOperation(c));
            })
            .ToList();

    /// <summary>
    /// Each side's fastest round of each cell: the host's noise only ever adds time, so the fastest of rounds
    /// measured side by side (CellOrderer) is the estimate least distorted by it, for every side alike
    /// (the minimum estimator of Chen and Revels, "Robust benchmarking in noisy environments", 2016).
    /// Allocations: the largest of the rounds.
    /// </summary>
    public static IReadOnlyList<Measurement> Best(IReadOnlyList<Measurement> measurements) =>
        measurements
            .GroupBy(m => (m.Network, m.Batch, m.Side, m.Threads, m.Workload))
            .Select(g => g.MinBy(m => m.MeanNs)! with { AllocatedBytes = g.Max(m => m.AllocatedBytes) })
            .ToList();

    /// <summary>The markdown report; <paramref name="peakGFlops"/> is the single-core Vector256 FMA peak.</summary>
    public static string Markdown(IReadOnlyList<Measurement> all, double peakGFlops, string title, string machineLoad, string verification)
    {
        var measurements = Best(all);
        int rounds = all.Count == 0 ? 0 : all.Max(m => m.Round);
        var sb = new StringBuilder();
        sb.AppendLine($"# {title}");
        sb.AppendLine();
        sb.AppendLine($"Generated {DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture)} UTC on {Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}, .NET {Environment.Version}.");
        sb.AppendLine();
        sb.AppendLine($"- {machineLoad}");
        sb.AppendLine(rounds > 1
            ? $"- Each cell was measured in {rounds} rounds, the sides side by side in mirrored order (ours, ORT, torch; then torch, ORT, ours). The times are each side's fastest round (the mean of its iterations); **by round** gives the ratio within each round."
            : "- Each cell was measured once (one round).");
        sb.AppendLine("- **torch / ours** and **ORT / ours**: their mean time divided by ours; above 1 means ours is faster.");
        int notePosition = sb.Length; // the ¹ note goes here if any row needs it
        sb.AppendLine($"- **ours GFLOP/s**: multiply-add FLOPs (×2) of conv and linear layers per second; training counts 3× the forward FLOPs (forward, input gradient, weight gradient). **% peak**: of the single-core Vector256 FMA peak, {F(peakGFlops, "0.0")} GFLOP/s (`--peak`), times the thread count.");
        sb.AppendLine("- Alloc: managed bytes allocated per operation ([MemoryDiagnoser]); native allocations by libtorch / ORT are not counted. In-process, BenchmarkDotNet counts the whole process, so a few hundred bytes per op on slow cells (1 op per iteration) are harness noise; the verification below measures ours' allocations precisely.");
        sb.AppendLine();
        var table = new StringBuilder();
        bool anyMarked = false;
        table.AppendLine(rounds > 1
            ? "| network | batch | workload | threads | ours | torch | torch / ours | by round | ORT | ORT / ours | by round | ours GFLOP/s | % peak | alloc ours / torch / ORT |"
            : "| network | batch | workload | threads | ours | torch | torch / ours | ORT | ORT / ours | ours GFLOP/s | % peak | alloc ours / torch / ORT |");
        table.AppendLine(rounds > 1 ? "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|" : "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");

        var rows = measurements
            .GroupBy(m => (m.Network, m.Batch, m.Workload, m.Threads))
            .OrderBy(g => Network.Known.ToList().FindIndex(n => n.Name == g.Key.Network))
            .ThenBy(g => g.Key.Workload == nameof(NetworkBenchmarks.Train) ? 0 : 1)
            .ThenBy(g => g.Key.Batch)
            .ThenBy(g => g.Key.Threads);
        foreach (var row in rows)
        {
            var (networkName, batch, workload, threads) = row.Key;
            Measurement? Find(Side side, int t) => measurements.FirstOrDefault(m =>
                m.Network == networkName && m.Batch == batch && m.Workload == workload && m.Side == side && m.Threads == t);
            var ours = Find(Side.Ours, threads);
            string mark = "";
            if (ours is null && threads != 1)
            {
                ours = Find(Side.Ours, 1);
                mark = ours is null ? "" : "¹";
                anyMarked |= ours is not null;
            }

            var torch = row.FirstOrDefault(m => m.Side == Side.Torch);
            var ort = row.FirstOrDefault(m => m.Side == Side.Ort);
            var network = Network.Get(networkName);
            double flops = network.ForwardFlopsPerSample * (double)batch * (workload == nameof(NetworkBenchmarks.Train) ? 3 : 1);
            string gflops = "", share = "";
            if (ours is not null)
            {
                double g = flops / ours.MeanNs; // FLOP per ns = GFLOP/s
                gflops = F(g, "0.0");
                share = F(100 * g / (peakGFlops * ours.Threads), "0.0") + "%";
            }

            string ByRound(Side side) => rounds > 1 && ours is not null ? ByRounds(all, ours, side, networkName, batch, workload, threads) + " | " : "";
            table.AppendLine(
                $"| {networkName} | {batch} | {workload} | {threads} | {Time(ours)} | {Time(torch)} | {Ratio(torch, ours)}{(torch is null ? "" : mark)} | {ByRound(Side.Torch)}" +
                $"{Time(ort)} | {Ratio(ort, ours)}{(ort is null ? "" : mark)} | {ByRound(Side.Ort)}{gflops} | {share} | {Alloc(ours)} / {Alloc(torch)} / {Alloc(ort)} |");
        }

        if (anyMarked)
            sb.Insert(notePosition, "- `¹`: ours was not run at the row's thread count (OursFactory.SupportsThreads is off); the ratio uses ours at 1 thread.\n");
        sb.Append(table);
        sb.AppendLine();
        sb.AppendLine("## Verification (batch 8, before timing)");
        sb.AppendLine();
        sb.AppendLine("```");
        sb.Append(verification);
        sb.AppendLine("```");
        return sb.ToString();
    }

    /// <summary>Their time / ours within each round, "a, b"; empty where that side has no cell.</summary>
    private static string ByRounds(IReadOnlyList<Measurement> all, Measurement ours, Side side, string network, int batch, string workload, int threads)
    {
        var parts = all
            .Where(m => m.Network == network && m.Batch == batch && m.Workload == workload && m.Side == side && m.Threads == threads)
            .OrderBy(m => m.Round)
            .Select(m =>
            {
                var oursThen = all.FirstOrDefault(o => o.Network == network && o.Batch == batch && o.Workload == workload && o.Side == Side.Ours && o.Threads == ours.Threads && o.Round == m.Round);
                return oursThen is null ? "–" : F(m.MeanNs / oursThen.MeanNs, "0.00");
            })
            .ToList();
        return string.Join(", ", parts);
    }

    private static string Ratio(Measurement? theirs, Measurement? ours) =>
        theirs is null || ours is null ? "" : F(theirs.MeanNs / ours.MeanNs, "0.00") + "×";

    private static string Time(Measurement? m)
    {
        if (m is null) return "";
        double ns = m.MeanNs;
        return ns switch
        {
            < 1e3 => F(ns, "0.0") + " ns",
            < 1e6 => F(ns / 1e3, "0.0") + " µs",
            < 1e9 => F(ns / 1e6, "0.00") + " ms",
            _ => F(ns / 1e9, "0.00") + " s",
        };
    }

    private static string Alloc(Measurement? m) => m?.AllocatedBytes switch
    {
        null => "–",
        < 1024 => F(m.AllocatedBytes.Value, "0") + " B",
        long b => F(b / 1024.0, "0.0") + " KB",
    };

    private static string F(double value, string format) => value.ToString(format, CultureInfo.InvariantCulture);
}
