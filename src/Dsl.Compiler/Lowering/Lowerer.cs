using System.Collections.Generic;
using Dsl.Compiler.Graph;
using Dsl.Compiler.Ops;
using Dsl.Compiler.Semantics;

namespace Dsl.Compiler.Lowering
{
    /// <summary>A bound model after every lowering pass: what the emitter prints, and nothing it has to decide.</summary>
    public sealed record LoweredModel(
        BoundModel Model,
        IReadOnlyDictionary<Node, ConvAlgorithm> Kernels,
        FusionPlan Training,
        FusionPlan Inference,
        MemoryPlan Memory)
    {
        public DataflowGraph Graph => Model.Graph;
    }

    /// <summary>The lowering driver: kernel selection → fusion → memory layout, each a pass over the immutable graph.</summary>
    public static class Lowerer
    {
        public static LoweredModel Lower(BoundModel model)
        {
            var graph = model.Graph;
            var kernels = KernelSelection.Run(graph);
            var training = Fusion.Training(graph);
            var inference = Fusion.Inference(graph, kernels);
            var memory = MemoryLayout.Run(graph, training, inference, kernels);
            return new LoweredModel(model, kernels, training, inference, memory);
        }
    }
}
