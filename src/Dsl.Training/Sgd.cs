// torch.optim.SGD on a flat buffer: weight decay, momentum, dampening, Nesterov.
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Dsl.Training;

/// <summary>
/// Stochastic gradient descent with PyTorch's formulas (<c>torch.optim.SGD</c>), per element, with
/// g the gradient, p the parameter, b the momentum buffer:
/// <code>
/// g = g + weight_decay·p                        (if weight_decay ≠ 0)
/// b = g                                         (first step: not dampened)
/// b = momentum·b + (1 − dampening)·g            (later steps)
/// g = nesterov ? g + momentum·b : b             (if momentum ≠ 0)
/// p = p − lr·g
/// </code>
/// </summary>
public sealed class Sgd : Optimizer
{
    private readonly AlignedFloats _momentumBuffer;

    /// <summary>SGD for <paramref name="model"/>'s parameters.</summary>
    /// <param name="model">The model to train.</param>
    /// <param name="learningRate">Learning rate.</param>
    /// <param name="momentum">Momentum factor (0 = plain SGD).</param>
    /// <param name="dampening">Dampening of the gradient in the momentum buffer.</param>
    /// <param name="weightDecay">L2 penalty added to the gradient.</param>
    /// <param name="nesterov">Nesterov momentum (needs momentum &gt; 0 and dampening 0, as in PyTorch).</param>
    /// <param name="decayNormAndBias">False to exclude biases and batch-norm γ/β from weight decay (see <see cref="ParameterSegments.FromModel"/>).</param>
    public Sgd(CompiledModel model, float learningRate, float momentum = 0, float dampening = 0, float weightDecay = 0, bool nesterov = false, bool decayNormAndBias = true)
        : this(CheckModel(model).Parameters.Length, ParameterSegments.FromModel(model, decayNormAndBias), learningRate, momentum, dampening, weightDecay, nesterov)
    {
    }

    /// <summary>SGD over a flat buffer of <paramref name="parameterCount"/> elements split into <paramref name="segments"/>.</summary>
    /// <param name="parameterCount">Length of the flat parameter buffer.</param>
    /// <param name="segments">Its tensors and their weight-decay flags.</param>
    /// <param name="learningRate">Learning rate.</param>
    /// <param name="momentum">Momentum factor (0 = plain SGD).</param>
    /// <param name="dampening">Dampening of the gradient in the momentum buffer.</param>
    /// <param name="weightDecay">L2 penalty added to the gradient.</param>
    /// <param name="nesterov">Nesterov momentum (needs momentum &gt; 0 and dampening 0).</param>
    public Sgd(int parameterCount, IReadOnlyList<ParameterSegment> segments, float learningRate, float momentum = 0, float dampening = 0, float weightDecay = 0, bool nesterov = false)
        : base(parameterCount, segments, learningRate, weightDecay)
    {
        if (!(momentum >= 0)) throw new ArgumentOutOfRangeException(nameof(momentum), momentum, "momentum must be ≥ 0.");
        if (float.IsNaN(dampening)) throw new ArgumentOutOfRangeException(nameof(dampening), dampening, "dampening must be a number.");
        if (nesterov && (momentum <= 0 || dampening != 0))
            throw new ArgumentException("Nesterov momentum requires a momentum and zero dampening (as in PyTorch).", nameof(nesterov));
        Momentum = momentum;
        Dampening = dampening;
        Nesterov = nesterov;
        _momentumBuffer = new AlignedFloats(momentum != 0 ? parameterCount : 0);
    }

    private static CompiledModel CheckModel(CompiledModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model;
    }

    /// <inheritdoc/>
    public override string Kind => "sgd";

    /// <summary>Momentum factor.</summary>
    public float Momentum { get; }

    /// <summary>Dampening for momentum.</summary>
    public float Dampening { get; }

    /// <summary>Whether Nesterov momentum is used.</summary>
    public bool Nesterov { get; }

    /// <summary>The momentum buffer (PyTorch's <c>momentum_buffer</c>), flat like the parameters; empty without momentum.</summary>
    public ReadOnlySpan<float> MomentumBuffer => _momentumBuffer.AsSpan();

    /// <inheritdoc/>
    protected override void Update(Span<float> parameters, ReadOnlySpan<float> gradients, int offset, float weightDecay)
    {
        // Eight lanes at a time with the scalar formulas' exact roundings (multiply, then add: no FMA), so the
        // result does not depend on the vector width; the scalar loop finishes the tail.
        float lr = LearningRate, momentum = Momentum, keep = 1 - Dampening;
        int i = 0, n = parameters.Length;
        ref float p = ref MemoryMarshal.GetReference(parameters);
        ref float gr = ref MemoryMarshal.GetReference(gradients);
        var vlr = Vector256.Create(lr);
        var vwd = Vector256.Create(weightDecay);
        if (momentum == 0)
        {
            for (; i <= n - 8; i += 8)
            {
                var pv = Vector256.LoadUnsafe(ref p, (nuint)i);
                var g = Vector256.LoadUnsafe(ref gr, (nuint)i);
                if (weightDecay != 0) g += vwd * pv;
                (pv - vlr * g).StoreUnsafe(ref p, (nuint)i);
            }

            for (; i < n; i++)
            {
                float g = gradients[i];
                if (weightDecay != 0) g += weightDecay * parameters[i];
                parameters[i] -= lr * g;
            }

            return;
        }

        var buffer = _momentumBuffer.AsSpan(offset, parameters.Length);
        ref float bu = ref MemoryMarshal.GetReference(buffer);
        bool first = StepCount == 1;
        bool nesterov = Nesterov;
        var vm = Vector256.Create(momentum);
        var vkeep = Vector256.Create(keep);
        if (weightDecay == 0 && !first && !nesterov && keep == 1)
        {
            // The usual case (torch.optim.SGD(lr, momentum)): b = momentum·b + g, p = p − lr·b, with no branch in the
            // loop and 16 lanes per iteration. keep·g is g exactly when keep is 1, so the bits are those of the loop below.
            for (; i <= n - 16; i += 16)
            {
                var b0 = vm * Vector256.LoadUnsafe(ref bu, (nuint)i) + Vector256.LoadUnsafe(ref gr, (nuint)i);
                var b1 = vm * Vector256.LoadUnsafe(ref bu, (nuint)(i + 8)) + Vector256.LoadUnsafe(ref gr, (nuint)(i + 8));
                b0.StoreUnsafe(ref bu, (nuint)i);
                b1.StoreUnsafe(ref bu, (nuint)(i + 8));
                (Vector256.LoadUnsafe(ref p, (nuint)i) - vlr * b0).StoreUnsafe(ref p, (nuint)i);
                (Vector256.LoadUnsafe(ref p, (nuint)(i + 8)) - vlr * b1).StoreUnsafe(ref p, (nuint)(i + 8));
            }
        }

        for (; i <= n - 8; i += 8)
        {
            var pv = Vector256.LoadUnsafe(ref p, (nuint)i);
            var g = Vector256.LoadUnsafe(ref gr, (nuint)i);
            if (weightDecay != 0) g += vwd * pv;
            var b = first ? g : vm * Vector256.LoadUnsafe(ref bu, (nuint)i) + vkeep * g;
            b.StoreUnsafe(ref bu, (nuint)i);
            g = nesterov ? g + vm * b : b;
            (pv - vlr * g).StoreUnsafe(ref p, (nuint)i);
        }

        for (; i < n; i++)
        {
            float g = gradients[i];
            if (weightDecay != 0) g += weightDecay * parameters[i];
            float b = first ? g : momentum * buffer[i] + keep * g;
            buffer[i] = b;
            g = nesterov ? g + momentum * b : b;
            parameters[i] -= lr * g;
        }
    }

    /// <inheritdoc/>
    protected override IEnumerable<(string Name, AlignedFloats Data)> StateTensors
    {
        get
        {
            if (Momentum != 0) yield return ("momentum_buffer", _momentumBuffer);
        }
    }

    /// <inheritdoc/>
    protected override IEnumerable<(string Key, double Value)> Hyperparameters =>
        [("momentum", Momentum), ("dampening", Dampening), ("nesterov", Nesterov ? 1 : 0)];
}
