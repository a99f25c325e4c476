// Which parts of the flat parameter buffer get weight decay: one segment per parameter tensor.
namespace Dsl.Training;

/// <summary>A parameter tensor's range of the flat parameter buffer, and whether weight decay applies to it.</summary>
/// <param name="Name">The tensor's <c>state_dict</c> name, e.g. <c>conv1.weight</c>.</param>
/// <param name="Offset">Its first element in <see cref="CompiledModel.Parameters"/> (and <see cref="CompiledModel.Gradients"/>).</param>
/// <param name="Length">Its element count.</param>
/// <param name="Decay">Whether the optimizer's weight decay applies to it.</param>
public readonly record struct ParameterSegment(string Name, int Offset, int Length, bool Decay);

/// <summary>Builds the <see cref="ParameterSegment"/> list of a model: PyTorch's parameter groups on one flat buffer.</summary>
public static class ParameterSegments
{
    /// <summary>
    /// One segment per parameter tensor of <paramref name="model"/>, in <c>state_dict</c> order.
    /// </summary>
    /// <param name="model">The model whose <see cref="CompiledModel.Tensors"/> are read.</param>
    /// <param name="decayNormAndBias">
    /// True (PyTorch's default, one parameter group): weight decay applies to every parameter. False: biases
    /// (names ending in <c>.bias</c>) and batch norm's γ (any one-dimensional <c>.weight</c>) get no weight decay,
    /// the common "no decay on BN and bias" parameter group.
    /// </param>
    /// <returns>The segments; together they cover every parameter exactly once.</returns>
    public static ParameterSegment[] FromModel(CompiledModel model, bool decayNormAndBias = true)
    {
        ArgumentNullException.ThrowIfNull(model);
        var segments = new List<ParameterSegment>();
        foreach (var t in model.Tensors)
        {
            if (t.Storage != TensorStorage.Parameter) continue;
            segments.Add(new ParameterSegment(t.Name, t.Offset, t.Length, decayNormAndBias || !IsNormOrBias(t)));
        }

        return segments.ToArray();
    }

    /// <summary>Whether <paramref name="tensor"/> is a bias or a one-dimensional weight (batch norm's γ).</summary>
    /// <param name="tensor">A parameter tensor.</param>
    /// <returns>True for <c>*.bias</c> and for one-dimensional <c>*.weight</c> tensors.</returns>
    public static bool IsNormOrBias(TensorInfo tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        return tensor.Name.EndsWith(".bias", StringComparison.Ordinal) || tensor.Name == "bias"
            || (tensor.Shape.Length == 1 && (tensor.Name.EndsWith(".weight", StringComparison.Ordinal) || tensor.Name == "weight"));
    }

    /// <summary>One segment covering <paramref name="length"/> elements, for optimizers used without a model.</summary>
    /// <param name="length">Number of parameters.</param>
    /// <param name="decay">Whether weight decay applies.</param>
    /// <returns>A single segment named <c>parameters</c>.</returns>
    public static ParameterSegment[] Whole(int length, bool decay = true)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        return [new ParameterSegment("parameters", 0, length, decay)];
    }

    internal static int Validate(IReadOnlyList<ParameterSegment> segments)
    {
        ArgumentNullException.ThrowIfNull(segments);
        int end = 0;
        foreach (var s in segments)
        {
            if (s.Offset < 0 || s.Length < 0) throw new ArgumentException($"Segment '{s.Name}' has a negative offset or length.", nameof(segments));
            end = Math.Max(end, s.Offset + s.Length);
        }

        var covered = new bool[end];
        foreach (var s in segments)
        {
            for (int i = s.Offset; i < s.Offset + s.Length; i++)
            {
                if (covered[i]) throw new ArgumentException($"Segment '{s.Name}' overlaps another segment at element {i}.", nameof(segments));
                covered[i] = true;
            }
        }

        return end;
    }
}
