using System.Collections.Generic;
using System.Linq;
using Dsl.Compiler.Syntax;
using Dsl.Compiler.Text;

namespace Dsl.Compiler.Semantics
{
    public enum TensorRole
    {
        Weight,
        Bias,
        RunningMean,
        RunningVar,
        NumBatchesTracked,
    }

    /// <summary>A parameter or buffer as PyTorch's <c>state_dict</c> names and shapes it.</summary>
    public sealed record TensorSpec(string Name, string LocalName, IReadOnlyList<int> Shape, TensorRole Role)
    {
        public bool IsParameter => Role is TensorRole.Weight or TensorRole.Bias;

        /// <summary>Elements; the binder rejects models where this exceeds <see cref="Binder.MaxElements"/>, so it fits an int.</summary>
        public int ElementCount => (int)Shape.Aggregate(1L, (a, b) => a * b);
    }

    /// <summary>The resolved arguments of a layer; only those of its family are meaningful.</summary>
    public sealed class LayerAttributes
    {
        public int InChannels { get; set; }
        public int OutChannels { get; set; }
        public (int H, int W) Kernel { get; set; } = (1, 1);
        public (int H, int W) Stride { get; set; } = (1, 1);
        public (int H, int W) Padding { get; set; } = (0, 0);
        public (int H, int W) Dilation { get; set; } = (1, 1);
        public int Groups { get; set; } = 1;
        public bool Bias { get; set; } = true;
        public int InFeatures { get; set; }
        public int OutFeatures { get; set; }
        public int NumFeatures { get; set; }
        public double Eps { get; set; } = 1e-5;

        /// <summary>Null means <c>momentum: none</c>, PyTorch's cumulative moving average.</summary>
        public double? Momentum { get; set; } = 0.1;
        public bool Affine { get; set; } = true;
        public bool TrackRunningStats { get; set; } = true;
        public bool Frozen { get; set; }
        public double NegativeSlope { get; set; } = 0.01;
        public bool CeilMode { get; set; }
        public bool CountIncludePad { get; set; } = true;
        public double P { get; set; } = 0.5;
    }

    /// <summary>A layer with its arguments resolved and its shapes inferred (per sample, batch excluded).</summary>
    public sealed class BoundLayer
    {
        public BoundLayer(int index, string name, LayerKind kind, LayerSyntax syntax, LayerAttributes attributes,
            IReadOnlyList<int> inputShape, IReadOnlyList<int> outputShape, IReadOnlyList<TensorSpec> tensors, long flops)
        {
            Index = index;
            Name = name;
            Kind = kind;
            Syntax = syntax;
            Attributes = attributes;
            InputShape = inputShape;
            OutputShape = outputShape;
            Tensors = tensors;
            Flops = flops;
        }

        public int Index { get; }

        /// <summary>The <c>state_dict</c> prefix: the <c>as</c> name, else the position in the chain.</summary>
        public string Name { get; }
        public LayerKind Kind { get; }
        public LayerSyntax Syntax { get; }
        public LayerAttributes Attributes { get; }
        public IReadOnlyList<int> InputShape { get; }
        public IReadOnlyList<int> OutputShape { get; }
        public IReadOnlyList<TensorSpec> Tensors { get; }

        /// <summary>Forward floating-point operations per sample (a multiply-add counts 2).</summary>
        public long Flops { get; }

        /// <summary>The value written for each argument, by PyTorch name, so findings can point at it.</summary>
        public IReadOnlyDictionary<string, ValueSyntax> ArgumentValues { get; init; } = new Dictionary<string, ValueSyntax>();

        public SourceSpan Span => Syntax.Span;
        public int InputLength => InputShape.Aggregate(1, (a, b) => a * b);
        public int OutputLength => OutputShape.Aggregate(1, (a, b) => a * b);
        public long ParameterCount => Tensors.Where(t => t.IsParameter).Sum(t => (long)t.ElementCount);
        public bool IsBatchNorm => Kind is LayerKind.BatchNorm1d or LayerKind.BatchNorm2d;
        public string KindName => LayerNames.Of(Kind);
    }

    /// <summary>A model whose every layer bound and whose shapes all check.</summary>
    public sealed class BoundModel
    {
        public BoundModel(string name, string? @namespace, IReadOnlyList<int> inputShape, IReadOnlyList<BoundLayer> layers, ModelSyntax syntax)
        {
            Name = name;
            Namespace = @namespace;
            InputShape = inputShape;
            Layers = layers;
            Syntax = syntax;
        }

        public string Name { get; }
        public string? Namespace { get; }
        public IReadOnlyList<int> InputShape { get; }
        public IReadOnlyList<BoundLayer> Layers { get; }
        public ModelSyntax Syntax { get; }
        public IReadOnlyList<int> OutputShape => Layers[Layers.Count - 1].OutputShape;
        public int InputLength => InputShape.Aggregate(1, (a, b) => a * b);
        public int OutputLength => OutputShape.Aggregate(1, (a, b) => a * b);
        public long ParameterCount => Layers.Sum(l => l.ParameterCount);
        public long Flops => Layers.Aggregate(0L, (total, l) => total > long.MaxValue - l.Flops ? long.MaxValue : total + l.Flops);
        public IEnumerable<TensorSpec> Tensors => Layers.SelectMany(l => l.Tensors);
    }

    /// <summary>Canonical spellings of layer kinds, as in the <c>.nn</c> language.</summary>
    public static class LayerNames
    {
        public static string Of(LayerKind kind) => kind switch
        {
            LayerKind.Conv1d => "conv1d",
            LayerKind.Conv2d => "conv2d",
            LayerKind.BatchNorm1d => "bn1d",
            LayerKind.BatchNorm2d => "bn2d",
            LayerKind.Linear => "linear",
            LayerKind.Relu => "relu",
            LayerKind.Sigmoid => "sigmoid",
            LayerKind.Tanh => "tanh",
            LayerKind.LeakyRelu => "leaky_relu",
            LayerKind.MaxPool1d => "maxpool1d",
            LayerKind.MaxPool2d => "maxpool2d",
            LayerKind.AvgPool1d => "avgpool1d",
            LayerKind.AvgPool2d => "avgpool2d",
            LayerKind.GlobalAvgPool => "global_avgpool",
            LayerKind.Flatten => "flatten",
            LayerKind.Dropout => "dropout",
            LayerKind.Softmax => "softmax",
            LayerKind.LogSoftmax => "log_softmax",
            _ => kind.ToString(),
        };

        public static string Shape(IReadOnlyList<int> shape) => "[" + string.Join(", ", shape) + "]";
    }
}
