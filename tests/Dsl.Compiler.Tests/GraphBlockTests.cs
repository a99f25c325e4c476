using Dsl.Cli;
using Dsl.Compiler.Emit;
using Dsl.Compiler.Graph;
using Dsl.Compiler.Lowering;
using Dsl.Compiler.Ops;
using Dsl.Compiler.Semantics;
using Dsl.Compiler.Syntax;
using Dsl.Compiler.Text;
using Dsl.Runtime;
using Dsl.Runtime.Kernels;
using Dsl.Tests;

namespace Dsl.Compiler.Tests;

/// <summary>
/// The blocks of ResNet and DenseNet built on the IR (until the graph syntax arrives) and compiled like any model:
/// torchvision's BasicBlock, a down-sampling block with a projection shortcut (conv 1×1 stride 2 + batch norm), and a
/// dense block (bn-relu-conv, then concat(block input, new)). Each trains and infers equal to a double-precision
/// reference; at inference the residual add rides on the conv that writes one of its inputs.
/// </summary>
public sealed class GraphBlockTests
{
    private const int Batch = 3;

    /// <summary>A block: its lowered plan, its code, and the reference that computes it from the model's tensors.</summary>
    internal sealed record Block(string Name, BoundModel Model, LoweredModel Lowered, string Code, int[] InputShape,
        Func<DoubleReference, DoubleReference.V, CompiledModel, bool, DoubleReference.V> Reference)
    {
        public CompiledModel Load(int maxBatch) => InMemoryModel.Load(new[] { (Name + ".g.cs", Code) }, "GraphTests." + Name, maxBatch);
    }

    private static Block Lower(BoundModel model, Func<DoubleReference, DoubleReference.V, CompiledModel, bool, DoubleReference.V> reference)
    {
        var lowered = Lowerer.Lower(model);
        string code = CSharpEmitter.Emit(lowered, model.Name.ToLowerInvariant() + ".nn");
        if (Environment.GetEnvironmentVariable("DSL_PRINT_GRAPH_CODE") is { } folder) File.WriteAllText(Path.Combine(folder, model.Name + ".g.cs"), code);
        return new Block(model.Name, model, lowered, code, model.InputShape.ToArray(), reference);
    }

    private static float[] T(CompiledModel m, string name) => m.Tensor(name).ToArray();

    private static DoubleReference.V ConvBn(DoubleReference r, DoubleReference.V x, CompiledModel m, bool train, string conv, string bn, int outC, int k, int stride, int pad) =>
        r.BatchNorm(r.Conv(x, conv, T(m, conv + ".weight"), outC, k, stride, pad), bn, T(m, bn + ".weight"), T(m, bn + ".bias"), T(m, bn + ".running_mean"), T(m, bn + ".running_var"), train);

    /// <summary>The block of <see cref="GraphBlocks"/> named <paramref name="name"/>, with its reference.</summary>
    internal static Block Get(string name) => Lower(GraphBlocks.Get(name), name switch
    {
        "BasicBlock" => (r, v, m, train) =>
        {
            var h = r.Relu(ConvBn(r, v, m, train, "conv1", "bn1", 16, 3, 1, 1));
            h = ConvBn(r, h, m, train, "conv2", "bn2", 16, 3, 1, 1);
            return r.Relu(r.Add(h, v));
        },
        "DownBlock" => (r, v, m, train) =>
        {
            var h = r.Relu(ConvBn(r, v, m, train, "conv1", "bn1", 16, 3, 2, 1));
            h = ConvBn(r, h, m, train, "conv2", "bn2", 16, 3, 1, 1);
            var identity = ConvBn(r, v, m, train, "downsample_0", "downsample_1", 16, 1, 2, 0);
            return r.Relu(r.Add(h, identity));
        },
        "DenseBlock" => (r, v, m, train) =>
        {
            var block = ConvBn(r, v, m, train, "stem", "stem_bn", 8, 3, 1, 1);
            var h = r.Relu(r.BatchNorm(block, "norm", T(m, "norm.weight"), T(m, "norm.bias"), T(m, "norm.running_mean"), T(m, "norm.running_var"), train));
            return r.Concat(block, r.Conv(h, "conv", T(m, "conv.weight"), 4, 3, 1, 1));
        },
        _ => (r, v, m, train) =>
        {
            var block = r.Relu(ConvBn(r, v, m, train, "stem", "stem_bn", 16, 3, 1, 1));
            return r.Concat(r.Relu(ConvBn(r, block, m, train, "branch1", "branch1_bn", 8, 1, 1, 0)), r.Relu(ConvBn(r, block, m, train, "branch3", "branch3_bn", 16, 3, 1, 1)));
        },
    });

    public static TheoryData<string> Blocks() => new(GraphBlocks.Names);

    /// <summary>Random parameters, and running statistics away from 0 and 1 so that folding them matters.</summary>
    private static void Randomize(CompiledModel model, int seed)
    {
        var rng = new Random(seed);
        var p = model.Parameters;
        for (int i = 0; i < p.Length; i++) p[i] = (float)(rng.NextDouble() - 0.5);
        foreach (var t in model.Tensors)
        {
            if (t.Name.EndsWith(".weight", StringComparison.Ordinal) && t.Shape.Length == 1)
            {
                var gamma = model.Tensor(t.Name);
                for (int i = 0; i < gamma.Length; i++) gamma[i] = (float)(0.5 + rng.NextDouble());
            }
            else if (t.Name.EndsWith(".running_mean", StringComparison.Ordinal))
            {
                var mean = model.Tensor(t.Name);
                for (int i = 0; i < mean.Length; i++) mean[i] = (float)(rng.NextDouble() - 0.5);
            }
            else if (t.Name.EndsWith(".running_var", StringComparison.Ordinal))
            {
                var variance = model.Tensor(t.Name);
                for (int i = 0; i < variance.Length; i++) variance[i] = (float)(0.5 + rng.NextDouble());
            }
        }

        model.ParametersChanged();
    }

    /// <summary>Relative to the larger of 1 and the reference value: float against double through two convs and batch norms.</summary>
    private const double Tolerance = 1e-5;

    private static double AssertClose(double[] expected, ReadOnlySpan<float> actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        double worst = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double error = Math.Abs(actual[i] - expected[i]) / Math.Max(1, Math.Abs(expected[i]));
            worst = Math.Max(worst, error);
            Assert.True(error <= Tolerance, $"{what}[{i}]: {actual[i]} against {expected[i]}");
        }

        return worst;
    }

    [Theory]
    [MemberData(nameof(Blocks))]
    public void A_block_trains_and_infers_equal_to_the_double_reference(string name)
    {
        var block = Get(name);
        var model = block.Load(maxBatch: 4);
        Randomize(model, 11);
        var rng = new Random(3);
        int inLength = model.SampleInputLength, outLength = model.SampleOutputLength;
        var input = Enumerable.Range(0, Batch * inLength).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var outputGrad = Enumerable.Range(0, Batch * outLength).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var shape = block.InputShape;
        double worst = 0;

        // Inference: running statistics, batch norm folded, the residual add (and its ReLU) in the conv's epilogue.
        var inferred = new float[Batch * outLength];
        model.Infer(input, inferred, Batch);
        var eval = new DoubleReference();
        worst = Math.Max(worst, AssertClose(block.Reference(eval, eval.Input(input, Batch, shape[0], shape[1], shape[2]), model, false).D, inferred, "infer"));

        // Training: batch statistics through every branch, gradients summed where a value has two readers.
        var train = new DoubleReference();
        var x = train.Input(input, Batch, shape[0], shape[1], shape[2]);
        var y = block.Reference(train, x, model, true);
        train.Backward(y, outputGrad);
        var output = new float[Batch * outLength];
        var inputGrad = new float[Batch * inLength];
        model.ZeroGrad();
        model.Forward(input, output, Batch);
        model.Backward(outputGrad, inputGrad);
        worst = Math.Max(worst, AssertClose(y.D, output, "forward"));
        worst = Math.Max(worst, AssertClose(x.G, inputGrad, "dL/dx"));
        foreach (var (tensor, gradient) in train.Gradients) worst = Math.Max(worst, AssertClose(gradient, model.Gradient(tensor), "dL/d" + tensor));
        Assert.Equal(model.Tensors.Count(t => t.Storage == TensorStorage.Parameter), train.Gradients.Count);

        // Forward moved the running statistics: inference folds them again.
        model.Infer(input, inferred, Batch);
        var after = new DoubleReference();
        worst = Math.Max(worst, AssertClose(block.Reference(after, after.Input(input, Batch, shape[0], shape[1], shape[2]), model, false).D, inferred, "infer after a training step"));
        Console.WriteLine($"{name}: worst relative error {worst:E2}");
    }

    [Theory]
    [InlineData("BasicBlock", "conv2", "input", ConvAlgorithm.Winograd)]
    [InlineData("DownBlock", "downsample_0", "bn2", ConvAlgorithm.Gemm)]
    public void The_residual_add_and_its_relu_are_written_by_the_conv_with_no_pass_of_their_own(string name, string producer, string residual, ConvAlgorithm algorithm)
    {
        var block = Get(name);
        Assert.Equal(algorithm, block.Lowered.Kernels[block.Model.Graph.Nodes.Single(n => n.Op.Name == producer)]);
        var graph = block.Model.Graph;
        var add = graph.Nodes.Single(n => n.Op is MergeOp);
        var plan = block.Lowered.Inference;
        Assert.True(plan.IsEpilogue(add));
        var group = plan.GroupOf(add)!;
        Assert.Equal(producer, group.Producer.Op.Name);
        var epilogue = group.Find(EpilogueKind.ResidualAdd)!;
        Assert.Same(add, epilogue.Node);
        Assert.Equal(residual, epilogue.Residual!.Producer?.Op.Name ?? "input");
        // In order: the batch norm folded in, the add, then the ReLU after it.
        Assert.Equal(new[] { EpilogueKind.FoldedBatchNorm, EpilogueKind.ResidualAdd, EpilogueKind.Activation }, group.Epilogues.Select(e => e.Kind));
        Assert.Equal("relu2", group.Last.Op.Name);
        // Training keeps the add as its own step (backward reads nothing of it).
        Assert.False(block.Lowered.Training.IsEpilogue(add));

        string infer = InferBody(block.Code);
        Assert.DoesNotContain("Merges.Add(", infer, StringComparison.Ordinal);
        Assert.Contains("FusedActivation.Relu, residual: ", infer, StringComparison.Ordinal);
        Assert.Contains("// add: add(", infer, StringComparison.Ordinal);
        Assert.Contains("Merges.Add(", block.Code, StringComparison.Ordinal); // training's forward still adds
    }

    [Fact]
    public void A_conv_that_runs_before_the_other_input_exists_does_not_take_the_add()
    {
        // a = c1(x) runs first, b = tanh(x) after it: c1 cannot add b as it writes, and tanh is no conv, so the add stays a pass.
        var ops = NnCompiler.Compile("model X(input: [4, 6, 6]) { conv(4, 4, 3, padding: 1) as c1 -> tanh as t }").Models.Single().Layers;
        var span = new SourceSpan(0, 3, 1, 1);
        var b = new DataflowGraph.Builder(new[] { 4, 6, 6 });
        var first = b.Add(ops[0], b.Input);
        var second = b.Add(ops[1], b.Input);
        var add = MergeOp.Add("add", new LayerSyntax(new Identifier("add", span), Array.Empty<ArgumentSyntax>(), null, span, true), new[] { first.Shape, second.Shape }, "add(a, b)");
        var graph = b.Build(b.Add(add, first, second));
        var model = new BoundModel("Late", "GraphTests", graph, new ModelSyntax(new Identifier("Late", span), Array.Empty<ValueSyntax>(), span, Array.Empty<LayerSyntax>(), span));
        var block = Lower(model, (r, v, m, train) => throw new NotSupportedException());
        Assert.False(block.Lowered.Inference.IsEpilogue(graph.Nodes[2]));
        Assert.Contains("Merges.Add(", InferBody(block.Code), StringComparison.Ordinal);

        // And it infers what training's forward computes (no batch norm: the same function).
        var compiled = block.Load(maxBatch: 2);
        var input = Enumerable.Range(0, 2 * 144).Select(i => (float)Math.Sin(i)).ToArray();
        var trained = new float[2 * 144];
        var inferred = new float[2 * 144];
        compiled.Forward(input, trained, 2);
        compiled.Infer(input, inferred, 2);
        Assert.Equal(trained, inferred);
    }

    /// <summary>The text of the generated InferCore method.</summary>
    internal static string InferBody(string code)
    {
        int start = code.IndexOf("protected override void InferCore(", StringComparison.Ordinal);
        int end = code.IndexOf("\n    }\n", start, StringComparison.Ordinal);
        if (end < 0) end = code.IndexOf("\n        }\n", start, StringComparison.Ordinal);
        return code.Substring(start, end - start);
    }

    [Theory]
    [MemberData(nameof(Blocks))]
    public void No_two_regions_of_a_block_that_are_live_at_once_share_memory(string name)
    {
        var block = Get(name);
        GraphIrTests.AssertNoSharedMemoryWhileLive(block.Model.Graph, block.Lowered.Memory);
    }

    [Theory]
    [InlineData("BasicBlock", "bn1:conv1", "bn2:conv2")]
    [InlineData("DownBlock", "bn1:conv1", "bn2:conv2", "downsample_1:downsample_0")]
    [InlineData("DenseBlock", "stem_bn:stem")]
    [InlineData("BranchBlock", "stem_bn:stem", "branch1_bn:branch1", "branch3_bn:branch3")]
    public void Batch_norm_folds_into_the_conv_before_it_in_every_branch_and_shortcut(string name, params string[] folds)
    {
        var block = Get(name);
        var plan = block.Lowered.Inference;
        foreach (var fold in folds)
        {
            var (bn, conv) = (fold.Split(':')[0], fold.Split(':')[1]);
            var node = block.Model.Graph.Nodes.Single(n => n.Op.Name == bn);
            var group = plan.GroupOf(node)!;
            Assert.Equal(conv, group.Producer.Op.Name);
            Assert.Same(node, group.Find(EpilogueKind.FoldedBatchNorm)!.Node);
            Assert.NotNull(block.Lowered.Memory.FoldedWeight(group.Producer));
        }

        // The dense block's norm reads the block input, which the concat reads too: it cannot fold, and runs as a scale and shift.
        if (name == "DenseBlock") Assert.False(plan.IsEpilogue(block.Model.Graph.Nodes.Single(n => n.Op.Name == "norm")));
    }

    [Fact]
    public void A_dense_block_writes_the_new_channels_in_place_and_copies_the_block_input_once()
    {
        var block = Get("DenseBlock");
        var graph = block.Model.Graph;
        var concat = graph.Nodes.Single(n => n.Op is MergeOp);
        var memory = block.Lowered.Memory;
        // The block input is read by the new branch too: it keeps its own region and is copied into slice 0.
        Assert.Null(memory.SliceOf(concat.Inputs[0]));
        // The new channels: the conv writes them at floats 288–431 of each sample's 432.
        var slice = memory.SliceOf(concat.Inputs[1])!;
        Assert.Equal((288, 432), (slice.Offset, slice.Stride));
        Assert.Same(memory.InferenceRegion(concat.Output), slice.Region);
        Assert.Equal("conv", concat.Inputs[1].Producer!.Op.Name);

        string infer = InferBody(block.Code);
        Assert.Equal(1, Count(infer, "Merges.WriteSlice("));
        Assert.Contains("Merges.WriteSlice(h0, 288, h4, 432, 0, batch);", infer, StringComparison.Ordinal);
        Assert.Contains("residual: default, outputStride: 432);", infer, StringComparison.Ordinal);
        Assert.Contains("written in place by conv", infer, StringComparison.Ordinal);
    }

    [Fact]
    public void Branches_that_only_the_concat_reads_write_their_slices_in_place_with_no_copy()
    {
        var block = Get("BranchBlock");
        var concat = block.Model.Graph.Nodes.Single(n => n.Op is MergeOp);
        var memory = block.Lowered.Memory;
        var first = memory.SliceOf(concat.Inputs[0])!;
        var second = memory.SliceOf(concat.Inputs[1])!;
        Assert.Equal((0, 1536), (first.Offset, first.Stride));
        Assert.Equal((512, 1536), (second.Offset, second.Stride));
        // The concat's region lives from the first branch's conv, and no region live meanwhile overlaps it (the invariant test).
        Assert.Equal(concat.Inputs[0].Producer!.Id - 2 + 1, first.Region.Start);
        string infer = InferBody(block.Code);
        Assert.DoesNotContain("Merges.WriteSlice(", infer, StringComparison.Ordinal);
        Assert.Equal(2, Count(infer, "FusedActivation.Relu, residual: default, outputStride: 1536);"));
        Assert.Contains("Merges.WriteSlice(", block.Code, StringComparison.Ordinal); // training's forward still copies
    }

    private static int Count(string text, string what)
    {
        int count = 0;
        for (int at = text.IndexOf(what, StringComparison.Ordinal); at >= 0; at = text.IndexOf(what, at + 1, StringComparison.Ordinal)) count++;
        return count;
    }

    [Fact]
    public void The_shortcut_stays_live_until_the_conv_that_adds_it_has_run()
    {
        foreach (var block in new[] { Get("BasicBlock"), Get("DownBlock") })
        {
            var graph = block.Model.Graph;
            var group = block.Lowered.Inference.Groups.Single(g => g.Find(EpilogueKind.ResidualAdd) is not null);
            var residual = group.Find(EpilogueKind.ResidualAdd)!.Residual!;
            var written = block.Lowered.Memory.InferenceRegion(group.Last.Output)!;
            if (block.Lowered.Memory.InferenceRegion(residual) is { } region)
            {
                Assert.True(region.End >= group.Producer.Id + 1, $"{region} ends before {group.Producer.Op.Name} runs");
                Assert.NotSame(region, written);
                Assert.False(region.Offset < written.Offset + written.Length && written.Offset < region.Offset + region.Length, "the conv writes over the residual it reads");
            }
            else
            {
                Assert.Same(graph.Input, residual); // the caller's input span
            }
        }
    }
}

/// <summary>Steady-state calls of the blocks allocate nothing on any thread.</summary>
[Collection(EveryThreadAllocation.Collection)]
public sealed class GraphBlockAllocationTests
{
    [Theory]
    [MemberData(nameof(GraphBlockTests.Blocks), MemberType = typeof(GraphBlockTests))]
    public void Infer_and_a_training_step_allocate_zero_bytes_on_every_thread(string name)
    {
        const int batch = 8;
        var block = GraphBlockTests.Get(name);
        var model = block.Load(maxBatch: batch);
        Assert.Equal(2, model.Threads);
        var input = new float[batch * model.SampleInputLength];
        for (int i = 0; i < input.Length; i++) input[i] = (i % 7 - 3) * 0.25f;
        var output = new float[batch * model.SampleOutputLength];
        var outputGrad = new float[output.Length];
        outputGrad.AsSpan().Fill(0.01f);
        var inputGrad = new float[input.Length];
        var passes = new (string Pass, Action Call)[]
        {
            ("Infer", () => model.Infer(input, output, batch)),
            ("Infer, batch 1", () => model.Infer(input.AsSpan(0, model.SampleInputLength), output.AsSpan(0, model.SampleOutputLength), 1)),
            ("Forward then Backward", () =>
            {
                model.ZeroGrad();
                model.Forward(input, output, batch);
                model.Backward(outputGrad, inputGrad);
            }),
        };
        foreach (var (_, call) in passes)
        {
            call();
            call();
        }

        EveryThreadAllocation.LetWorkersSleep();
        foreach (var (pass, call) in passes)
        {
            long allocated = EveryThreadAllocation.BytesAllocatedByCalls(WorkerPool.Shared(2), call, minCalls: 5, milliseconds: 50);
            Assert.True(allocated == 0, $"{name}: {pass} allocated {allocated} bytes");
        }
    }
}
