using Dsl.Compiler.Semantics;

namespace Dsl.Compiler.Ops
{
    /// <summary><c>flatten</c>: <c>nn.Flatten()</c>, [C, ...] → [C·...]; a view, nothing to compute.</summary>
    public sealed class FlattenDefinition : OpDefinition
    {
        public FlattenDefinition()
            : base("flatten", System.Array.Empty<ParameterSpec>())
        {
        }

        public override Op? Bind(LayerBinding b) =>
            b.Input is { } input
                ? b.Checked(new FlattenOp(b.Core("flatten", input, new[] { Shapes.Length(input) }, System.Array.Empty<TensorSpec>(), 0)))
                : null;
    }

    /// <summary>A bound flatten.</summary>
    public sealed class FlattenOp : Op
    {
        internal FlattenOp(OpCore core)
            : base(core)
        {
        }

        public override bool IsView => true;

        public override void EmitForward(Emit.OpEmitContext e, string x, string y) => e.Header(" — a view, nothing to compute");

        public override void EmitBackward(Emit.OpEmitContext e, string x, string y, string dy, string dx)
        {
            if (e.IsFirst) e.Line($"{e.Guard}{dy}.CopyTo({dx});");
        }

        public override void EmitInfer(Emit.OpEmitContext e, string v) => throw new UnreachableException();
    }
}
