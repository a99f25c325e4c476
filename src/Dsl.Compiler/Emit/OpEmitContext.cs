using System.Collections.Generic;
using System.Linq;
using Dsl.Compiler.Graph;
using Dsl.Compiler.Lowering;
using Dsl.Compiler.Ops;

namespace Dsl.Compiler.Emit
{
    /// <summary>
    /// What an op's emitter sees while it writes its part of one generated method: the writer, its member names, the
    /// lowering passes' decisions about its node, and the spans it reads and writes. Built by the model emitter for
    /// each node and method; it prints what the plan says and decides nothing.
    /// </summary>
    public sealed class OpEmitContext
    {
        private readonly ModelEmitter _model;

        internal OpEmitContext(ModelEmitter model, Node node, bool isFirst = false)
        {
            _model = model;
            Node = node;
            IsFirst = isFirst;
        }

        public Node Node { get; }
        public Op Op => Node.Op;

        /// <summary>The prefix of this node's members: its <c>state_dict</c> name in PascalCase, made unique.</summary>
        public string N => _model.NameOf(Node);

        /// <summary>The namespace of the kernels generated code calls.</summary>
        public string Kernels => CSharpEmitter.Kernels;

        /// <summary>In Backward: this node reads the model input, so it writes dL/d(input) only when the caller asked for it.</summary>
        public bool IsFirst { get; }

        /// <summary>The condition on the first node's input-gradient writes.</summary>
        public string Guard => IsFirst ? "if (!inputGrad.IsEmpty) " : "";

        public void Line(string text = "") => _model.Writer.Line(text);

        public string Int(long value) => CSharpEmitter.Int(value);

        public string Float(double value) => CSharpEmitter.Float(value);

        /// <summary>The comment over the node's block: name, source, location, shapes, and a note.</summary>
        public void Header(string note = "") => _model.Header(Node, note);

        /// <summary><c>{array}.AsSpan({N}{suffix}, length)</c>: one of the node's tensors in a flat array.</summary>
        public string Param(string suffix, int length, string array = "parameters") => $"{array}.AsSpan({N}{suffix}, {Int(length)})";

        public string Weight(string array = "parameters") => Param("Weight", Op.Tensors[0].ElementCount, array);

        public string BiasOrDefault(string array = "parameters") =>
            Op.Tensors.FirstOrDefault(t => t.Role == Semantics.TensorRole.Bias) is { } bias ? Param("Bias", bias.ElementCount, array) : "default";

        /// <summary>Batch norm's saved statistics in the cache (training's copy, or inference's).</summary>
        public string Cache(string which, bool inference = false) =>
            $"_arena.AsSpan(_cache + {(inference ? "CacheLength + " : "")}{N}{which}, {Int(Op.Channels)})";

        /// <summary>Clears gradients a kernel only adds to when the last ZeroGrad asked for them to be written.</summary>
        public void ClearGradientsAfterZeroGrad(params string[] spans)
        {
            foreach (string span in spans)
            {
                if (span != "default") Line($"if (!accumulate) {span}.Clear();");
            }
        }

        /// <summary>The convolution algorithm kernel selection chose.</summary>
        public ConvAlgorithm Algorithm => _model.Lowered.Kernels[Node];

        /// <summary>The inference group this node leads (its epilogues), or null.</summary>
        public FusedGroup? Group => _model.Lowered.Inference.LedBy(Node);

        /// <summary>The training group this node leads, or null.</summary>
        public FusedGroup? TrainingGroup => _model.Lowered.Training.LedBy(Node);

        /// <summary>In training, the node whose kernel writes this one's output, or null.</summary>
        public Node? TrainingProducer => _model.Lowered.Training.IsEpilogue(Node) ? _model.Lowered.Training.GroupOf(Node)!.Producer : null;

        /// <summary>Max pooling's argmax, as ints.</summary>
        public string Indices() => $"Indices({N}Indices, batch * {Int(Op.OutputLength)})";

        /// <summary>Part of the node's per-sample statistics (<see cref="Op.SavedLength"/>): <paramref name="length"/> floats from <paramref name="start"/>.</summary>
        public string Saved(string start, string length) => $"_arena.AsSpan({N}Saved * MaxBatch{(start == "0" ? "" : " + " + start)}, {length})";

        /// <summary>Dropout's mask.</summary>
        public string Mask() => $"_arena.AsSpan({N}Mask * MaxBatch, batch * {Int(Op.OutputLength)})";

        /// <summary>Where a first batch norm puts dL/d(input) that the caller did not ask for.</summary>
        public string DiscardedInputGradient => "_arena.AsSpan(InputGrad * MaxBatch, batch * InputLength)";

        /// <summary>At inference, whether the group's output region is its input's (the kernel writes in place).</summary>
        public bool InferInPlace => _model.InferInPlace(Node);

        /// <summary>Declares the inference output variable: a view of the planned region, or the current one when in place.</summary>
        public void DeclareInferOutput(string variable, string comment = "") => _model.DeclareInferOutput(Node, variable, comment);

        /// <summary>The scale and shift of a batch norm this node applies as it writes, as kernel arguments; empty when none.</summary>
        public string ScaleShiftArguments =>
            Group?.Find(EpilogueKind.ScaleShift) is { } bn
                ? $"folded.Slice({_model.NameOf(bn.Node)}Scale, {Int(bn.Node.Op.Channels)}), folded.Slice({_model.NameOf(bn.Node)}Shift, {Int(bn.Node.Op.Channels)})"
                : "";

        /// <summary>The header note for a batch norm applied as this node writes; empty when none.</summary>
        public string ScaleShiftNote => Group?.Find(EpilogueKind.ScaleShift) is { } bn ? $" — with {bn.Node.Op.Name} (batch norm) applied as it writes" : "";

        /// <summary>In training, the variables of the values the node reads, in argument order.</summary>
        public IReadOnlyList<string> InputNames => Node.Inputs.Select(_model.ValueName).ToList();

        /// <summary>At inference, where the group this node leads writes its value when that is a slice of a concatenation's output (in place); else null.</summary>
        public InferenceSlice? InferOutputSlice => Group is { } group ? _model.Lowered.Memory.SliceOf(group.Last.Output) : null;

        /// <summary>At inference, whether <paramref name="value"/> was written in place into its slice of a concatenation's output.</summary>
        public bool IsWrittenInPlace(Graph.Value value) => _model.Lowered.Memory.SliceOf(value) is not null;

        /// <summary>At inference, the node whose kernel writes <paramref name="value"/> (its group's producer); null for the model input.</summary>
        public Node? InferWriterOf(Graph.Value value) => value.Producer is { } node ? _model.Lowered.Inference.GroupOf(node)?.Producer ?? node : null;

        /// <summary>At inference, the variable holding <paramref name="value"/>.</summary>
        public string InferNameOf(Graph.Value value) => _model.InferName(value);

        /// <summary>At inference, <paramref name="value"/> for a comment: its variable and the layer that wrote it.</summary>
        public string InferSourceOf(Graph.Value value) =>
            value.Producer is { } node ? $"{_model.InferName(value)} ({node.Op.Name} output)" : "input (the model input)";

        /// <summary>At inference, the variables of the values the node reads, in argument order.</summary>
        public IReadOnlyList<string> InferInputNames => Node.Inputs.Select(_model.InferName).ToList();

        /// <summary>
        /// For a merge's backward: each input's gradient variable (null: nothing to write), whether to add to it (another
        /// reader wrote it first), and the condition on writing it (the caller's input gradient only when asked for).
        /// </summary>
        public IReadOnlyList<(string? Target, bool Accumulate, string Guard)> InputGradients { get; internal set; } = System.Array.Empty<(string?, bool, string)>();

        /// <summary>The context of another node (a batch norm folding into its producer writes the producer's spans).</summary>
        public OpEmitContext For(Node node) => new(_model, node);
    }
}
