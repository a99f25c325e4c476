using System;
using System.Collections.Generic;
using System.Linq;

namespace Dsl.Compiler.Ops
{
    /// <summary>Every layer name of the language, mapped to its op definition: the one list a new layer is added to.</summary>
    public static class OpRegistry
    {
        public static IReadOnlyList<OpDefinition> All { get; } = new OpDefinition[]
        {
            new ConvDefinition("conv", rank: null),
            new ConvDefinition("conv1d", rank: 2),
            new ConvDefinition("conv2d", rank: 3),
            new BatchNormDefinition("bn", rank: null),
            new BatchNormDefinition("bn1d", rank: 2),
            new BatchNormDefinition("bn2d", rank: 3),
            new LinearDefinition(),
            new LayerNormDefinition(),
            new GroupNormDefinition(),
            new InstanceNormDefinition("instance_norm", rank: null),
            new InstanceNormDefinition("instance_norm1d", rank: 2),
            new InstanceNormDefinition("instance_norm2d", rank: 3),
            new PoolDefinition("maxpool", max: true, rank: null),
            new PoolDefinition("maxpool1d", max: true, rank: 2),
            new PoolDefinition("maxpool2d", max: true, rank: 3),
            new PoolDefinition("avgpool", max: false, rank: null),
            new PoolDefinition("avgpool1d", max: false, rank: 2),
            new PoolDefinition("avgpool2d", max: false, rank: 3),
            new GlobalAvgPoolDefinition(),
            new FlattenDefinition(),
            new DropoutDefinition(),
            new SoftmaxDefinition("softmax", log: false),
            new SoftmaxDefinition("log_softmax", log: true),
        }.Concat(ActivationFunction.All.Select(f => new ActivationDefinition(f))).ToArray();

        private static readonly Dictionary<string, OpDefinition> ByName = All.ToDictionary(d => d.Name, StringComparer.Ordinal);

        // Names users bring from PyTorch, Keras or habit, mapped to ours for "did you mean".
        private static readonly Dictionary<string, string> Synonyms = new(StringComparer.OrdinalIgnoreCase)
        {
            ["batchnorm"] = "bn", ["batchnorm1d"] = "bn1d", ["batchnorm2d"] = "bn2d", ["batch_norm"] = "bn",
            ["batchnormalization"] = "bn", ["bn1"] = "bn", ["dense"] = "linear", ["fc"] = "linear",
            ["conv2"] = "conv2d", ["convolution"] = "conv", ["leakyrelu"] = "leaky_relu",
            ["maxpooling2d"] = "maxpool2d", ["max_pool2d"] = "maxpool2d", ["max_pool"] = "maxpool",
            ["averagepooling2d"] = "avgpool2d", ["avg_pool2d"] = "avgpool2d", ["avg_pool"] = "avgpool",
            ["adaptiveavgpool2d"] = "global_avgpool", ["globalaveragepooling2d"] = "global_avgpool",
            ["global_avg_pool"] = "global_avgpool", ["gap"] = "global_avgpool", ["logsoftmax"] = "log_softmax",
            ["layernorm"] = "layer_norm", ["groupnorm"] = "group_norm", ["instancenorm1d"] = "instance_norm1d", ["instancenorm2d"] = "instance_norm2d",
            ["ln"] = "layer_norm", ["gn"] = "group_norm",
        };

        public static OpDefinition? Find(string name) => ByName.TryGetValue(name, out var definition) ? definition : null;

        /// <summary>The closest known layer name, or null when nothing is close.</summary>
        public static string? Suggest(string name)
        {
            if (Synonyms.TryGetValue(name, out var synonym)) return synonym;
            var exact = All.FirstOrDefault(d => string.Equals(d.Name, name, StringComparison.OrdinalIgnoreCase));
            if (exact is not null) return exact.Name;
            return Closest(name.ToLowerInvariant(), All.Select(d => d.Name));
        }

        /// <summary>The candidate within a small edit distance of <paramref name="name"/>, preferring the nearest.</summary>
        public static string? Closest(string name, IEnumerable<string> candidates)
        {
            string? best = null;
            int bestDistance = int.MaxValue;
            foreach (var candidate in candidates)
            {
                int distance = EditDistance(name, candidate);
                if (distance < bestDistance)
                {
                    best = candidate;
                    bestDistance = distance;
                }
            }

            int allowed = Math.Max(1, Math.Min(3, name.Length / 3));
            return bestDistance <= allowed ? best : null;
        }

        /// <summary>
        /// Damerau–Levenshtein distance in its optimal-string-alignment form: insertions, deletions, substitutions and
        /// transpositions of adjacent characters each cost 1, so <c>rleu</c> is one edit from <c>relu</c>.
        /// </summary>
        internal static int EditDistance(string a, string b)
        {
            if (a.Length > 64 || b.Length > 64) return int.MaxValue;
            var d = new int[a.Length + 1, b.Length + 1];
            for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
            for (int j = 0; j <= b.Length; j++) d[0, j] = j;
            for (int i = 1; i <= a.Length; i++)
            {
                for (int j = 1; j <= b.Length; j++)
                {
                    int cost = a[i - 1] == b[j - 1] ? 0 : 1;
                    int best = Math.Min(Math.Min(d[i, j - 1] + 1, d[i - 1, j] + 1), d[i - 1, j - 1] + cost);
                    if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) best = Math.Min(best, d[i - 2, j - 2] + 1);
                    d[i, j] = best;
                }
            }

            return d[a.Length, b.Length];
        }
    }
}
