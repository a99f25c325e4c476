// Fully connected layer kernels: y = x·Wᵀ + b and its gradients.
using System.Diagnostics;
using System.Numerics.Tensors;

namespace Dsl.Runtime;

/// <summary>Fully connected layer with PyTorch's <c>nn.Linear</c> layout: weight <c>[outFeatures, inFeatures]</c>.</summary>
public static class Linear
{
    /// <summary>Computes <c>y[i, o] = bias[o] + Σ_k x[i, k]·w[o, k]</c>.</summary>
    /// <param name="x">Input <c>[n, inFeatures]</c>.</param>
    /// <param name="w">Weight <c>[outFeatures, inFeatures]</c>.</param>
    /// <param name="bias">Bias <c>[outFeatures]</c>, or empty for no bias.</param>
    /// <param name="y">Output <c>[n, outFeatures]</c>; overwritten.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="inFeatures">Input features.</param>
    /// <param name="outFeatures">Output features.</param>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y, int n, int inFeatures, int outFeatures) =>
        Forward(x, w, bias, y, n, inFeatures, outFeatures, Workspace.Get(Gemm.ScratchLength));

    /// <summary>Computes <c>y = x·Wᵀ + bias</c> with caller-provided scratch.</summary>
    /// <param name="x">Input <c>[n, inFeatures]</c>.</param>
    /// <param name="w">Weight <c>[outFeatures, inFeatures]</c>.</param>
    /// <param name="bias">Bias <c>[outFeatures]</c>, or empty.</param>
    /// <param name="y">Output <c>[n, outFeatures]</c>; overwritten.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="inFeatures">Input features.</param>
    /// <param name="outFeatures">Output features.</param>
    /// <param name="scratch">At least <see cref="Gemm.ScratchLength"/> floats.</param>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y, int n, int inFeatures, int outFeatures, Span<float> scratch)
    {
        Debug.Assert(x.Length >= n * inFeatures, "x too short");
        Debug.Assert(w.Length >= outFeatures * inFeatures, "w too short");
        Debug.Assert(bias.IsEmpty || bias.Length >= outFeatures, "bias too short");
        Debug.Assert(y.Length >= n * outFeatures, "y too short");

        if (n >= SmallBatch)
        {
            // y[n × out] = x[n × in] · Wᵀ[in × out] (+ bias, preloaded into y)
            for (int i = 0; i < n; i++)
            {
                var row = y.Slice(i * outFeatures, outFeatures);
                if (bias.IsEmpty) row.Clear();
                else bias.Slice(0, outFeatures).CopyTo(row);
            }

            Gemm.Multiply(n, outFeatures, inFeatures, x, inFeatures, 1, w, 1, inFeatures, y, outFeatures, accumulate: true, scratch);
            return;
        }

        // A few samples: one dot product per output beats packing a 6-row panel that is mostly padding.
        for (int i = 0; i < n; i++)
        {
            ReadOnlySpan<float> row = x.Slice(i * inFeatures, inFeatures);
            for (int o = 0; o < outFeatures; o++)
            {
                float dot = TensorPrimitives.Dot(row, w.Slice(o * inFeatures, inFeatures));
                y[i * outFeatures + o] = bias.IsEmpty ? dot : dot + bias[o];
            }
        }
    }

    /// <summary>Batches below this use dot products and row updates rather than <see cref="Gemm"/>.</summary>
    private const int SmallBatch = 4;

    /// <summary>Gradient with respect to the input: <c>dx = dy·W</c>.</summary>
    /// <param name="dy">Output gradient <c>[n, outFeatures]</c>.</param>
    /// <param name="w">Weight <c>[outFeatures, inFeatures]</c>.</param>
    /// <param name="dx">Input gradient <c>[n, inFeatures]</c>; overwritten.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="inFeatures">Input features.</param>
    /// <param name="outFeatures">Output features.</param>
    public static void BackwardInput(ReadOnlySpan<float> dy, ReadOnlySpan<float> w, Span<float> dx, int n, int inFeatures, int outFeatures) =>
        BackwardInput(dy, w, dx, n, inFeatures, outFeatures, Workspace.Get(Gemm.ScratchLength));

    /// <summary>Input gradient <c>dx = dy·W</c> with caller-provided scratch; <paramref name="dx"/> is overwritten.</summary>
    /// <param name="dy">Output gradient <c>[n, outFeatures]</c>.</param>
    /// <param name="w">Weight <c>[outFeatures, inFeatures]</c>.</param>
    /// <param name="dx">Input gradient <c>[n, inFeatures]</c>; overwritten.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="inFeatures">Input features.</param>
    /// <param name="outFeatures">Output features.</param>
    /// <param name="scratch">At least <see cref="Gemm.ScratchLength"/> floats.</param>
    public static void BackwardInput(ReadOnlySpan<float> dy, ReadOnlySpan<float> w, Span<float> dx, int n, int inFeatures, int outFeatures, Span<float> scratch)
    {
        Debug.Assert(dy.Length >= n * outFeatures, "dy too short");
        Debug.Assert(w.Length >= outFeatures * inFeatures, "w too short");
        Debug.Assert(dx.Length >= n * inFeatures, "dx too short");

        if (n >= SmallBatch)
        {
            // dx[n × in] = dy[n × out] · W[out × in]
            Gemm.Multiply(n, inFeatures, outFeatures, dy, outFeatures, 1, w, inFeatures, 1, dx, inFeatures, accumulate: false, scratch);
            return;
        }

        for (int i = 0; i < n; i++)
        {
            Span<float> row = dx.Slice(i * inFeatures, inFeatures);
            row.Clear();
            for (int o = 0; o < outFeatures; o++)
            {
                // Row-wise axpy keeps the weight access contiguous instead of walking a column of W.
                TensorPrimitives.MultiplyAdd(w.Slice(o * inFeatures, inFeatures), dy[i * outFeatures + o], row, row);
            }
        }
    }

    /// <summary>Gradients with respect to weight and bias, accumulated: <c>dw += dyᵀ·x</c>, <c>dbias += Σ_i dy[i]</c>.</summary>
    /// <param name="dy">Output gradient <c>[n, outFeatures]</c>.</param>
    /// <param name="x">Forward input <c>[n, inFeatures]</c>.</param>
    /// <param name="dw">Weight gradient <c>[outFeatures, inFeatures]</c>; accumulated into.</param>
    /// <param name="dbias">Bias gradient <c>[outFeatures]</c>, accumulated into; empty when the layer has no bias.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="inFeatures">Input features.</param>
    /// <param name="outFeatures">Output features.</param>
    public static void BackwardWeight(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dw, Span<float> dbias, int n, int inFeatures, int outFeatures) =>
        BackwardWeight(dy, x, dw, dbias, n, inFeatures, outFeatures, Workspace.Get(Gemm.ScratchLength));

    /// <summary>Weight and bias gradients with caller-provided scratch: <c>dw += dyᵀ·x</c>, <c>dbias += Σ dy</c>.</summary>
    /// <param name="dy">Output gradient <c>[n, outFeatures]</c>.</param>
    /// <param name="x">Forward input <c>[n, inFeatures]</c>.</param>
    /// <param name="dw">Weight gradient; accumulated.</param>
    /// <param name="dbias">Bias gradient, or empty; accumulated.</param>
    /// <param name="n">Batch size.</param>
    /// <param name="inFeatures">Input features.</param>
    /// <param name="outFeatures">Output features.</param>
    /// <param name="scratch">At least <see cref="Gemm.ScratchLength"/> floats.</param>
    public static void BackwardWeight(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dw, Span<float> dbias, int n, int inFeatures, int outFeatures, Span<float> scratch)
    {
        Debug.Assert(dy.Length >= n * outFeatures, "dy too short");
        Debug.Assert(x.Length >= n * inFeatures, "x too short");
        Debug.Assert(dw.Length >= outFeatures * inFeatures, "dw too short");
        Debug.Assert(dbias.IsEmpty || dbias.Length >= outFeatures, "dbias too short");

        if (n >= SmallBatch)
        {
            // dW[out × in] += dyᵀ[out × n] · x[n × in]
            Gemm.Multiply(outFeatures, inFeatures, n, dy, 1, outFeatures, x, inFeatures, 1, dw, inFeatures, accumulate: true, scratch);
        }
        else
        {
            for (int i = 0; i < n; i++)
            {
                ReadOnlySpan<float> row = x.Slice(i * inFeatures, inFeatures);
                for (int o = 0; o < outFeatures; o++)
                {
                    Span<float> dwRow = dw.Slice(o * inFeatures, inFeatures);
                    TensorPrimitives.MultiplyAdd(row, dy[i * outFeatures + o], dwRow, dwRow);
                }
            }
        }

        if (!dbias.IsEmpty)
        {
            for (int o = 0; o < outFeatures; o++)
            {
                float sum = 0f;
                for (int i = 0; i < n; i++) sum += dy[i * outFeatures + o];
                dbias[o] += sum;
            }
        }
    }
}
