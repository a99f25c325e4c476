// The graph networks' other two sides. TorchResNet: ResNet-20 built from TorchSharp modules in torchvision's
// BasicBlock layout (projection shortcuts), registered under the names our state_dict uses (conv1, bn1,
// layer1.0.conv1, layer2.0.downsample.0, fc, ...), so TorchModels.CopyState works as for the chains.
// GraphExport: the ONNX model and the FLOP count from the compiler itself (Dsl.Compiler's OnnxGraphBuilder,
// serialized by nnc's OnnxWriter: what `nnc export onnx` writes), from the same .nn text the generator compiled.
using Dsl.Compiler;
using Dsl.Compiler.Export;
using Dsl.Compiler.Semantics;
using Dsl.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Dsl.Benchmarks;

public static class TorchResNet
{
    /// <summary>ResNet-20 for [1, 28, 28]: conv-bn-relu stem, three stages of three blocks (16, 32, 64 channels), global average pool, fc.</summary>
    public static nn.Module<Tensor, Tensor> ResNet20() => new ResNet("ResNet20", inputChannels: 1, widths: [16, 32, 64], blocksPerStage: 3, classes: 10);

    /// <summary>CIFAR-style ResNet; the first block of every stage after the first halves the resolution with a projection shortcut.</summary>
    private sealed class ResNet : nn.Module<Tensor, Tensor>
    {
        private readonly Conv2d _conv1;
        private readonly BatchNorm2d _bn1;
        private readonly Sequential[] _stages;
        private readonly Linear _fc;

        public ResNet(string name, int inputChannels, int[] widths, int blocksPerStage, int classes) : base(name)
        {
            _conv1 = nn.Conv2d(inputChannels, widths[0], 3, padding: 1, bias: false);
            _bn1 = nn.BatchNorm2d(widths[0]);
            register_module("conv1", _conv1);
            register_module("bn1", _bn1);
            _stages = new Sequential[widths.Length];
            int inplanes = widths[0];
            for (int s = 0; s < widths.Length; s++)
            {
                var blocks = new List<(string, nn.Module<Tensor, Tensor>)>();
                for (int b = 0; b < blocksPerStage; b++)
                {
                    int stride = s > 0 && b == 0 ? 2 : 1;
                    blocks.Add((b.ToString(System.Globalization.CultureInfo.InvariantCulture), new BasicBlock($"layer{s + 1}.{b}", inplanes, widths[s], stride)));
                    inplanes = widths[s];
                }

                _stages[s] = nn.Sequential(blocks.ToArray());
                register_module($"layer{s + 1}", _stages[s]);
            }

            _fc = nn.Linear(inplanes, classes);
            register_module("fc", _fc);
        }

        public override Tensor forward(Tensor x)
        {
            var y = _bn1.forward(_conv1.forward(x)).relu();
            foreach (var stage in _stages) y = stage.forward(y);
            return _fc.forward(nn.functional.adaptive_avg_pool2d(y, 1).flatten(1));
        }
    }

    /// <summary>torchvision's BasicBlock: conv-bn-relu-conv-bn, plus the input (or its 1×1 conv-bn projection), relu.</summary>
    private sealed class BasicBlock : nn.Module<Tensor, Tensor>
    {
        private readonly Conv2d _conv1;
        private readonly BatchNorm2d _bn1;
        private readonly Conv2d _conv2;
        private readonly BatchNorm2d _bn2;
        private readonly Sequential? _downsample;

        public BasicBlock(string name, int inplanes, int planes, int stride) : base(name)
        {
            _conv1 = nn.Conv2d(inplanes, planes, 3, stride: stride, padding: 1, bias: false);
            _bn1 = nn.BatchNorm2d(planes);
            _conv2 = nn.Conv2d(planes, planes, 3, padding: 1, bias: false);
            _bn2 = nn.BatchNorm2d(planes);
            register_module("conv1", _conv1);
            register_module("bn1", _bn1);
            register_module("conv2", _conv2);
            register_module("bn2", _bn2);
            if (stride != 1 || inplanes != planes)
            {
                _downsample = nn.Sequential(("0", nn.Conv2d(inplanes, planes, 1, stride: stride, bias: false)), ("1", nn.BatchNorm2d(planes)));
                register_module("downsample", _downsample);
            }
        }

        public override Tensor forward(Tensor x)
        {
            var identity = _downsample is null ? x : _downsample.forward(x);
            var y = _bn1.forward(_conv1.forward(x)).relu();
            y = _bn2.forward(_conv2.forward(y));
            return (y + identity).relu();
        }
    }
}

/// <summary>A graph network's ONNX model and FLOPs, from the compiler (the .nn files are embedded resources of this assembly).</summary>
public static class GraphExport
{
    /// <summary>Forward FLOPs per sample: the compiler's count (a multiply-add counts 2) of the conv and linear ops only, as for the chains.</summary>
    public static long ForwardFlops(string file, string model) =>
        Bind(file, model).Layers.Where(op => op.KindName is "conv2d" or "linear").Sum(op => op.Flops);

    /// <summary>
    /// The ONNX model (opset 17) of <paramref name="state"/>'s current parameters and running statistics: the compiler's
    /// inference graph (<see cref="OnnxGraphBuilder"/>) serialized by nnc's OnnxWriter, the bytes `nnc export onnx` writes.
    /// </summary>
    public static byte[] Onnx(string file, string model, CompiledModel state)
    {
        // Its input and output are named "input" and "output" (OnnxGraph.InputName / OutputName), as OrtRunner expects.
        var graph = OnnxGraphBuilder.Build(Bind(file, model));
        using var stream = new MemoryStream();
        state.SaveSafetensors(stream);
        stream.Position = 0;
        using var weights = SafetensorsFile.Read(stream);
        return Dsl.Cli.OnnxWriter.Write(graph, weights, $"{model} (in memory)", "Dsl.Benchmarks");
    }

    private static BoundModel Bind(string file, string model)
    {
        using var resource = typeof(GraphExport).Assembly.GetManifestResourceStream(file)
            ?? throw new InvalidOperationException($"{file} is not embedded in {typeof(GraphExport).Assembly.GetName().Name}");
        using var reader = new StreamReader(resource);
        var result = NnCompiler.Compile(reader.ReadToEnd());
        if (result.HasErrors)
            throw new InvalidOperationException($"{file}: " + string.Join("; ", result.Diagnostics.Select(d => d.Format(file))));
        return result.Models.Single(m => m.Name == model);
    }
}
