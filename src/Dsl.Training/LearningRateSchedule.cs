// Learning-rate schedules as pure functions of the step count, so a checkpoint only needs the step to resume one.
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
/// after T steps the rate stays at the minimum.
/// </summary>
public sealed class CosineSchedule : LearningRateSchedule
{
    /// <summary>Anneals from <paramref name="baseLearningRate"/> to <paramref name="minLearningRate"/> over <paramref name="totalSteps"/>.</summary>
    /// <param name="baseLearningRate">The initial (peak) learning rate.</param>
    /// <param name="totalSteps">Steps of the whole schedule, warm-up included (≥ 1).</param>
    /// <param name="minLearningRate">The final learning rate (PyTorch's <c>eta_min</c>).</param>
    /// <param name="warmupSteps">Steps of linear warm-up from base/warmup to base (0 for none).</param>
    public CosineSchedule(float baseLearningRate, long totalSteps, float minLearningRate = 0, long warmupSteps = 0)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(totalSteps, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(warmupSteps);
        if (warmupSteps >= totalSteps) throw new ArgumentOutOfRangeException(nameof(warmupSteps), warmupSteps, "warm-up must be shorter than the schedule.");
        BaseLearningRate = baseLearningRate;
        TotalSteps = totalSteps;
        MinLearningRate = minLearningRate;
        WarmupSteps = warmupSteps;
    }

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
        if (step < WarmupSteps) return (float)((double)BaseLearningRate * (step + 1) / WarmupSteps);
        long t = Math.Min(step - WarmupSteps, TotalSteps - WarmupSteps);
        double cosine = (1 + Math.Cos(Math.PI * t / (TotalSteps - WarmupSteps))) / 2;
        return (float)(MinLearningRate + ((double)BaseLearningRate - MinLearningRate) * cosine);
    }

    /// <inheritdoc/>
    public override string ToString() =>
        Inv($"cosine({BaseLearningRate:G4} → {MinLearningRate:G4}, {TotalSteps} steps{(WarmupSteps > 0 ? $", {WarmupSteps} warm-up" : "")})");
}
