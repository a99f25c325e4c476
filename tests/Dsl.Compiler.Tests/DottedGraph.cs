using Dsl.Cli;
using Dsl.Compiler.Emit;
using Dsl.Compiler.Graph;
using Dsl.Compiler.Lowering;
using Dsl.Compiler.Ops;
using Dsl.Compiler.Semantics;
using Dsl.Compiler.Syntax;
using Dsl.Compiler.Text;
using Dsl.Runtime;

namespace Dsl.Compiler.Tests;

/// <summary>
/// A small residual network built on the IR with the graph language's dotted names (op.Name is the full
/// <c>state_dict</c> prefix, as the graph binder gives it): a stem, one projection block <c>layer1.0</c> with
/// <c>layer1.0.downsample.{0,1}</c> and an <c>add</c>, then a head that concatenates the pooled features with a
/// linear layer's output. What the graph language's <c>ResNet</c> models look like to the exporters.
/// </summary>
internal static class DottedGraph
{
    private static readonly SourceSpan Span = new(0, 3, 1, 1);

    public static BoundModel Build()
    {
        var b = new DataflowGraph.Builder(new[] { 2, 8, 8 });
        var x0 = b.Input;
        var x1 = b.Add(Layer("conv1", "conv(2, 4, 3, padding: 1, bias: false)", "[2, 8, 8]"), x0);
        var x2 = b.Add(Layer("bn1", "bn2d", "[4, 8, 8]"), x1);
        var x3 = b.Add(Layer("2", "relu", "[4, 8, 8]"), x2);
        var x4 = b.Add(Layer("layer1.0.conv1", "conv(4, 6, 3, stride: 2, padding: 1, bias: false)", "[4, 8, 8]"), x3);
        var x5 = b.Add(Layer("layer1.0.bn1", "bn2d", "[6, 4, 4]"), x4);
        var x6 = b.Add(Layer("layer1.0.2", "relu", "[6, 4, 4]"), x5);
        var x7 = b.Add(Layer("layer1.0.conv2", "conv(6, 6, 3, padding: 1, bias: false)", "[6, 4, 4]"), x6);
        var x8 = b.Add(Layer("layer1.0.bn2", "bn2d", "[6, 4, 4]"), x7);
        var x9 = b.Add(Layer("layer1.0.downsample.0", "conv(4, 6, 1, stride: 2, bias: false)", "[4, 8, 8]"), x3);
        var x10 = b.Add(Layer("layer1.0.downsample.1", "bn2d", "[6, 4, 4]"), x9);
        var x11 = b.Add(MergeOp.Add("layer1.0.add", Syntax("add"), new[] { x8.Shape, x10.Shape }, "add(out, skip)"), x8, x10);
        var x12 = b.Add(Layer("layer1.0.6", "relu", "[6, 4, 4]"), x11);
        var x13 = b.Add(Layer("pool", "global_avgpool", "[6, 4, 4]"), x12);
        var x14 = b.Add(Layer("fc", "linear(6, 6)", "[6]"), x13);
        var x15 = b.Add(MergeOp.Concat("concat", Syntax("concat"), new[] { x13.Shape, x14.Shape }, "concat(pooled, fc)"), x13, x14);
        var x16 = b.Add(Layer("head", "linear(12, 3)", "[12]"), x15);
        var syntax = new ModelSyntax(new Identifier("Resnetlet", Span), Array.Empty<ValueSyntax>(), Span, Array.Empty<LayerSyntax>(), Span);
        return new BoundModel("Resnetlet", "ExportTests", b.Build(x16), syntax);
    }

    /// <summary>The generated class of the graph, compiled in memory, with its batch norms' affine parameters and running statistics randomized.</summary>
    public static CompiledModel Compile(BoundModel model, int maxBatch)
    {
        string code = CSharpEmitter.Emit(Lowerer.Lower(model), "resnetlet.nn");
        var compiled = InMemoryModel.Load(new[] { ("Resnetlet.g.cs", code) }, "ExportTests.Resnetlet", maxBatch);
        var rng = new Random(3);
        foreach (var tensor in model.Tensors.Where(t => t.Name.Contains("bn") || t.Name.Contains("downsample.1")))
        {
            if (tensor.Role == TensorRole.NumBatchesTracked) continue;
            var values = compiled.Tensor(tensor.Name);
            for (int i = 0; i < values.Length; i++)
            {
                values[i] = tensor.Role switch
                {
                    TensorRole.Weight => 0.5f + (float)rng.NextDouble(),
                    TensorRole.RunningVar => 0.5f + 1.5f * (float)rng.NextDouble(),
                    _ => (float)rng.NextDouble() - 0.5f,
                };
            }
        }

        return compiled;
    }

    /// <summary>A deterministic input of <paramref name="batch"/> samples.</summary>
    public static float[] Input(int batch) => Enumerable.Range(0, batch * 2 * 8 * 8).Select(i => MathF.Sin(0.37f * i) * 1.5f).ToArray();

    /// <summary>The one layer of <c>model M(input: shape) { layer }</c>, renamed to the dotted <paramref name="name"/>.</summary>
    private static Op Layer(string name, string layer, string shape)
    {
        var result = NnCompiler.Compile($"model M(input: {shape}) {{ {layer} }}");
        Assert.False(result.HasErrors, string.Join("; ", result.Diagnostics));
        var op = result.Models.Single().Layers.Single();
        var tensors = op.Tensors.Select(t => t with { Name = $"{name}.{t.LocalName}" }).ToList();
        var core = new OpCore(name, op.KindName, op.Syntax, op.InputShape, op.OutputShape, tensors, op.Flops, op.ArgumentValues) { Source = op.Source };
        return op switch
        {
            ConvOp c => new ConvOp(core, c.InChannels, c.OutChannels, c.Kernel, c.Stride, c.Padding, c.Dilation, c.Groups, c.Bias),
            BatchNormOp n => new BatchNormOp(core, n.Eps, n.Momentum, n.Affine, n.TrackRunningStats, n.Frozen),
            ActivationOp a => new ActivationOp(core, a.Function, a.NegativeSlope),
            LinearOp l => new LinearOp(core, l.InFeatures, l.OutFeatures, l.Bias),
            GlobalAvgPoolOp => new GlobalAvgPoolOp(core),
            _ => throw new InvalidOperationException($"no rename for {op.KindName}"),
        };
    }

    private static LayerSyntax Syntax(string name) => new(new Identifier(name, Span), Array.Empty<ArgumentSyntax>(), null, Span, true);
}
