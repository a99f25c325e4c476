using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using Dsl.Compiler.Diagnostics;

namespace Dsl.Compiler.Semantics
{
    /// <summary>
    /// Limits that come from the C# the model becomes rather than from its shapes. Checked on bound models, so a model
    /// that passes <c>nnc check</c> also builds.
    /// </summary>
    public static class ModelLimits
    {
        /// <summary>
        /// The most layers a model may have. Each layer is a few statements and one or two locals in each generated
        /// method (Backward declares a gradient and often an activation per layer), and C# allows 65,534 locals in a
        /// method (CS0204; a chain of 33,000 layers failed). 10,000 leaves room for ops with several locals; real
        /// networks have hundreds.
        /// </summary>
        public const int MaxLayers = 10000;

        /// <summary>The models that respect the limits; an NN1022 at the model name for each that does not.</summary>
        public static IReadOnlyList<BoundModel> Check(IReadOnlyList<BoundModel> models, List<NnDiagnostic> diagnostics)
        {
            var kept = new List<BoundModel>(models.Count);
            foreach (var model in models)
            {
                if (model.Layers.Count > MaxLayers)
                {
                    diagnostics.Add(DiagnosticDescriptors.TooLarge.At(model.Syntax.Name.Span,
                        $"model '{model.Name}' has {model.Layers.Count.ToString(CultureInfo.InvariantCulture)} layers, more than the {MaxLayers.ToString(CultureInfo.InvariantCulture)} a generated class can hold (C# allows 65,534 locals in a method); split it into several models"));
                    continue;
                }

                kept.Add(model);
            }

            return kept;
        }
    }
}
