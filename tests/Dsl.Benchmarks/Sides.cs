// The three sides of a benchmark cell: ours (the generated class), TorchSharp and ONNX Runtime. Each side
// owns its model, its fixed input and output gradient, and performs exactly one training step or one
// inference per call; everything is allocated in the constructor.
using Dsl.Runtime;
using Microsoft.ML.OnnxRuntime;
using TorchSharp;
using static TorchSharp.torch;

namespace Dsl.Benchmarks;

public enum Side
{
    Ours,
    Torch,
    Ort,
}

/// <summary>Shared settings of every side, so that they compute the same thing.</summary>
public static class Workload
{
    /// <summary>Seed of the generated model's initialization; the other sides copy its parameters.</summary>
    public const int ModelSeed = 42;

    public const float LearningRate = 1e-3f;
    public const float Momentum = 0.9f;

    /// <summary>The fixed input, uniform in [-1, 1).</summary>
    public static float[] Input(Network network, int batch) => Uniform(batch * network.InputLength, 1234 + batch, 1f);

    /// <summary>
    /// The fixed output gradient g: the training loss is sum(output * g), whose gradient with respect to the
    /// output is g. Uniform in [-1, 1) / batch, as for a mean over the batch.
    /// </summary>
    public static float[] OutputGrad(Network network, int batch) => Uniform(batch * network.OutputLength, 5678 + batch, 1f / batch);

    private static float[] Uniform(int length, int seed, float scale)
    {
        var random = new Random(seed);
        var values = new float[length];
        for (int i = 0; i < values.Length; i++) values[i] = (float)(random.NextDouble() * 2 - 1) * scale;
        return values;
    }
}

/// <summary>The only place that creates the generated models.</summary>
public static class OursFactory
{
    /// <summary>
    /// Whether ours runs multi-threaded cells. The generated constructor takes <c>threads</c> (0 = every core,
    /// 1 = the caller's thread only); set this to false to time ours single-threaded only (its cells with more
    /// threads are then filtered out, <see cref="Cells.IsValid"/>, and ratios.md compares with ours at 1 thread).
    /// </summary>
    public const bool SupportsThreads = true;

    public static CompiledModel Create(Network network, int maxBatch, int threads, int seed = Workload.ModelSeed)
    {
        if (threads < 1) throw new ArgumentOutOfRangeException(nameof(threads), threads, "pass an explicit thread count (the generated default, 0, means every core).");
        if (threads != 1 && !SupportsThreads)
            throw new NotSupportedException($"ours is benchmarked single-threaded (OursFactory.SupportsThreads = false), asked for {threads} threads.");

        // Always explicit: the generated constructor's default (threads: 0) would use every core.
        var model = network.Create(maxBatch, seed, threads);
        if (model.Threads != threads)
            throw new InvalidOperationException($"{network.Name} was asked for {threads} threads but runs {model.Threads}.");
        return model;
    }
}

/// <summary>Ours: the generated class and the runtime's <see cref="Dsl.Training.Sgd"/> optimizer (momentum 0.9, as torch.optim.SGD).</summary>
public sealed class OursRunner : IDisposable
{
    private readonly CompiledModel _model;
    private readonly float[] _input;
    private readonly float[] _output;
    private readonly float[] _outputGrad;
    private readonly Dsl.Training.Sgd _sgd;
    private readonly int _batch;

    public OursRunner(Network network, int batch, int threads)
    {
        _model = OursFactory.Create(network, batch, threads);
        _batch = batch;
        _input = Workload.Input(network, batch);
        _outputGrad = Workload.OutputGrad(network, batch);
        _output = new float[batch * network.OutputLength];
        _sgd = new Dsl.Training.Sgd(_model, Workload.LearningRate, Workload.Momentum);
    }

    public CompiledModel Model => _model;

    public float[] Output => _output;

    /// <summary>zero_grad, training forward, backward of sum(output * g) with the SGD momentum update fused into it (the bits of Backward, then Step).</summary>
    public void TrainStep()
    {
        _model.ZeroGrad();
        _model.Forward(_input, _output, _batch);
        _sgd.BackwardAndStep(_model, _outputGrad);
    }

    public void Infer() => _model.Infer(_input, _output, _batch);

    public void Dispose()
    {
    }
}

/// <summary>TorchSharp: the same chain of torch.nn modules, float32 on the CPU, with our parameters.</summary>
public sealed class TorchRunner : IDisposable
{
    private readonly nn.Module<Tensor, Tensor> _module;
    private readonly optim.Optimizer _optimizer;
    private readonly Tensor _input;
    private readonly Tensor _outputGrad;
    private readonly Tensor[] _outputGrads;

    public TorchRunner(Network network, int batch, int threads, CompiledModel parametersFrom)
    {
        TorchSetup.SetThreads(threads);
        _module = TorchModels.Build(network);
        TorchModels.CopyState(parametersFrom, _module);
        _input = tensor(Workload.Input(network, batch), [batch, .. network.InputShape.Select(d => (long)d)]);
        _outputGrad = tensor(Workload.OutputGrad(network, batch), [batch, .. network.OutputShape.Select(d => (long)d)]);
        _outputGrads = [_outputGrad];
        _optimizer = optim.SGD(_module.parameters(), Workload.LearningRate, Workload.Momentum);
    }

    public nn.Module<Tensor, Tensor> Module => _module;

    /// <summary>zero_grad, training forward, backward with output gradient g (= of sum(output * g)), optimizer step.</summary>
    public void TrainStep()
    {
        using var scope = NewDisposeScope();
        _optimizer.zero_grad();
        var output = _module.forward(_input);
        output.backward(_outputGrads);
        _optimizer.step();
    }

    public void PrepareTrain() => _module.train();

    public void PrepareInfer() => _module.eval();

    /// <summary>Eval-mode forward under no_grad (call <see cref="PrepareInfer"/> first).</summary>
    public void Infer()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        _module.forward(_input);
    }

    /// <summary>Training-mode forward and backward with output gradient g, no optimizer step (for verification).</summary>
    public float[] ForwardBackward()
    {
        using var scope = NewDisposeScope();
        _module.train();
        _optimizer.zero_grad();
        var output = _module.forward(_input);
        output.backward(_outputGrads);
        return output.data<float>().ToArray();
    }

    /// <summary>The gradient of each parameter by state_dict name (for verification).</summary>
    public Dictionary<string, float[]> Gradients() =>
        _module.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad is { } g ? g.data<float>().ToArray() : []);

    /// <summary>Every parameter and float buffer by state_dict name (for verification).</summary>
    public Dictionary<string, float[]> State() =>
        _module.state_dict().Where(kv => kv.Value.dtype == float32).ToDictionary(kv => kv.Key, kv => kv.Value.data<float>().ToArray());

    /// <summary>Eval-mode forward under no_grad, copied out (for verification).</summary>
    public float[] InferToArray()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        _module.eval();
        return _module.forward(_input).data<float>().ToArray();
    }

    public void Dispose()
    {
        _optimizer.Dispose();
        _module.Dispose();
        _input.Dispose();
        _outputGrad.Dispose();
    }
}

/// <summary>ONNX Runtime: our model exported to ONNX, inference only, preallocated input and output.</summary>
public sealed class OrtRunner : IDisposable
{
    private readonly InferenceSession _session;
    private readonly SessionOptions _options;
    private readonly RunOptions _runOptions = new();
    private readonly OrtValue _inputValue;
    private readonly OrtValue _outputValue;
    private readonly string[] _inputNames = [OnnxExporter.InputName];
    private readonly string[] _outputNames = [OnnxExporter.OutputName];
    private readonly OrtValue[] _inputs;
    private readonly OrtValue[] _outputs;

    public OrtRunner(Network network, int batch, int threads, byte[] onnxModel)
    {
        _options = new SessionOptions
        {
            IntraOpNumThreads = threads,
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        };
        _session = new InferenceSession(onnxModel, _options);
        Output = new float[batch * network.OutputLength];
        _inputValue = OrtValue.CreateTensorValueFromMemory(Workload.Input(network, batch), [batch, .. network.InputShape.Select(d => (long)d)]);
        _outputValue = OrtValue.CreateTensorValueFromMemory(Output, [batch, .. network.OutputShape.Select(d => (long)d)]);
        _inputs = [_inputValue];
        _outputs = [_outputValue];
    }

    /// <summary>The output buffer ORT writes into.</summary>
    public float[] Output { get; }

    public void Infer() => _session.Run(_runOptions, _inputNames, _inputs, _outputNames, _outputs);

    public void Dispose()
    {
        _inputValue.Dispose();
        _outputValue.Dispose();
        _runOptions.Dispose();
        _session.Dispose();
        _options.Dispose();
    }
}
