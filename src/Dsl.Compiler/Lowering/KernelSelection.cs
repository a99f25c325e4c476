using System.Collections.Generic;
using Dsl.Compiler.Graph;
using Dsl.Compiler.Ops;

namespace Dsl.Compiler.Lowering
{
    /// <summary>Pass 1: the algorithm of every convolution, chosen from its constant geometry by the shared contract's rules.</summary>
    public static class KernelSelection
    {
        public static IReadOnlyDictionary<Node, ConvAlgorithm> Run(DataflowGraph graph)
        {
            var choices = new Dictionary<Node, ConvAlgorithm>();
            foreach (var node in graph.Nodes)
            {
                if (node.Op is ConvOp conv) choices.Add(node, conv.Algorithm);
            }

            return choices;
        }
    }
}
