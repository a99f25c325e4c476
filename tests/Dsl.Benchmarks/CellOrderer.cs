// The order in which the cases run. The host's speed moves in stretches of seconds to minutes (another
// tenant on the physical machine: the same build measured FmnistBn batch-8 inference at 322 µs and at
// 459 µs in one hour), so the sides of a comparison are measured next to each other and more than once:
// for each network × batch × workload × thread count, round 1 runs ours, ORT, torch and round 2 runs them
// in the mirrored order (torch, ORT, ours), and so on. Each side's rounds then span the same stretch of time
// as the others', and RatioReport compares each side's fastest round. Everything else (the summary's order,
// its groups) is BenchmarkDotNet's default.
using System.Collections.Immutable;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Order;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace Dsl.Benchmarks;

public sealed class CellOrderer : IOrderer
{
    private readonly IOrderer _default = DefaultOrderer.Instance;

    public bool SeparateLogicalGroups => _default.SeparateLogicalGroups;

    public IEnumerable<BenchmarkCase> GetExecutionOrder(ImmutableArray<BenchmarkCase> benchmarkCases, IEnumerable<BenchmarkLogicalGroupRule>? order = null) =>
        benchmarkCases
            .OrderBy(c => Network.Known.ToList().FindIndex(n => n.Name == (string)c.Parameters[nameof(NetworkBenchmarks.Network)]))
            .ThenBy(c => (int)c.Parameters[nameof(NetworkBenchmarks.Batch)])
            .ThenBy(c => c.Descriptor.WorkloadMethod.Name == nameof(NetworkBenchmarks.Train) ? 0 : 1)
            .ThenBy(c => (int)c.Parameters[nameof(NetworkBenchmarks.Threads)])
            .ThenBy(c => (int)c.Parameters[nameof(NetworkBenchmarks.Round)])
            .ThenBy(c => SidePosition((Side)c.Parameters[nameof(NetworkBenchmarks.Side)], (int)c.Parameters[nameof(NetworkBenchmarks.Round)]));

    /// <summary>Ours, ORT, torch in odd rounds; torch, ORT, ours in even ones.</summary>
    public static int SidePosition(Side side, int round)
    {
        int position = side switch { Side.Ours => 0, Side.Ort => 1, _ => 2 };
        return round % 2 == 1 ? position : 2 - position;
    }

    public IEnumerable<BenchmarkCase> GetSummaryOrder(ImmutableArray<BenchmarkCase> benchmarksCase, Summary summary) =>
        _default.GetSummaryOrder(benchmarksCase, summary);

    public string? GetHighlightGroupKey(BenchmarkCase benchmarkCase) => _default.GetHighlightGroupKey(benchmarkCase);

    public string? GetLogicalGroupKey(ImmutableArray<BenchmarkCase> allBenchmarksCases, BenchmarkCase benchmarkCase) =>
        _default.GetLogicalGroupKey(allBenchmarksCases, benchmarkCase);

    public IEnumerable<IGrouping<string, BenchmarkCase>> GetLogicalGroupOrder(IEnumerable<IGrouping<string, BenchmarkCase>> logicalGroups, IEnumerable<BenchmarkLogicalGroupRule>? order = null) =>
        _default.GetLogicalGroupOrder(logicalGroups, order);
}
