// Learning-rate schedules as PyTorch defines StepLR, MultiStepLR, CosineAnnealingLR, LinearLR and OneCycleLR.

namespace Dsl.Training.Tests;

public class ScheduleTests
{
    [Fact]
    public void MultiStepDropsAtEachMilestone()
    {
        var s = new MultiStepSchedule(0.05f, [10, 15], 0.1f);
        Assert.Equal(0.05f, s.At(0));
        Assert.Equal(0.05f, s.At(9));
        Assert.Equal(0.005f, s.At(10), 7);
        Assert.Equal(0.005f, s.At(14), 7);
        Assert.Equal(0.0005f, s.At(15), 8);
        Assert.Equal(0.0005f, s.At(1000), 8);
        Assert.Throws<ArgumentException>(() => new MultiStepSchedule(0.1f, [5, 5]));
    }

    [Fact]
    public void StepEveryIsPyTorchsStepLR()
    {
        var s = MultiStepSchedule.Every(1f, 3, 0.5f);
        float[] expected = [1, 1, 1, 0.5f, 0.5f, 0.5f, 0.25f];
        for (int t = 0; t < expected.Length; t++) Assert.Equal(expected[t], s.At(t));
        Assert.Equal(0.2f, LearningRateSchedule.Constant(0.2f).At(12345));
    }

    [Fact]
    public void CosineFollowsHalfACosineToTheMinimum()
    {
        var s = new CosineSchedule(0.1f, 100, minLearningRate: 0.001f);
        Assert.Equal(0.1f, s.At(0), 7);
        Assert.Equal(0.001 + 0.099 * (1 + Math.Cos(Math.PI * 25 / 100)) / 2, s.At(25), 6);
        Assert.Equal((0.1f + 0.001f) / 2, s.At(50), 6);
        Assert.Equal(0.001f, s.At(100), 7);
        Assert.Equal(0.001f, s.At(500), 7);
    }

    [Fact]
    public void CosineWarmupRisesLinearly()
    {
        var s = new CosineSchedule(1f, 110, warmupSteps: 10);
        Assert.Equal(0.1f, s.At(0), 6);
        Assert.Equal(0.5f, s.At(4), 6);
        Assert.Equal(1f, s.At(10), 6);
        Assert.Equal(0.5f, s.At(60), 6);
        Assert.Equal(0f, s.At(110), 6);
    }

    // Expected values: PyTorch's OneCycleLR.get_lr (torch/optim/lr_scheduler.py, its _annealing_cos/_annealing_linear and
    // phase table) evaluated in double precision in Python, step by step.
    [Fact]
    public void OneCycleMatchesPyTorchsOneCycleLR()
    {
        var s = new OneCycleSchedule(0.1f, 100); // pct_start 0.3, div_factor 25, final_div_factor 1e4, cos
        (long Step, double Lr)[] expected =
        [
            (0, 0.0040000000000000036), (10, 0.029516394846410082), (28, 0.09971862194340926), (29, 0.1),
            (30, 0.09994965352845243), (64, 0.0500002), (98, 5.07464715475788e-05), (99, 4e-07),
        ];
        foreach (var (step, lr) in expected) Assert.Equal(lr, s.At(step), lr * 1e-6); // float: 24-bit mantissa
        Assert.Equal(4e-07, s.At(500), 1e-12); // past the cycle (PyTorch raises): the minimum
        Assert.Equal(0.004f, s.InitialLearningRate, 1e-9f);
        Assert.Equal(4e-7f, s.MinLearningRate, 1e-13f);
    }

    [Fact]
    public void OneCycleThreePhaseLinearMatchesPyTorch()
    {
        var s = new OneCycleSchedule(0.4f, 100, pctStart: 0.25, threePhase: true, anneal: AnnealStrategy.Linear);
        (long Step, double Lr)[] expected =
        [
            (0, 0.016), (12, 0.20800000000000002), (24, 0.4), (36, 0.20800000000000002), (48, 0.016000000000000014),
            (70, 0.009098729411764706), (99, 1.6000000000009063e-06),
        ];
        foreach (var (step, lr) in expected) Assert.Equal(lr, s.At(step), lr * 1e-6);
    }

    [Fact]
    public void OneCycleRejectsWhatPyTorchCannotSchedule()
    {
        Assert.Equal("maxLearningRate must be > 0, got 0. (Parameter 'maxLearningRate')",
            Assert.Throws<ArgumentException>(() => new OneCycleSchedule(0, 100)).Message);
        Assert.Equal("totalSteps must be at least 2, got 1. (Parameter 'totalSteps')",
            Assert.Throws<ArgumentException>(() => new OneCycleSchedule(0.1f, 1)).Message);
        Assert.Equal("pctStart must be in (0, 1), got 1. (Parameter 'pctStart')",
            Assert.Throws<ArgumentException>(() => new OneCycleSchedule(0.1f, 100, pctStart: 1)).Message);
        Assert.Equal("divFactor must be > 0, got -1. (Parameter 'divFactor')",
            Assert.Throws<ArgumentException>(() => new OneCycleSchedule(0.1f, 100, divFactor: -1)).Message);
        Assert.Equal("pctStart 0.01 leaves no room for a phase in 100 steps: pctStart·totalSteps must be above 1 and its phases must end before step 99. (Parameter 'pctStart')",
            Assert.Throws<ArgumentException>(() => new OneCycleSchedule(0.1f, 100, pctStart: 0.01)).Message);
        Assert.Equal("pctStart 0.6 leaves no room for a phase in 100 steps: pctStart·totalSteps must be above 1 and its phases must end before step 99. (Parameter 'pctStart')",
            Assert.Throws<ArgumentException>(() => new OneCycleSchedule(0.1f, 100, pctStart: 0.6, threePhase: true)).Message);
        Assert.Equal("one-cycle(0.004 → 0.1 → 4E-07, 100 steps, 0.3 rising)", new OneCycleSchedule(0.1f, 100).ToString());
    }

    // SequentialLR([LinearLR(start_factor=1/3, total_iters=5), CosineAnnealingLR(T_max=15, eta_min=0.001)], milestones=[5]),
    // base 0.3, one scheduler step per update; expected values from the two schedulers' documented closed forms.
    [Fact]
    public void WarmupWithAStartFactorIsPyTorchsLinearLRThenCosine()
    {
        var s = new CosineSchedule(0.3f, 20, minLearningRate: 0.001f, warmupSteps: 5, warmupStartFactor: 1f / 3);
        (long Step, double Lr)[] expected =
        [
            (0, 0.09999999999999999), (1, 0.13999999999999999), (4, 0.26), (5, 0.3), (6, 0.2967330663097039),
            (12, 0.1661270052585142), (19, 0.00426693369029605), (20, 0.001),
        ];
        foreach (var (step, lr) in expected) Assert.Equal(lr, s.At(step), lr * 1e-6);
        Assert.Equal("cosine(0.3 → 0.001, 20 steps, 5 warm-up from ×0.3333)", s.ToString());
        Assert.Equal("warmupStartFactor must be in (0, 1] (PyTorch's LinearLR start_factor), got 0. (Parameter 'warmupStartFactor')",
            Assert.Throws<ArgumentException>(() => new CosineSchedule(0.3f, 20, warmupSteps: 5, warmupStartFactor: 0)).Message);
    }

    // A run planned for 101 steps that turns out slower: the rest of its one-cycle is squeezed into fewer steps, the rates
    // before the cut unchanged, the one at the cut unchanged, the last rate reached at the new last step.
    [Fact]
    public void ShortenedScheduleSqueezesTheRestIntoFewerSteps()
    {
        var inner = new OneCycleSchedule(0.1f, 101, pctStart: 0.25);
        var s = new ShortenedSchedule(inner, 101);
        for (long t = 0; t <= 120; t++) Assert.Equal(inner.At(t), s.At(t));
        Assert.Equal(inner.ToString(), s.ToString());

        s.Shorten(40, 71); // steps 40 … 70 ↦ inner steps 40 … 100, two inner steps per step
        Assert.Equal(71, s.TotalSteps);
        for (long t = 0; t <= 40; t++) Assert.Equal(inner.At(t), s.At(t));
        Assert.Equal(inner.At(70), s.At(55));
        Assert.Equal(inner.At(42), s.At(41));
        Assert.Equal(inner.MinLearningRate, s.At(70));
        Assert.Equal(inner.MinLearningRate, s.At(500));
        for (long t = 40; t < 70; t++) Assert.True(s.At(t + 1) <= s.At(t), $"step {t}: the annealing keeps falling");

        s.Shorten(50, 61); // the second cut starts where the first put step 50 (inner step 60): 60 + 4·(t − 50)
        for (long t = 0; t <= 50; t++) Assert.Equal(t <= 40 ? inner.At(t) : inner.At(40 + 2 * (t - 40)), s.At(t));
        Assert.Equal(inner.At(80), s.At(55));
        Assert.Equal(inner.MinLearningRate, s.At(60));
        Assert.Equal(new[] { (40L, 71L), (50L, 61L) }, s.Cuts);
        Assert.Equal("one-cycle(0.004 → 0.1 → 4E-07, 101 steps, 0.25 rising), shortened to 61 steps (40 → 71, 50 → 61)", s.ToString());
    }

    // A run planned while the machine was slow that turns out faster: the rest of its one-cycle stretches over more steps,
    // the rates before the cut unchanged, the one at the cut unchanged, the last rate reached at the new last step; a
    // later slowdown squeezes it again, and a resumed run replays both cuts to the same rates.
    [Fact]
    public void ShortenedScheduleStretchesTheRestOverMoreSteps()
    {
        var inner = new OneCycleSchedule(0.1f, 101, pctStart: 0.25);
        var s = new ShortenedSchedule(inner, 101);
        s.Lengthen(40, 161); // steps 40 … 160 ↦ inner steps 40 … 100, half an inner step per step
        Assert.Equal(161, s.TotalSteps);
        for (long t = 0; t <= 40; t++) Assert.Equal(inner.At(t), s.At(t));
        Assert.Equal(inner.At(41), s.At(42));
        Assert.Equal(inner.At(70), s.At(100));
        Assert.Equal(inner.MinLearningRate, s.At(160));
        Assert.Equal(inner.MinLearningRate, s.At(500));
        for (long t = 40; t < 160; t++) Assert.True(s.At(t + 1) <= s.At(t), $"step {t}: the annealing keeps falling");
        Assert.Equal("one-cycle(0.004 → 0.1 → 4E-07, 101 steps, 0.25 rising), lengthened to 161 steps (40 → 161)", s.ToString());

        s.Shorten(100, 131); // step 100 is inner step 70: 70 + (t − 100) after it
        Assert.Equal(inner.At(70), s.At(100));
        Assert.Equal(inner.At(85), s.At(115));
        Assert.Equal(inner.MinLearningRate, s.At(130));
        Assert.Equal(new[] { (40L, 161L), (100L, 131L) }, s.Cuts);

        var replayed = new ShortenedSchedule(inner, 101);
        foreach (var (from, total) in s.Cuts) replayed.Replay(from, total);
        for (long t = 0; t <= 140; t++) Assert.Equal(s.At(t), replayed.At(t));

        Assert.Equal("totalSteps must be more than the 131 steps the schedule spans now, got 131. (Parameter 'totalSteps')",
            Assert.Throws<ArgumentException>(() => s.Lengthen(110, 131)).Message);
        Assert.Equal("fromStep 90 lies before the previous cut at step 100. (Parameter 'fromStep')",
            Assert.Throws<ArgumentException>(() => s.Lengthen(90, 200)).Message);
        Assert.Equal("fromStep 130 is at or past the schedule's last step (130). (Parameter 'fromStep')",
            Assert.Throws<ArgumentException>(() => s.Lengthen(130, 200)).Message);
    }

    [Fact]
    public void ShortenedScheduleRefusesCutsThatCannotBe()
    {
        var s = new ShortenedSchedule(new CosineSchedule(0.1f, 100), 100);
        Assert.Equal("originalSteps must be at least 2, got 1. (Parameter 'originalSteps')",
            Assert.Throws<ArgumentException>(() => new ShortenedSchedule(new CosineSchedule(0.1f, 100), 1)).Message);
        Assert.Equal("totalSteps must be in [32, 100] (more than one step after step 30, no longer than now), got 120. (Parameter 'totalSteps')",
            Assert.Throws<ArgumentException>(() => s.Shorten(30, 120)).Message);
        Assert.Equal("totalSteps must be in [32, 100] (more than one step after step 30, no longer than now), got 31. (Parameter 'totalSteps')",
            Assert.Throws<ArgumentException>(() => s.Shorten(30, 31)).Message);
        Assert.Equal("fromStep 99 is at or past the schedule's last step (99). (Parameter 'fromStep')",
            Assert.Throws<ArgumentException>(() => s.Shorten(99, 100)).Message);
        s.Shorten(30, 80);
        Assert.Equal("fromStep 20 lies before the previous cut at step 30. (Parameter 'fromStep')",
            Assert.Throws<ArgumentException>(() => s.Shorten(20, 60)).Message);
        Assert.Equal(80, s.TotalSteps);
    }
}
