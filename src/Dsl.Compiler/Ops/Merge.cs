using System.Collections.Generic;
using System.Linq;
using Dsl.Compiler.Semantics;
using Dsl.Compiler.Syntax;

namespace Dsl.Compiler.Ops
{
    /// <summary>
    /// A merge of several values into one: <c>add(a, b, ...)</c> (PyTorch's <c>a + b</c>) or <c>concat(a, b, ...)</c>
    /// (<c>torch.cat(dim=1)</c>: along channels, or features for <c>[F]</c> values). Merges have no parameters and no
    /// <c>state_dict</c> entry; they exist only in graphs, where a node reads more than one value.
    /// </summary>
    public sealed class MergeOp : Op
    {
        private MergeOp(OpCore core, bool concat, IReadOnlyList<IReadOnlyList<int>> inputShapes)
            : base(core)
        {
            IsConcat = concat;
            InputShapes = inputShapes;
        }

        /// <summary>Concatenation along channels; otherwise an element-wise sum.</summary>
        public bool IsConcat { get; }

        /// <summary>The shape of each input, in argument order.</summary>
        public IReadOnlyList<IReadOnlyList<int>> InputShapes { get; }

        /// <summary>An element-wise sum of values of one shape (the caller checks the shapes agree).</summary>
        public static MergeOp Add(string name, LayerSyntax syntax, IReadOnlyList<IReadOnlyList<int>> inputs, string? source = null) =>
            new(new OpCore(name, "add", syntax, inputs[0], inputs[0], System.Array.Empty<TensorSpec>(), Shapes.Elements(inputs[0]) * (inputs.Count - 1),
                new Dictionary<string, ValueSyntax>()) { Source = source }, concat: false, inputs);

        /// <summary>A concatenation along the first (channel) dimension (the caller checks the other dimensions agree).</summary>
        public static MergeOp Concat(string name, LayerSyntax syntax, IReadOnlyList<IReadOnlyList<int>> inputs, string? source = null)
        {
            var output = new[] { inputs.Sum(s => s[0]) }.Concat(inputs[0].Skip(1)).ToArray();
            return new MergeOp(new OpCore(name, "concat", syntax, inputs[0], output, System.Array.Empty<TensorSpec>(), 0,
                new Dictionary<string, ValueSyntax>()) { Source = source }, concat: true, inputs);
        }

        /// <summary>Each input's length per sample.</summary>
        private IEnumerable<int> Lengths => InputShapes.Select(Shapes.Length);

        public override string Describe() => IsConcat ? "concat" : "add";

        public override void EmitForward(Emit.OpEmitContext e, string x, string y)
        {
            e.Header();
            var inputs = e.InputNames;
            EmitMerge(e, inputs, y);
        }

        private void EmitMerge(Emit.OpEmitContext e, IReadOnlyList<string> inputs, string y, bool inference = false)
        {
            if (IsConcat)
            {
                // Each input is written into its slice of every sample's output; at inference a conv that only this
                // concat reads has written its slice already, in place.
                int offset = 0;
                for (int i = 0; i < inputs.Count; i++)
                {
                    int length = Shapes.Length(InputShapes[i]);
                    var value = e.Node.Inputs[i];
                    if (inference && e.IsWrittenInPlace(value))
                        e.Line($"// {inputs[i]} ({value.Producer!.Op.Name} output): written in place by {e.InferWriterOf(value)!.Op.Name}, floats {e.Int(offset)}–{e.Int(offset + length - 1)} of each sample");
                    else
                        e.Line($"{e.Kernels}.Merges.WriteSlice({inputs[i]}, {e.Int(length)}, {y}, {e.Int(OutputLength)}, {e.Int(offset)}, batch);");
                    offset += length;
                }

                return;
            }

            // Training splits the passes across the model's threads (element-wise: the same bits); inference stays as it was.
            string pool = inference ? "" : ", Pool";
            e.Line($"{e.Kernels}.Merges.Add({inputs[0]}, {inputs[1]}, {y}{pool});");
            for (int i = 2; i < inputs.Count; i++) e.Line($"{e.Kernels}.Merges.Accumulate({inputs[i]}, {y}{pool});");
        }

        /// <summary>Backward writes each input's gradient through <see cref="Emit.OpEmitContext.InputGradients"/>: dy itself for a sum, its slice for a concatenation.</summary>
        public override void EmitBackward(Emit.OpEmitContext e, string x, string y, string dy, string dx)
        {
            var targets = e.InputGradients;
            var lengths = Lengths.ToList();
            int offset = 0;
            for (int i = 0; i < targets.Count; i++)
            {
                var (target, accumulate, guard) = targets[i];
                if (target is null) { offset += lengths[i]; continue; }
                e.Line(guard + (IsConcat
                    ? $"{e.Kernels}.Merges.ReadSlice({dy}, {e.Int(OutputLength)}, {e.Int(offset)}, {target}, {e.Int(lengths[i])}, batch, accumulate: {(accumulate ? "true" : "false")});"
                    : accumulate ? $"{e.Kernels}.Merges.Accumulate({dy}, {target}, Pool);" : $"{e.Kernels}.Merges.Copy({dy}, {target}, Pool);"));
                offset += lengths[i];
            }
        }

        public override void EmitInfer(Emit.OpEmitContext e, string v)
        {
            e.Header();
            e.DeclareInferOutput(v);
            EmitMerge(e, e.InferInputNames, v, inference: true);
        }
    }
}
