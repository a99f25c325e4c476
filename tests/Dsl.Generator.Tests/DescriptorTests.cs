using System.Reflection;
using System.Text.RegularExpressions;
using Microsoft.CodeAnalysis;
using Table = Dsl.Compiler.Diagnostics.DiagnosticDescriptors;

namespace Dsl.Generator.Tests;

/// <summary>
/// The generator's static descriptors are the compiler's table as Roslyn objects (a field per entry, same name, id,
/// title and severity), and each help link finds its row in docs/language.md.
/// </summary>
public sealed class DescriptorTests
{
    private static IEnumerable<(string Name, T Value)> Fields<T>(Type type) =>
        type.GetFields(BindingFlags.Public | BindingFlags.Static).Where(f => f.FieldType == typeof(T)).Select(f => (f.Name, (T)f.GetValue(null)!));

    [Fact]
    public void Every_entry_of_the_compilers_table_has_its_field_and_nothing_else_does()
    {
        var table = Fields<Dsl.Compiler.Diagnostics.DiagnosticDescriptor>(typeof(Table)).OrderBy(f => f.Value.Id, StringComparer.Ordinal).ToList();
        var ours = Fields<DiagnosticDescriptor>(typeof(NnDiagnosticDescriptors)).OrderBy(f => f.Value.Id, StringComparer.Ordinal).ToList();
        Assert.Equal(table.Select(t => t.Name), ours.Select(o => o.Name));
        Assert.Equal(Table.All.Select(d => d.Id), NnDiagnosticDescriptors.All.Select(d => d.Id));
        foreach (var ((_, entry), (_, descriptor)) in table.Zip(ours))
        {
            Assert.Equal(entry.Id, descriptor.Id);
            Assert.Equal(entry.Title, descriptor.Title.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Assert.Equal(entry.Severity == Dsl.Compiler.Diagnostics.Severity.Error ? DiagnosticSeverity.Error : DiagnosticSeverity.Warning, descriptor.DefaultSeverity);
            Assert.Equal("{0}", descriptor.MessageFormat.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Assert.True(descriptor.IsEnabledByDefault);
            Assert.Same(descriptor, NnDiagnosticDescriptors.For(entry.Id));
        }
    }

    [Fact]
    public void Categories_follow_the_id_ranges()
    {
        Assert.Equal("Dsl.Syntax", NnDiagnosticDescriptors.SyntaxError.Category);
        Assert.Equal("Dsl.Semantics", NnDiagnosticDescriptors.FeatureMismatch.Category);
        Assert.Equal("Dsl.Usage", NnDiagnosticDescriptors.RedundantBias.Category);
        Assert.Equal("Dsl.Internal", NnDiagnosticDescriptors.InternalError.Category);
        Assert.Same(NnDiagnosticDescriptors.InternalError, NnDiagnosticDescriptors.For("NN0000")); // an id we do not know is our bug
    }

    [Fact]
    public void Every_help_link_finds_its_row_in_the_language_reference_and_every_row_has_a_descriptor()
    {
        string docs = File.ReadAllText(Path.Combine(Repository.Root, "docs", "language.md"));
        var rows = Regex.Matches(docs, @"^\| <a id=""(nn\d{4})""></a>(NN\d{4}) \|", RegexOptions.Multiline)
            .Select(m => (Anchor: m.Groups[1].Value, Id: m.Groups[2].Value)).ToList();
        Assert.All(rows, r => Assert.Equal(r.Id.ToLowerInvariant(), r.Anchor));
        Assert.Equal(NnDiagnosticDescriptors.All.Select(d => d.Id).Order(StringComparer.Ordinal), rows.Select(r => r.Id).Order(StringComparer.Ordinal));
        foreach (var descriptor in NnDiagnosticDescriptors.All)
        {
            Assert.Equal(NnDiagnosticDescriptors.LanguageReference + "#" + descriptor.Id.ToLowerInvariant(), descriptor.HelpLinkUri);
            Assert.True(Uri.TryCreate(descriptor.HelpLinkUri, UriKind.Absolute, out _), descriptor.HelpLinkUri);
        }

        Assert.EndsWith("/docs/language.md", NnDiagnosticDescriptors.LanguageReference, StringComparison.Ordinal);
    }

    [Fact]
    public void Reported_diagnostics_carry_the_static_descriptor()
    {
        var (run, _) = GeneratorHarness.Run("App", new AdditionalText[]
        {
            new NnText("/src/net.nn", "model Head(input: [4, 5, 6]) { flatten -> linear(100, 10) }\nmodel Mlp(input: [16]) { linear(16, 8) -> bn1d -> relu }"),
            new NnText("/src/a.nn", "model Dup(input: [2]) { relu }"),
            new NnText("/src/b.nn", "model Dup(input: [2]) { relu }"),
        });
        Assert.Equal(new[] { "NN1011", "NN1016", "NN2001" }, run.Diagnostics.Select(d => d.Id).Order(StringComparer.Ordinal));
        Assert.Same(NnDiagnosticDescriptors.FeatureMismatch, run.Diagnostics.Single(d => d.Id == "NN1011").Descriptor);
        Assert.Same(NnDiagnosticDescriptors.DuplicateModel, run.Diagnostics.Single(d => d.Id == "NN1016").Descriptor);
        Assert.Same(NnDiagnosticDescriptors.RedundantBias, run.Diagnostics.Single(d => d.Id == "NN2001").Descriptor);
        Assert.Equal(DiagnosticSeverity.Warning, run.Diagnostics.Single(d => d.Id == "NN2001").Severity);
    }
}
