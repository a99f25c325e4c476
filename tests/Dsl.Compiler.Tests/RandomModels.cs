using System.Globalization;
using System.Text;

namespace Dsl.Compiler.Tests;

/// <summary>
/// Random <c>.nn</c> files for the fuzz tests: shape-valid chains of every layer, written in the grammar's many
/// spellings (positional and named arguments, aliases, pairs, comments, line breaks, <c>as</c> names, several models per
/// file, a namespace line or the project's), with names chosen to collide in generated C#. Sizes stay small so a case
/// builds and runs in milliseconds. Shapes follow PyTorch's rules; a case the compiler still rejects is only counted.
/// </summary>
internal sealed class RandomModels
{
    // Layer names that once gave clashing or invalid members, and names of generated members and .NET types.
    private static readonly string[] LayerNames =
    {
        "fc", "fc_packed", "fc_packed_weight", "input", "input_copy", "a_b", "a__b", "ab", "x", "x_", "x_at1", "x_at2", "layer1", "weight",
        "out", "grad", "conv1", "bn1", "c_geometry", "pool", "indices", "arena_per_sample", "cache", "folded", "scale", "shift", "mask",
        "running_mean", "num_batches_tracked", "Net", "Array", "System", "h0", "y0", "g1", "é", "Layer0", "layer0", "_", "__x",
    };

    private static readonly string[] ModelNames =
    {
        "Net", "FcPackedWeight", "FcWeight", "Layer0Out", "Layer1Grad", "Pool", "Threads", "X1", "H0", "Y1", "Array", "Math", "Span",
        "AlignedFloats", "Kernels", "Runtime", "Dsl", "ConvGeometry", "Model", "Mlp", "Cnn", "Relu", "Linear", "Fuzz", "Éclair", "N_1",
    };

    private readonly Random _random;
    private readonly StringBuilder _text = new();

    private RandomModels(int seed) => _random = new Random(seed);

    /// <summary>A file of one to three models in the namespace <paramref name="ns"/> (a namespace line, or the project's when it has none).</summary>
    public static (string Text, string? RootNamespace) File(int seed, string ns)
    {
        var r = new RandomModels(seed);
        bool line = r._random.Next(2) == 0;
        if (line) r._text.Append(r.Pick("", "// a fuzz case\n", "/* header */ ")).Append("namespace ").Append(ns).Append(';').Append(r.Space());
        var used = new HashSet<string>();
        int models = r._random.Next(1, 4);
        for (int i = 0; i < models; i++)
        {
            string name = r.Pick(ModelNames);
            if (!used.Add(name)) name += "M" + i.ToString(CultureInfo.InvariantCulture);
            used.Add(name);
            r.Model(name);
        }

        return (r._text.ToString(), line ? null : ns);
    }

    private string Pick(params string[] options) => options[_random.Next(options.Length)];

    private bool Coin(int percent = 50) => _random.Next(100) < percent;

    private string Space() => Pick(" ", " ", "\n", "\n    ", "  /* c */ ", " // comment\n");

    private static string Int(long value) => value.ToString(CultureInfo.InvariantCulture);

    private string Arguments(params (string? Name, string Value)[] arguments)
    {
        // Positional while no argument is skipped or named; then named, in any order.
        var parts = new List<string>();
        bool named = false;
        foreach (var (name, value) in arguments)
        {
            named |= name is null || Coin(30); // after a gap, positions no longer match
            if (name is null) continue;
            parts.Add(named ? $"{name}: {value}" : value);
        }

        return parts.Count == 0 && Coin() ? "" : "(" + string.Join("," + Pick(" ", "", "\n  "), parts) + ")";
    }

    /// <summary>An optional argument: present (with its name, for when it must be named) or left out.</summary>
    private (string? Name, string Value) Optional(string name, string value, int percent = 50) => Coin(percent) ? (name, value) : (null, "");

    private void Model(string name)
    {
        int rank = _random.Next(1, 4);
        var shape = rank switch
        {
            1 => new[] { _random.Next(1, 17) },
            2 => new[] { _random.Next(1, 4), _random.Next(1, 10) },
            _ => new[] { _random.Next(1, 4), _random.Next(1, 9), _random.Next(1, 9) },
        };
        _text.Append("model ").Append(name).Append("(input: [").Append(string.Join(", ", shape)).Append("]) {").Append(Space());
        var aliases = new HashSet<string>();
        int layers = _random.Next(1, 9);
        for (int i = 0; i < layers; i++)
        {
            if (i > 0) _text.Append(Space()).Append("->").Append(Space());
            shape = Layer(shape);
            if (Coin(40))
            {
                string alias = Pick(LayerNames);
                if (!aliases.Add(alias)) aliases.Add(alias = "l" + Int(i) + alias);
                _text.Append(" as ").Append(alias);
            }
        }

        _text.Append(Space()).Append('}').Append(Space());
    }

    /// <summary>Writes one layer valid for <paramref name="shape"/> (nearly always) and returns its output shape.</summary>
    private int[] Layer(int[] shape)
    {
        int rank = shape.Length;
        int choice = _random.Next(rank == 1 ? 6 : 9);
        switch (rank, choice)
        {
            case (1, 0):
            {
                int features = _random.Next(1, 17);
                _text.Append(Pick("linear", "linear")).Append(Arguments(("in_features", Int(shape[0])), ("out_features", Int(features)), Optional("bias", Pick("true", "false"))));
                if (_text[_text.Length - 1] != ')') _text.Append($"({Int(shape[0])}, {Int(features)})");
                return new[] { features };
            }
            case (1, 1):
                _text.Append(Pick("softmax", "log_softmax"));
                return shape;
            case (1, 2):
            case (2, 2):
            case (3, 2):
                return BatchNorm(shape);
            case (_, 3):
                _text.Append("dropout").Append(Arguments(Optional("p", Pick("0", "0.1", "0.5", "0.9"))));
                return shape;
            case (_, 4):
            case (_, 5):
                string activation = Pick("relu", "sigmoid", "tanh", "leaky_relu", "silu", "gelu");
                _text.Append(activation);
                if (activation == "leaky_relu") _text.Append(Arguments(Optional("negative_slope", Pick("0.01", "0.2", "1", "0"))));
                return shape;
            case (_, 6):
                if (Coin())
                {
                    _text.Append("flatten");
                    return new[] { shape.Aggregate(1, (a, b) => a * b) };
                }

                _text.Append("global_avgpool");
                return new[] { shape[0] };
            case (_, 7):
                return Convolution(shape);
            default:
                return Pooling(shape);
        }
    }

    private int[] BatchNorm(int[] shape)
    {
        string layer = shape.Length == 1 ? Pick("bn", "bn1d") : shape.Length == 2 ? Pick("bn", "bn1d") : Pick("bn", "bn2d");
        bool track = Coin(80);
        _text.Append(layer).Append(Arguments(
            Optional("num_features", Int(shape[0]), 30),
            Optional("eps", Pick("1e-5", "0.001", "1e-3")),
            Optional("momentum", Pick("0.1", "none", "0.5", "0.01")),
            Optional("affine", Pick("true", "false")),
            track ? Optional("track_running_stats", "true", 20) : ("track_running_stats", "false"),
            track ? Optional("frozen", Pick("true", "false"), 20) : (null, "")));
        return shape;
    }

    /// <summary>A value for a 1-d layer, or a pair or single value for a 2-d one.</summary>
    private string Value(int h, int w, bool twoD) => !twoD ? Int(w) : h == w && Coin(70) ? Int(h) : $"({Int(h)}, {Int(w)})";

    private int[] Convolution(int[] shape)
    {
        bool twoD = shape.Length == 3;
        int channels = shape[0];
        int outChannels = _random.Next(1, 7);
        var divisors = Enumerable.Range(1, channels).Where(g => channels % g == 0 && outChannels % g == 0).ToList();
        int groups = divisors[_random.Next(divisors.Count)];
        var (kh, sh, ph, dh) = (_random.Next(1, 4), _random.Next(1, 3), _random.Next(0, 3), _random.Next(1, 3));
        var (kw, sw, pw, dw) = Coin(70) ? (kh, sh, ph, dh) : (_random.Next(1, 4), _random.Next(1, 3), _random.Next(0, 3), _random.Next(1, 3));
        if (!twoD) (kh, sh, ph, dh) = (1, 1, 0, 1);
        int outH = twoD ? Size(shape[1], kh, sh, ph, dh, false) : 1;
        int outW = Size(shape[shape.Length - 1], kw, sw, pw, dw, false);
        if (outH < 1 || outW < 1)
        {
            (kh, sh, ph, dh, kw, sw, pw, dw) = (1, 1, 0, 1, 1, 1, 0, 1);
            (outH, outW) = (twoD ? shape[1] : 1, shape[shape.Length - 1]);
        }

        _text.Append(twoD ? Pick("conv", "conv2d") : Pick("conv", "conv1d")).Append(Arguments(
            ("in_channels", Int(channels)), ("out_channels", Int(outChannels)), ("kernel_size", Value(kh, kw, twoD)),
            sh == 1 && sw == 1 ? Optional("stride", "1", 20) : ("stride", Value(sh, sw, twoD)),
            ph == 0 && pw == 0 ? Optional("padding", "0", 20) : ("padding", Value(ph, pw, twoD)),
            dh == 1 && dw == 1 ? Optional("dilation", "1", 20) : ("dilation", Value(dh, dw, twoD)),
            groups == 1 ? Optional("groups", "1", 20) : ("groups", Int(groups)),
            Optional("bias", Pick("true", "false"))));
        return twoD ? new[] { outChannels, outH, outW } : new[] { outChannels, outW };
    }

    private int[] Pooling(int[] shape)
    {
        bool twoD = shape.Length == 3;
        bool max = Coin();
        bool ceil = Coin(30);
        (int K, int S, int P, int D) Dimension()
        {
            int k = _random.Next(1, 4);
            return (k, _random.Next(1, 3), _random.Next(0, k / 2 + 1), max ? _random.Next(1, 4) : 1);
        }

        var (kh, sh, ph, dh) = twoD ? Dimension() : (1, 1, 0, 1);
        var (kw, sw, pw, dw) = twoD && Coin(70) ? (kh, sh, ph, dh) : Dimension();
        int outH = twoD ? Size(shape[1], kh, sh, ph, dh, ceil) : 1;
        int outW = Size(shape[shape.Length - 1], kw, sw, pw, dw, ceil);
        if (outH < 1 || outW < 1)
        {
            (kh, sh, ph, dh, kw, sw, pw, dw) = (1, 1, 0, 1, 1, 1, 0, 1);
            (outH, outW) = (twoD ? shape[1] : 1, shape[shape.Length - 1]);
        }

        string layer = max ? (twoD ? Pick("maxpool", "maxpool2d") : Pick("maxpool", "maxpool1d")) : (twoD ? Pick("avgpool", "avgpool2d") : Pick("avgpool", "avgpool1d"));
        _text.Append(layer).Append('(').Append(Coin() ? "kernel_size: " : Coin() ? "kernel: " : "").Append(Value(kh, kw, twoD));
        if (sh != kh || sw != kw || Coin(20)) _text.Append(", stride: ").Append(Value(sh, sw, twoD));
        if (ph != 0 || pw != 0 || Coin(20)) _text.Append(", padding: ").Append(Value(ph, pw, twoD));
        if (max && (dh != 1 || dw != 1 || Coin(20))) _text.Append(", dilation: ").Append(Value(dh, dw, twoD));
        if (ceil || Coin(20)) _text.Append(", ceil_mode: ").Append(ceil ? "true" : "false");
        if (!max && Coin(40)) _text.Append(", count_include_pad: ").Append(Pick("true", "false"));
        _text.Append(')');
        return twoD ? new[] { shape[0], outH, outW } : new[] { shape[0], outW };
    }

    /// <summary>PyTorch's pooling_output_shape (convolution is the floor case).</summary>
    private static int Size(int n, int k, int s, int p, int d, bool ceil)
    {
        int span = n + 2 * p - d * (k - 1) - 1;
        if (span < 0) return 0;
        int output = (ceil ? (span + s - 1) / s : span / s) + 1;
        if (ceil && (output - 1) * s >= n + p) output--;
        return output;
    }
}
