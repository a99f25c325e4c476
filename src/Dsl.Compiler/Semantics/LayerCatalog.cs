using System;
using System.Collections.Generic;
using System.Linq;

namespace Dsl.Compiler.Semantics
{
    /// <summary>What a layer computes, after <c>conv</c>, <c>bn</c>, <c>maxpool</c> and <c>avgpool</c> are resolved by input rank.</summary>
    public enum LayerKind
    {
        Conv1d,
        Conv2d,
        BatchNorm1d,
        BatchNorm2d,
        Linear,
        Relu,
        Sigmoid,
        Tanh,
        LeakyRelu,
        MaxPool1d,
        MaxPool2d,
        AvgPool1d,
        AvgPool2d,
        GlobalAvgPool,
        Flatten,
        Dropout,
        Softmax,
        LogSoftmax,
    }

    /// <summary>Layers that share arguments and shape rules.</summary>
    public enum LayerFamily
    {
        Conv,
        BatchNorm,
        Linear,
        Activation,
        MaxPool,
        AvgPool,
        GlobalAvgPool,
        Flatten,
        Dropout,
        Softmax,
    }

    public enum ParameterType
    {
        Integer,
        Decimal,
        Boolean,
        IntegerOrPair,
        DecimalOrNone,
    }

    /// <summary>One argument a layer takes: its PyTorch name, short forms, type and whether it is required.</summary>
    public sealed record ParameterSpec(string Name, ParameterType Type, bool Required, params string[] Aliases)
    {
        public string Describe() => Type switch
        {
            ParameterType.Integer => "an integer",
            ParameterType.Decimal => "a number",
            ParameterType.Boolean => "true or false",
            ParameterType.IntegerOrPair => "an integer or a pair (h, w)",
            ParameterType.DecimalOrNone => "a number or none",
            _ => "a value",
        };
    }

    /// <summary>A layer name as written in <c>.nn</c>, with its arguments in PyTorch's positional order.</summary>
    public sealed record LayerSignature(string Name, LayerFamily Family, int? Rank, IReadOnlyList<ParameterSpec> Parameters)
    {
        public ParameterSpec? Find(string name) =>
            Parameters.FirstOrDefault(p => p.Name == name || Array.IndexOf(p.Aliases, name) >= 0);
    }

    /// <summary>Every v1 layer and its arguments.</summary>
    public static class LayerCatalog
    {
        private static readonly ParameterSpec[] ConvParameters =
        {
            new("in_channels", ParameterType.Integer, true, "in"),
            new("out_channels", ParameterType.Integer, true, "out"),
            new("kernel_size", ParameterType.IntegerOrPair, true, "kernel"),
            new("stride", ParameterType.IntegerOrPair, false),
            new("padding", ParameterType.IntegerOrPair, false),
            new("dilation", ParameterType.IntegerOrPair, false),
            new("groups", ParameterType.Integer, false),
            new("bias", ParameterType.Boolean, false),
        };

        private static readonly ParameterSpec[] BatchNormParameters =
        {
            new("num_features", ParameterType.Integer, false, "features"),
            new("eps", ParameterType.Decimal, false),
            new("momentum", ParameterType.DecimalOrNone, false),
            new("affine", ParameterType.Boolean, false),
            new("track_running_stats", ParameterType.Boolean, false),
            new("frozen", ParameterType.Boolean, false),
        };

        private static readonly ParameterSpec[] LinearParameters =
        {
            new("in_features", ParameterType.Integer, true, "in"),
            new("out_features", ParameterType.Integer, true, "out"),
            new("bias", ParameterType.Boolean, false),
        };

        private static readonly ParameterSpec[] MaxPoolParameters =
        {
            new("kernel_size", ParameterType.IntegerOrPair, true, "kernel"),
            new("stride", ParameterType.IntegerOrPair, false),
            new("padding", ParameterType.IntegerOrPair, false),
            new("dilation", ParameterType.IntegerOrPair, false),
            new("ceil_mode", ParameterType.Boolean, false),
        };

        private static readonly ParameterSpec[] AvgPoolParameters =
        {
            new("kernel_size", ParameterType.IntegerOrPair, true, "kernel"),
            new("stride", ParameterType.IntegerOrPair, false),
            new("padding", ParameterType.IntegerOrPair, false),
            new("ceil_mode", ParameterType.Boolean, false),
            new("count_include_pad", ParameterType.Boolean, false),
        };

        private static readonly ParameterSpec[] None = Array.Empty<ParameterSpec>();

        public static IReadOnlyList<LayerSignature> All { get; } = new[]
        {
            new LayerSignature("conv", LayerFamily.Conv, null, ConvParameters),
            new LayerSignature("conv1d", LayerFamily.Conv, 2, ConvParameters),
            new LayerSignature("conv2d", LayerFamily.Conv, 3, ConvParameters),
            new LayerSignature("bn", LayerFamily.BatchNorm, null, BatchNormParameters),
            new LayerSignature("bn1d", LayerFamily.BatchNorm, 2, BatchNormParameters),
            new LayerSignature("bn2d", LayerFamily.BatchNorm, 3, BatchNormParameters),
            new LayerSignature("linear", LayerFamily.Linear, 1, LinearParameters),
            new LayerSignature("relu", LayerFamily.Activation, null, None),
            new LayerSignature("sigmoid", LayerFamily.Activation, null, None),
            new LayerSignature("tanh", LayerFamily.Activation, null, None),
            new LayerSignature("leaky_relu", LayerFamily.Activation, null, new ParameterSpec[] { new("negative_slope", ParameterType.Decimal, false) }),
            new LayerSignature("maxpool", LayerFamily.MaxPool, null, MaxPoolParameters),
            new LayerSignature("maxpool1d", LayerFamily.MaxPool, 2, MaxPoolParameters),
            new LayerSignature("maxpool2d", LayerFamily.MaxPool, 3, MaxPoolParameters),
            new LayerSignature("avgpool", LayerFamily.AvgPool, null, AvgPoolParameters),
            new LayerSignature("avgpool1d", LayerFamily.AvgPool, 2, AvgPoolParameters),
            new LayerSignature("avgpool2d", LayerFamily.AvgPool, 3, AvgPoolParameters),
            new LayerSignature("global_avgpool", LayerFamily.GlobalAvgPool, null, None),
            new LayerSignature("flatten", LayerFamily.Flatten, null, None),
            new LayerSignature("dropout", LayerFamily.Dropout, null, new ParameterSpec[] { new("p", ParameterType.Decimal, false) }),
            new LayerSignature("softmax", LayerFamily.Softmax, 1, None),
            new LayerSignature("log_softmax", LayerFamily.Softmax, 1, None),
        };

        private static readonly Dictionary<string, LayerSignature> ByName = All.ToDictionary(s => s.Name, StringComparer.Ordinal);

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
        };

        public static LayerSignature? Find(string name) => ByName.TryGetValue(name, out var signature) ? signature : null;

        /// <summary>The closest known layer name, or null when nothing is close.</summary>
        public static string? Suggest(string name)
        {
            if (Synonyms.TryGetValue(name, out var synonym)) return synonym;
            var exact = All.FirstOrDefault(s => string.Equals(s.Name, name, StringComparison.OrdinalIgnoreCase));
            if (exact is not null) return exact.Name;
            return Closest(name.ToLowerInvariant(), All.Select(s => s.Name));
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

        private static int EditDistance(string a, string b)
        {
            if (a.Length > 64 || b.Length > 64) return int.MaxValue;
            var previous = new int[b.Length + 1];
            var current = new int[b.Length + 1];
            for (int j = 0; j <= b.Length; j++) previous[j] = j;
            for (int i = 1; i <= a.Length; i++)
            {
                current[0] = i;
                for (int j = 1; j <= b.Length; j++)
                {
                    int cost = a[i - 1] == b[j - 1] ? 0 : 1;
                    current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + cost);
                }

                (previous, current) = (current, previous);
            }

            return previous[b.Length];
        }
    }
}
