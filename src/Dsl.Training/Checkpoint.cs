// Model + optimizer + loader position in one safetensors file, written atomically.
using System.Globalization;
using System.Runtime.InteropServices;

namespace Dsl.Training;

/// <summary>
/// Training checkpoints: one safetensors file with the model's tensors under their <c>state_dict</c> names (so PyTorch
/// and <see cref="CompiledModel.LoadSafetensors(string, bool)"/> with <c>allowExtra</c> read it), the optimizer's state
/// under <c>optimizer.*</c> (<c>optimizer.step</c> as I64) and string metadata: the loader's position
/// (<c>loader.*</c>) and whatever the caller adds (epoch, step, schedule…). Files are written with
/// <see cref="AtomicFile"/>: a crash while saving leaves the previous checkpoint intact.
/// </summary>
public static class Checkpoint
{
    /// <summary>Writes a checkpoint to <paramref name="path"/> atomically.</summary>
    /// <param name="path">Destination file.</param>
    /// <param name="model">The model (parameters, running statistics, counters).</param>
    /// <param name="optimizer">The optimizer whose state to include, or null.</param>
    /// <param name="loader">The loader position to include, or null.</param>
    /// <param name="metadata">Extra metadata entries, or null.</param>
    public static void Save(string path, CompiledModel model, Optimizer? optimizer = null, LoaderState? loader = null, IEnumerable<KeyValuePair<string, string>>? metadata = null)
    {
        var writer = CreateWriter(model, optimizer, loader, metadata);
        AtomicFile.Write(path, writer.WriteTo);
    }

    /// <summary>Writes a checkpoint to <paramref name="stream"/>.</summary>
    /// <param name="stream">Destination.</param>
    /// <param name="model">The model.</param>
    /// <param name="optimizer">The optimizer, or null.</param>
    /// <param name="loader">The loader position, or null.</param>
    /// <param name="metadata">Extra metadata, or null.</param>
    public static void Save(Stream stream, CompiledModel model, Optimizer? optimizer = null, LoaderState? loader = null, IEnumerable<KeyValuePair<string, string>>? metadata = null) =>
        CreateWriter(model, optimizer, loader, metadata).WriteTo(stream);

    private static SafetensorsWriter CreateWriter(CompiledModel model, Optimizer? optimizer, LoaderState? loader, IEnumerable<KeyValuePair<string, string>>? metadata)
    {
        ArgumentNullException.ThrowIfNull(model);
        var writer = new SafetensorsWriter();
        foreach (var t in model.Tensors)
        {
            if (t.Storage == TensorStorage.Counter) writer.Add(t.Name, MemoryMarshal.CreateReadOnlySpan(ref model.Counter(t.Name), 1), t.Shape);
            else writer.Add(t.Name, model.Tensor(t.Name), t.Shape);
        }

        writer.AddMetadata("format", "pt");
        writer.AddMetadata("model", model.Name);
        if (model.DropoutRandomState is { } dropout) writer.AddMetadata(DropoutStateKey, dropout.ToString(CultureInfo.InvariantCulture));
        optimizer?.SaveState(writer);
        if (loader is { } state)
        {
            foreach (var (key, value) in state.ToMetadata()) writer.AddMetadata(key, value);
        }

        if (metadata is not null)
        {
            foreach (var (key, value) in metadata) writer.AddMetadata(key, value);
        }

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
    /// <returns>The file's metadata (use <see cref="LoaderState.FromMetadata"/> for the loader position).</returns>
    public static IReadOnlyDictionary<string, string> Load(string path, CompiledModel model, Optimizer? optimizer = null)
    {
        var file = SafetensorsFile.Read(path);
        try
        {
            return Load(file, model, optimizer);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{path}: {e.Message}", e);
        }
    }

    /// <summary>Loads a parsed checkpoint; see <see cref="Load(string, CompiledModel, Optimizer?)"/>.</summary>
    /// <param name="file">The checkpoint.</param>
    /// <param name="model">Receives the model tensors.</param>
    /// <param name="optimizer">Receives the optimizer state, or null.</param>
    /// <returns>The metadata.</returns>
    public static IReadOnlyDictionary<string, string> Load(SafetensorsFile file, CompiledModel model, Optimizer? optimizer = null)
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

        model.LoadState(file, allowExtra: true); // validates the model's tensors itself, all or nothing
        optimizer?.LoadState(file);               // validated above, cannot fail
        if (dropout is not null) model.DropoutRandomState = dropout; // a checkpoint without it (older) leaves the generator as it is
        return file.Metadata;
    }
}
