using DiffPlex.DiffBuilder;
using DiffPlex.DiffBuilder.Model;

namespace Dsl.Generator.Tests;

/// <summary>
/// Snapshot testing in the spirit of Verify (whose core package is not available here): the text is
/// compared with <c>Snapshots/NAME.verified.cs</c>, committed next to the tests. On a mismatch it is
/// written to <c>NAME.received.cs</c> and the test fails with a line diff; review it, then accept all
/// received files by running the tests with <c>DSL_ACCEPT_SNAPSHOTS=1</c>.
/// </summary>
internal static class Snapshot
{
    public const string AcceptVariable = "DSL_ACCEPT_SNAPSHOTS";

    public static string Directory => Path.Combine(Repository.Root, "tests", "Dsl.Generator.Tests", "Snapshots");

    public static void Verify(string name, string actual)
    {
        string verified = Path.Combine(Directory, name + ".verified.cs");
        string received = Path.Combine(Directory, name + ".received.cs");
        string? expected = File.Exists(verified) ? File.ReadAllText(verified) : null;
        if (expected == actual)
        {
            File.Delete(received);
            return;
        }

        if (Environment.GetEnvironmentVariable(AcceptVariable) == "1")
        {
            File.WriteAllText(verified, actual);
            File.Delete(received);
            return;
        }

        File.WriteAllText(received, actual);
        string diff = expected is null ? "(no verified snapshot yet)" : Diff(expected, actual);
        Assert.Fail($"snapshot '{name}' differs from {verified}.\nReceived: {received}\nAccept with {AcceptVariable}=1 after reviewing:\n{diff}");
    }

    private static string Diff(string expected, string actual)
    {
        var model = InlineDiffBuilder.Diff(expected, actual);
        var lines = model.Lines
            .Select((line, index) => (line, index))
            .Where(x => x.line.Type is ChangeType.Inserted or ChangeType.Deleted)
            .Take(40)
            .Select(x => (x.line.Type == ChangeType.Inserted ? "+ " : "- ") + x.line.Text);
        return string.Join("\n", lines);
    }
}

/// <summary>The repository checkout the tests run from (found by walking up to Dsl.sln or .git).</summary>
internal static class Repository
{
    public static string Root { get; } = Find();

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Dsl.sln")) || System.IO.Directory.Exists(Path.Combine(dir.FullName, ".git")))
                return dir.FullName;
        }

        throw new InvalidOperationException("cannot find the repository root above " + AppContext.BaseDirectory);
    }
}
