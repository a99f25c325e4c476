// Cross-checks the kernels against PyTorch 2.10 reference numbers (Golden/*.safetensors, see /work/shared/golden/README.md)
// by running each recorded chain layer by layer: train forward/backward, running statistics, eval forward.
namespace Dsl.Runtime.Tests;

public class GoldenTests
{
    [Fact]
    public void Bn1dFeatures() => Run("bn1d_features", f => [new Bn(f, "0", 64, 1)]);

    [Fact]
    public void MomentumNoneUsesCumulativeAverageOverTwoSteps() =>
        Run("momentum_none", f => [new Bn(f, "0", 4, 25, momentum: null, affine: false)], trainSteps: 2);

    [Fact]
    public void UntrackedUsesBatchStatisticsInEval() =>
        Run("untracked", f => [new Bn(f, "0", 3, 16, tracked: false)]);

    [Fact]
    public void BatchOneBn2dIsValidWithNineValuesPerChannel() =>
        Run("batch_one_bn2d", f => [new Conv(f, "0", new ConvGeometry(1, 2, 5, 5, 3, 3, 1, 1, 0, 0, 1, 1, 1)), new Bn(f, "1", 2, 9)]);

    [Fact]
    public void Conv1dReluBn() =>
        Run("conv1d_relu_bn", f =>
        [
            new Conv(f, "conv1", new ConvGeometry(1, 10, 1, 32, 1, 5, 1, 1, 0, 0, 1, 1, 1)),
            new Act("relu"),
            new Bn(f, "conv1_bn", 10, 28),
        ]);

    [Fact]
    public void DilatedGroupedConvBnTanhLinear() =>
        Run("dilated_grouped", f =>
        [
            new Conv(f, "0", new ConvGeometry(4, 8, 10, 10, 3, 3, 1, 1, 0, 0, 2, 2, 2)),
            new Bn(f, "1", 8, 36),
            new Act("tanh"),
            new Fc(f, "4", 288, 2),
        ]);

    [Fact]
    public void EpsMomentumLeakyReluMaxPoolGlobalAvg() =>
        Run("eps_momentum", f =>
        [
            new Conv(f, "0", new ConvGeometry(2, 4, 9, 9, 3, 3, 1, 1, 1, 1, 1, 1, 1)),
            new Bn(f, "1", 4, 81, eps: 1e-3f, momentum: 0.3f),
            new Act("leaky_relu", 0.1f),
            new MaxPool(new PoolGeometry(4, 9, 9, 3, 3, 2, 2, 0, 0, 1, 1, false)),
            new GlobalAvg(4, 16),
            new Fc(f, "5", 4, 3),
        ]);

    [Fact]
    public void StridedNoBiasConvAvgPool() =>
        Run("strided_nobias", f =>
        [
            new Conv(f, "0", new ConvGeometry(3, 8, 16, 16, 3, 3, 2, 2, 1, 1, 1, 1, 1), bias: false),
            new Bn(f, "1", 8, 64),
            new Act("relu"),
            new AvgPool(new PoolGeometry(8, 8, 8, 2, 2, 2, 2, 0, 0, 1, 1, false)),
            new Fc(f, "5", 128, 5),
        ]);

    [Fact]
    public void SoftmaxHeadLinearBnSigmoidLogSoftmax() =>
        Run("softmax_head", f =>
        [
            new Fc(f, "0", 8, 6),
            new Bn(f, "1", 6, 1),
            new Act("sigmoid"),
            new Fc(f, "3", 6, 4),
            new Act("log_softmax", features: 4),
        ]);

    private static void Run(string name, Func<SafetensorsFile, Layer[]> build, int trainSteps = 1)
    {
        var file = SafetensorsFile.Read(Path.Combine(AppContext.BaseDirectory, "Golden", name + ".safetensors"));
        int n = int.Parse(file.Metadata["batch"]);
        Assert.Equal(trainSteps, int.Parse(file.Metadata["train_steps"]));
        var layers = build(file);
        var input = file["input"].ToFloatArray();

        float[] output = [], inputGrad = [];
        for (int step = 0; step < trainSteps; step++)
        {
            foreach (var layer in layers) layer.ZeroGrad();
            output = input;
            foreach (var layer in layers) output = layer.Forward(output, n, train: true);
            var grad = file["output_grad"].ToFloatArray();
            for (int i = layers.Length - 1; i >= 0; i--) grad = layers[i].Backward(grad, n);
            inputGrad = grad;
        }
        Compare(file, "train.output", output);
        Compare(file, "train.input_grad", inputGrad);

        var grads = layers.SelectMany(l => l.Gradients()).ToDictionary(p => "train.grad." + p.Key, p => p.Value);
        Assert.Equal(file.Tensors.Select(t => t.Name).Where(t => t.StartsWith("train.grad.", StringComparison.Ordinal)).Order(), grads.Keys.Order());
        foreach (var (key, value) in grads) Compare(file, key, value);

        foreach (var layer in layers.OfType<Bn>())
        {
            foreach (var (key, value) in layer.State()) Compare(file, "train.state." + key, value);
            if (file.TryGet($"train.state.{layer.Prefix}.num_batches_tracked", out var count)) Assert.Equal([layer.NumBatchesTracked], count.ToInt64Array());
        }

        var evalOutput = input;
        foreach (var layer in layers) evalOutput = layer.Forward(evalOutput, n, train: false);
        Compare(file, "eval.output", evalOutput);
    }

    /// <summary>max |actual − reference| ≤ 1e-4·max(1, max |reference|).</summary>
    private static void Compare(SafetensorsFile file, string name, float[] actual)
    {
        var expected = file[name].ToFloatArray();
        Assert.Equal(expected.Length, actual.Length);
        double scale = Math.Max(1.0, expected.Max(v => Math.Abs((double)v)));
        double worst = 0;
        int worstIndex = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double err = Math.Abs((double)expected[i] - actual[i]);
            if (!(err <= worst)) (worst, worstIndex) = (err, i);
        }
        Assert.True(worst <= 1e-4 * scale, $"{name}: max abs error {worst:G4} at [{worstIndex}] (expected {expected[worstIndex]:R}, got {actual[worstIndex]:R}), tolerance {1e-4 * scale:G4}");
    }

    private abstract class Layer
    {
        public abstract float[] Forward(float[] x, int n, bool train);
        public abstract float[] Backward(float[] dy, int n);
        public virtual void ZeroGrad() { }
        public virtual IEnumerable<KeyValuePair<string, float[]>> Gradients() => [];
    }

    private sealed class Conv(SafetensorsFile f, string prefix, ConvGeometry g, bool bias = true) : Layer
    {
        private readonly float[] _w = f[prefix + ".weight"].ToFloatArray();
        private readonly float[] _b = bias ? f[prefix + ".bias"].ToFloatArray() : [];
        private readonly float[] _dw = new float[g.WeightLength];
        private readonly float[] _db = new float[bias ? g.OutChannels : 0];
        private float[] _x = [];

        public override float[] Forward(float[] x, int n, bool train)
        {
            _x = x;
            var y = new float[n * g.OutputLength];
            ConvGemm.Forward(x, _w, _b, y, n, g);
            return y;
        }

        public override float[] Backward(float[] dy, int n)
        {
            var dx = new float[n * g.InputLength];
            ConvGemm.BackwardInput(dy, _w, dx, n, g);
            ConvGemm.BackwardWeight(dy, _x, _dw, _db, n, g);
            return dx;
        }

        public override void ZeroGrad()
        {
            Array.Clear(_dw);
            Array.Clear(_db);
        }

        public override IEnumerable<KeyValuePair<string, float[]>> Gradients() =>
            bias ? [new(prefix + ".weight", _dw), new(prefix + ".bias", _db)] : [new(prefix + ".weight", _dw)];
    }

    private sealed class Fc(SafetensorsFile f, string prefix, int inF, int outF) : Layer
    {
        private readonly float[] _w = f[prefix + ".weight"].ToFloatArray();
        private readonly float[] _b = f[prefix + ".bias"].ToFloatArray();
        private readonly float[] _dw = new float[inF * outF];
        private readonly float[] _db = new float[outF];
        private float[] _x = [];

        public override float[] Forward(float[] x, int n, bool train)
        {
            _x = x;
            var y = new float[n * outF];
            Linear.Forward(x, _w, _b, y, n, inF, outF);
            return y;
        }

        public override float[] Backward(float[] dy, int n)
        {
            var dx = new float[n * inF];
            Linear.BackwardInput(dy, _w, dx, n, inF, outF);
            Linear.BackwardWeight(dy, _x, _dw, _db, n, inF, outF);
            return dx;
        }

        public override void ZeroGrad()
        {
            Array.Clear(_dw);
            Array.Clear(_db);
        }

        public override IEnumerable<KeyValuePair<string, float[]>> Gradients() => [new(prefix + ".weight", _dw), new(prefix + ".bias", _db)];
    }

    private sealed class Bn : Layer
    {
        private readonly int _channels, _spatial;
        private readonly float _eps;
        private readonly float? _momentum;
        private readonly float[] _gamma, _beta, _runningMean, _runningVar;
        private readonly float[] _dgamma, _dbeta, _mean, _invStd;
        private float[] _x = [];

        public Bn(SafetensorsFile f, string prefix, int channels, int spatial, float eps = 1e-5f, float? momentum = 0.1f, bool affine = true, bool tracked = true)
        {
            Prefix = prefix;
            (_channels, _spatial, _eps, _momentum) = (channels, spatial, eps, momentum);
            _gamma = affine ? f[prefix + ".weight"].ToFloatArray() : [];
            _beta = affine ? f[prefix + ".bias"].ToFloatArray() : [];
            _runningMean = tracked ? f[prefix + ".running_mean"].ToFloatArray() : [];
            _runningVar = tracked ? f[prefix + ".running_var"].ToFloatArray() : [];
            if (tracked) NumBatchesTracked = f[prefix + ".num_batches_tracked"].ToInt64Array()[0];
            _dgamma = new float[_gamma.Length];
            _dbeta = new float[_beta.Length];
            _mean = new float[channels];
            _invStd = new float[channels];
        }

        public string Prefix { get; }
        public long NumBatchesTracked { get; private set; }
        private bool Tracked => _runningMean.Length > 0;

        public override float[] Forward(float[] x, int n, bool train)
        {
            _x = x;
            var y = new float[x.Length];
            if (train || !Tracked)
            {
                float momentum = 0f;
                if (train && Tracked)
                {
                    // PyTorch increments num_batches_tracked first; momentum=None then means a cumulative average.
                    NumBatchesTracked++;
                    momentum = _momentum ?? 1f / NumBatchesTracked;
                }
                BatchNorm.ForwardTraining(x, _gamma, _beta, y, _mean, _invStd,
                    train ? _runningMean : [], train ? _runningVar : [], momentum, _eps, n, _channels, _spatial);
            }
            else
            {
                BatchNorm.ForwardWithStatistics(x, _gamma, _beta, _runningMean, _runningVar, y, [], [], _eps, n, _channels, _spatial);
            }
            return y;
        }

        public override float[] Backward(float[] dy, int n)
        {
            var dx = new float[dy.Length];
            BatchNorm.Backward(dy, _x, _gamma, _mean, _invStd, dx, _dgamma, _dbeta, n, _channels, _spatial);
            return dx;
        }

        public override void ZeroGrad()
        {
            Array.Clear(_dgamma);
            Array.Clear(_dbeta);
        }

        public override IEnumerable<KeyValuePair<string, float[]>> Gradients() =>
            _gamma.Length == 0 ? [] : [new(Prefix + ".weight", _dgamma), new(Prefix + ".bias", _dbeta)];

        public IEnumerable<KeyValuePair<string, float[]>> State() =>
            Tracked ? [new(Prefix + ".running_mean", _runningMean), new(Prefix + ".running_var", _runningVar)] : [];
    }

    private sealed class Act(string kind, float slope = 0f, int features = 0) : Layer
    {
        private float[] _x = [], _y = [];

        public override float[] Forward(float[] x, int n, bool train)
        {
            _x = x;
            _y = new float[x.Length];
            switch (kind)
            {
                case "relu": Activations.ReluForward(x, _y); break;
                case "leaky_relu": Activations.LeakyReluForward(x, _y, slope); break;
                case "sigmoid": Activations.SigmoidForward(x, _y); break;
                case "tanh": Activations.TanhForward(x, _y); break;
                case "log_softmax": Activations.LogSoftmaxForward(x, _y, n, features); break;
                default: throw new ArgumentException(kind);
            }
            return _y;
        }

        public override float[] Backward(float[] dy, int n)
        {
            var dx = new float[dy.Length];
            switch (kind)
            {
                case "relu": Activations.ReluBackward(_y, dy, dx); break;
                case "leaky_relu": Activations.LeakyReluBackward(_x, dy, dx, slope); break;
                case "sigmoid": Activations.SigmoidBackward(_y, dy, dx); break;
                case "tanh": Activations.TanhBackward(_y, dy, dx); break;
                case "log_softmax": Activations.LogSoftmaxBackward(_y, dy, dx, n, features); break;
            }
            return dx;
        }
    }

    private sealed class MaxPool(PoolGeometry g) : Layer
    {
        private int[] _indices = [];

        public override float[] Forward(float[] x, int n, bool train)
        {
            var y = new float[n * g.OutputLength];
            _indices = new int[y.Length];
            Pooling.MaxForward(x, y, _indices, n, g);
            return y;
        }

        public override float[] Backward(float[] dy, int n)
        {
            var dx = new float[n * g.InputLength];
            Pooling.MaxBackward(dy, _indices, dx, n, g);
            return dx;
        }
    }

    private sealed class AvgPool(PoolGeometry g) : Layer
    {
        public override float[] Forward(float[] x, int n, bool train)
        {
            var y = new float[n * g.OutputLength];
            Pooling.AvgForward(x, y, n, g, countIncludePad: true);
            return y;
        }

        public override float[] Backward(float[] dy, int n)
        {
            var dx = new float[n * g.InputLength];
            Pooling.AvgBackward(dy, dx, n, g, countIncludePad: true);
            return dx;
        }
    }

    private sealed class GlobalAvg(int channels, int spatial) : Layer
    {
        public override float[] Forward(float[] x, int n, bool train)
        {
            var y = new float[n * channels];
            Pooling.GlobalAvgForward(x, y, n, channels, spatial);
            return y;
        }

        public override float[] Backward(float[] dy, int n)
        {
            var dx = new float[n * channels * spatial];
            Pooling.GlobalAvgBackward(dy, dx, n, channels, spatial);
            return dx;
        }
    }
}
