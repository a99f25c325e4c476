// A small reverse-mode reference in double precision for the graph tests: conv2d, batch norm (batch statistics or
// running ones), ReLU, add and concat over [N, C, H, W], each with its backward, run from a tape.
namespace Dsl.Compiler.Tests;

/// <summary>
/// Computes a network in double the way PyTorch defines it (batch norm's batch variance biased when normalizing)
/// and its gradients by walking the tape backward; parameter gradients are summed by name.
/// </summary>
internal sealed class DoubleReference
{
    private readonly List<Action> _tape = new();

    public Dictionary<string, double[]> Gradients { get; } = new(StringComparer.Ordinal);

    /// <summary>A value [N, C, H, W] and its gradient.</summary>
    public sealed class V
    {
        public V(int n, int c, int h, int w)
        {
            (N, C, H, W) = (n, c, h, w);
            D = new double[n * c * h * w];
            G = new double[D.Length];
        }

        public int N { get; }
        public int C { get; }
        public int H { get; }
        public int W { get; }
        public double[] D { get; }
        public double[] G { get; }
        public int Plane => H * W;
        public int At(int n, int c, int h, int w) => ((n * C + c) * H + h) * W + w;
    }

    public V Input(ReadOnlySpan<float> x, int n, int c, int h, int w)
    {
        var v = new V(n, c, h, w);
        for (int i = 0; i < v.D.Length; i++) v.D[i] = x[i];
        return v;
    }

    private double[] Grad(string name, int length)
    {
        if (!Gradients.TryGetValue(name, out var g)) Gradients[name] = g = new double[length];
        return g;
    }

    public V Conv(V x, string name, float[] weight, int outC, int k, int stride, int pad)
    {
        int oh = (x.H + 2 * pad - k) / stride + 1, ow = (x.W + 2 * pad - k) / stride + 1;
        var y = new V(x.N, outC, oh, ow);
        double Wt(int o, int c, int i, int j) => weight[((o * x.C + c) * k + i) * k + j];
        for (int n = 0; n < x.N; n++)
        for (int o = 0; o < outC; o++)
        for (int r = 0; r < oh; r++)
        for (int q = 0; q < ow; q++)
        {
            double sum = 0;
            for (int c = 0; c < x.C; c++)
            for (int i = 0; i < k; i++)
            for (int j = 0; j < k; j++)
            {
                int ih = r * stride - pad + i, iw = q * stride - pad + j;
                if (ih >= 0 && ih < x.H && iw >= 0 && iw < x.W) sum += Wt(o, c, i, j) * x.D[x.At(n, c, ih, iw)];
            }

            y.D[y.At(n, o, r, q)] = sum;
        }

        _tape.Add(() =>
        {
            var dw = Grad(name + ".weight", weight.Length);
            for (int n = 0; n < x.N; n++)
            for (int o = 0; o < outC; o++)
            for (int r = 0; r < oh; r++)
            for (int q = 0; q < ow; q++)
            {
                double g = y.G[y.At(n, o, r, q)];
                for (int c = 0; c < x.C; c++)
                for (int i = 0; i < k; i++)
                for (int j = 0; j < k; j++)
                {
                    int ih = r * stride - pad + i, iw = q * stride - pad + j;
                    if (ih < 0 || ih >= x.H || iw < 0 || iw >= x.W) continue;
                    dw[((o * x.C + c) * k + i) * k + j] += g * x.D[x.At(n, c, ih, iw)];
                    x.G[x.At(n, c, ih, iw)] += g * Wt(o, c, i, j);
                }
            }
        });
        return y;
    }

    /// <summary>Batch norm: with <paramref name="train"/>, batch statistics (and backward through them); else the running ones.</summary>
    public V BatchNorm(V x, string name, float[] gamma, float[] beta, float[] runningMean, float[] runningVar, bool train, double eps = 1e-5)
    {
        var y = new V(x.N, x.C, x.H, x.W);
        int m = x.N * x.Plane;
        var mean = new double[x.C];
        var invStd = new double[x.C];
        for (int c = 0; c < x.C; c++)
        {
            if (train)
            {
                double s = 0, s2 = 0;
                for (int n = 0; n < x.N; n++)
                for (int p = 0; p < x.Plane; p++) s += x.D[(n * x.C + c) * x.Plane + p];
                mean[c] = s / m;
                for (int n = 0; n < x.N; n++)
                for (int p = 0; p < x.Plane; p++)
                {
                    double d = x.D[(n * x.C + c) * x.Plane + p] - mean[c];
                    s2 += d * d;
                }

                invStd[c] = 1 / Math.Sqrt(s2 / m + eps);
            }
            else
            {
                mean[c] = runningMean[c];
                invStd[c] = 1 / Math.Sqrt(runningVar[c] + eps);
            }

            for (int n = 0; n < x.N; n++)
            for (int p = 0; p < x.Plane; p++)
            {
                int i = (n * x.C + c) * x.Plane + p;
                y.D[i] = gamma[c] * (x.D[i] - mean[c]) * invStd[c] + beta[c];
            }
        }

        _tape.Add(() =>
        {
            var dGamma = Grad(name + ".weight", x.C);
            var dBeta = Grad(name + ".bias", x.C);
            for (int c = 0; c < x.C; c++)
            {
                double sumG = 0, sumGx = 0;
                for (int n = 0; n < x.N; n++)
                for (int p = 0; p < x.Plane; p++)
                {
                    int i = (n * x.C + c) * x.Plane + p;
                    double xhat = (x.D[i] - mean[c]) * invStd[c];
                    sumG += y.G[i];
                    sumGx += y.G[i] * xhat;
                }

                dGamma[c] += sumGx;
                dBeta[c] += sumG;
                for (int n = 0; n < x.N; n++)
                for (int p = 0; p < x.Plane; p++)
                {
                    int i = (n * x.C + c) * x.Plane + p;
                    double xhat = (x.D[i] - mean[c]) * invStd[c];
                    x.G[i] += train
                        ? gamma[c] * invStd[c] * (y.G[i] - sumG / m - xhat * sumGx / m)
                        : gamma[c] * invStd[c] * y.G[i];
                }
            }
        });
        return y;
    }

    public V Relu(V x)
    {
        var y = new V(x.N, x.C, x.H, x.W);
        for (int i = 0; i < x.D.Length; i++) y.D[i] = Math.Max(x.D[i], 0);
        _tape.Add(() =>
        {
            for (int i = 0; i < x.D.Length; i++)
                if (x.D[i] > 0) x.G[i] += y.G[i];
        });
        return y;
    }

    public V Add(V a, V b)
    {
        var y = new V(a.N, a.C, a.H, a.W);
        for (int i = 0; i < a.D.Length; i++) y.D[i] = a.D[i] + b.D[i];
        _tape.Add(() =>
        {
            for (int i = 0; i < a.D.Length; i++)
            {
                a.G[i] += y.G[i];
                b.G[i] += y.G[i];
            }
        });
        return y;
    }

    public V Concat(V a, V b)
    {
        var y = new V(a.N, a.C + b.C, a.H, a.W);
        for (int n = 0; n < a.N; n++)
        {
            Array.Copy(a.D, n * a.C * a.Plane, y.D, n * y.C * y.Plane, a.C * a.Plane);
            Array.Copy(b.D, n * b.C * b.Plane, y.D, n * y.C * y.Plane + a.C * a.Plane, b.C * b.Plane);
        }

        _tape.Add(() =>
        {
            for (int n = 0; n < a.N; n++)
            {
                for (int i = 0; i < a.C * a.Plane; i++) a.G[n * a.C * a.Plane + i] += y.G[n * y.C * y.Plane + i];
                for (int i = 0; i < b.C * b.Plane; i++) b.G[n * b.C * b.Plane + i] += y.G[n * y.C * y.Plane + a.C * a.Plane + i];
            }
        });
        return y;
    }

    /// <summary>Seeds dL/d(output) and runs the tape backward.</summary>
    public void Backward(V output, ReadOnlySpan<float> outputGrad)
    {
        for (int i = 0; i < output.G.Length; i++) output.G[i] = outputGrad[i];
        for (int i = _tape.Count - 1; i >= 0; i--) _tape[i]();
    }
}
