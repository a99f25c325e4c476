// Learning-rate schedules as PyTorch defines StepLR, MultiStepLR and CosineAnnealingLR.

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
}
