// Model + optimizer + loader position in one safetensors file, written atomically.
using System.Globalization;

namespace Dsl.Training;

/// <summary>
/// Training checkpoints: one safetensors file with the model's tensors under their <c>state_dict</c> names (so PyTorch
/// and <see cref="CompiledModel.LoadSafetensors(string, bool, bool)"/> with <c>allowExtra</c> read it), the optimizer's state
/// under <c>optimizer.*</c> (<c>optimizer.step</c> as I64) and string metadata: the model's name and architecture
/// fingerprint, the loader's position (<c>loader.*</c>) and whatever the caller adds (epoch, step, schedule…). Files are
/// written with <see cref="AtomicFile"/>, streamed tensor by tensor from the model's and optimizer's own storage: a crash
/// while saving leaves the previous checkpoint intact, and the next save removes the temporary file it left.
/// </summary>
public static class Checkpoint
{
    /// <summary>Writes a checkpoint to <paramref name="path"/> atomically.</summary>
    /// <param name="path">Destination file.</param>
    /// <param name="model">The model (parameters, running statistics, counters).</param>
    /// <param name="optimizer">The optimizer whose state to include, or null.</param>
    /// <param name="loader">The loader position to include, or null.</param>
    /// <param name="metadata">Extra metadata entries, or null.</param>
    /// <exception cref="ArgumentException"><paramref name="metadata"/> sets a key the checkpoint itself writes (see <see cref="IsReservedKey"/>).</exception>
    public static void Save(string path, CompiledModel model, Optimizer? optimizer = null, LoaderState? loader = null, IEnumerable<KeyValuePair<string, string>>? metadata = null)
    {
        var writer = CreateWriter(model, optimizer, loader, metadata);
        Write(model, () => AtomicFile.Write(path, writer.WriteTo));
    }

    // The writer reads the model's tensors in place: no other call may change them while it writes.
    private static void Write(CompiledModel model, Action write)
    {
        model.Enter("Checkpoint.Save");
        try
        {
            write();
        }
        finally
        {
            model.Exit();
        }
    }

    /// <summary>
    /// Whether <paramref name="key"/> is one the checkpoint writes itself, which caller metadata may not set:
    /// <c>format</c>, <c>model</c>, <c>model.*</c> (fingerprint, dropout state), <c>optimizer.*</c> and <c>loader.*</c>.
    /// </summary>
    /// <param name="key">A metadata key.</param>
    /// <returns>True when reserved.</returns>
    public static bool IsReservedKey(string key) =>
        key is "format" or CompiledModel.ModelKey
        || key.StartsWith("model.", StringComparison.Ordinal)
        || key.StartsWith(Optimizer.StatePrefix, StringComparison.Ordinal)
        || key.StartsWith("loader.", StringComparison.Ordinal);

    /// <summary>Writes a checkpoint to <paramref name="stream"/>.</summary>
    /// <param name="stream">Destination.</param>
    /// <param name="model">The model.</param>
    /// <param name="optimizer">The optimizer, or null.</param>
    /// <param name="loader">The loader position, or null.</param>
    /// <param name="metadata">Extra metadata, or null.</param>
    public static void Save(Stream stream, CompiledModel model, Optimizer? optimizer = null, LoaderState? loader = null, IEnumerable<KeyValuePair<string, string>>? metadata = null)
    {
        var writer = CreateWriter(model, optimizer, loader, metadata);
        Write(model, () => writer.WriteTo(stream));
    }

    private static SafetensorsWriter CreateWriter(CompiledModel model, Optimizer? optimizer, LoaderState? loader, IEnumerable<KeyValuePair<string, string>>? metadata)
    {
        ArgumentNullException.ThrowIfNull(model);
        var extra = metadata?.ToList() ?? [];
        var reserved = extra.Where(e => IsReservedKey(e.Key)).Select(e => $"'{e.Key}'").ToList();
        if (reserved.Count > 0)
        {
            throw new ArgumentException(
                $"metadata {string.Join(", ", reserved)} would overwrite what the checkpoint writes itself (format, model, model.*, optimizer.*, loader.*); choose other keys.",
                nameof(metadata));
        }

        var writer = new SafetensorsWriter();
        model.AddState(writer); // tensors as views of the model's storage, format, model and fingerprint
        if (model.DropoutRandomState is { } dropout) writer.AddMetadata(DropoutStateKey, dropout.ToString(CultureInfo.InvariantCulture));
        optimizer?.SaveState(writer);
        if (loader is { } state)
        {
            foreach (var (key, value) in state.ToMetadata()) writer.AddMetadata(key, value);
        }

        foreach (var (key, value) in extra) writer.AddMetadata(key, value);
        return writer;
    }

    /// <summary>Metadata key of the model's dropout generator state (decimal), present when the model has dropout.</summary>
    public const string DropoutStateKey = "model.dropout_rng_state";

    /// <summary>
    /// Loads a checkpoint into <paramref name="model"/> and, when given, <paramref name="optimizer"/>, all or nothing:
    /// every problem (a missing, mis-shaped or unknown tensor, optimizer state of another kind or size) is reported
    /// in one <see cref="InvalidDataException"/> before anything changes.
    /// </summary>
    /// <param name="path">The checkpoint file.</param>
    /// <param name="model">Receives the model tensors.</param>
    /// <param name="optimizer">Receives the optimizer state, or null to ignore it.</param>
    /// <param name="allowArchitectureMismatch">Load a checkpoint saved from another model (another name or architecture fingerprint) whose tensors fit; by default it is refused.</param>
    /// <returns>The file's metadata (use <see cref="LoaderState.FromMetadata"/> for the loader position).</returns>
    public static IReadOnlyDictionary<string, string> Load(string path, CompiledModel model, Optimizer? optimizer = null, bool allowArchitectureMismatch = false)
    {
        try
        {
            using var file = SafetensorsFile.Read(path);
            return Load(file, model, optimizer, allowArchitectureMismatch);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{path}: {e.Message}", e);
        }
    }

    /// <summary>Loads a parsed checkpoint; see <see cref="Load(string, CompiledModel, Optimizer?, bool)"/>.</summary>
    /// <param name="file">The checkpoint.</param>
    /// <param name="model">Receives the model tensors.</param>
    /// <param name="optimizer">Receives the optimizer state, or null.</param>
    /// <param name="allowArchitectureMismatch">Load a checkpoint of another model whose tensors fit.</param>
    /// <returns>The metadata.</returns>
    public static IReadOnlyDictionary<string, string> Load(SafetensorsFile file, CompiledModel model, Optimizer? optimizer = null, bool allowArchitectureMismatch = false)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(model);
        var problems = new List<string>();
        var names = model.Tensors.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var t in file.Tensors)
        {
            if (!names.Contains(t.Name) && !t.Name.StartsWith(Optimizer.StatePrefix, StringComparison.Ordinal))
                problems.Add($"'{t.Name}' is neither a tensor of {model.Name} nor optimizer state");
        }

        problems.AddRange(model.CheckState(file, allowExtra: true, allowArchitectureMismatch));
        if (optimizer is not null)
        {
            if (optimizer.ParameterCount != model.Parameters.Length)
                problems.Add($"the optimizer has {optimizer.ParameterCount} parameters, {model.Name} {model.Parameters.Length}");
            problems.AddRange(optimizer.CheckState(file));
        }

        _ = LoaderState.FromMetadata(file.Metadata); // malformed loader metadata fails here, before anything is loaded
        ulong? dropout = null;
        if (file.Metadata.TryGetValue(DropoutStateKey, out string? text))
        {
            if (!ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out ulong value))
                problems.Add($"'{DropoutStateKey}' is '{text}', not an unsigned 64-bit integer");
            else if (model.DropoutRandomState is null)
                problems.Add($"it holds a dropout generator state, but {model.Name} has no dropout");
            else
                dropout = value;
        }

        if (problems.Count > 0) throw new InvalidDataException($"cannot load the checkpoint: {string.Join("; ", problems)}. Nothing was loaded.");

        model.LoadState(file, allowExtra: true, allowArchitectureMismatch); // checked above; re-checks, all or nothing
        optimizer?.LoadState(file);               // validated above, cannot fail
        if (dropout is not null) model.DropoutRandomState = dropout; // a checkpoint without it (older) leaves the generator as it is
        return file.Metadata;
    }
}
