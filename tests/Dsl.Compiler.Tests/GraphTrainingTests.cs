using Dsl.Cli;
using Dsl.Compiler.Emit;
using Dsl.Compiler.Lowering;
using Dsl.Compiler.Graph;
using Dsl.Compiler.Ops;
using Dsl.Compiler.Semantics;
using Dsl.Compiler.Syntax;
using Dsl.Compiler.Text;
using Dsl.Runtime;

namespace Dsl.Compiler.Tests;

/// <summary>
/// A graph that is not a chain, built on the IR and compiled like any model: a residual sum and a concatenation in
/// which one value has three readers and the model input two. Forward, the summed gradients of Backward, and Infer
/// against the same network computed by hand in double precision.
/// </summary>
public sealed class GraphTrainingTests
{
    private const int F = 6;

    // a = fc1(x); t = tanh(a); c = fc2(t); s = c + a; out = concat(s, a, x): a is read by tanh, add and concat; x by fc1 and concat.
    private static CompiledModel Build(out string code)
    {
        var ops = NnCompiler.Compile($"model Residual(input: [{F}]) {{ linear({F}, {F}) as fc1 -> tanh -> linear({F}, {F}) as fc2 }}").Models.Single().Layers;
        var span = new SourceSpan(0, 3, 1, 1);
        var builder = new DataflowGraph.Builder(new[] { F });
        var x = builder.Input;
        var a = builder.Add(ops[0], x);
        var t = builder.Add(ops[1], a);
        var c = builder.Add(ops[2], t);
        var s = builder.Add(MergeOp.Add("add", new LayerSyntax(new Identifier("add", span), Array.Empty<ArgumentSyntax>(), null, span, true), new[] { c.Shape, a.Shape }, "add(c, a)"), c, a);
        var output = builder.Add(MergeOp.Concat("concat", new LayerSyntax(new Identifier("cat", span), Array.Empty<ArgumentSyntax>(), null, span, true), new[] { s.Shape, a.Shape, x.Shape }, "concat(s, a, input)"), s, a, x);
        var syntax = new ModelSyntax(new Identifier("Residual", span), Array.Empty<ValueSyntax>(), span, Array.Empty<LayerSyntax>(), span);
        var model = new BoundModel("Residual", "GraphTests", builder.Build(output), syntax);
        code = CSharpEmitter.Emit(Lowerer.Lower(model), "residual.nn");
        if (Environment.GetEnvironmentVariable("DSL_PRINT_GRAPH_CODE") is { } path) File.WriteAllText(path, code);
        return InMemoryModel.Load(new[] { ("Residual.g.cs", code) }, "GraphTests.Residual", maxBatch: 4);
    }

    [Fact]
    public void Forward_backward_and_infer_match_the_network_computed_by_hand()
    {
        const int n = 3;
        var model = Build(out string code);
        Assert.Contains("Merges.Accumulate(part", code, StringComparison.Ordinal); // tanh's share of dL/da is added to what add and concat wrote
        Assert.Contains("if (!inputGrad.IsEmpty) global::Dsl.Runtime.Kernels.Merges.Accumulate(part", code, StringComparison.Ordinal);
        var rng = new Random(5);
        var p = model.Parameters;
        for (int i = 0; i < p.Length; i++) p[i] = (float)(rng.NextDouble() - 0.5);
        model.ParametersChanged();
        var w1 = model.Tensor("fc1.weight").ToArray();
        var b1 = model.Tensor("fc1.bias").ToArray();
        var w2 = model.Tensor("fc2.weight").ToArray();
        var b2 = model.Tensor("fc2.bias").ToArray();
        var input = Enumerable.Range(0, n * F).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var outputGrad = Enumerable.Range(0, n * 3 * F).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();

        // By hand, in double.
        var expectedOut = new double[n * 3 * F];
        var dx = new double[n * F];
        var dw1 = new double[F * F];
        var db1 = new double[F];
        var dw2 = new double[F * F];
        var db2 = new double[F];
        for (int s = 0; s < n; s++)
        {
            var xs = input.Skip(s * F).Take(F).Select(v => (double)v).ToArray();
            var g = outputGrad.Skip(s * 3 * F).Take(3 * F).Select(v => (double)v).ToArray();
            var av = new double[F];
            var tv = new double[F];
            var cv = new double[F];
            for (int o = 0; o < F; o++)
            {
                av[o] = b1[o];
                for (int i = 0; i < F; i++) av[o] += w1[o * F + i] * xs[i];
                tv[o] = Math.Tanh(av[o]);
            }

            for (int o = 0; o < F; o++)
            {
                cv[o] = b2[o];
                for (int i = 0; i < F; i++) cv[o] += w2[o * F + i] * tv[i];
                expectedOut[s * 3 * F + o] = cv[o] + av[o];
                expectedOut[s * 3 * F + F + o] = av[o];
                expectedOut[s * 3 * F + 2 * F + o] = xs[o];
            }

            // dL/ds = g[0..F), dL/da gets g[F..2F) from concat, dL/ds from add, and tanh's share through fc2.
            var da = new double[F];
            for (int o = 0; o < F; o++)
            {
                db2[o] += g[o];
                for (int i = 0; i < F; i++) dw2[o * F + i] += g[o] * tv[i];
            }

            for (int i = 0; i < F; i++)
            {
                double dt = 0;
                for (int o = 0; o < F; o++) dt += w2[o * F + i] * g[o];
                da[i] = dt * (1 - tv[i] * tv[i]) + g[i] + g[F + i];
            }

            for (int o = 0; o < F; o++)
            {
                db1[o] += da[o];
                for (int i = 0; i < F; i++) dw1[o * F + i] += da[o] * xs[i];
            }

            for (int i = 0; i < F; i++)
            {
                double sum = g[2 * F + i];
                for (int o = 0; o < F; o++) sum += w1[o * F + i] * da[o];
                dx[s * F + i] = sum;
            }
        }

        var output = new float[n * 3 * F];
        var inputGrad = new float[n * F];
        model.ZeroGrad();
        model.Forward(input, output, n);
        model.Backward(outputGrad, inputGrad);
        AssertClose(expectedOut, output, "forward");
        AssertClose(dx, inputGrad, "dL/dx");
        AssertClose(dw1, model.Gradient("fc1.weight").ToArray(), "dL/dW1");
        AssertClose(db1, model.Gradient("fc1.bias").ToArray(), "dL/db1");
        AssertClose(dw2, model.Gradient("fc2.weight").ToArray(), "dL/dW2");
        AssertClose(db2, model.Gradient("fc2.bias").ToArray(), "dL/db2");

        // Backward again without the input gradient accumulates the same parameter gradients once more.
        model.Backward(outputGrad);
        AssertClose(db1.Select(v => 2 * v).ToArray(), model.Gradient("fc1.bias").ToArray(), "accumulated dL/db1");

        var inferred = new float[n * 3 * F];
        model.Infer(input, inferred, n);
        AssertClose(expectedOut, inferred, "infer");
    }

    private static void AssertClose(double[] expected, float[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(actual[i] - expected[i]) <= 1e-5 * Math.Max(1, Math.Abs(expected[i])), $"{what}[{i}]: {actual[i]} against {expected[i]}");
    }
}
