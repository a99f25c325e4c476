namespace Dsl.Models.Tests;

/// <summary>
/// Layer, group and instance norm in generated models: a sample's output does not depend on its batch (training and
/// inference alike), and instance norm's running statistics follow PyTorch's rules and serve inference.
/// </summary>
public sealed class NormalizationFamilyTests
{
    private static float[] Ramp(int n, float f = 0.7f) => Enumerable.Range(0, n).Select(i => MathF.Sin(f * i) + 0.1f * i % 3).ToArray();

    [Fact]
    public void Group_and_layer_norm_give_each_sample_the_output_it_gets_alone()
    {
        const int Batch = 4;
        var model = new GcLayerGroup(maxBatch: Batch, seed: 5);
        var parameters = model.Parameters;
        for (int i = 0; i < parameters.Length; i++) parameters[i] += 0.3f * MathF.Sin(1.7f * i);
        int inLength = GcLayerGroup.InputLength, outLength = GcLayerGroup.OutputLength;
        var input = Ramp(Batch * inLength);
        var batched = new float[Batch * outLength];
        model.Forward(input, batched, Batch);
        var inferred = new float[Batch * outLength];
        model.Infer(input, inferred, Batch);
        var alone = new float[outLength];
        for (int s = 0; s < Batch; s++)
        {
            model.Forward(input.AsSpan(s * inLength, inLength), alone, 1);
            Assert.Equal(batched.AsSpan(s * outLength, outLength).ToArray(), alone);
            model.Infer(input.AsSpan(s * inLength, inLength), alone, 1);
            Assert.Equal(inferred.AsSpan(s * outLength, outLength).ToArray(), alone);
        }

        Assert.Equal(batched, inferred); // no running statistics: inference is training's forward
    }

    [Fact]
    public void Tracked_instance_norm_updates_running_statistics_and_infers_with_them()
    {
        const int Batch = 2, C = 3, L = 6;
        var model = new GcInstance(maxBatch: Batch, seed: 1);
        var parameters = model.Parameters; // off γ = 1, β = 0, which would make the pooled output 0
        for (int i = 0; i < parameters.Length; i++) parameters[i] += 0.3f * MathF.Sin(1.7f * i);
        var input = Ramp(Batch * C * L, 1.3f);
        model.Forward(input, new float[Batch * GcInstance.OutputLength], Batch);

        var mean = model.Tensor("inorm.running_mean").ToArray();
        var variance = model.Tensor("inorm.running_var").ToArray();
        for (int c = 0; c < C; c++)
        {
            double m = 0, v = 0;
            for (int s = 0; s < Batch; s++)
            {
                var plane = input.Skip((s * C + c) * L).Take(L).Select(x => (double)x).ToArray();
                double pm = plane.Average();
                m += pm / Batch;
                v += plane.Sum(x => (x - pm) * (x - pm)) / (L - 1) / Batch;
            }

            Assert.Equal(0.1 * m, mean[c], 1e-6);
            Assert.Equal(0.9 + 0.1 * v, variance[c], 1e-5);
        }

        Assert.Equal(0, model.Counter("inorm.num_batches_tracked")); // PyTorch's InstanceNorm never counts

        // Sample 1 is 2·(sample 0) + 3: instance statistics make them alike, running statistics do not.
        for (int i = 0; i < C * L; i++) input[C * L + i] = 2 * input[i] + 3;
        var trained = new float[Batch * GcInstance.OutputLength];
        model.Forward(input, trained, Batch);
        for (int i = 0; i < GcInstance.OutputLength; i++) Assert.Equal(trained[i], trained[GcInstance.OutputLength + i], 4);
        var inferred = new float[trained.Length];
        model.Infer(input, inferred, Batch);
        double gap = Enumerable.Range(0, GcInstance.OutputLength).Max(i => Math.Abs(inferred[i] - inferred[GcInstance.OutputLength + i]));
        Assert.True(gap > 1e-2, $"inference should use the running statistics, which tell the samples apart (gap {gap})");
    }
}
