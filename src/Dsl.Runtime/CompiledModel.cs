// The base of every generated model: flat buffers, named tensors, argument checks, safetensors I/O and the one-caller guard.
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using Dsl.Runtime.Kernels;

namespace Dsl.Runtime;

/// <summary>Where a named tensor lives.</summary>
public enum TensorStorage
{
    /// <summary>A learnable parameter, in <see cref="CompiledModel.Parameters"/> (its gradient at the same offset of <see cref="CompiledModel.Gradients"/>).</summary>
    Parameter,

    /// <summary>A float buffer that is not learned: batch norm's running mean and variance.</summary>
    Buffer,

    /// <summary>An int64 counter: batch norm's <c>num_batches_tracked</c>.</summary>
    Counter,
}

/// <summary>A parameter or buffer with its PyTorch <c>state_dict</c> name and shape.</summary>
/// <param name="Name">The <c>state_dict</c> key, e.g. <c>conv1.weight</c>.</param>
/// <param name="Shape">PyTorch's shape; empty for a scalar.</param>
/// <param name="Storage">Which flat buffer holds it.</param>
/// <param name="Offset">Its first element in that buffer.</param>
/// <param name="Length">Its element count.</param>
public sealed record TensorInfo(string Name, int[] Shape, TensorStorage Storage, int Offset, int Length)
{
    /// <summary>The shape as PyTorch prints it, e.g. <c>[6, 1, 5, 5]</c>.</summary>
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}

/// <summary>
/// What generated models share. A derived class is generated from a <c>.nn</c> model; it allocates
/// everything in its constructor and nothing afterwards. An instance serves one caller at a time: a call that
/// starts while another is running on it (from another thread) throws <see cref="InvalidOperationException"/>
/// instead of computing with half-written buffers; give each thread its own instance.
/// </summary>
public abstract class CompiledModel
{
    /// <summary>Threads the model computes with; <see cref="Pool"/> runs them.</summary>
    public int Threads { get; }

    /// <summary>The worker pool for large layers, or null when single-threaded.</summary>
    protected WorkerPool? Pool { get; }

    private readonly AlignedFloats _parameters;
    private readonly AlignedFloats _gradients;
    private readonly AlignedFloats _buffers;
    private readonly long[] _counters;
    private readonly TensorInfo[] _tensors;
    private readonly Dictionary<string, TensorInfo> _byName;
    private int _version;
    private int _lastTrainingBatch;
    private int _busy; // 1 while a public entry point runs: the guard against a second thread (Interlocked, no allocation)
    private string? _fingerprint;

    /// <summary>Allocates the parameter, gradient and buffer storage described by <paramref name="tensors"/>.</summary>
    /// <param name="maxBatch">The largest batch the model will be called with.</param>
    /// <param name="tensors">Every parameter and buffer in <c>state_dict</c> order.</param>
    /// <param name="threads">Threads for large layers: 0 for every core, 1 to stay on the caller's thread.</param>
    protected CompiledModel(int maxBatch, TensorInfo[] tensors, int threads = 1)
    {
        if (maxBatch < 1) throw new ArgumentOutOfRangeException(nameof(maxBatch), maxBatch, "maxBatch must be at least 1.");
        if (threads < 0) throw new ArgumentOutOfRangeException(nameof(threads), threads, "threads must be 0 (every core) or at least 1.");
        Threads = threads == 0 ? WorkerPool.AllCores : threads;
        Pool = Threads > 1 ? WorkerPool.Shared(Threads) : null;
        MaxBatch = maxBatch;
        _tensors = tensors;
        _byName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        _parameters = new AlignedFloats(Extent(TensorStorage.Parameter));
        _gradients = new AlignedFloats(_parameters.Length);
        _buffers = new AlignedFloats(Extent(TensorStorage.Buffer));
        _counters = new long[Extent(TensorStorage.Counter)];
    }

    private int Extent(TensorStorage storage) =>
        _tensors.Where(t => t.Storage == storage).Select(t => t.Offset + t.Length).DefaultIfEmpty(0).Max();

    /// <summary>The model's name in its <c>.nn</c> file.</summary>
    public abstract string Name { get; }

    /// <summary>Floats in one input sample.</summary>
    public abstract int SampleInputLength { get; }

    /// <summary>Floats in one output sample.</summary>
    public abstract int SampleOutputLength { get; }

    /// <summary>The shape of one input sample, batch excluded.</summary>
    public abstract IReadOnlyList<int> SampleInputShape { get; }

    /// <summary>The shape of one output sample, batch excluded.</summary>
    public abstract IReadOnlyList<int> SampleOutputShape { get; }

    /// <summary>The largest batch this instance accepts.</summary>
    public int MaxBatch { get; }

    /// <summary>Every parameter and buffer, in <c>state_dict</c> order.</summary>
    public IReadOnlyList<TensorInfo> Tensors => _tensors;

    /// <summary>
    /// All learnable parameters, flat, in <c>state_dict</c> order. Taking this span marks the
    /// parameters as changed, so inference refolds batch norm; if you keep the span and write
    /// through it later, call <see cref="ParametersChanged"/>.
    /// </summary>
    public Span<float> Parameters
    {
        get
        {
            ParametersChanged();
            return _parameters.AsSpan();
        }
    }

    /// <summary>The gradients, at the same offsets as <see cref="Parameters"/>; accumulated by <see cref="Backward(ReadOnlySpan{float}, Span{float})"/>.</summary>
    public Span<float> Gradients
    {
        get
        {
            ClearPendingZero();
            return _gradients.AsSpan();
        }
    }

    /// <summary>Tells the model its parameters or running statistics changed, so that inference refolds batch norm.</summary>
    public void ParametersChanged() => _version++;

    /// <summary>
    /// Sets every gradient to zero (the values of PyTorch's <c>zero_grad(set_to_none=False)</c>: an optimizer step
    /// right after still applies momentum and weight decay). As with <c>set_to_none=True</c>, no pass over the
    /// gradients runs here: the next <see cref="Backward(ReadOnlySpan{float}, Span{float})"/> writes them instead of adding to them, and reading them
    /// first (<see cref="Gradients"/>, <see cref="Gradient"/>, an optimizer step) clears them then. Through a span
    /// taken from <see cref="Gradients"/> before this call, the old values stay visible until one of those
    /// happens, and what is written there is lost.
    /// </summary>
    public void ZeroGrad()
    {
        Enter(nameof(ZeroGrad));
        _zeroPending = true;
        Exit();
    }

    // Set by ZeroGrad: the gradients are zero, but their array not yet cleared.
    private bool _zeroPending;

    // Clears the gradient array if ZeroGrad left it to be cleared (split across the model's threads when it is large).
    private void ClearPendingZero()
    {
        if (!_zeroPending) return;
        _zeroPending = false;
        if (Pool is null || _gradients.Length < ParallelUpdateThreshold)
        {
            _gradients.AsSpan().Clear();
            return;
        }

        Pool.RunChunks(_clearPart ??= ClearPart, Pool.Threads); // a late worker's share goes to the caller
    }

    private Action<int, int>? _clearPart;

    private void ClearPart(int part, int parts)
    {
        var (lo, hi) = WorkerPool.Share(_gradients.Length / 16, part, parts);
        int end = part == parts - 1 ? _gradients.Length : hi * 16;
        _gradients.AsSpan(lo * 16, end - lo * 16).Clear();
    }

    /// <summary>Below this many parameters, whole-buffer passes (zeroing gradients, an optimizer step) stay on the caller's thread.</summary>
    internal const int ParallelUpdateThreshold = 1 << 16;

    /// <summary>The pool an optimizer may split its update across, or null.</summary>
    internal WorkerPool? UpdatePool => Pool;

    /// <summary>The parameter array itself, for an optimizer's parallel update (which marks the parameters changed through <see cref="Parameters"/>).</summary>
    internal AlignedFloats ParameterArray => _parameters;

    /// <summary>The gradient array itself (cleared first if <see cref="ZeroGrad"/> left it to be).</summary>
    internal AlignedFloats GradientArray
    {
        get
        {
            ClearPendingZero();
            return _gradients;
        }
    }

    /// <summary>The parameter or float buffer named <paramref name="name"/> (e.g. <c>bn1.running_mean</c>); marks parameters as changed.</summary>
    public Span<float> Tensor(string name)
    {
        var info = Info(name);
        if (info.Storage == TensorStorage.Counter)
            throw new ArgumentException($"'{name}' is an int64 counter; read it with {nameof(Counter)}.", nameof(name));
        ParametersChanged();
        return info.Storage == TensorStorage.Parameter ? _parameters.AsSpan(info.Offset, info.Length) : _buffers.AsSpan(info.Offset, info.Length);
    }

    /// <summary>The gradient of the parameter named <paramref name="name"/>.</summary>
    public Span<float> Gradient(string name)
    {
        var info = Info(name);
        if (info.Storage != TensorStorage.Parameter) throw new ArgumentException($"'{name}' is a buffer, not a parameter; it has no gradient.", nameof(name));
        ClearPendingZero();
        return _gradients.AsSpan(info.Offset, info.Length);
    }

    /// <summary>The int64 counter named <paramref name="name"/> (<c>num_batches_tracked</c>).</summary>
    public ref long Counter(string name)
    {
        var info = Info(name);
        if (info.Storage != TensorStorage.Counter) throw new ArgumentException($"'{name}' is not a counter.", nameof(name));
        return ref _counters[info.Offset];
    }

    /// <summary>
    /// The per-layer table <c>nnc summary</c> prints for this model (layer, <c>state_dict</c> name, output shape,
    /// parameters, FLOPs, activation memory, and totals), as fixed-width text. Allocates; meant for logs and consoles.
    /// </summary>
    /// <returns>The table, lines ended by <c>\n</c>.</returns>
    public string Summary()
    {
        var rows = SummaryLayers;
        long parameters = 0, buffers = 0, flops = 0;
        foreach (var t in _tensors)
        {
            if (t.Storage == TensorStorage.Parameter) parameters += t.Length;
            else buffers += t.Length;
        }

        foreach (var row in rows)
        {
            if (!row.IsGroup) flops = flops > long.MaxValue - row.Flops ? long.MaxValue : flops + row.Flops; // a group's row repeats its layers' total
        }

        return ModelSummaryFormat.Plain(Name, "[B, " + string.Join(", ", SampleInputShape) + "]", rows, parameters, buffers, flops);
    }

    /// <summary>The rows of <see cref="Summary"/>, one per layer; generated models override it with a constant table.</summary>
    protected virtual IReadOnlyList<LayerSummary> SummaryLayers => [];

    /// <summary>The description of the tensor named <paramref name="name"/>.</summary>
    public TensorInfo Info(string name) =>
        _byName.TryGetValue(name, out var info)
            ? info
            : throw new KeyNotFoundException($"{Name} has no tensor '{name}'; it has {string.Join(", ", _tensors.Select(t => t.Name))}.");

    /// <summary>Training-mode forward pass: batch statistics, running statistics updated, dropout active.</summary>
    /// <param name="input">
    /// At least batch × <see cref="SampleInputLength"/> floats, row-major; only that many are read, so a buffer sized for
    /// <see cref="MaxBatch"/> serves every batch.
    /// </param>
    /// <param name="output">At least batch × <see cref="SampleOutputLength"/> floats; only that many are written, as a TensorPrimitives destination.</param>
    /// <param name="batch">Samples in this call, 1 to <see cref="MaxBatch"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="batch"/> is below 1 or above <see cref="MaxBatch"/>.</exception>
    /// <exception cref="ArgumentException">A span is shorter than the batch needs; the message says how many floats it needs.</exception>
    public void Forward(ReadOnlySpan<float> input, Span<float> output, int batch)
    {
        CheckCall(input.Length, output.Length, batch);
        Enter(nameof(Forward));
        try
        {
            _lastTrainingBatch = 0;
            ForwardCore(input[..(batch * SampleInputLength)], output[..(batch * SampleOutputLength)], batch);
            _lastTrainingBatch = batch;
            ParametersChanged();
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>
    /// Backward pass of the last <see cref="Forward"/>: accumulates every parameter's gradient into
    /// <see cref="Gradients"/> and, when <paramref name="inputGrad"/> is not empty, writes dL/d(input).
    /// </summary>
    /// <param name="outputGrad">dL/d(output): at least batch × <see cref="SampleOutputLength"/> floats for the batch of the last <see cref="Forward"/>; only that many are read.</param>
    /// <param name="inputGrad">Empty, or at least batch × <see cref="SampleInputLength"/> floats to receive dL/d(input); only that many are written.</param>
    /// <exception cref="InvalidOperationException">No successful <see cref="Forward"/> came before.</exception>
    /// <exception cref="ArgumentException">A span is shorter than the batch needs.</exception>
    public void Backward(ReadOnlySpan<float> outputGrad, Span<float> inputGrad = default)
    {
        Enter(nameof(Backward));
        try
        {
            BackwardChecked(outputGrad, inputGrad);
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>
    /// <see cref="Backward(ReadOnlySpan{float}, Span{float})"/>, telling <paramref name="hook"/> each range of
    /// parameters as soon as the pass has finished their gradients, while they are still in cache: what an
    /// optimizer fused into backward needs (PyTorch's <c>register_post_accumulate_grad_hook</c>). A generated model
    /// reports every parameter tensor once per pass, right after the layer that owns it, and never reads a
    /// layer's parameters after reporting them, so the hook may update them in place.
    /// </summary>
    /// <param name="outputGrad">dL/d(output) of the last <see cref="Forward"/>.</param>
    /// <param name="inputGrad">Empty, or at least batch × <see cref="SampleInputLength"/> floats to receive dL/d(input).</param>
    /// <param name="hook">Called on this thread, inside the pass, with offsets into <see cref="Parameters"/> and <see cref="Gradients"/>.</param>
    /// <exception cref="InvalidOperationException">No successful <see cref="Forward"/> came before.</exception>
    /// <exception cref="ArgumentException">A span is shorter than the batch needs.</exception>
    public void Backward(ReadOnlySpan<float> outputGrad, Span<float> inputGrad, IGradientHook hook)
    {
        ArgumentNullException.ThrowIfNull(hook);
        Enter(nameof(Backward));
        _gradientHook = hook;
        try
        {
            BackwardChecked(outputGrad, inputGrad);
        }
        finally
        {
            _gradientHook = null;
            Exit();
        }
    }

    private IGradientHook? _gradientHook;

    /// <summary>
    /// For the generated backward pass: the gradients of parameters [<paramref name="offset"/>,
    /// <paramref name="offset"/> + <paramref name="length"/>) are final for this pass, and no later step of the pass
    /// reads those parameters. Tells the hook of <see cref="Backward(ReadOnlySpan{float}, Span{float}, IGradientHook)"/>, if any.
    /// </summary>
    /// <param name="offset">First parameter.</param>
    /// <param name="length">Parameters in the range.</param>
    protected void GradientsReady(int offset, int length) => _gradientHook?.GradientsReady(offset, length);

    private void BackwardChecked(ReadOnlySpan<float> outputGrad, Span<float> inputGrad)
    {
        int batch = _lastTrainingBatch;
        if (batch == 0) throw new InvalidOperationException("Backward needs a successful Forward (training mode) first.");
        if (outputGrad.Length < batch * SampleOutputLength)
            throw new ArgumentException(LengthMessage("outputGrad", outputGrad.Length, batch, SampleOutputShape), nameof(outputGrad));
        if (!inputGrad.IsEmpty && inputGrad.Length < batch * SampleInputLength)
            throw new ArgumentException(LengthMessage("inputGrad", inputGrad.Length, batch, SampleInputShape), nameof(inputGrad));
        outputGrad = outputGrad[..(batch * SampleOutputLength)];
        if (!inputGrad.IsEmpty) inputGrad = inputGrad[..(batch * SampleInputLength)];
        // A model whose backward does not write its gradients after ZeroGrad (one generated before it could, or
        // written by hand) gets them cleared here. If the pass fails part-way, the gradients count as zeroed
        // again, so no layer's stale values pass for current ones.
        if (!WritesGradientsAfterZeroGrad) ClearPendingZero();
        bool pending = _zeroPending;
        try
        {
            BackwardCore(outputGrad, inputGrad, batch);
        }
        catch
        {
            _zeroPending |= pending;
            throw;
        }
    }

    /// <summary>
    /// Whether the generated <see cref="BackwardCore"/> calls <see cref="BeginGradients"/> and, after a
    /// <see cref="ZeroGrad"/>, writes every gradient rather than adding to it. When false, <see cref="Backward(ReadOnlySpan{float}, Span{float})"/>
    /// clears the gradients first.
    /// </summary>
    protected virtual bool WritesGradientsAfterZeroGrad => false;

    /// <summary>Inference: running statistics (batch norm folded into the preceding conv or linear), dropout off.</summary>
    /// <param name="input">At least batch × <see cref="SampleInputLength"/> floats, row-major; only that many are read.</param>
    /// <param name="output">At least batch × <see cref="SampleOutputLength"/> floats; only that many are written.</param>
    /// <param name="batch">Samples in this call, 1 to <see cref="MaxBatch"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="batch"/> is below 1 or above <see cref="MaxBatch"/>.</exception>
    /// <exception cref="ArgumentException">A span is shorter than the batch needs; the message says how many floats it needs.</exception>
    public void Infer(ReadOnlySpan<float> input, Span<float> output, int batch)
    {
        CheckCall(input.Length, output.Length, batch);
        Enter(nameof(Infer));
        try
        {
            int chunk = InferenceChunk;
            if (chunk <= 0 || batch <= chunk)
            {
                InferCore(input[..(batch * SampleInputLength)], output[..(batch * SampleOutputLength)], batch, _version);
                return;
            }

            // Equal chunks of at most `chunk` samples (128 at 40: four of 32); each sample's result is independent of
            // the others at inference, so only where its layers' values live changes.
            int chunks = (batch + chunk - 1) / chunk, size = (batch + chunks - 1) / chunks;
            for (int first = 0; first < batch; first += size)
            {
                int n = Math.Min(size, batch - first);
                InferCore(input.Slice(first * SampleInputLength, n * SampleInputLength), output.Slice(first * SampleOutputLength, n * SampleOutputLength), n, _version);
            }
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>
    /// The most samples one pass of the generated inference code takes; <see cref="Infer"/> runs a larger batch in
    /// equal chunks of at most this many (0: the whole batch at once). Layer by layer over a whole batch, a
    /// convolutional network's activations leave the caches (ResNet-20's first stage: 100 KB per sample for one layer's
    /// input and output, 12.5 MB at batch 128); in chunks they stay. Generated models with a convolution set it so
    /// that a chunk's largest layer input plus output fits in 4 MiB; models without one (a linear layer reuses its
    /// weights only across the samples of a pass) leave it at 0, as do models whose inference normalizes over the
    /// batch (batch norm without running statistics). Training passes are never chunked: batch normalization's
    /// statistics are over the whole batch.
    /// </summary>
    protected virtual int InferenceChunk => 0;

    /// <summary>
    /// Marks the instance busy for the duration of one call, or throws when another call holds it: two threads on one
    /// instance would share its arena and caches and return wrong results without a sign. One interlocked
    /// compare-and-swap per call; no allocation.
    /// </summary>
    /// <param name="operation">The entry point, for the message.</param>
    internal void Enter(string operation)
    {
        if (Interlocked.CompareExchange(ref _busy, 1, 0) != 0) ThrowConcurrentCall(operation);
    }

    /// <summary>Ends the call started by <see cref="Enter"/>.</summary>
    internal void Exit() => Volatile.Write(ref _busy, 0);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowConcurrentCall(string operation) =>
        throw new InvalidOperationException(
            $"{Name}.{operation} was called while another call on the same instance is still running (from another thread). " +
            "A model instance is not thread-safe: give each thread its own instance (copy the weights with SaveSafetensors and LoadSafetensors).");

    /// <summary>The generated training forward pass; arguments are already checked.</summary>
    protected abstract void ForwardCore(ReadOnlySpan<float> input, Span<float> output, int batch);

    /// <summary>The generated backward pass; arguments are already checked.</summary>
    protected abstract void BackwardCore(ReadOnlySpan<float> outputGrad, Span<float> inputGrad, int batch);

    /// <summary>The generated inference pass; <paramref name="version"/> changes whenever folded weights must be recomputed.</summary>
    protected abstract void InferCore(ReadOnlySpan<float> input, Span<float> output, int batch, int version);

    /// <summary>Resets parameters and buffers to PyTorch's default initialization, drawn from <paramref name="seed"/>.</summary>
    public abstract void ResetParameters(int seed);

    /// <summary>
    /// The state of the generator that draws the dropout masks in <see cref="Forward"/>, or null for a model without
    /// dropout. Checkpoints save it, so that a resumed run draws the masks it would have drawn without stopping.
    /// </summary>
    /// <exception cref="InvalidOperationException">Set to a value on a model without dropout.</exception>
    public ulong? DropoutRandomState
    {
        get => GetDropoutRandomState();
        set => SetDropoutRandomState(value);
    }

    /// <summary>The dropout generator's state; generated models with dropout override it.</summary>
    /// <returns>The state, or null without dropout.</returns>
    protected virtual ulong? GetDropoutRandomState() => null;

    /// <summary>Restores the dropout generator's state; generated models with dropout override it.</summary>
    /// <param name="state">The state (null leaves the generator as it is).</param>
    protected virtual void SetDropoutRandomState(ulong? state)
    {
        if (state is not null) throw new InvalidOperationException($"{Name} has no dropout, so it has no dropout generator to restore.");
    }

    /// <summary>The flat parameter storage, for generated code (does not mark a change).</summary>
    protected AlignedFloats ParameterStorage => _parameters;

    /// <summary>The flat gradient storage, for generated code (a pending <see cref="ZeroGrad"/> is not applied: see <see cref="BeginGradients"/>).</summary>
    protected AlignedFloats GradientStorage => _gradients;

    /// <summary>
    /// For the generated backward pass, before it writes any gradient: whether to add to the gradients (true) or
    /// to write them (false, when <see cref="ZeroGrad"/> ran since the last pass; every gradient must then be written).
    /// </summary>
    /// <returns>True to accumulate.</returns>
    protected bool BeginGradients()
    {
        bool accumulate = !_zeroPending;
        _zeroPending = false;
        return accumulate;
    }

    /// <summary>The running statistics, for generated code.</summary>
    protected AlignedFloats BufferStorage => _buffers;

    /// <summary>The batch counters, for generated code.</summary>
    protected long[] CounterStorage => _counters;

    private void CheckCall(int inputLength, int outputLength, int batch)
    {
        if (batch < 1 || batch > MaxBatch)
            throw new ArgumentOutOfRangeException(nameof(batch), batch, $"batch must be between 1 and maxBatch = {MaxBatch} (the constructor's argument), got {batch}.");
        if (inputLength < batch * SampleInputLength)
            throw new ArgumentException(LengthMessage("input", inputLength, batch, SampleInputShape), "input");
        if (outputLength < batch * SampleOutputLength)
            throw new ArgumentException(LengthMessage("output", outputLength, batch, SampleOutputShape), "output");
    }

    private static string LengthMessage(string what, int actual, int batch, IReadOnlyList<int> shape)
    {
        int expected = batch * shape.Aggregate(1, (a, b) => a * b);
        return $"{what} has {actual} floats, but batch {batch} × [{string.Join(", ", shape)}] needs at least {expected}.";
    }

    /// <summary>
    /// Throws like PyTorch when batch norm would train on one value per channel (its variance is undefined).
    /// Generated code calls it before anything is written, so a rejected call changes no state.
    /// </summary>
    /// <param name="layer">The batch norm's state_dict name.</param>
    /// <param name="inputSize">Its input's size with the batch, as PyTorch prints it, e.g. <c>[1, 5]</c>.</param>
    protected static void ThrowSingleValuePerChannel(string layer, string inputSize) =>
        throw new ArgumentException(
            $"Expected more than 1 value per channel when training, got input size {inputSize} at '{layer}': batch norm over features needs a batch of at least 2.",
            "batch");

    /// <summary>Metadata key of the model's name in files this runtime writes.</summary>
    public const string ModelKey = "model";

    /// <summary>Metadata key of the model's <see cref="ArchitectureFingerprint"/> in files this runtime writes.</summary>
    public const string FingerprintKey = "model.fingerprint";

    /// <summary>
    /// The text <see cref="ArchitectureFingerprint"/> is computed from: the model's name, its input and output shapes and
    /// every tensor's name, storage and shape. Generated code may override it with more of the <c>.nn</c> model's
    /// structure (layers without tensors, such as activations), so that two models with the same tensors differ too.
    /// </summary>
    protected virtual string Architecture
    {
        get
        {
            var text = new StringBuilder();
            text.Append("model ").Append(Name).Append('\n');
            text.Append("input [").AppendJoin(", ", SampleInputShape).Append("]\n");
            text.Append("output [").AppendJoin(", ", SampleOutputShape).Append("]\n");
            foreach (var t in _tensors) text.Append(t.Storage).Append(' ').Append(t.Name).Append(' ').Append(t.ShapeText).Append('\n');
            return text.ToString();
        }
    }

    /// <summary>
    /// A short hash of <see cref="Architecture"/>, e.g. <c>sha256:3f9a…</c> (16 hex digits): saved with the model's name
    /// in every file this runtime writes, and compared when a file is loaded, so that a checkpoint of another
    /// architecture is refused even where its tensor names and shapes agree.
    /// </summary>
    public string ArchitectureFingerprint =>
        _fingerprint ??= "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Architecture)).AsSpan(0, 8));

    /// <summary>
    /// Adds every parameter and buffer with its <c>state_dict</c> name (<c>num_batches_tracked</c> as I64) to
    /// <paramref name="writer"/>, with the metadata <c>format</c>, <see cref="ModelKey"/> and <see cref="FingerprintKey"/>.
    /// The float tensors are added as views (<see cref="SafetensorsWriter.AddView"/>): write before the model changes.
    /// </summary>
    /// <param name="writer">The file being written.</param>
    public void AddState(SafetensorsWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        foreach (var t in _tensors)
        {
            switch (t.Storage)
            {
                case TensorStorage.Parameter: writer.AddView(t.Name, _parameters.AsMemory(t.Offset, t.Length), t.Shape); break;
                case TensorStorage.Buffer: writer.AddView(t.Name, _buffers.AsMemory(t.Offset, t.Length), t.Shape); break;
                default: writer.Add(t.Name, _counters.AsSpan(t.Offset, t.Length), t.Shape); break;
            }
        }

        writer.AddMetadata("format", "pt");
        writer.AddMetadata(ModelKey, Name);
        writer.AddMetadata(FingerprintKey, ArchitectureFingerprint);
    }

    /// <summary>Writes every parameter and buffer with its <c>state_dict</c> name (<c>num_batches_tracked</c> as I64), streamed tensor by tensor.</summary>
    public void SaveSafetensors(Stream stream)
    {
        Enter(nameof(SaveSafetensors));
        try
        {
            var writer = new SafetensorsWriter();
            AddState(writer);
            writer.WriteTo(stream);
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>Writes <see cref="SaveSafetensors(Stream)"/> to a file atomically (a crash leaves the old file intact).</summary>
    public void SaveSafetensors(string path) => AtomicFile.Write(path, SaveSafetensors);

    /// <summary>Loads a <c>state_dict</c> saved by PyTorch (safetensors) or by <see cref="SaveSafetensors(Stream)"/>.</summary>
    /// <param name="stream">The safetensors bytes.</param>
    /// <param name="allowExtra">Ignore tensors this model does not have (e.g. a bundle that also holds inputs); by default they are an error.</param>
    /// <param name="allowArchitectureMismatch">Load a file saved from another model (another name or fingerprint) whose tensors fit; by default it is refused.</param>
    /// <exception cref="InvalidDataException">A tensor is missing, extra, mis-shaped, of the wrong dtype, the file is of another model or corrupt; nothing is loaded.</exception>
    public void LoadSafetensors(Stream stream, bool allowExtra = false, bool allowArchitectureMismatch = false)
    {
        using var file = SafetensorsFile.Read(stream);
        LoadState(file, allowExtra, allowArchitectureMismatch);
    }

    /// <summary>Loads from a file; see <see cref="LoadSafetensors(Stream, bool, bool)"/>.</summary>
    public void LoadSafetensors(string path, bool allowExtra = false, bool allowArchitectureMismatch = false)
    {
        using var file = SafetensorsFile.Read(path);
        LoadState(file, allowExtra, allowArchitectureMismatch);
    }

    /// <summary>
    /// Lists what prevents this model from loading <paramref name="file"/>: missing, mis-shaped or mistyped tensors,
    /// extra ones unless <paramref name="allowExtra"/>, and a file saved from another model (its <see cref="ModelKey"/>
    /// or <see cref="FingerprintKey"/> differs) unless <paramref name="allowArchitectureMismatch"/>.
    /// </summary>
    /// <returns>One message per problem; empty when the file loads.</returns>
    public IReadOnlyList<string> CheckState(SafetensorsFile file, bool allowExtra = false, bool allowArchitectureMismatch = false)
    {
        ArgumentNullException.ThrowIfNull(file);
        var problems = new List<string>();
        if (!allowArchitectureMismatch)
        {
            file.Metadata.TryGetValue(ModelKey, out string? savedName);
            file.Metadata.TryGetValue(FingerprintKey, out string? savedPrint);
            if ((savedName is not null && savedName != Name) || (savedPrint is not null && savedPrint != ArchitectureFingerprint))
            {
                problems.Add($"it was saved from model '{savedName ?? "(unnamed)"}' (fingerprint {savedPrint ?? "none"}), not from '{Name}' " +
                    $"(fingerprint {ArchitectureFingerprint}); pass allowArchitectureMismatch: true to load it anyway");
            }
        }

        foreach (var t in _tensors)
        {
            if (!file.TryGet(t.Name, out var tensor))
            {
                problems.Add($"'{t.Name}' {t.ShapeText} is missing");
                continue;
            }

            if (!tensor.Shape.SequenceEqual(t.Shape))
                problems.Add($"'{t.Name}' has shape [{string.Join(", ", tensor.Shape)}] but {Name} expects {t.ShapeText}");
            string dtype = t.Storage == TensorStorage.Counter ? "I64" : "F32";
            if (tensor.DTypeName != dtype)
                problems.Add($"'{t.Name}' is {tensor.DTypeName} but {Name} expects {dtype}");
        }

        if (!allowExtra)
        {
            int before = problems.Count;
            foreach (var tensor in file.Tensors.Where(x => !_byName.ContainsKey(x.Name)))
                problems.Add($"'{tensor.Name}' is not a tensor of {Name}");
            if (problems.Count > before)
            {
                // One hint after the list: the common case is a PyTorch bias that the .nn file dropped (bias: false before batch norm).
                problems[^1] += $" (pass allowExtra: true to ignore the tensors {Name} does not have, such as a bias that bias: false dropped)";
            }
        }

        return problems;
    }

    /// <summary>Loads every tensor of this model from <paramref name="file"/>, all or nothing; see <see cref="CheckState"/> for what is refused.</summary>
    public void LoadState(SafetensorsFile file, bool allowExtra = false, bool allowArchitectureMismatch = false)
    {
        Enter(nameof(LoadState));
        try
        {
            // Validate everything first: a rejected file must leave the model exactly as it was.
            var problems = CheckState(file, allowExtra, allowArchitectureMismatch);
            if (problems.Count > 0)
                throw new InvalidDataException($"cannot load {Name}: {string.Join("; ", problems)}. Nothing was loaded.");

            // The counters are read first and written last, so that a file cut short while it is read (after its header
            // was checked) fails before the counters change; the floats are copied straight from the file.
            var counters = _tensors.Where(t => t.Storage == TensorStorage.Counter).Select(t => (t, file[t.Name].ToInt64Array())).ToList();
            foreach (var t in _tensors)
            {
                var tensor = file[t.Name];
                switch (t.Storage)
                {
                    case TensorStorage.Parameter: tensor.CopyTo(_parameters.AsSpan(t.Offset, t.Length)); break;
                    case TensorStorage.Buffer: tensor.CopyTo(_buffers.AsSpan(t.Offset, t.Length)); break;
                }
            }

            foreach (var (t, values) in counters) values.CopyTo(_counters.AsSpan(t.Offset, t.Length));
            ParametersChanged();
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>Formats a float for messages, invariant culture.</summary>
    protected static string Format(float value) => value.ToString("R", CultureInfo.InvariantCulture);
}
