// Dsl.Benchmarks: ours (generated classes) vs TorchSharp vs ONNX Runtime, in one BenchmarkDotNet run.
//
//   bash tests/Dsl.Benchmarks/run.sh            full run (all cells), then BenchmarkDotNet.Artifacts/ratios.md
//   bash tests/Dsl.Benchmarks/run.sh --quick    smoke test: same cells, minimal iterations
//   bash tests/Dsl.Benchmarks/run.sh --peak     single-core FMA peak only
//   --verify-only                               only check that the three sides agree
//   --networks A,B  --batches 1,8               narrow the grid (BenchmarkDotNet's --filter works too)
//   --rounds N                                  measure each cell N times, sides side by side (default 2; --quick: 1)
//   anything else goes to BenchmarkDotNet (e.g. --filter '*Infer*')
using System.Globalization;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Exporters;
using BenchmarkDotNet.Exporters.Csv;
using BenchmarkDotNet.Filters;
using Perfolizer.Horology;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Loggers;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Dsl.Benchmarks;

var options = Options.Parse(args);
var artifacts = Path.GetFullPath("BenchmarkDotNet.Artifacts");
Directory.CreateDirectory(artifacts);

if (options.Peak)
{
    var peak = Peak.Measure(Console.Out);
    File.WriteAllText(Path.Combine(artifacts, "peak.md"),
        "# Single-core FMA peak\n\n" + string.Join("\n", peak.Select(p => $"- {p.Kind}: {p.GFlops.ToString("0.0", CultureInfo.InvariantCulture)} GFLOP/s")) + "\n");
    return 0;
}

if (options.Networks is not null) Cells.Networks = options.Networks;
if (options.Batches is not null) Cells.BatchFilter = options.Batches;
Cells.Rounds = options.Rounds ?? (options.Quick ? 1 : 2);

try
{
    TorchSetup.EnsureLoaded();
}
catch (InvalidOperationException e)
{
    Console.Error.WriteLine(e.Message);
    return 2;
}

Console.WriteLine($"TorchSharp native library: {TorchSetup.LoadedLibraryPath() ?? "(unknown path)"}");

Console.WriteLine("Verifying that ours, TorchSharp and ONNX Runtime compute the same functions:");
var verificationLog = new StringWriter();
bool verified = Verification.Run(Cells.Networks, Path.Combine(artifacts, "onnx"), verificationLog);
Console.Write(verificationLog);
if (!verified)
{
    Console.Error.WriteLine("verification failed: the sides disagree, so timings would not be comparable.");
    return 1;
}

if (options.VerifyOnly) return 0;

// In-process: the benchmark process is this one, which loaded the patched libLibTorchSharp.so copy;
// BenchmarkDotNet's default out-of-process toolchain would rebuild the project into a fresh folder
// with the unpatched library (and copy ~1 GB of libtorch per run).
var toolchain = new InProcessEmitToolchain(TimeSpan.FromMinutes(10), logOutput: true);
var job = options.Quick
    ? Job.Default.WithId("Quick")
        .WithLaunchCount(1).WithWarmupCount(1).WithIterationCount(3)
        .WithIterationTime(TimeInterval.FromMilliseconds(40))
    : Job.Default.WithId("Short")
        .WithLaunchCount(1).WithWarmupCount(3).WithIterationCount(10)
        .WithIterationTime(TimeInterval.FromMilliseconds(250));
job = job.WithToolchain(toolchain).WithUnrollFactor(1);

var config = ManualConfig.CreateEmpty()
    .AddJob(job)
    .AddColumnProvider(DefaultColumnProviders.Instance)
    .AddLogger(ConsoleLogger.Default)
    .AddExporter(MarkdownExporter.GitHub, CsvExporter.Default)
    .AddFilter(new SimpleFilter(Cells.IsValid))
    .WithOrderer(new CellOrderer())
    .WithArtifactsPath(artifacts)
    .WithOptions(ConfigOptions.DisableLogFile | ConfigOptions.JoinSummary)
    .WithSummaryStyle(SummaryStyle.Default.WithMaxParameterColumnWidth(20));

var started = DateTime.UtcNow;
var load = MachineLoad.Now();
var summary = BenchmarkRunner.Run<NetworkBenchmarks>(config, options.BenchmarkDotNetArgs);
var elapsed = DateTime.UtcNow - started;
var loadText = MachineLoad.Describe(load);

var measurements = RatioReport.Read(summary);
if (measurements.Count == 0)
{
    Console.Error.WriteLine("no benchmark produced a result (check --filter / --networks / --batches).");
    return 1;
}

var peaks = Peak.Measure(Console.Out);
var markdown = RatioReport.Markdown(measurements, Peak.Vector256GFlops(peaks),
    options.Quick ? "Ratios (quick run: 1 warmup, 3 iterations; indicative only)" : "Ratios", loadText, verificationLog.ToString());
var ratiosPath = Path.Combine(artifacts, "ratios.md");
File.WriteAllText(ratiosPath, markdown);
Console.WriteLine();
Console.WriteLine(markdown);
Console.WriteLine($"Benchmarks took {elapsed.TotalMinutes.ToString("0.0", CultureInfo.InvariantCulture)} min; ratios: {ratiosPath}; BenchmarkDotNet reports: {Path.Combine(artifacts, "results")}");
return summary.Reports.All(r => r.Success) ? 0 : 1;

internal sealed record Options(bool Quick, bool Peak, bool VerifyOnly, IReadOnlyList<Network>? Networks, IReadOnlyList<int>? Batches, int? Rounds, string[] BenchmarkDotNetArgs)
{
    public static Options Parse(string[] args)
    {
        bool quick = false, peak = false, verifyOnly = false;
        IReadOnlyList<Network>? networks = null;
        IReadOnlyList<int>? batches = null;
        int? rounds = null;
        var rest = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--quick": quick = true; break;
                case "--peak": peak = true; break;
                case "--verify-only": verifyOnly = true; break;
                case "--networks" when i + 1 < args.Length:
                    networks = args[++i].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(Network.Get).ToList();
                    break;
                case "--batches" when i + 1 < args.Length:
                    batches = args[++i].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToList();
                    break;
                case "--rounds" when i + 1 < args.Length:
                    rounds = int.Parse(args[++i], CultureInfo.InvariantCulture);
                    if (rounds < 1) throw new ArgumentException($"--rounds must be at least 1, got {rounds}.");
                    break;
                default: rest.Add(args[i]); break;
            }
        }

        return new Options(quick, peak, verifyOnly, networks, batches, rounds, rest.ToArray());
    }
}
