// The BenchmarkDotNet class: one case per network × batch × side × threads × workload (Train / Infer).
// BenchmarkDotNet builds the full cross product of the parameters; Cells.IsValid filters out the cells
// that do not exist (ORT training, Resblock64 at batch 128, batch-1 training through bn1d, and ours with
// more than one thread if OursFactory.SupportsThreads is switched off).
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Running;

namespace Dsl.Benchmarks;

/// <summary>Which cells exist, and which subset a run covers.</summary>
public static class Cells
{
    /// <summary>Networks to run (all by default; Program narrows it for --quick).</summary>
    public static IReadOnlyList<Network> Networks { get; set; } = Network.All;

    /// <summary>1 and all cores (2 on the reference machine).</summary>
    public static IReadOnlyList<int> ThreadCounts { get; set; } = new[] { 1, Environment.ProcessorCount }.Distinct().ToArray();

    /// <summary>
    /// How many times each cell is measured (the <see cref="NetworkBenchmarks.Round"/> parameter); the report
    /// takes each side's fastest round. 2 in a full run, 1 with --quick; --rounds N sets it.
    /// </summary>
    public static int Rounds { get; set; } = 2;

    /// <summary>Batches to run, intersected with each network's own list.</summary>
    public static IReadOnlyList<int>? BatchFilter { get; set; }

    public static IEnumerable<int> AllBatches =>
        Networks.SelectMany(n => n.Batches).Distinct().Where(b => BatchFilter is null || BatchFilter.Contains(b)).Order();

    public static bool IsValid(string network, int batch, Side side, int threads, string workload)
    {
        var net = Network.Get(network);
        if (!Networks.Contains(net) || !net.Batches.Contains(batch)) return false;
        if (BatchFilter is not null && !BatchFilter.Contains(batch)) return false;
        bool train = workload == nameof(NetworkBenchmarks.Train);
        if (train && side == Side.Ort) return false; // ONNX Runtime: inference only
        if (train && !net.CanTrain(batch)) return false; // bn1d over [F] at batch 1 throws, as in PyTorch
        if (side == Side.Ours && threads != 1 && !OursFactory.SupportsThreads) return false; // ours single-threaded only
        return true;
    }

    public static bool IsValid(BenchmarkCase c) =>
        IsValid(
            (string)c.Parameters[nameof(NetworkBenchmarks.Network)],
            (int)c.Parameters[nameof(NetworkBenchmarks.Batch)],
            (Side)c.Parameters[nameof(NetworkBenchmarks.Side)],
            (int)c.Parameters[nameof(NetworkBenchmarks.Threads)],
            c.Descriptor.WorkloadMethod.Name);
}

[MemoryDiagnoser]
public class NetworkBenchmarks
{
    private OursRunner? _ours;
    private TorchRunner? _torch;
    private OrtRunner? _ort;

    [ParamsSource(nameof(NetworkNames))]
    public string Network { get; set; } = "";

    [ParamsSource(nameof(BatchValues))]
    public int Batch { get; set; }

    [ParamsSource(nameof(SideValues))]
    public Side Side { get; set; }

    [ParamsSource(nameof(ThreadValues))]
    public int Threads { get; set; }

    public static IEnumerable<string> NetworkNames => Cells.Networks.Select(n => n.Name);

    public static IEnumerable<int> BatchValues => Cells.AllBatches;

    public static IEnumerable<Side> SideValues => Enum.GetValues<Side>();

    public static IEnumerable<int> ThreadValues => Cells.ThreadCounts;

    /// <summary>Which measurement of the cell this is (1 to <see cref="Cells.Rounds"/>); see <see cref="CellOrderer"/>.</summary>
    [ParamsSource(nameof(RoundValues))]
    public int Round { get; set; }

    public static IEnumerable<int> RoundValues => Enumerable.Range(1, Cells.Rounds);

    [GlobalSetup(Target = nameof(Train))]
    public void SetupTrain()
    {
        Setup();
        _torch?.PrepareTrain();
    }

    [GlobalSetup(Target = nameof(Infer))]
    public void SetupInfer()
    {
        Setup();
        _torch?.PrepareInfer();
    }

    private void Setup()
    {
        var network = Dsl.Benchmarks.Network.Get(Network);
        switch (Side)
        {
            case Side.Ours:
                _ours = new OursRunner(network, Batch, Threads);
                break;
            case Side.Torch:
                using (var source = new OursRunner(network, Batch, threads: 1))
                    _torch = new TorchRunner(network, Batch, Threads, source.Model);
                break;
            case Side.Ort:
                using (var source = new OursRunner(network, Batch, threads: 1))
                    _ort = new OrtRunner(network, Batch, Threads, OnnxExporter.Export(network, source.Model));
                break;
        }

        // All three sides share this process: let a thread team left spinning by the previous case (an OpenMP
        // team of libtorch, a worker of ours) go to sleep before this case warms up, or it takes a core from a
        // 2-thread cell. A run without this pause had one 2-thread cell at half its isolated speed.
        Thread.Sleep(SettleMilliseconds);
    }

    /// <summary>Pause before each case's warm-up, so the previous case's threads are parked.</summary>
    public const int SettleMilliseconds = 300;

    [GlobalCleanup]
    public void Cleanup()
    {
        _ours?.Dispose();
        _torch?.Dispose();
        _ort?.Dispose();
        _ours = null;
        _torch = null;
        _ort = null;
    }

    /// <summary>One training step: zero_grad + forward (train mode) + backward (output grad g) + SGD momentum 0.9.</summary>
    [Benchmark]
    public void Train()
    {
        if (_ours is not null) _ours.TrainStep();
        else _torch!.TrainStep();
    }

    /// <summary>One inference: eval-mode forward (torch under no_grad).</summary>
    [Benchmark]
    public void Infer()
    {
        if (_ours is not null) _ours.Infer();
        else if (_torch is not null) _torch.Infer();
        else _ort!.Infer();
    }
}
