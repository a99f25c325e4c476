namespace Dsl.Models.Tests;

/// <summary>The PyTorch reference bundles and the generated model each was produced from.</summary>
internal static class Golden
{
    public static string Directory => Path.Combine(AppContext.BaseDirectory, "Golden");

    public static IEnumerable<string> CaseNames() =>
        System.IO.Directory.GetFiles(Directory, "*.safetensors").Select(Path.GetFileNameWithoutExtension).OrderBy(n => n, StringComparer.Ordinal)!;

    public static SafetensorsFile Load(string name) => SafetensorsFile.Read(Path.Combine(Directory, name + ".safetensors"));

    /// <summary>The generated class named in the bundle's metadata, built for the bundle's batch.</summary>
    public static CompiledModel CreateModel(SafetensorsFile bundle, int? maxBatch = null, int threads = 0)
    {
        string name = bundle.Metadata["model"];
        var type = typeof(Golden).Assembly.GetType($"Dsl.Models.Tests.{name}")
            ?? throw new InvalidOperationException($"no generated class {name}");
        return (CompiledModel)Activator.CreateInstance(type, maxBatch ?? int.Parse(bundle.Metadata["batch"]), 0, threads)!;
    }

    /// <summary>max |a − b| and the tolerance 1e-4 · max(1, max |b|) of the project's parity contract.</summary>
    public static (double Error, double Tolerance) Compare(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected)
    {
        Assert.Equal(expected.Length, actual.Length);
        double error = 0, scale = 1;
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.False(float.IsNaN(actual[i]), $"NaN at {i}");
            error = Math.Max(error, Math.Abs(actual[i] - (double)expected[i]));
            scale = Math.Max(scale, Math.Abs(expected[i]));
        }

        return (error, 1e-4 * scale);
    }
}
