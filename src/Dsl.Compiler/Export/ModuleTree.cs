using System;
using System.Collections.Generic;
using System.Linq;
using Dsl.Compiler.Graph;
using Dsl.Compiler.Ops;

namespace Dsl.Compiler.Export
{
    /// <summary>
    /// How a container below the model holds its children, which decides how a child is reached from its parent (the
    /// model class itself holds its children as attributes, or <c>add_module</c> names where they are not identifiers).
    /// </summary>
    public enum ContainerKind
    {
        /// <summary><c>nn.Sequential</c>: children named 0, 1, … in order, reached by index.</summary>
        Sequential,

        /// <summary><c>nn.ModuleDict</c>: any other set of names, reached by attribute or by key.</summary>
        Dict,
    }

    /// <summary>
    /// One child of the PyTorch module hierarchy: a leaf is an op with its own module, a container groups the ops whose
    /// dotted names (the <c>state_dict</c> prefixes, <c>layer2.0.downsample.0</c>) share its path. PyTorch forms
    /// <c>state_dict</c> keys by joining child names with dots, so building the tree from the names gives equal keys by
    /// construction.
    /// </summary>
    public sealed class ModuleNode
    {
        private readonly List<ModuleNode> _children = new();

        internal ModuleNode(string name, string path, Op? op)
        {
            Name = name;
            Path = path;
            Op = op;
        }

        /// <summary>The child's name in its parent: an identifier or a position (<c>0</c>, <c>1</c>, …).</summary>
        public string Name { get; }

        /// <summary>The dotted path from the model: the op's <c>state_dict</c> prefix for a leaf.</summary>
        public string Path { get; }

        /// <summary>The op of a leaf; null for a container.</summary>
        public Op? Op { get; }

        /// <summary>Children in order of first appearance in the graph.</summary>
        public IReadOnlyList<ModuleNode> Children => _children;

        /// <summary>Sequential when the children are exactly 0, 1, …, n − 1 in order; otherwise a dict.</summary>
        public ContainerKind Kind =>
            _children.Select((c, i) => c.Name == i.ToString(System.Globalization.CultureInfo.InvariantCulture)).All(b => b) ? ContainerKind.Sequential : ContainerKind.Dict;

        internal List<ModuleNode> MutableChildren => _children;

        internal static bool IsPosition(string name) => name.Length > 0 && name.All(c => c >= '0' && c <= '9');
    }

    /// <summary>Builds the module hierarchy of a model from its ops' dotted names.</summary>
    public static class ModuleTree
    {
        /// <summary>
        /// The model's children (merges excluded: they have no module and no <c>state_dict</c> entry), in graph order.
        /// </summary>
        /// <exception cref="ExportException">Two ops share a name, or one op's name is a container of another's.</exception>
        public static IReadOnlyList<ModuleNode> Build(DataflowGraph graph)
        {
            var root = new ModuleNode("", "", null);
            foreach (var node in graph.Nodes)
            {
                if (node.Op is MergeOp) continue;
                var segments = node.Op.Name.Split('.');
                var parent = root;
                for (int i = 0; i < segments.Length; i++)
                {
                    string segment = segments[i];
                    if (segment.Length == 0) throw new ExportException($"'{node.Op.Name}' is not a module path: it has an empty segment");
                    string path = string.Join(".", segments.Take(i + 1));
                    bool leaf = i == segments.Length - 1;
                    var existing = parent.MutableChildren.FirstOrDefault(c => c.Name == segment);
                    if (existing is null)
                    {
                        existing = new ModuleNode(segment, path, leaf ? node.Op : null);
                        parent.MutableChildren.Add(existing);
                    }
                    else if (leaf || existing.Op is not null)
                    {
                        throw new ExportException($"two layers are both named '{path}' (or one is inside the other): PyTorch needs one module per name");
                    }

                    parent = existing;
                }
            }

            return root.Children;
        }
    }

    /// <summary>A model the exporter cannot write; the message says why.</summary>
    public sealed class ExportException : Exception
    {
        public ExportException(string message)
            : base(message)
        {
        }
    }
}
