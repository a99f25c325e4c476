// The benchmarked networks: each .nn model (Models/*.nn, compiled by the generator) paired with a
// layer-by-layer description of the same chain. The description builds the TorchSharp module and the
// ONNX graph; Verification proves, once per network, that all three compute the same function.
using Dsl.Benchmarks.Models;
using Dsl.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Dsl.Benchmarks;

/// <summary>One layer of a chain, named as its <c>state_dict</c> prefix (its <c>as</c> name or its 0-based position).</summary>
public abstract record Layer(string Name)
{
    /// <summary>Multiply-add FLOPs (a multiply-add counts 2) of one sample's forward pass through this layer.</summary>
    public virtual long ForwardFlops(int[] inputShape) => 0;

    /// <summary>The per-sample output shape for a per-sample input shape.</summary>
    public abstract int[] OutputShape(int[] inputShape);
}

/// <summary><c>conv(in, out, k, padding: p, bias: b)</c>, stride 1, dilation 1, groups 1.</summary>
public sealed record Conv2dLayer(string Name, int In, int Out, int Kernel, int Padding = 0, bool Bias = true) : Layer(Name)
{
    public override int[] OutputShape(int[] s) => [Out, s[1] + 2 * Padding - Kernel + 1, s[2] + 2 * Padding - Kernel + 1];

    public override long ForwardFlops(int[] s)
    {
        var o = OutputShape(s);
        return 2L * Out * In * Kernel * Kernel * o[1] * o[2];
    }
}

/// <summary><c>bn2d</c> (on [C, H, W]) or <c>bn1d</c> (on [F]) with PyTorch's defaults.</summary>
public sealed record BatchNormLayer(string Name, int Channels) : Layer(Name)
{
    public const double Eps = 1e-5;
    public const double Momentum = 0.1;

    public override int[] OutputShape(int[] s) => s;
}

/// <summary><c>group_norm(groups)</c> on [C, H, W] with PyTorch's defaults (eps 1e-5, affine).</summary>
public sealed record GroupNormLayer(string Name, int Groups, int Channels) : Layer(Name)
{
    public const double Eps = 1e-5;

    public override int[] OutputShape(int[] s) => s;
}

/// <summary><c>layer_norm</c> over the whole sample shape, with PyTorch's defaults (eps 1e-5, affine).</summary>
public sealed record LayerNormLayer(string Name, int[] Shape) : Layer(Name)
{
    public const double Eps = 1e-5;

    public override int[] OutputShape(int[] s) => s;
}

public sealed record ReluLayer(string Name) : Layer(Name)
{
    public override int[] OutputShape(int[] s) => s;
}

/// <summary><c>maxpool(k)</c>: stride k, no padding.</summary>
public sealed record MaxPool2dLayer(string Name, int Kernel) : Layer(Name)
{
    public override int[] OutputShape(int[] s) => [s[0], s[1] / Kernel, s[2] / Kernel];
}

public sealed record FlattenLayer(string Name) : Layer(Name)
{
    public override int[] OutputShape(int[] s) => [s.Aggregate(1, (a, b) => a * b)];
}

public sealed record LinearLayer(string Name, int In, int Out, bool Bias = true) : Layer(Name)
{
    public override int[] OutputShape(int[] s) => [Out];

    public override long ForwardFlops(int[] s) => 2L * In * Out;
}

/// <summary>
/// A benchmarked network: the generated class, and either its layers (a chain, from which the torch module and the
/// ONNX graph are built) or, for a graph (<see cref="ResNet20"/>), its own torch module builder, ONNX model and FLOP
/// count; and the batches it runs at.
/// </summary>
public sealed class Network
{
    /// <summary>A graph network: the torch module, the ONNX model and the FLOPs come from the network itself.</summary>
    private Network(string name, int[] inputShape, int[] outputShape, Func<int, int, int, CompiledModel> create, long forwardFlopsPerSample,
        Func<nn.Module<Tensor, Tensor>> buildTorch, Func<CompiledModel, byte[]> exportOnnx, int[] batches)
    {
        Name = name;
        InputShape = inputShape;
        OutputShape = outputShape;
        Create = create;
        Layers = [];
        Batches = batches;
        ForwardFlopsPerSample = forwardFlopsPerSample;
        BuildTorch = buildTorch;
        ExportOnnx = exportOnnx;
    }

    private Network(string name, int[] inputShape, Func<int, int, int, CompiledModel> create, Layer[] layers, int[] batches)
    {
        Name = name;
        InputShape = inputShape;
        Create = create;
        Layers = layers;
        Batches = batches;
        var shape = inputShape;
        foreach (var layer in layers)
        {
            ForwardFlopsPerSample += layer.ForwardFlops(shape);
            shape = layer.OutputShape(shape);
        }

        OutputShape = shape;
    }

    public string Name { get; }

    /// <summary>One sample's input shape (batch excluded).</summary>
    public int[] InputShape { get; }

    public int[] OutputShape { get; }

    public int InputLength => InputShape.Aggregate(1, (a, b) => a * b);

    public int OutputLength => OutputShape.Aggregate(1, (a, b) => a * b);

    /// <summary>Creates the generated model: (maxBatch, seed, threads) → instance. Use <see cref="OursFactory"/> to get one.</summary>
    internal Func<int, int, int, CompiledModel> Create { get; }

    /// <summary>The chain's layers; empty for a graph network (which has <see cref="BuildTorch"/> and <see cref="ExportOnnx"/>).</summary>
    public IReadOnlyList<Layer> Layers { get; }

    /// <summary>A graph network's own TorchSharp module (state_dict keys equal ours); null for a chain, built from <see cref="Layers"/>.</summary>
    public Func<nn.Module<Tensor, Tensor>>? BuildTorch { get; }

    /// <summary>A graph network's ONNX model with a model's current state; null for a chain, exported from <see cref="Layers"/>.</summary>
    public Func<CompiledModel, byte[]>? ExportOnnx { get; }

    public int[] Batches { get; }

    /// <summary>Forward FLOPs of one sample (a multiply-add counts 2; batch norm, relu, pooling not counted).</summary>
    public long ForwardFlopsPerSample { get; }

    /// <summary>
    /// A batch norm over features ([F], i.e. bn1d after a linear) sees one value per channel at batch 1, so
    /// training at batch 1 throws (as in PyTorch). Inference at batch 1 is fine.
    /// </summary>
    public bool CanTrain(int batch) =>
        batch > 1 || !Layers.OfType<BatchNormLayer>().Any(bn => ShapeBefore(bn).Length == 1);

    /// <summary>The per-sample shape flowing into <paramref name="layer"/>.</summary>
    public int[] ShapeBefore(Layer layer)
    {
        var shape = InputShape;
        foreach (var l in Layers)
        {
            if (ReferenceEquals(l, layer)) return shape;
            shape = l.OutputShape(shape);
        }

        throw new ArgumentException($"{layer} is not a layer of {Name}.", nameof(layer));
    }

    public static readonly Network SeedLenet = new(
        nameof(SeedLenet), [1, 34, 34], (maxBatch, seed, threads) => new SeedLenet(maxBatch, seed, threads),
        [
            new Conv2dLayer("conv1", 1, 6, 5),
            new MaxPool2dLayer("1", 2),
            new BatchNormLayer("bn1", 6),
            new FlattenLayer("3"),
            new LinearLayer("fc1", 1350, 10),
        ],
        [1, 8, 32, 128]);

    public static readonly Network FmnistBn = new(
        nameof(FmnistBn), [1, 28, 28], (maxBatch, seed, threads) => new FmnistBn(maxBatch, seed, threads),
        [
            new Conv2dLayer("0", 1, 32, 3, Padding: 1),
            new BatchNormLayer("1", 32),
            new ReluLayer("2"),
            new MaxPool2dLayer("3", 2),
            new Conv2dLayer("4", 32, 64, 3, Padding: 1),
            new BatchNormLayer("5", 64),
            new ReluLayer("6"),
            new MaxPool2dLayer("7", 2),
            new FlattenLayer("8"),
            new LinearLayer("9", 3136, 128),
            new BatchNormLayer("10", 128),
            new ReluLayer("11"),
            new LinearLayer("12", 128, 10),
        ],
        [1, 8, 32, 128]);

    public static readonly Network Resblock64 = new(
        nameof(Resblock64), [64, 32, 32], (maxBatch, seed, threads) => new Resblock64(maxBatch, seed, threads),
        [
            new Conv2dLayer("0", 64, 64, 3, Padding: 1, Bias: false),
            new BatchNormLayer("1", 64),
            new ReluLayer("2"),
            new Conv2dLayer("3", 64, 64, 3, Padding: 1, Bias: false),
            new BatchNormLayer("4", 64),
            new ReluLayer("5"),
        ],
        [1, 8, 32]);

    public static readonly Network MlpBn = new(
        nameof(MlpBn), [784], (maxBatch, seed, threads) => new MlpBn(maxBatch, seed, threads),
        [
            new LinearLayer("0", 784, 512),
            new BatchNormLayer("1", 512),
            new ReluLayer("2"),
            new LinearLayer("3", 512, 512),
            new BatchNormLayer("4", 512),
            new ReluLayer("5"),
            new LinearLayer("6", 512, 10),
        ],
        [1, 8, 32, 128]);

    /// <summary>FmnistBn with group norm (8 groups) after the convs and layer norm after the hidden linear.</summary>
    public static readonly Network FmnistGn = new(
        nameof(FmnistGn), [1, 28, 28], (maxBatch, seed, threads) => new FmnistGn(maxBatch, seed, threads),
        [
            new Conv2dLayer("0", 1, 32, 3, Padding: 1),
            new GroupNormLayer("1", 8, 32),
            new ReluLayer("2"),
            new MaxPool2dLayer("3", 2),
            new Conv2dLayer("4", 32, 64, 3, Padding: 1),
            new GroupNormLayer("5", 8, 64),
            new ReluLayer("6"),
            new MaxPool2dLayer("7", 2),
            new FlattenLayer("8"),
            new LinearLayer("9", 3136, 128),
            new LayerNormLayer("10", [128]),
            new ReluLayer("11"),
            new LinearLayer("12", 128, 10),
        ],
        [1, 8, 32, 128]);

    /// <summary>FmnistBn with layer norm over each whole sample in place of every batch norm.</summary>
    public static readonly Network FmnistLn = new(
        nameof(FmnistLn), [1, 28, 28], (maxBatch, seed, threads) => new FmnistLn(maxBatch, seed, threads),
        [
            new Conv2dLayer("0", 1, 32, 3, Padding: 1),
            new LayerNormLayer("1", [32, 28, 28]),
            new ReluLayer("2"),
            new MaxPool2dLayer("3", 2),
            new Conv2dLayer("4", 32, 64, 3, Padding: 1),
            new LayerNormLayer("5", [64, 14, 14]),
            new ReluLayer("6"),
            new MaxPool2dLayer("7", 2),
            new FlattenLayer("8"),
            new LinearLayer("9", 3136, 128),
            new LayerNormLayer("10", [128]),
            new ReluLayer("11"),
            new LinearLayer("12", 128, 10),
        ],
        [1, 8, 32, 128]);

    /// <summary>
    /// ResNet-20 for [1, 28, 28] (Models/BenchResNet20.nn, a copy of examples/ResNet/resnet20.nn): a graph with residual adds
    /// and projection shortcuts, so it brings its own torch module (<see cref="TorchResNet"/>), its ONNX model (the
    /// compiler's exporter, <see cref="GraphExport"/>) and its FLOPs (the compiler's count of its conv and linear ops).
    /// </summary>
    public static readonly Network ResNet20 = new(
        nameof(ResNet20), [1, 28, 28], [10], (maxBatch, seed, threads) => new ResNet20(maxBatch, seed, threads),
        GraphExport.ForwardFlops("BenchResNet20.nn", nameof(ResNet20)),
        () => TorchResNet.ResNet20(),
        model => GraphExport.Onnx("BenchResNet20.nn", nameof(ResNet20), model),
        [1, 8, 32, 128]);

    /// <summary>The networks of a run; <see cref="FmnistGn"/>, <see cref="FmnistLn"/> and <see cref="ResNet20"/> run when named with --networks.</summary>
    public static IReadOnlyList<Network> All { get; } = [SeedLenet, FmnistBn, Resblock64, MlpBn];

    /// <summary>Every network --networks can name.</summary>
    public static IReadOnlyList<Network> Known { get; } = [SeedLenet, FmnistBn, Resblock64, MlpBn, FmnistGn, FmnistLn, ResNet20];

    public static Network Get(string name) =>
        Known.FirstOrDefault(n => n.Name == name) ?? throw new ArgumentException($"unknown network '{name}'", nameof(name));

    public override string ToString() => Name;
}
