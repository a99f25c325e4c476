// What a user of Dsl.Runtime sees: CompiledModel, safetensors and a few storage types in Dsl.Runtime; the kernels
// generated code calls are public but hidden from IntelliSense in Dsl.Runtime.Kernels; no console dependency
// (training and its progress bars are Dsl.Training's).
using System.ComponentModel;
using System.Reflection;

namespace Dsl.Runtime.Tests;

public sealed class PublicSurfaceTests
{
    private static readonly Assembly Runtime = typeof(CompiledModel).Assembly;

    [Fact]
    public void The_runtime_does_not_reference_Spectre_Console()
    {
        var references = Runtime.GetReferencedAssemblies().Select(a => a.Name).ToList();
        Assert.DoesNotContain(references, name => name!.StartsWith("Spectre.", StringComparison.Ordinal));
        Assert.Contains("System.Numerics.Tensors", references); // the list is the real one
    }

    [Fact]
    public void Every_public_kernel_type_is_hidden_from_IntelliSense()
    {
        var kernels = Runtime.GetExportedTypes().Where(t => t.Namespace == "Dsl.Runtime.Kernels").ToList();
        Assert.Contains(typeof(ConvGemm), kernels);
        Assert.Contains(typeof(WorkerPool), kernels);
        var visible = kernels
            .Where(t => t.GetCustomAttribute<EditorBrowsableAttribute>()?.State != EditorBrowsableState.Never)
            .Select(t => t.FullName).ToList();
        Assert.Empty(visible);
    }

    [Fact]
    public void The_user_facing_types_stay_in_Dsl_Runtime()
    {
        var surface = Runtime.GetExportedTypes().Where(t => t.Namespace == "Dsl.Runtime").Select(t => t.Name).Order(StringComparer.Ordinal);
        Assert.Equal(
            ["AlignedFloats", "AtomicFile", "CompiledModel", "IGradientHook", "LayerSummary", "ModelSummaryFormat", "SafetensorsFile", "SafetensorsTensor", "SafetensorsWriter", "TensorDType", "TensorInfo", "TensorStorage"],
            surface);
        Assert.DoesNotContain(Runtime.GetExportedTypes(), t => t.Namespace is not ("Dsl.Runtime" or "Dsl.Runtime.Kernels"));
    }
}
