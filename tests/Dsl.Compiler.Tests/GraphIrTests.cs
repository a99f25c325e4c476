using Dsl.Compiler.Graph;
using Dsl.Compiler.Lowering;
using Dsl.Compiler.Ops;

namespace Dsl.Compiler.Tests;

/// <summary>
/// The compiler's graph IR and the passes over it: values and consumers, fusion groups, and the memory plan's
/// live ranges — on chains from the repository and on hand-built graphs where a value has several consumers.
/// </summary>
public sealed class GraphIrTests
{
    private static IReadOnlyList<Op> Ops(string nn) => NnCompiler.Compile(nn).Models.Single().Layers;

    /// <summary>Every .nn model of the repository (tests, examples, benchmarks).</summary>
    public static TheoryData<string> RepositoryModels()
    {
        var data = new TheoryData<string>();
        foreach (var file in Directory.GetFiles(Repository.Root, "*.nn", SearchOption.AllDirectories)
                     .Where(f => !f.Contains("/bin/") && !f.Contains("/obj/") && !f.Contains("node_modules") && !f.Contains("/fixtures/"))
                     .OrderBy(f => f, StringComparer.Ordinal))
            data.Add(Path.GetRelativePath(Repository.Root, file));
        return data;
    }

    [Fact]
    public void A_chain_is_the_degenerate_graph()
    {
        var model = NnCompiler.Compile("model X(input: [1, 8, 8]) { conv(1, 2, 3) -> relu -> flatten -> linear(72, 3) }").Models.Single();
        var graph = model.Graph;
        Assert.Equal(5, graph.Values.Count);
        Assert.Equal(4, graph.Nodes.Count);
        Assert.Null(graph.Input.Producer);
        Assert.Same(graph.Values[4], graph.Output);
        for (int i = 0; i < graph.Nodes.Count; i++)
        {
            var node = graph.Nodes[i];
            Assert.Same(model.Layers[i], node.Op);
            Assert.Same(graph.Values[i], Assert.Single(node.Inputs));
            Assert.Same(node, graph.Values[i + 1].Producer);
            Assert.Same(node, Assert.Single(graph.Consumers(graph.Values[i])));
        }

        Assert.Empty(graph.Consumers(graph.Output));
        Assert.Equal(new[] { 72 }, graph.Values[3].Shape);
    }

    [Fact]
    public void The_builder_refuses_a_value_of_another_graph()
    {
        var ops = Ops("model X(input: [4]) { relu -> tanh }");
        var other = new DataflowGraph.Builder(new[] { 4 });
        var builder = new DataflowGraph.Builder(new[] { 4 });
        var foreign = other.Add(ops[0], other.Input);
        Assert.Throws<ArgumentException>(() => builder.Add(ops[1], foreign));
        Assert.Throws<ArgumentException>(() => builder.Add(ops[1]));
    }

    /// <summary>v1 = relu(v0) is read by tanh and by a linear (a branch no merge joins yet); the output is sigmoid(tanh(v1)).</summary>
    private static DataflowGraph FanOut()
    {
        var ops = Ops("model X(input: [40]) { relu -> tanh -> sigmoid -> linear(40, 40) }");
        var builder = new DataflowGraph.Builder(new[] { 40 });
        var v1 = builder.Add(ops[0], builder.Input); // relu
        var v2 = builder.Add(ops[1], v1);            // tanh(v1)
        var v3 = builder.Add(ops[3], v1);            // linear(v1): a second reader of v1
        var v4 = builder.Add(ops[2], v2);            // sigmoid(v2)
        return builder.Build(v4);
    }

    [Fact]
    public void A_value_with_two_consumers_keeps_its_own_gradient_region_and_is_not_fused_away()
    {
        var graph = FanOut();
        var v1 = graph.Values[1];
        Assert.Equal(2, graph.Consumers(v1).Count);
        Assert.Null(graph.SoleConsumer(v1));

        var kernels = KernelSelection.Run(graph);
        var training = Fusion.Training(graph);
        var inference = Fusion.Inference(graph, kernels);
        var memory = MemoryLayout.Run(graph, training, inference, kernels);

        // tanh writes dL/dx over dL/dy when it is the only reader; v1's gradient sums two readers, so it has a region of its own.
        var own = memory.GradientRegion(v1)!;
        Assert.NotSame(memory.GradientRegion(graph.Values[2]), own);
        Assert.NotSame(memory.GradientRegion(graph.Values[3]), own);
        Assert.Same(memory.GradientRegion(graph.Values[4]), memory.GradientRegion(graph.Values[2])); // sigmoid in place: its sole reader
        // It is first written by the reader that runs last in forward (backward runs in reverse) and read by relu's backward.
        AssertNoSharedMemoryWhileLive(graph, memory);

        // At inference the linear must read relu's output after tanh has run: nothing may write over it in place.
        Assert.NotSame(memory.InferenceRegion(v1), memory.InferenceRegion(graph.Values[2]));
    }

    [Theory]
    [MemberData(nameof(RepositoryModels))]
    public void No_two_regions_that_are_live_at_once_share_memory(string relativePath)
    {
        var result = NnCompiler.Compile(File.ReadAllText(Path.Combine(Repository.Root, relativePath)));
        foreach (var model in result.Models)
        {
            var lowered = Lowerer.Lower(model);
            AssertNoSharedMemoryWhileLive(model.Graph, lowered.Memory);
        }
    }

    [Fact]
    public void A_value_no_backward_reads_is_not_kept_and_its_memory_is_reused()
    {
        // conv → maxpool: max pooling's backward reads its argmax, not its input, so the conv's output dies at the pooling.
        var model = NnCompiler.Compile("model X(input: [1, 16, 16]) { conv(1, 4, 3, padding: 1) -> maxpool(2) -> flatten -> linear(256, 10) }").Models.Single();
        var memory = Lowerer.Lower(model).Memory;
        var graph = model.Graph;
        var convOutput = memory.ValueRegion(graph.Values[1])!;
        int gap = 2 * graph.Nodes.Count + 2;
        Assert.True(convOutput.End < gap, $"the conv's output lives to {convOutput.End}, past Forward ({gap})");
        Assert.True(memory.ValueRegion(graph.Values[2])!.End > gap, "the pooled value is read by linear's backward");
        Assert.True(memory.InputCopied, "the conv's backward reads the input");
        // Its memory is reused by something live later: the arena is smaller than the sum of the regions.
        Assert.True(memory.PerSample < memory.Regions.Sum(r => r.Length));
    }

    [Theory]
    [InlineData("relu", true)]
    [InlineData("silu", false)]
    [InlineData("gelu", false)]
    public void A_max_pooling_joins_a_Winograd_convolution_only_through_an_activation_it_commutes_with(string activation, bool pooled)
    {
        var model = NnCompiler.Compile($"model X(input: [16, 8, 8]) {{ conv(16, 16, 3, padding: 1) -> {activation} -> maxpool(2) -> flatten -> linear(256, 2) }}").Models.Single();
        var lowered = Lowerer.Lower(model);
        var conv = model.Graph.Nodes[0];
        Assert.Equal(ConvAlgorithm.Winograd, lowered.Kernels[conv]);
        var group = lowered.Inference.LedBy(conv)!;
        Assert.NotNull(group.Find(EpilogueKind.Activation)); // relu, silu and gelu are applied by the convolution
        Assert.Equal(pooled, group.Find(EpilogueKind.MaxPool2x2) is not null);
    }

    // Inference pools as the kernel writes where the kernel can: Winograd's output transform (one window per tile) and
    // the direct kernel's tiles (two output rows at a time); a GEMM convolution's output is pooled by the pooling layer.
    [Theory]
    [InlineData("model X(input: [1, 32, 32]) { conv(1, 8, 3, padding: 1) -> relu -> maxpool(2) -> flatten -> linear(2048, 2) }", ConvAlgorithm.Direct, true)]
    [InlineData("model X(input: [16, 8, 8]) { conv(16, 16, 3, padding: 1) -> relu -> maxpool(2) -> flatten -> linear(256, 2) }", ConvAlgorithm.Winograd, true)]
    [InlineData("model X(input: [16, 8, 8]) { conv(16, 16, 1) -> relu -> maxpool(2) -> flatten -> linear(256, 2) }", ConvAlgorithm.Gemm, false)]
    public void A_max_pooling_joins_the_convolutions_whose_kernels_pool(string source, ConvAlgorithm algorithm, bool pooled)
    {
        var model = NnCompiler.Compile(source).Models.Single();
        var lowered = Lowerer.Lower(model);
        var conv = model.Graph.Nodes[0];
        Assert.Equal(algorithm, lowered.Kernels[conv]);
        var group = lowered.Inference.LedBy(conv)!;
        Assert.NotNull(group.Find(EpilogueKind.Activation));
        Assert.Equal(pooled, group.Find(EpilogueKind.MaxPool2x2) is not null);
    }

    [Fact]
    public void An_input_no_backward_reads_is_not_copied()
    {
        var memory = Lowerer.Lower(NnCompiler.Compile("model X(input: [8]) { relu -> linear(8, 2) }").Models.Single()).Memory;
        Assert.False(memory.InputCopied);
    }

    /// <summary>Regions that are live at the same time (on their timelines, or kept across Forward → Backward) never overlap in memory.</summary>
    internal static void AssertNoSharedMemoryWhileLive(DataflowGraph graph, MemoryPlan memory)
    {
        int gap = 2 * graph.Nodes.Count + 2;
        bool Kept(Region r) => !r.IsInference && r.Start < gap && r.End > gap;
        bool Live(Region a, Region b) => a.IsInference == b.IsInference ? a.Start <= b.End && b.Start <= a.End : a.IsInference ? Kept(b) : Kept(a);
        var regions = memory.Regions;
        foreach (var r in regions)
        {
            Assert.True(r.Offset >= 0 && r.Offset % 16 == 0 && r.Offset + r.Length <= memory.PerSample, $"{r} lies outside the arena or off a line");
        }

        for (int i = 0; i < regions.Count; i++)
        {
            for (int j = i + 1; j < regions.Count; j++)
            {
                var (a, b) = (regions[i], regions[j]);
                bool overlap = a.Offset < b.Offset + b.Length && b.Offset < a.Offset + a.Length;
                Assert.False(overlap && Live(a, b), $"{a} and {b} are live at once and share memory");
            }
        }

        // Every value that a backward reads, and every mask, argmax and saved statistic, lives in a region kept to the
        // end of Backward (which may run more than once after one Forward).
        int last = 2 * graph.Nodes.Count + 2 + 2 * graph.Nodes.Count;
        foreach (var r in regions.Where(r => r.Kind is RegionKind.Mask or RegionKind.Saved or RegionKind.Indices))
            Assert.True(r.End == last, $"{r} is not kept to the end of Backward ({last})");
        foreach (var node in graph.Nodes)
        {
            if ((node.Op.BackwardReads & BackwardReads.Output) != 0) Assert.Equal(last, memory.ValueRegion(node.Output)!.End);
            if ((node.Op.BackwardReads & BackwardReads.Input) != 0 && memory.ValueRegion(node.Input) is { } input) Assert.Equal(last, input.End);
        }
    }
}

/// <summary>The repository checkout the tests run from (found by walking up to Dsl.sln).</summary>
internal static class Repository
{
    public static string Root { get; } = Find();

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Dsl.sln"))) return dir.FullName;
        }

        throw new InvalidOperationException("cannot find the repository root above " + AppContext.BaseDirectory);
    }
}
