// The blocks of ResNet, DenseNet and Inception built on the graph IR by hand (until the graph syntax arrives), for
// the compiler's tests and the generator's snapshots alike. Linked into both test projects.
using Dsl.Compiler;
using Dsl.Compiler.Graph;
using Dsl.Compiler.Ops;
using Dsl.Compiler.Semantics;
using Dsl.Compiler.Syntax;
using Dsl.Compiler.Text;

namespace Dsl.Tests;

/// <summary>
/// torchvision's BasicBlock, a down-sampling block with a projection shortcut (conv 1×1 stride 2 + batch norm), a
/// dense block (bn-relu-conv, then concat(block input, new)) and two branches concatenated. Layers come from a chain
/// compiled for the purpose; the merges are built directly.
/// </summary>
internal static class GraphBlocks
{
    public static readonly string[] Names = { "BasicBlock", "DownBlock", "DenseBlock", "BranchBlock" };

    private static readonly SourceSpan Span = new(0, 3, 1, 1);

    private static IReadOnlyList<Op> Ops(string nn) => NnCompiler.Compile(nn).Models.Single().Layers;

    private static MergeOp Add(Value a, Value b, string source) =>
        MergeOp.Add("add", new LayerSyntax(new Identifier("add", Span), Array.Empty<ArgumentSyntax>(), null, Span, true), new[] { a.Shape, b.Shape }, source);

    private static MergeOp Concat(Value a, Value b, string source) =>
        MergeOp.Concat("cat", new LayerSyntax(new Identifier("concat", Span), Array.Empty<ArgumentSyntax>(), null, Span, true), new[] { a.Shape, b.Shape }, source);

    private static BoundModel Model(string name, DataflowGraph graph) =>
        new(name, "GraphTests", graph, new ModelSyntax(new Identifier(name, Span), Array.Empty<ValueSyntax>(), Span, Array.Empty<LayerSyntax>(), Span));

    public static BoundModel Get(string name) => name switch
    {
        "BasicBlock" => BasicBlock(),
        "DownBlock" => DownBlock(),
        "DenseBlock" => DenseBlock(),
        "BranchBlock" => BranchBlock(),
        _ => throw new ArgumentException($"no block {name}", nameof(name)),
    };

    /// <summary>torchvision's BasicBlock on [16, 6, 6]: relu(bn2(conv2(relu(bn1(conv1(x))))) + x).</summary>
    public static BoundModel BasicBlock()
    {
        var ops = Ops("model B(input: [16, 6, 6]) { conv(16, 16, 3, padding: 1, bias: false) as conv1 -> bn2d(16) as bn1 -> relu as relu1 -> conv(16, 16, 3, padding: 1, bias: false) as conv2 -> bn2d(16) as bn2 -> relu as relu2 }");
        var b = new DataflowGraph.Builder(new[] { 16, 6, 6 });
        var x = b.Input;
        var out1 = b.Add(ops[2], b.Add(ops[1], b.Add(ops[0], x)));
        var out2 = b.Add(ops[4], b.Add(ops[3], out1));
        var sum = b.Add(Add(out2, x, "add(out, input)"), out2, x);
        return Model("BasicBlock", b.Build(b.Add(ops[5], sum)));
    }

    /// <summary>A down-sampling BasicBlock on [8, 10, 10]: relu(bn2(conv2(relu(bn1(conv1_s2(x))))) + downsample_1(downsample_0(x))).</summary>
    public static BoundModel DownBlock()
    {
        var ops = Ops("model D(input: [8, 10, 10]) { conv(8, 16, 3, stride: 2, padding: 1, bias: false) as conv1 -> bn2d(16) as bn1 -> relu as relu1 -> conv(16, 16, 3, padding: 1, bias: false) as conv2 -> bn2d(16) as bn2 -> relu as relu2 }");
        var shortcut = Ops("model S(input: [8, 10, 10]) { conv(8, 16, 1, stride: 2, bias: false) as downsample_0 -> bn2d(16) as downsample_1 }");
        var b = new DataflowGraph.Builder(new[] { 8, 10, 10 });
        var x = b.Input;
        var out1 = b.Add(ops[2], b.Add(ops[1], b.Add(ops[0], x)));
        var out2 = b.Add(ops[4], b.Add(ops[3], out1));
        var identity = b.Add(shortcut[1], b.Add(shortcut[0], x));
        var sum = b.Add(Add(out2, identity, "add(out, downsample)"), out2, identity);
        return Model("DownBlock", b.Build(b.Add(ops[5], sum)));
    }

    /// <summary>A dense block after a stem, on [3, 6, 6]: s = stem_bn(stem(x)); concat(s, conv(relu(norm(s)))).</summary>
    public static BoundModel DenseBlock()
    {
        var ops = Ops("model X(input: [3, 6, 6]) { conv(3, 8, 3, padding: 1, bias: false) as stem -> bn2d(8) as stem_bn -> bn2d(8) as norm -> relu as relu -> conv(8, 4, 3, padding: 1, bias: false) as conv }");
        var b = new DataflowGraph.Builder(new[] { 3, 6, 6 });
        var s = b.Add(ops[1], b.Add(ops[0], b.Input));
        var added = b.Add(ops[4], b.Add(ops[3], b.Add(ops[2], s)));
        return Model("DenseBlock", b.Build(b.Add(Concat(s, added, "concat(input, new)"), s, added)));
    }

    /// <summary>Two branches from one stem, concatenated (Inception's shape), on [3, 8, 8]: concat(relu(bn(conv1x1(s))), relu(bn(conv3x3(s)))).</summary>
    public static BoundModel BranchBlock()
    {
        var stem = Ops("model X(input: [3, 8, 8]) { conv(3, 16, 3, padding: 1, bias: false) as stem -> bn2d(16) as stem_bn -> relu as stem_relu }");
        var a = Ops("model A(input: [16, 8, 8]) { conv(16, 8, 1, bias: false) as branch1 -> bn2d(8) as branch1_bn -> relu as branch1_relu }");
        var c = Ops("model B(input: [16, 8, 8]) { conv(16, 16, 3, padding: 1, bias: false) as branch3 -> bn2d(16) as branch3_bn -> relu as branch3_relu }");
        var b = new DataflowGraph.Builder(new[] { 3, 8, 8 });
        var s = b.Add(stem[2], b.Add(stem[1], b.Add(stem[0], b.Input)));
        var first = b.Add(a[2], b.Add(a[1], b.Add(a[0], s)));
        var second = b.Add(c[2], b.Add(c[1], b.Add(c[0], s)));
        return Model("BranchBlock", b.Build(b.Add(Concat(first, second, "concat(branch1, branch3)"), first, second)));
    }
}
