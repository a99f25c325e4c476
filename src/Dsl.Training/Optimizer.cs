// The base of the optimizers: one flat parameter buffer, per-tensor weight-decay segments, state allocated once.
using System.Globalization;
using Dsl.Runtime.Kernels;

namespace Dsl.Training;

/// <summary>
/// An optimizer over a model's flat <see cref="CompiledModel.Parameters"/> and <see cref="CompiledModel.Gradients"/>
/// buffers, with PyTorch's update formulas. Its state (momentum, moments) is allocated in the constructor;
/// <see cref="Step(CompiledModel)"/> allocates nothing.
/// </summary>
public abstract class Optimizer
{
    /// <summary>Prefix of the optimizer's tensors and metadata keys in a checkpoint.</summary>
    public const string StatePrefix = "optimizer.";

    private readonly ParameterSegment[] _segments;
    private float _learningRate;

    /// <summary>Sets up the parameter segments and the shared hyperparameters.</summary>
    /// <param name="parameterCount">Length of the flat parameter buffer.</param>
    /// <param name="segments">Ranges of that buffer with their weight-decay flag; they must not overlap and must lie inside it.</param>
    /// <param name="learningRate">Initial learning rate (≥ 0).</param>
    /// <param name="weightDecay">Weight decay (≥ 0), applied to the segments whose <see cref="ParameterSegment.Decay"/> is set.</param>
    protected Optimizer(int parameterCount, IReadOnlyList<ParameterSegment> segments, float learningRate, float weightDecay)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(parameterCount);
        int end = ParameterSegments.Validate(segments);
        if (end > parameterCount) throw new ArgumentException($"The segments reach element {end} but there are only {parameterCount} parameters.", nameof(segments));
        if (!(weightDecay >= 0)) throw new ArgumentOutOfRangeException(nameof(weightDecay), weightDecay, "weight decay must be ≥ 0.");
        ParameterCount = parameterCount;
        _segments = segments.ToArray();
        LearningRate = learningRate;
        WeightDecay = weightDecay;
    }

    /// <summary>Length of the flat parameter buffer this optimizer updates.</summary>
    public int ParameterCount { get; }

    /// <summary>The parameter tensors and whether weight decay applies to each.</summary>
    public IReadOnlyList<ParameterSegment> Segments => _segments;

    /// <summary>The learning rate of the next <see cref="Step(CompiledModel)"/>; a schedule sets it before each step.</summary>
    public float LearningRate
    {
        get => _learningRate;
        set
        {
            if (!(value >= 0) || float.IsInfinity(value)) throw new ArgumentOutOfRangeException(nameof(value), value, "learning rate must be finite and ≥ 0.");
            _learningRate = value;
        }
    }

    /// <summary>The weight decay applied to segments with <see cref="ParameterSegment.Decay"/> set.</summary>
    public float WeightDecay { get; }

    /// <summary>Steps taken so far (PyTorch's <c>state["step"]</c>).</summary>
    public long StepCount { get; protected set; }

    /// <summary>The optimizer's name in checkpoints: <c>sgd</c>, <c>adam</c> or <c>adamw</c>.</summary>
    public abstract string Kind { get; }

    /// <summary>
    /// One update of <paramref name="model"/>'s parameters from its accumulated gradients. Taking
    /// <see cref="CompiledModel.Parameters"/> marks them changed, so inference refolds batch norm.
    /// </summary>
    /// <param name="model">The model whose <see cref="CompiledModel.Gradients"/> were filled by <see cref="CompiledModel.Backward(ReadOnlySpan{float}, Span{float})"/>.</param>
    /// <exception cref="InvalidOperationException">Another call on <paramref name="model"/> is running (from another thread).</exception>
    public void Step(CompiledModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        model.Enter("Optimizer.Step"); // a forward pass on another thread would read half-updated weights
        try
        {
            StepExclusive(model);
        }
        finally
        {
            model.Exit();
        }
    }

    private void StepExclusive(CompiledModel model)
    {
        var parameters = model.Parameters; // marks them changed
        if (model.UpdatePool is not { Threads: > 1 } pool || ParameterCount < CompiledModel.ParallelUpdateThreshold || parameters.Length != ParameterCount)
        {
            Step(parameters, model.Gradients);
            return;
        }

        StepCount++;
        BeginStep();
        UpdateInParallel(pool, model, 0, ParameterCount);
    }

    // The update is element by element, so each thread takes a contiguous share of [lo, hi) (the same bits as one
    // thread): a pass over parameters, gradients and state, bound by memory.
    private void UpdateInParallel(WorkerPool pool, CompiledModel model, int lo, int hi)
    {
        _stepParameters = model.ParameterArray;
        _stepGradients = model.GradientArray;
        (_stepLo, _stepHi) = (lo, hi);
        try
        {
            pool.RunChunks(_stepPart ??= StepPart, pool.Threads); // a late worker's share goes to the caller
        }
        finally
        {
            _stepParameters = null;
            _stepGradients = null;
        }
    }

    private AlignedFloats? _stepParameters, _stepGradients;
    private int _stepLo, _stepHi;
    private Action<int, int>? _stepPart;

    /// <summary>
    /// <see cref="CompiledModel.Backward(ReadOnlySpan{float}, Span{float})"/> and <see cref="Step(CompiledModel)"/> in
    /// one pass: each parameter tensor is updated as soon as backward has finished its gradient, while the gradient
    /// is still in cache, instead of in a pass over every parameter after backward (PyTorch's optimizer-in-backward
    /// pattern with <c>register_post_accumulate_grad_hook</c>). The same bits as <c>Backward</c> then <c>Step</c>:
    /// each element's update is the same arithmetic, and no layer reads its parameters after reporting them. Set
    /// <see cref="LearningRate"/> before the call, as before a step. Allocates nothing.
    /// </summary>
    /// <param name="model">The model of the last <see cref="CompiledModel.Forward"/>.</param>
    /// <param name="outputGrad">dL/d(output).</param>
    /// <param name="inputGrad">Empty, or room for dL/d(input).</param>
    /// <exception cref="ArgumentException">The model's parameter count is not this optimizer's, or a span is shorter than the batch needs.</exception>
    /// <exception cref="InvalidOperationException">No successful <c>Forward</c> came before, or another call on the model is running.</exception>
    /// <remarks>
    /// When backward throws before its first gradient is final (arguments, no forward), nothing is updated and
    /// <see cref="StepCount"/> is unchanged. A model that does not report its gradients (one generated before it
    /// could) gets every segment updated after its backward: the same result, without the cache benefit.
    /// </remarks>
    public void BackwardAndStep(CompiledModel model, ReadOnlySpan<float> outputGrad, Span<float> inputGrad = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (model.ParameterArray.Length != ParameterCount)
            throw new ArgumentException($"{model.Name} has {model.ParameterArray.Length} parameters, but this optimizer was built for {ParameterCount}.", nameof(model));
        _fused ??= new FusedStep(this);
        _fused.Start(model);
        try
        {
            model.Backward(outputGrad, inputGrad, _fused);
            _fused.Finish();
        }
        finally
        {
            _fused.End();
        }
    }

    private FusedStep? _fused;

    // The hook of BackwardAndStep: begins the step at the first report (so a backward that fails its checks leaves
    // the optimizer as it was), updates each segment that lies inside a reported range, and after backward the
    // segments no report covered.
    private sealed class FusedStep(Optimizer optimizer) : IGradientHook
    {
        private readonly bool[] _done = new bool[optimizer._segments.Length];
        private CompiledModel? _model;
        private bool _begun;

        public void Start(CompiledModel model)
        {
            _model = model;
            _begun = false;
            Array.Clear(_done);
        }

        public void End() => _model = null;

        public void GradientsReady(int offset, int length)
        {
            var segments = optimizer._segments;
            for (int i = 0; i < segments.Length; i++)
            {
                var s = segments[i];
                if (_done[i] || s.Offset < offset || s.Offset + s.Length > offset + length) continue;
                Update(i);
            }
        }

        public void Finish()
        {
            for (int i = 0; i < _done.Length; i++)
            {
                if (!_done[i]) Update(i);
            }

            if (!_begun) Begin(); // a model without parameter segments still counts the step
            _model!.ParametersChanged();
        }

        private void Begin()
        {
            _begun = true;
            optimizer.StepCount++;
            optimizer.BeginStep();
        }

        private void Update(int index)
        {
            if (!_begun) Begin();
            _done[index] = true;
            var s = optimizer._segments[index];
            var model = _model!;
            if (model.UpdatePool is { Threads: > 1 } pool && s.Length >= CompiledModel.ParallelUpdateThreshold)
            {
                optimizer.UpdateInParallel(pool, model, s.Offset, s.Offset + s.Length);
                return;
            }

            optimizer.Update(model.ParameterArray.AsSpan(s.Offset, s.Length), model.GradientArray.AsSpan(s.Offset, s.Length), s.Offset, s.Decay ? optimizer.WeightDecay : 0f);
        }
    }

    private void StepPart(int part, int parts)
    {
        var (lo, hi) = WorkerPool.Share((_stepHi - _stepLo) / 16, part, parts);
        int start = _stepLo + lo * 16, end = part == parts - 1 ? _stepHi : _stepLo + hi * 16;
        var parameters = _stepParameters!;
        var gradients = _stepGradients!;
        foreach (var s in _segments)
        {
            int a = Math.Max(s.Offset, start), b = Math.Min(s.Offset + s.Length, end);
            if (a < b) Update(parameters.AsSpan(a, b - a), gradients.AsSpan(a, b - a), a, s.Decay ? WeightDecay : 0f);
        }
    }

    /// <summary>One update of <paramref name="parameters"/> from <paramref name="gradients"/>.</summary>
    /// <param name="parameters">The flat parameters, <see cref="ParameterCount"/> long; updated in place.</param>
    /// <param name="gradients">Their gradients, same length.</param>
    public void Step(Span<float> parameters, ReadOnlySpan<float> gradients)
    {
        if (parameters.Length != ParameterCount)
            throw new ArgumentException($"{parameters.Length} parameters given, but this optimizer was built for {ParameterCount}.", nameof(parameters));
        if (gradients.Length != ParameterCount)
            throw new ArgumentException($"{gradients.Length} gradients given, but this optimizer was built for {ParameterCount}.", nameof(gradients));
        StepCount++;
        BeginStep();
        foreach (var s in _segments)
            Update(parameters.Slice(s.Offset, s.Length), gradients.Slice(s.Offset, s.Length), s.Offset, s.Decay ? WeightDecay : 0f);
    }

    /// <summary>Called once per step, after <see cref="StepCount"/> was incremented and before the segments are updated.</summary>
    protected virtual void BeginStep()
    {
    }

    /// <summary>Updates one segment.</summary>
    /// <param name="parameters">The segment's parameters.</param>
    /// <param name="gradients">Their gradients.</param>
    /// <param name="offset">The segment's offset in the flat buffer (also the offset of its state).</param>
    /// <param name="weightDecay">The weight decay for this segment (0 when excluded).</param>
    protected abstract void Update(Span<float> parameters, ReadOnlySpan<float> gradients, int offset, float weightDecay);

    /// <summary>The state tensors, each <see cref="ParameterCount"/> long, by name without prefix (e.g. <c>momentum_buffer</c>).</summary>
    protected abstract IEnumerable<(string Name, AlignedFloats Data)> StateTensors { get; }

    /// <summary>Hyperparameters written to checkpoint metadata (informative; a loaded checkpoint does not change them).</summary>
    protected abstract IEnumerable<(string Key, double Value)> Hyperparameters { get; }

    /// <summary>Adds the optimizer's state to <paramref name="writer"/>: <c>optimizer.step</c> (I64), its state tensors and metadata.</summary>
    /// <param name="writer">The checkpoint being written.</param>
    public void SaveState(SafetensorsWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.Add(StatePrefix + "step", [StepCount], []);
        foreach (var (name, data) in StateTensors) writer.AddView(StatePrefix + name, data.AsMemory(0, data.Length), [data.Length]); // written in place, streamed
        writer.AddMetadata(StatePrefix + "kind", Kind);
        writer.AddMetadata(StatePrefix + "lr", LearningRate.ToString("R", CultureInfo.InvariantCulture));
        writer.AddMetadata(StatePrefix + "weight_decay", WeightDecay.ToString("R", CultureInfo.InvariantCulture));
        foreach (var (key, value) in Hyperparameters) writer.AddMetadata(StatePrefix + key, value.ToString("R", CultureInfo.InvariantCulture));
    }

    /// <summary>Lists what prevents <see cref="LoadState"/> from loading <paramref name="file"/> (empty when it can).</summary>
    /// <param name="file">A checkpoint.</param>
    /// <returns>One message per problem.</returns>
    public IReadOnlyList<string> CheckState(SafetensorsFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        var problems = new List<string>();
        if (!file.Metadata.TryGetValue(StatePrefix + "kind", out var kind)) problems.Add("no optimizer state (metadata 'optimizer.kind' is missing)");
        else if (kind != Kind) problems.Add($"the optimizer state is for '{kind}', not '{Kind}'");
        if (!file.TryGet(StatePrefix + "step", out var step)) problems.Add("'optimizer.step' is missing");
        else if (step.DTypeName != "I64" || step.ElementCount != 1) problems.Add("'optimizer.step' must be an I64 scalar");
        foreach (var (name, data) in StateTensors)
        {
            if (!file.TryGet(StatePrefix + name, out var t)) problems.Add($"'{StatePrefix}{name}' is missing");
            else if (t.DTypeName != "F32" || t.Shape.Length != 1 || t.Shape[0] != data.Length)
                problems.Add($"'{StatePrefix}{name}' is {t.DTypeName} [{string.Join(", ", t.Shape)}], expected F32 [{data.Length}]");
        }

        return problems;
    }

    /// <summary>Restores the step count, state tensors and learning rate saved by <see cref="SaveState"/>; all or nothing.</summary>
    /// <param name="file">A checkpoint.</param>
    /// <exception cref="InvalidDataException">The file holds no state for this optimizer, or state of another size; nothing is loaded.</exception>
    public void LoadState(SafetensorsFile file)
    {
        var problems = CheckState(file);
        if (problems.Count > 0) throw new InvalidDataException($"cannot load the {Kind} optimizer state: {string.Join("; ", problems)}. Nothing was loaded.");
        StepCount = file[StatePrefix + "step"].ToInt64Array()[0];
        foreach (var (name, data) in StateTensors) file[StatePrefix + name].CopyTo(data.AsSpan());
        if (file.Metadata.TryGetValue(StatePrefix + "lr", out var lr) && float.TryParse(lr, NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
            LearningRate = value;
    }
}
