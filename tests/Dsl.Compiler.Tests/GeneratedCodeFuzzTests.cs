using System.Diagnostics;
using CsCheck;
using Dsl.Compiler.Emit;
using Dsl.Runtime;
using Xunit.Abstractions;

namespace Dsl.Compiler.Tests;

/// <summary>
/// Every file <c>nnc check</c> accepts builds, and its models run. Random shape-valid files (<see cref="RandomModels"/>)
/// and random edits of valid files go through the whole pipeline; each accepted one is compiled with Roslyn in memory
/// (a batch of files per compilation, which is what makes hundreds of cases cheap) and each model trains one step and
/// infers. <c>DSL_FUZZ_ITERATIONS</c> sets the number of files (default 240 for random models; CI runs the default);
/// <c>DSL_FUZZ_SEED</c> replays a run (CsCheck's seed, printed on failure).
/// </summary>
public sealed class GeneratedCodeFuzzTests
{
    private const int FilesPerCompilation = 60;

    private readonly ITestOutputHelper _output;
    private readonly System.Collections.Concurrent.ConcurrentQueue<string> _rejections = new();

    public GeneratedCodeFuzzTests(ITestOutputHelper output) => _output = output;

    private static int Iterations(int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable("DSL_FUZZ_ITERATIONS"), out int n) && n > 0 ? n : fallback;

    private static string? Seed => Environment.GetEnvironmentVariable("DSL_FUZZ_SEED") is { Length: > 0 } seed ? seed : null;

    [Fact]
    public void Property_every_accepted_random_model_builds_and_runs()
    {
        int files = Iterations(240);
        int accepted = 0, models = 0, rejected = 0, batch = 0;
        var clock = Stopwatch.StartNew();
        Gen.Int.Array[FilesPerCompilation].Sample(seeds =>
        {
            int b = Interlocked.Increment(ref batch);
            var cases = seeds.Select((seed, i) => RandomModels.File(seed, $"Fuzz.B{b}.F{i}")).ToList();
            var (a, m, r) = BuildAndRun(cases, _rejections);
            Interlocked.Add(ref accepted, a);
            Interlocked.Add(ref models, m);
            Interlocked.Add(ref rejected, r);
        }, iter: Math.Max(1, files / FilesPerCompilation), threads: 1, seed: Seed);

        var ids = _rejections.Select(r => System.Text.RegularExpressions.Regex.Match(r, "NN[0-9]{4}").Value).GroupBy(id => id).Select(g => $"{g.Key} ×{g.Count()}");
        _output.WriteLine($"rejected by: {string.Join(", ", ids)}");
        foreach (string reason in _rejections.Take(8)) _output.WriteLine("rejected: " + reason);
        _output.WriteLine($"Roslyn compiling took {s_buildTicks / (double)Stopwatch.Frequency:F1} s of {s_runTicks / (double)Stopwatch.Frequency:F1} s building and running (both properties, so far)");
        _output.WriteLine($"{accepted} files accepted ({models} models built, trained a step and inferred), {rejected} rejected, in {clock.Elapsed.TotalSeconds:F1} s");
        // The generator aims at valid files: if most were rejected, the fuzz would test little.
        Assert.True(accepted >= 3 * rejected, $"{rejected} of {accepted + rejected} random files were rejected; the generator drifted from the language");
    }

    private const string Corpus = """
        namespace Fuzz.Corpus;
        model LeNet(input: [1, 12, 12]) {
            conv(1, 6, 5) as conv1 -> maxpool(2) -> bn2d as bn1 -> flatten -> linear(96, 10) as fc1
        }
        model Mlp(input: [10]) { linear(10, 5, bias: false) -> bn1d(5, momentum: none, eps: 1e-3) -> relu -> dropout(p: 0.1) -> linear(in: 5, out: 1) as fc }
        model Pairs(input: [2, 9, 9]) { conv2d(2, 4, (3, 1), stride: (2, 1), padding: (1, 0)) -> avgpool(kernel: 2, ceil_mode: true) -> global_avgpool -> log_softmax }
        model Dil(input: [2, 7]) { maxpool1d(3, stride: 1, padding: 1, dilation: 2) as p -> conv1d(2, 2, 2, dilation: 3) as p_ -> flatten -> softmax }
        """;

    [Fact]
    public void Property_every_accepted_edit_of_a_valid_file_builds_and_runs()
    {
        // Random edits of characters that matter to the grammar: most edits are rejected, and those accepted
        // (another size, another name, a layer dropped or renamed, a comment) must still build.
        var edit = Gen.Select(Gen.Int[0, 2], Gen.Double[0, 1], Gen.Char["0123456789 ()[],:_abelmnprsx\n/*-"]);
        int accepted = 0, models = 0, batch = 0;
        Gen.Select(edit.Array[1, 3], edits =>
            {
                var text = new System.Text.StringBuilder(Corpus);
                foreach (var (kind, where, c) in edits)
                {
                    int at = (int)(where * text.Length);
                    if (kind == 0) text.Insert(at, c);
                    else if (at < text.Length && kind == 1) text.Remove(at, 1);
                    else if (at < text.Length) text[at] = c;
                }

                return text.ToString();
            })
            .Array[FilesPerCompilation]
            .Sample(texts =>
            {
                int b = Interlocked.Increment(ref batch);
                // Each file in its own namespace, so the batch's classes never meet.
                var cases = texts.Select((t, i) => (t.Replace("Fuzz.Corpus", $"Fuzz.E{b}.F{i}"), (string?)null)).ToList();
                var (a, m, _) = BuildAndRun(cases, null);
                Interlocked.Add(ref accepted, a);
                Interlocked.Add(ref models, m);
            }, iter: Math.Max(1, Iterations(240) / FilesPerCompilation), threads: 1, seed: Seed);

        Assert.False(NnCompiler.Compile(Corpus).HasErrors, string.Join("\n", NnCompiler.Compile(Corpus).Diagnostics));
        _output.WriteLine($"{accepted} edited files accepted, {models} models built and run");
        Assert.True(accepted > 0);
    }

    /// <summary>Generates every file, builds the accepted ones together, runs each model: (accepted files, models, rejected files).</summary>
    private static (int Accepted, int Models, int Rejected) BuildAndRun(IReadOnlyList<(string Text, string? RootNamespace)> files,
        System.Collections.Concurrent.ConcurrentQueue<string>? rejections)
    {
        var sources = new List<(GeneratedSource Source, string Text)>();
        int accepted = 0, rejected = 0;
        foreach (var (text, rootNamespace) in files)
        {
            var generation = CodeGeneration.Generate(text, "fuzz.nn", rootNamespace);
            Assert.DoesNotContain(generation.Diagnostics, d => d.Id == "NN9001");
            if (generation.Diagnostics.Any(d => d.IsError))
            {
                rejected++;
                rejections?.Enqueue(generation.Diagnostics.First(d => d.IsError).Format("fuzz.nn") + "\n" + text);
                continue;
            }

            accepted++;
            sources.AddRange(generation.Sources.Select(s => (s, text)));
        }

        if (sources.Count == 0) return (0, 0, rejected);
        var clock = Stopwatch.StartNew();
        var (errors, assembly) = GeneratedCompilation.Build(sources.Select(s => s.Source));
        Interlocked.Add(ref s_buildTicks, clock.ElapsedTicks);
        if (errors.Count > 0)
        {
            // Name the file: the first error's generated file is <index>.<hint name>.
            string first = errors[0];
            int index = int.Parse(first.Substring(0, first.IndexOf('.')), System.Globalization.CultureInfo.InvariantCulture);
            Assert.Fail($"an accepted file does not build:\n{string.Join("\n", errors.Take(5))}\n--- the file ---\n{sources[index].Text}");
        }

        foreach (var (source, text) in sources)
        {
            var type = assembly!.GetType(source.QualifiedName) ?? throw new InvalidOperationException("no type " + source.QualifiedName);
            try
            {
                GeneratedCompilation.Run(type);
            }
            catch (Exception exception)
            {
                Assert.Fail($"{source.QualifiedName} failed: {exception}\n--- the file ---\n{text}");
            }
        }

        Interlocked.Add(ref s_runTicks, clock.ElapsedTicks);
        return (accepted, sources.Count, rejected);
    }

    private static long s_buildTicks, s_runTicks;
}
