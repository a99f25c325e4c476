using System.Collections.Generic;
using System.Globalization;
using Dsl.Compiler.Diagnostics;
using Dsl.Compiler.Syntax;

namespace Dsl.Compiler.Semantics
{
    /// <summary>The warnings a careful reviewer of a batch-norm network would give. Run on bound models only.</summary>
    internal static class Lints
    {
        public static IEnumerable<NnDiagnostic> Check(BoundModel model)
        {
            var layers = model.Layers;
            for (int i = 0; i < layers.Count; i++)
            {
                var layer = layers[i];
                var next = i + 1 < layers.Count ? layers[i + 1] : null;
                var a = layer.Attributes;

                if (layer.Kind is LayerKind.Conv1d or LayerKind.Conv2d or LayerKind.Linear && a.Bias
                    && next is { IsBatchNorm: true } bn && !bn.Attributes.Frozen)
                {
                    int wasted = layer.Kind == LayerKind.Linear ? a.OutFeatures : a.OutChannels;
                    var span = layer.ArgumentValues.TryGetValue("bias", out var bias) ? bias.Span : layer.Syntax.Name.Span;
                    yield return DiagnosticDescriptors.RedundantBias.At(span,
                        $"the bias of '{layer.KindName}' is cancelled by the following '{bn.KindName}' (batch norm subtracts the per-channel mean), so its {wasted} parameters never learn anything; write bias: false");
                }

                if (layer.Kind == LayerKind.Dropout)
                {
                    for (int j = i + 1; j < layers.Count; j++)
                    {
                        if (!layers[j].IsBatchNorm) continue;
                        var later = layers[j];
                        yield return DiagnosticDescriptors.DropoutBeforeBatchNorm.At(layer.Syntax.Name.Span,
                            $"'dropout' before '{later.KindName}' at ({later.Span.Line},{later.Span.Column}): batch norm learns its running variance from dropped-out activations in training but sees undropped ones at inference (variance shift); move dropout after the last batch norm");
                        break;
                    }
                }

                if (layer.IsBatchNorm)
                {
                    // Momentum only matters when the running statistics are updated: not frozen, and tracked.
                    ValueSyntax? momentum = null;
                    if (!a.Frozen && a.TrackRunningStats) layer.ArgumentValues.TryGetValue("momentum", out momentum);
                    if (momentum is not null && a.Momentum is { } m && m >= 0.9)
                    {
                        string pytorch = (1 - m).ToString("0.###", CultureInfo.InvariantCulture);
                        yield return DiagnosticDescriptors.KerasMomentum.At(momentum.Span,
                            $"momentum {momentum.Text} makes each batch replace {(m * 100).ToString("0.#", CultureInfo.InvariantCulture)}% of the running statistics: PyTorch keeps (1 - momentum) of the old value, the opposite of Keras; if you meant Keras' {momentum.Text}, write momentum: {pytorch}");
                    }

                    if (momentum is not null && a.Momentum is 0)
                    {
                        yield return DiagnosticDescriptors.ZeroMomentum.At(momentum.Span,
                            "momentum 0 never updates the running statistics, so inference normalizes with their initial values; write frozen: true if that is what you want");
                    }

                    if (!a.TrackRunningStats)
                    {
                        var span = layer.ArgumentValues.TryGetValue("track_running_stats", out var track) ? track.Span : layer.Syntax.Name.Span;
                        yield return DiagnosticDescriptors.BatchDependentInference.At(span,
                            $"with track_running_stats: false, '{layer.KindName}' normalizes with batch statistics at inference too: a sample's output depends on the rest of its batch{(layer.InputShape.Count == 1 ? ", and a batch of one sample fails" : "")}");
                    }

                    if (i > 0 && layers[i - 1].IsBatchNorm)
                    {
                        yield return DiagnosticDescriptors.ConsecutiveBatchNorm.At(layer.Syntax.Name.Span,
                            $"'{layer.KindName}' directly follows another batch norm, whose output it normalizes again; remove one of them");
                    }
                }

                if (layer.Kind is LayerKind.Softmax or LayerKind.LogSoftmax && next is not null)
                {
                    yield return DiagnosticDescriptors.LayerAfterSoftmax.At(layer.Syntax.Name.Span,
                        $"'{layer.KindName}' is followed by '{next.KindName}': it squashes features into probabilities and belongs at the end of the chain");
                }
            }
        }
    }
}
