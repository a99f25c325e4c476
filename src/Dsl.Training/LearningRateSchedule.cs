// Learning-rate schedules as pure functions of the step count, so a checkpoint only needs the step to resume one.
using System.Diagnostics;

namespace Dsl.Training;

/// <summary>
/// A learning rate as a function of the number of steps already taken (0 for the first update). The unit of a
/// "step" is the caller's: <see cref="Trainer"/> counts optimizer updates (iterations); PyTorch's epoch-based
/// schedulers correspond to step sizes given in epochs × iterations per epoch.
/// </summary>
public abstract class LearningRateSchedule
{
    /// <summary>The learning rate for the update that follows <paramref name="step"/> completed updates.</summary>
    /// <param name="step">Updates taken so far (≥ 0).</param>
    /// <returns>The learning rate.</returns>
    public abstract float At(long step);

    /// <summary>A short description for logs, e.g. <c>cosine(0.05 → 0, 18740 steps)</c>.</summary>
    /// <returns>The description.</returns>
    public abstract override string ToString();

    /// <summary>The same learning rate throughout.</summary>
    /// <param name="learningRate">The learning rate.</param>
    /// <returns>The schedule.</returns>
    public static LearningRateSchedule Constant(float learningRate) => new MultiStepSchedule(learningRate, [], 1);

    /// <summary>Formats with the invariant culture.</summary>
    /// <param name="text">An interpolated string.</param>
    /// <returns>The text.</returns>
    protected static string Inv(FormattableString text) => FormattableString.Invariant(text);
}

/// <summary>
/// PyTorch's <c>StepLR</c> and <c>MultiStepLR</c>: <c>lr = base·γ^k</c> where k is the number of milestones
/// reached (a milestone m is reached once <c>step ≥ m</c>).
/// </summary>
public sealed class MultiStepSchedule : LearningRateSchedule
{
    private readonly long[] _milestones;

    /// <summary>Multiplies the learning rate by <paramref name="gamma"/> at each milestone.</summary>
    /// <param name="baseLearningRate">The initial learning rate.</param>
    /// <param name="milestones">Steps at which the rate drops, increasing.</param>
    /// <param name="gamma">Factor applied at each milestone.</param>
    public MultiStepSchedule(float baseLearningRate, IEnumerable<long> milestones, float gamma = 0.1f)
    {
        ArgumentNullException.ThrowIfNull(milestones);
        _milestones = milestones.ToArray();
        for (int i = 1; i < _milestones.Length; i++)
        {
            if (_milestones[i] <= _milestones[i - 1]) throw new ArgumentException("milestones must be strictly increasing.", nameof(milestones));
        }

        BaseLearningRate = baseLearningRate;
        Gamma = gamma;
    }

    /// <summary>Every <paramref name="stepSize"/> steps the rate is multiplied by <paramref name="gamma"/> (PyTorch's <c>StepLR</c>).</summary>
    /// <param name="baseLearningRate">The initial learning rate.</param>
    /// <param name="stepSize">Steps between drops (≥ 1).</param>
    /// <param name="gamma">Factor applied at each drop.</param>
    /// <returns>The schedule.</returns>
    public static LearningRateSchedule Every(float baseLearningRate, long stepSize, float gamma = 0.1f)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(stepSize, 1);
        return new StepEvery(baseLearningRate, stepSize, gamma);
    }

    /// <summary>The initial learning rate.</summary>
    public float BaseLearningRate { get; }

    /// <summary>The factor applied at each milestone.</summary>
    public float Gamma { get; }

    /// <summary>The milestones.</summary>
    public IReadOnlyList<long> Milestones => _milestones;

    /// <inheritdoc/>
    public override float At(long step)
    {
        int reached = 0;
        while (reached < _milestones.Length && step >= _milestones[reached]) reached++;
        return (float)(BaseLearningRate * Math.Pow(Gamma, reached));
    }

    /// <inheritdoc/>
    public override string ToString() =>
        _milestones.Length == 0 ? Inv($"constant({BaseLearningRate:G4})") : Inv($"multistep({BaseLearningRate:G4}, ×{Gamma:G4} at steps {string.Join(", ", _milestones)})");

    private sealed class StepEvery(float baseLearningRate, long stepSize, float gamma) : LearningRateSchedule
    {
        public override float At(long step) => (float)(baseLearningRate * Math.Pow(gamma, step / stepSize));

        public override string ToString() => Inv($"step({baseLearningRate:G4}, ×{gamma:G4} every {stepSize} steps)");
    }
}

/// <summary>
/// Cosine annealing (PyTorch's <c>CosineAnnealingLR</c> without restarts), optionally after a linear warm-up:
/// <c>lr = min + (base − min)·(1 + cos(π·t/T))/2</c>, t the steps after warm-up, T the steps of the cosine part;
/// after T steps the rate stays at the minimum. The warm-up of W steps is, without a start factor,
/// <c>base·(step + 1)/W</c> (PyTorch's <c>LinearLR(start_factor=1/W, total_iters=W−1)</c>); with a start factor s,
/// <c>base·(s + (1 − s)·step/W)</c>, which with the cosine part is PyTorch's
/// <c>SequentialLR([LinearLR(start_factor=s, total_iters=W), CosineAnnealingLR(T_max=total−W, eta_min=min)], milestones=[W])</c>
/// stepped once per update.
/// </summary>
public sealed class CosineSchedule : LearningRateSchedule
{
    /// <summary>Anneals from <paramref name="baseLearningRate"/> to <paramref name="minLearningRate"/> over <paramref name="totalSteps"/>.</summary>
    /// <param name="baseLearningRate">The initial (peak) learning rate.</param>
    /// <param name="totalSteps">Steps of the whole schedule, warm-up included (≥ 1).</param>
    /// <param name="minLearningRate">The final learning rate (PyTorch's <c>eta_min</c>).</param>
    /// <param name="warmupSteps">Steps of linear warm-up from base/warmup to base (0 for none).</param>
    /// <param name="warmupStartFactor">
    /// PyTorch's <c>LinearLR</c> <c>start_factor</c> in (0, 1]: the warm-up's first rate is base·factor and it rises
    /// linearly to base at step <paramref name="warmupSteps"/>; null for the warm-up <c>base·(step + 1)/W</c>.
    /// </param>
    public CosineSchedule(float baseLearningRate, long totalSteps, float minLearningRate = 0, long warmupSteps = 0, float? warmupStartFactor = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(totalSteps, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(warmupSteps);
        if (warmupSteps >= totalSteps) throw new ArgumentOutOfRangeException(nameof(warmupSteps), warmupSteps, "warm-up must be shorter than the schedule.");
        if (warmupStartFactor is { } factor && !(factor > 0 && factor <= 1))
            throw new ArgumentException($"warmupStartFactor must be in (0, 1] (PyTorch's LinearLR start_factor), got {factor.ToString(System.Globalization.CultureInfo.InvariantCulture)}.", nameof(warmupStartFactor));
        BaseLearningRate = baseLearningRate;
        TotalSteps = totalSteps;
        MinLearningRate = minLearningRate;
        WarmupSteps = warmupSteps;
        WarmupStartFactor = warmupStartFactor;
    }

    /// <summary>The warm-up's start factor (PyTorch's <c>LinearLR</c> <c>start_factor</c>), or null for <c>(step + 1)/W</c>.</summary>
    public float? WarmupStartFactor { get; }

    /// <summary>The peak learning rate.</summary>
    public float BaseLearningRate { get; }

    /// <summary>The final learning rate.</summary>
    public float MinLearningRate { get; }

    /// <summary>Steps of the whole schedule.</summary>
    public long TotalSteps { get; }

    /// <summary>Steps of linear warm-up.</summary>
    public long WarmupSteps { get; }

    /// <inheritdoc/>
    public override float At(long step)
    {
        if (step < WarmupSteps)
        {
            return WarmupStartFactor is { } s
                ? (float)(BaseLearningRate * (s + (1 - (double)s) * step / WarmupSteps))
                : (float)((double)BaseLearningRate * (step + 1) / WarmupSteps);
        }

        long t = Math.Min(step - WarmupSteps, TotalSteps - WarmupSteps);
        double cosine = (1 + Math.Cos(Math.PI * t / (TotalSteps - WarmupSteps))) / 2;
        return (float)(MinLearningRate + ((double)BaseLearningRate - MinLearningRate) * cosine);
    }

    /// <inheritdoc/>
    public override string ToString() =>
        Inv($"cosine({BaseLearningRate:G4} → {MinLearningRate:G4}, {TotalSteps} steps{(WarmupSteps > 0 ? Inv($", {WarmupSteps} warm-up{(WarmupStartFactor is { } s ? Inv($" from ×{s:G4}") : "")}") : "")})");
}

/// <summary>How a <see cref="OneCycleSchedule"/> moves between its rates (PyTorch's <c>anneal_strategy</c>).</summary>
public enum AnnealStrategy
{
    /// <summary>Half a cosine: <c>end + (start − end)·(1 + cos(π·pct))/2</c> (PyTorch's <c>'cos'</c>, the default).</summary>
    Cosine,

    /// <summary>A straight line: <c>start + (end − start)·pct</c> (PyTorch's <c>'linear'</c>).</summary>
    Linear,
}

/// <summary>
/// PyTorch's <c>OneCycleLR</c> (Smith and Topin, 2018), stepped once per update: from <c>max/div_factor</c> up to
/// <c>max</c> over the first <c>pct_start·total</c> steps, then down to <c>max/(div_factor·final_div_factor)</c> at step
/// <c>total − 1</c>; with <c>three_phase</c>, back down to <c>max/div_factor</c> symmetrically before the final
/// annihilation. The phase boundaries are PyTorch's: phase ends at <c>pct_start·total − 1</c> (and <c>2·pct_start·total − 2</c>)
/// and <c>total − 1</c>. Momentum is not cycled (PyTorch's <c>cycle_momentum=False</c>): the optimizer keeps its own.
/// Past <c>total − 1</c> steps, where PyTorch raises, the rate stays at the minimum.
/// </summary>
public sealed class OneCycleSchedule : LearningRateSchedule
{
    private readonly (double EndStep, double Start, double End)[] _phases;

    /// <summary>A one-cycle schedule of <paramref name="totalSteps"/> updates peaking at <paramref name="maxLearningRate"/>.</summary>
    /// <param name="maxLearningRate">The peak rate (PyTorch's <c>max_lr</c>, &gt; 0).</param>
    /// <param name="totalSteps">Updates in the cycle (PyTorch's <c>total_steps</c>, ≥ 2).</param>
    /// <param name="pctStart">Fraction of the cycle spent rising (PyTorch's <c>pct_start</c>, default 0.3).</param>
    /// <param name="divFactor">The initial rate is max/divFactor (default 25).</param>
    /// <param name="finalDivFactor">The final rate is initial/finalDivFactor (default 1e4).</param>
    /// <param name="threePhase">PyTorch's <c>three_phase</c>: fall back to the initial rate before the final annealing.</param>
    /// <param name="anneal">Cosine (default) or linear interpolation within a phase.</param>
    /// <exception cref="ArgumentException">An argument is out of PyTorch's range; the message says which and what it must be.</exception>
    public OneCycleSchedule(float maxLearningRate, long totalSteps, double pctStart = 0.3, double divFactor = 25, double finalDivFactor = 1e4,
        bool threePhase = false, AnnealStrategy anneal = AnnealStrategy.Cosine)
    {
        if (!(maxLearningRate > 0)) throw new ArgumentException(Inv($"maxLearningRate must be > 0, got {maxLearningRate}."), nameof(maxLearningRate));
        if (totalSteps < 2) throw new ArgumentException(Inv($"totalSteps must be at least 2, got {totalSteps}."), nameof(totalSteps));
        if (!(pctStart > 0 && pctStart < 1)) throw new ArgumentException(Inv($"pctStart must be in (0, 1), got {pctStart}."), nameof(pctStart));
        if (!(divFactor > 0)) throw new ArgumentException(Inv($"divFactor must be > 0, got {divFactor}."), nameof(divFactor));
        if (!(finalDivFactor > 0)) throw new ArgumentException(Inv($"finalDivFactor must be > 0, got {finalDivFactor}."), nameof(finalDivFactor));
        if (!Enum.IsDefined(anneal)) throw new ArgumentException(Inv($"anneal must be Cosine or Linear, got {(int)anneal}."), nameof(anneal));
        double rampEnd = pctStart * totalSteps - 1;
        if (rampEnd <= 0 || (threePhase ? 2 * rampEnd : rampEnd) >= totalSteps - 1)
        {
            throw new ArgumentException(
                Inv($"pctStart {pctStart} leaves no room for a phase in {totalSteps} steps: pctStart·totalSteps must be above 1 and its phases must end before step {totalSteps - 1}."),
                nameof(pctStart));
        }

        MaxLearningRate = maxLearningRate;
        TotalSteps = totalSteps;
        PctStart = pctStart;
        DivFactor = divFactor;
        FinalDivFactor = finalDivFactor;
        ThreePhase = threePhase;
        Anneal = anneal;
        double initial = maxLearningRate / divFactor, min = initial / finalDivFactor;
        _phases = threePhase
            ? [(rampEnd, initial, maxLearningRate), (2 * pctStart * totalSteps - 2, maxLearningRate, initial), (totalSteps - 1, initial, min)]
            : [(rampEnd, initial, maxLearningRate), (totalSteps - 1, maxLearningRate, min)];
    }

    /// <summary>The peak rate.</summary>
    public float MaxLearningRate { get; }

    /// <summary>Updates in the cycle.</summary>
    public long TotalSteps { get; }

    /// <summary>Fraction of the cycle spent rising.</summary>
    public double PctStart { get; }

    /// <summary>The initial rate is max/DivFactor.</summary>
    public double DivFactor { get; }

    /// <summary>The final rate is initial/FinalDivFactor.</summary>
    public double FinalDivFactor { get; }

    /// <summary>Whether the cycle has three phases.</summary>
    public bool ThreePhase { get; }

    /// <summary>The interpolation within a phase.</summary>
    public AnnealStrategy Anneal { get; }

    /// <summary>The first rate, max/DivFactor.</summary>
    public float InitialLearningRate => (float)(MaxLearningRate / DivFactor);

    /// <summary>The last rate, initial/FinalDivFactor.</summary>
    public float MinLearningRate => (float)(MaxLearningRate / DivFactor / FinalDivFactor);

    /// <inheritdoc/>
    public override float At(long step)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(step);
        double t = Math.Min(step, TotalSteps - 1), startStep = 0;
        for (int i = 0; i < _phases.Length; i++)
        {
            var (endStep, start, end) = _phases[i];
            if (t <= endStep || i == _phases.Length - 1)
            {
                double pct = (t - startStep) / (endStep - startStep);
                return (float)(Anneal == AnnealStrategy.Cosine ? end + (start - end) / 2 * (Math.Cos(Math.PI * pct) + 1) : (end - start) * pct + start);
            }

            startStep = endStep;
        }

        throw new UnreachableException();
    }

    /// <inheritdoc/>
    public override string ToString() =>
        Inv($"one-cycle({InitialLearningRate:G4} → {MaxLearningRate:G4} → {MinLearningRate:G4}, {TotalSteps} steps, {PctStart:G3} rising{(ThreePhase ? ", three-phase" : "")}{(Anneal == AnnealStrategy.Linear ? ", linear" : "")})");
}
