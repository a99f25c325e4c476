// TorchSharp versions of the networks, built from the same layer list, with state_dict names that
// match ours (nn.Sequential names its children by position; `as` names are given explicitly).
using Dsl.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Dsl.Benchmarks;

public static class TorchModels
{
    public static nn.Module<Tensor, Tensor> Build(Network network)
    {
        if (network.BuildTorch is { } build)
        {
            var module = build();
            module.to(float32);
            return module;
        }

        var modules = new List<(string, nn.Module<Tensor, Tensor>)>();
        foreach (var layer in network.Layers)
        {
            nn.Module<Tensor, Tensor> module = layer switch
            {
                Conv2dLayer c => nn.Conv2d(c.In, c.Out, c.Kernel, padding: c.Padding, bias: c.Bias),
                BatchNormLayer b when network.ShapeBefore(b).Length == 1 => nn.BatchNorm1d(b.Channels, BatchNormLayer.Eps, BatchNormLayer.Momentum),
                BatchNormLayer b => nn.BatchNorm2d(b.Channels, BatchNormLayer.Eps, BatchNormLayer.Momentum),
                GroupNormLayer g => nn.GroupNorm(g.Groups, g.Channels, GroupNormLayer.Eps),
                LayerNormLayer l => nn.LayerNorm(l.Shape.Select(d => (long)d).ToArray(), LayerNormLayer.Eps),
                ReluLayer => nn.ReLU(),
                MaxPool2dLayer m => nn.MaxPool2d(m.Kernel),
                FlattenLayer => nn.Flatten(),
                LinearLayer l => nn.Linear(l.In, l.Out, hasBias: l.Bias),
                _ => throw new NotSupportedException(layer.ToString()),
            };
            modules.Add((layer.Name, module));
        }

        var sequential = nn.Sequential(modules.ToArray());
        sequential.to(float32);
        return sequential;
    }

    /// <summary>Copies every parameter, running statistic and batch counter of <paramref name="from"/> into the module, by state_dict name.</summary>
    public static void CopyState(CompiledModel from, nn.Module module)
    {
        var state = module.state_dict();
        var ours = from.Tensors.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        var missing = state.Keys.Where(k => !ours.Contains(k)).Concat(ours.Where(k => !state.ContainsKey(k))).ToList();
        if (missing.Count > 0)
            throw new InvalidOperationException($"{from.Name}: state_dict names differ between ours and torch: {string.Join(", ", missing)}");

        using var noGrad = no_grad();
        foreach (var info in from.Tensors)
        {
            var target = state[info.Name];
            if (!target.shape.SequenceEqual(info.Shape.Select(d => (long)d)))
                throw new InvalidOperationException($"{from.Name}: '{info.Name}' is [{string.Join(", ", target.shape)}] in torch but {info.ShapeText} in ours");
            if (info.Storage == TensorStorage.Counter)
            {
                target.fill_(from.Counter(info.Name));
                continue;
            }

            using var source = tensor(from.Tensor(info.Name).ToArray(), target.shape);
            target.copy_(source);
        }
    }
}

/// <summary>Loads TorchSharp's native library once, with a clear message when the patch was not applied.</summary>
public static class TorchSetup
{
    private static bool s_checked;

    public static void EnsureLoaded()
    {
        if (s_checked) return;
        try
        {
            using var probe = ones(1);
        }
        catch (Exception e) when (e is TypeInitializationException or DllNotFoundException or NotSupportedException)
        {
            throw new InvalidOperationException(
                "TorchSharp's native library did not load. On a system whose libstdc++ lacks GLIBCXX_3.4.32 (Debian 12), " +
                "run tests/Dsl.Benchmarks/scripts/patch-torchsharp.sh after every build (tests/Dsl.Benchmarks/run.sh does). " +
                $"Cause: {e.GetBaseException().Message}", e);
        }

        s_checked = true;
    }

    /// <summary>The path of the libLibTorchSharp.so mapped into this process (Linux), for the log.</summary>
    public static string? LoadedLibraryPath()
    {
        const string maps = "/proc/self/maps";
        if (!File.Exists(maps)) return null;
        return File.ReadLines(maps)
            .Select(l => l.IndexOf('/') is int i and >= 0 ? l[i..] : "")
            .FirstOrDefault(p => p.EndsWith("/libLibTorchSharp.so", StringComparison.Ordinal));
    }

    public static void SetThreads(int threads)
    {
        EnsureLoaded();
        set_num_threads(threads);
    }
}
