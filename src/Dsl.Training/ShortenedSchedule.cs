// A schedule whose remainder can be squeezed into fewer steps, or stretched over more: for a wall-clock budget that
// holds fewer (or more) epochs than planned.
using System.Globalization;

namespace Dsl.Training;

/// <summary>
/// A schedule of <see cref="OriginalSteps"/> updates whose rest can be shortened while training runs, so that a run
/// planned for N epochs that turns out slower than measured (a shared machine) still finishes its schedule (the
/// annealing to the final rate) within its time budget instead of being cut off at a high rate.
/// <see cref="Shorten"/> at step f to T steps maps the steps f … T − 1 linearly onto the steps the schedule had left,
/// so the rate goes on from where it is, through every remaining phase, and reaches the schedule's last rate at step
/// T − 1. Steps before f keep their rates. Each call compresses what is left again. <see cref="Lengthen"/> is the same
/// map onto more steps, for a run whose machine turns out faster than the plan measured (a plan made while another
/// tenant held the cores): the rest of the schedule stretches instead of the run ending early with budget left.
/// </summary>
public sealed class ShortenedSchedule : LearningRateSchedule
{
    private readonly List<Cut> _cuts = [];

    /// <summary>A schedule of <paramref name="originalSteps"/> updates, not yet shortened (its rates are <paramref name="inner"/>'s).</summary>
    /// <param name="inner">The schedule as planned.</param>
    /// <param name="originalSteps">The updates it was planned for (its last rate is at <c>originalSteps − 1</c>), ≥ 2.</param>
    /// <exception cref="ArgumentException"><paramref name="originalSteps"/> is below 2.</exception>
    public ShortenedSchedule(LearningRateSchedule inner, long originalSteps)
    {
        ArgumentNullException.ThrowIfNull(inner);
        if (originalSteps < 2) throw new ArgumentException(Inv($"originalSteps must be at least 2, got {originalSteps}."), nameof(originalSteps));
        Inner = inner;
        OriginalSteps = originalSteps;
        TotalSteps = originalSteps;
    }

    /// <summary>The schedule as planned.</summary>
    public LearningRateSchedule Inner { get; }

    /// <summary>The updates the schedule was planned for.</summary>
    public long OriginalSteps { get; }

    /// <summary>The updates it now spans (its last rate at <c>TotalSteps − 1</c>).</summary>
    public long TotalSteps { get; private set; }

    /// <summary>Each cut so far (shortening or lengthening): from which step, to how many steps in all.</summary>
    public IReadOnlyList<(long FromStep, long TotalSteps)> Cuts => _cuts.Select(c => (c.From, c.Total)).ToList();

    /// <summary>
    /// Squeezes the rest of the schedule, from <paramref name="fromStep"/> on, into <paramref name="totalSteps"/> steps in all:
    /// the rate at <paramref name="fromStep"/> is unchanged and the last rate comes at <c>totalSteps − 1</c>.
    /// </summary>
    /// <param name="fromStep">The first step whose rate changes (the updates taken so far); not before an earlier cut.</param>
    /// <param name="totalSteps">The new length, above <paramref name="fromStep"/> and at most <see cref="TotalSteps"/>.</param>
    /// <exception cref="ArgumentException">The cut lies before an earlier one, leaves no step, or lengthens the schedule; the message says which.</exception>
    public void Shorten(long fromStep, long totalSteps)
    {
        CheckFrom(fromStep);
        if (totalSteps <= fromStep + 1 || totalSteps > TotalSteps)
            throw new ArgumentException(Inv($"totalSteps must be in [{fromStep + 2}, {TotalSteps}] (more than one step after step {fromStep}, no longer than now), got {totalSteps}."), nameof(totalSteps));
        AddCut(fromStep, totalSteps);
    }

    /// <summary>
    /// Stretches the rest of the schedule, from <paramref name="fromStep"/> on, over <paramref name="totalSteps"/> steps in all:
    /// the rate at <paramref name="fromStep"/> is unchanged and the last rate comes at <c>totalSteps − 1</c>. The opposite of
    /// <see cref="Shorten"/>, recorded in <see cref="Cuts"/> the same way.
    /// </summary>
    /// <param name="fromStep">The first step whose rate changes (the updates taken so far); not before an earlier cut, before the last step.</param>
    /// <param name="totalSteps">The new length, more than <see cref="TotalSteps"/>.</param>
    /// <exception cref="ArgumentException">The cut lies before an earlier one or at the end, or does not lengthen the schedule; the message says which.</exception>
    public void Lengthen(long fromStep, long totalSteps)
    {
        CheckFrom(fromStep);
        if (totalSteps <= TotalSteps)
            throw new ArgumentException(Inv($"totalSteps must be more than the {TotalSteps} steps the schedule spans now, got {totalSteps}."), nameof(totalSteps));
        AddCut(fromStep, totalSteps);
    }

    /// <summary>Replays a cut recorded in <see cref="Cuts"/> (a resumed run): <see cref="Shorten"/> or <see cref="Lengthen"/>, whichever it was.</summary>
    /// <param name="fromStep">The cut's first step.</param>
    /// <param name="totalSteps">The cut's length.</param>
    /// <exception cref="ArgumentException">The cut cannot follow the ones before it; the message says why.</exception>
    public void Replay(long fromStep, long totalSteps)
    {
        if (totalSteps > TotalSteps) Lengthen(fromStep, totalSteps);
        else Shorten(fromStep, totalSteps);
    }

    /// <inheritdoc/>
    public override float At(long step)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(step);
        return Inner.At((long)Math.Round(InnerStep(step), MidpointRounding.AwayFromZero));
    }

    /// <inheritdoc/>
    public override string ToString() => _cuts.Count == 0
        ? Inner.ToString()
        : Inv($"{Inner}, {(TotalSteps > OriginalSteps ? "lengthened" : "shortened")} to {TotalSteps} steps ({string.Join(", ", _cuts.Select(c => c.From.ToString(CultureInfo.InvariantCulture) + " → " + c.Total.ToString(CultureInfo.InvariantCulture)))})");

    // A cut starts at or after the previous one and before the schedule's last step.
    private void CheckFrom(long fromStep)
    {
        long last = _cuts.Count > 0 ? _cuts[^1].From : 0;
        if (fromStep < last) throw new ArgumentException(Inv($"fromStep {fromStep} lies before the previous cut at step {last}."), nameof(fromStep));
        if (fromStep >= TotalSteps - 1) throw new ArgumentException(Inv($"fromStep {fromStep} is at or past the schedule's last step ({TotalSteps - 1})."), nameof(fromStep));
    }

    private void AddCut(long fromStep, long totalSteps)
    {
        _cuts.Add(new Cut(fromStep, totalSteps, InnerStep(fromStep)));
        TotalSteps = totalSteps;
    }

    // The inner schedule's (fractional) step for an outer step: the identity before the first cut; after a cut at f to T,
    // f ↦ the inner step it had and T − 1 ↦ OriginalSteps − 1, linearly between; past the end, the last step.
    private double InnerStep(long step)
    {
        for (int i = _cuts.Count - 1; i >= 0; i--)
        {
            var c = _cuts[i];
            if (step < c.From) continue;
            if (step >= c.Total - 1) return OriginalSteps - 1;
            return c.InnerFrom + (step - c.From) * (OriginalSteps - 1 - c.InnerFrom) / (c.Total - 1 - c.From);
        }

        return step;
    }

    private readonly record struct Cut(long From, long Total, double InnerFrom);
}
