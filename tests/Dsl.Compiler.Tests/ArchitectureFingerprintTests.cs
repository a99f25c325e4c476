using Dsl.Cli;
using Dsl.Runtime;

namespace Dsl.Compiler.Tests;

/// <summary>
/// Generated classes fold every resolved layer into their architecture fingerprint (issue #16, item 6): a checkpoint of a
/// LeNet does not load into a LeNet with one more activation, though every tensor's name and shape agree; spelling and
/// layout of the .nn file do not change the fingerprint.
/// </summary>
public sealed class ArchitectureFingerprintTests
{
    private const string LeNet = "model LeNet(input: [1, 12, 12]) { conv(1, 4, 5) as conv1 -> maxpool(2) -> flatten -> linear(64, 10) as fc }";
    private const string LeNetWithTanh = "model LeNet(input: [1, 12, 12]) { conv(1, 4, 5) as conv1 -> tanh -> maxpool(2) -> flatten -> linear(64, 10) as fc }";

    [Fact]
    public void A_checkpoint_of_a_model_with_the_same_tensors_but_another_layer_is_refused()
    {
        var lenet = InMemoryModel.Create(LeNet, "lenet.nn", null, maxBatch: 2);
        var tanh = InMemoryModel.Create(LeNetWithTanh, "lenet.nn", null, maxBatch: 2);
        Assert.Equal(lenet.Tensors.Select(t => (t.Name, t.ShapeText)), tanh.Tensors.Select(t => (t.Name, t.ShapeText)));
        Assert.NotEqual(lenet.ArchitectureFingerprint, tanh.ArchitectureFingerprint);

        var file = new MemoryStream();
        lenet.SaveSafetensors(file);
        var before = tanh.Parameters.ToArray();
        file.Position = 0;
        var error = Assert.Throws<InvalidDataException>(() => tanh.LoadSafetensors(file));
        Assert.Contains("allowArchitectureMismatch", error.Message);
        Assert.Equal(before, tanh.Parameters.ToArray());
    }

    [Fact]
    public void Layout_and_defaults_written_out_do_not_change_the_fingerprint()
    {
        const string Spelled = """
            model LeNet(input: [1, 12, 12]) {
                conv(in: 1, out: 4, kernel: 5, stride: 1, padding: 0) as conv1   // the defaults, written out
                -> maxpool(2, stride: 2)
                -> flatten
                -> linear(64, 10, bias: true) as fc
            }
            """;
        var a = InMemoryModel.Create(LeNet, "a.nn", null, maxBatch: 1);
        var b = InMemoryModel.Create(Spelled, "b.nn", null, maxBatch: 1);
        Assert.Equal(a.ArchitectureFingerprint, b.ArchitectureFingerprint);
    }
}
