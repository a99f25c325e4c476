// The example's networks (all in ResNet.nn) by their --model names: the generated classes, and each one's blocks per stage
// (what the PyTorch twin in TorchReference builds).
using Dsl.Runtime;

namespace Examples.FashionMnistResNet;

internal static class Models
{
    /// <summary>The default: ResNet-14 trains to a better accuracy than ResNet-20 within the 30 minutes (README, "Results").</summary>
    public const string Default = "resnet14";

    /// <summary>--model names, the BasicBlocks in each of the three stages (layer1–layer3), and the generated class.</summary>
    public static readonly IReadOnlyList<(string Name, int[] Blocks, Func<int, int, int, CompiledModel> Create)> All =
    [
        ("resnet20", [3, 3, 3], (maxBatch, seed, threads) => new ResNet20(maxBatch: maxBatch, seed: seed, threads: threads)),
        ("resnet14", [2, 2, 2], (maxBatch, seed, threads) => new ResNet14(maxBatch: maxBatch, seed: seed, threads: threads)),
    ];

    public static int[] Blocks(string name) => All.First(m => m.Name == name).Blocks;

    public static CompiledModel Create(string name, int maxBatch, int seed, int threads) =>
        All.First(m => m.Name == name).Create(maxBatch, seed, threads);
}
