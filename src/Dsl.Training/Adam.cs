// torch.optim.Adam and AdamW on a flat buffer, with bias correction.
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Dsl.Training;

/// <summary>
/// Adam (<c>torch.optim.Adam</c>) or, with decoupled weight decay, AdamW (<c>torch.optim.AdamW</c>), with
/// PyTorch's formulas per element (t the step count, starting at 1):
/// <code>
/// p = p·(1 − lr·weight_decay)                   (AdamW only)
/// g = g + weight_decay·p                        (Adam only, if weight_decay ≠ 0)
/// m = β₁·m + (1 − β₁)·g
/// v = β₂·v + (1 − β₂)·g²
/// p = p − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)
/// </code>
/// (AMSGrad is not implemented.)
/// </summary>
public class Adam : Optimizer
{
    private readonly AlignedFloats _expAvg;
    private readonly AlignedFloats _expAvgSq;
    private float _stepSize;
    private float _biasCorrection2Sqrt;

    /// <summary>Adam for <paramref name="model"/>'s parameters.</summary>
    /// <param name="model">The model to train.</param>
    /// <param name="learningRate">Learning rate (PyTorch's default 1e-3).</param>
    /// <param name="beta1">Decay of the first moment.</param>
    /// <param name="beta2">Decay of the second moment.</param>
    /// <param name="eps">Added to the denominator.</param>
    /// <param name="weightDecay">Weight decay: an L2 term added to the gradient (Adam) or decoupled (AdamW).</param>
    /// <param name="decoupledWeightDecay">True for AdamW.</param>
    /// <param name="decayNormAndBias">False to exclude biases and batch-norm γ/β from weight decay.</param>
    public Adam(CompiledModel model, float learningRate = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f, float eps = 1e-8f, float weightDecay = 0, bool decoupledWeightDecay = false, bool decayNormAndBias = true)
        : this(CheckModel(model).Parameters.Length, ParameterSegments.FromModel(model, decayNormAndBias), learningRate, beta1, beta2, eps, weightDecay, decoupledWeightDecay)
    {
    }

    /// <summary>Adam over a flat buffer of <paramref name="parameterCount"/> elements split into <paramref name="segments"/>.</summary>
    /// <param name="parameterCount">Length of the flat parameter buffer.</param>
    /// <param name="segments">Its tensors and their weight-decay flags.</param>
    /// <param name="learningRate">Learning rate.</param>
    /// <param name="beta1">Decay of the first moment.</param>
    /// <param name="beta2">Decay of the second moment.</param>
    /// <param name="eps">Added to the denominator.</param>
    /// <param name="weightDecay">Weight decay.</param>
    /// <param name="decoupledWeightDecay">True for AdamW.</param>
    public Adam(int parameterCount, IReadOnlyList<ParameterSegment> segments, float learningRate = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f, float eps = 1e-8f, float weightDecay = 0, bool decoupledWeightDecay = false)
        : base(parameterCount, segments, learningRate, weightDecay)
    {
        if (!(beta1 >= 0 && beta1 < 1)) throw new ArgumentOutOfRangeException(nameof(beta1), beta1, "beta1 must be in [0, 1).");
        if (!(beta2 >= 0 && beta2 < 1)) throw new ArgumentOutOfRangeException(nameof(beta2), beta2, "beta2 must be in [0, 1).");
        if (!(eps >= 0)) throw new ArgumentOutOfRangeException(nameof(eps), eps, "eps must be ≥ 0.");
        Beta1 = beta1;
        Beta2 = beta2;
        Eps = eps;
        Decoupled = decoupledWeightDecay;
        _expAvg = new AlignedFloats(parameterCount);
        _expAvgSq = new AlignedFloats(parameterCount);
    }

    private protected static CompiledModel CheckModel(CompiledModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model;
    }

    /// <inheritdoc/>
    public override string Kind => Decoupled ? "adamw" : "adam";

    /// <summary>Decay of the first moment.</summary>
    public float Beta1 { get; }

    /// <summary>Decay of the second moment.</summary>
    public float Beta2 { get; }

    /// <summary>Term added to the denominator.</summary>
    public float Eps { get; }

    /// <summary>Whether weight decay is decoupled (AdamW) rather than added to the gradient.</summary>
    public bool Decoupled { get; }

    /// <summary>The first moment (PyTorch's <c>exp_avg</c>).</summary>
    public ReadOnlySpan<float> ExpAvg => _expAvg.AsSpan();

    /// <summary>The second moment (PyTorch's <c>exp_avg_sq</c>).</summary>
    public ReadOnlySpan<float> ExpAvgSq => _expAvgSq.AsSpan();

    /// <inheritdoc/>
    protected override void BeginStep()
    {
        // As PyTorch: Python floats (double) for the bias corrections, used as float scalars.
        double biasCorrection1 = 1 - Math.Pow(Beta1, StepCount);
        double biasCorrection2 = 1 - Math.Pow(Beta2, StepCount);
        _stepSize = (float)(LearningRate / biasCorrection1);
        _biasCorrection2Sqrt = (float)Math.Sqrt(biasCorrection2);
    }

    /// <inheritdoc/>
    protected override void Update(Span<float> parameters, ReadOnlySpan<float> gradients, int offset, float weightDecay)
    {
        var m = _expAvg.AsSpan(offset, parameters.Length);
        var v = _expAvgSq.AsSpan(offset, parameters.Length);
        float beta1 = Beta1, beta2 = Beta2, eps = Eps, stepSize = _stepSize, bc2 = _biasCorrection2Sqrt;
        float oneMinusBeta1 = 1 - beta1, oneMinusBeta2 = 1 - beta2;
        float decay = Decoupled ? 1 - LearningRate * weightDecay : 1;
        float l2 = Decoupled ? 0 : weightDecay;
        int i = 0;
        if (decay == 1 && l2 == 0)
        {
            // Without weight decay, eight lanes at a time with the scalar loop's operations in its order (multiply,
            // then add, no FMA; square root and division are exact in both), so the bits are the same.
            ref float pr = ref MemoryMarshal.GetReference(parameters);
            ref float gr = ref MemoryMarshal.GetReference(gradients);
            ref float mr = ref MemoryMarshal.GetReference(m);
            ref float vr = ref MemoryMarshal.GetReference(v);
            var vb1 = Vector256.Create(oneMinusBeta1);
            var vbeta2 = Vector256.Create(beta2);
            var vb2 = Vector256.Create(oneMinusBeta2);
            var vstep = Vector256.Create(stepSize);
            var vbc2 = Vector256.Create(bc2);
            var veps = Vector256.Create(eps);
            for (; i <= parameters.Length - 8; i += 8)
            {
                var g = Vector256.LoadUnsafe(ref gr, (nuint)i);
                var mo = Vector256.LoadUnsafe(ref mr, (nuint)i);
                var mi = mo + vb1 * (g - mo);
                var vi = vbeta2 * Vector256.LoadUnsafe(ref vr, (nuint)i) + vb2 * g * g;
                mi.StoreUnsafe(ref mr, (nuint)i);
                vi.StoreUnsafe(ref vr, (nuint)i);
                (Vector256.LoadUnsafe(ref pr, (nuint)i) - vstep * (mi / (Vector256.Sqrt(vi) / vbc2 + veps))).StoreUnsafe(ref pr, (nuint)i);
            }
        }

        for (; i < parameters.Length; i++)
        {
            float p = parameters[i];
            if (decay != 1) p *= decay;
            float g = gradients[i];
            if (l2 != 0) g += l2 * p;
            float mi = m[i] + oneMinusBeta1 * (g - m[i]); // exp_avg.lerp_(grad, 1 - beta1)
            float vi = beta2 * v[i] + oneMinusBeta2 * g * g;
            m[i] = mi;
            v[i] = vi;
            parameters[i] = p - stepSize * (mi / (MathF.Sqrt(vi) / bc2 + eps));
        }
    }

    /// <inheritdoc/>
    protected override IEnumerable<(string Name, AlignedFloats Data)> StateTensors => [("exp_avg", _expAvg), ("exp_avg_sq", _expAvgSq)];

    /// <inheritdoc/>
    protected override IEnumerable<(string Key, double Value)> Hyperparameters => [("beta1", Beta1), ("beta2", Beta2), ("eps", Eps)];
}

/// <summary>AdamW (<c>torch.optim.AdamW</c>): <see cref="Adam"/> with decoupled weight decay, PyTorch's default decay 0.01.</summary>
public sealed class AdamW : Adam
{
    /// <summary>AdamW for <paramref name="model"/>'s parameters.</summary>
    /// <param name="model">The model to train.</param>
    /// <param name="learningRate">Learning rate.</param>
    /// <param name="beta1">Decay of the first moment.</param>
    /// <param name="beta2">Decay of the second moment.</param>
    /// <param name="eps">Added to the denominator.</param>
    /// <param name="weightDecay">Decoupled weight decay: <c>p *= 1 − lr·weight_decay</c> before the Adam step.</param>
    /// <param name="decayNormAndBias">False to exclude biases and batch-norm γ/β from weight decay.</param>
    public AdamW(CompiledModel model, float learningRate = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f, float eps = 1e-8f, float weightDecay = 0.01f, bool decayNormAndBias = true)
        : base(model, learningRate, beta1, beta2, eps, weightDecay, decoupledWeightDecay: true, decayNormAndBias)
    {
    }

    /// <summary>AdamW over a flat buffer.</summary>
    /// <param name="parameterCount">Length of the flat parameter buffer.</param>
    /// <param name="segments">Its tensors and their weight-decay flags.</param>
    /// <param name="learningRate">Learning rate.</param>
    /// <param name="beta1">Decay of the first moment.</param>
    /// <param name="beta2">Decay of the second moment.</param>
    /// <param name="eps">Added to the denominator.</param>
    /// <param name="weightDecay">Decoupled weight decay.</param>
    public AdamW(int parameterCount, IReadOnlyList<ParameterSegment> segments, float learningRate = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f, float eps = 1e-8f, float weightDecay = 0.01f)
        : base(parameterCount, segments, learningRate, beta1, beta2, eps, weightDecay, decoupledWeightDecay: true)
    {
    }
}
