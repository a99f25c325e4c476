// What a user of Dsl.Runtime sees: no console dependency (training and its progress bars are Dsl.Training's).
namespace Dsl.Runtime.Tests;

public sealed class PublicSurfaceTests
{
    [Fact]
    public void The_runtime_does_not_reference_Spectre_Console()
    {
        var references = typeof(CompiledModel).Assembly.GetReferencedAssemblies().Select(a => a.Name).ToList();
        Assert.DoesNotContain(references, name => name!.StartsWith("Spectre.", StringComparison.Ordinal));
        Assert.Contains("System.Numerics.Tensors", references); // the list is the real one
    }
}
