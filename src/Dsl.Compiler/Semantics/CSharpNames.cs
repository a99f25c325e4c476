using System.Collections.Generic;
using System.Text;

namespace Dsl.Compiler.Semantics
{
    /// <summary>C# naming: keywords a model may not take, and PascalCase member names for layers.</summary>
    public static class CSharpNames
    {
        private static readonly HashSet<string> Keywords = new()
        {
            "abstract", "as", "base", "bool", "break", "byte", "case", "catch", "char", "checked", "class", "const",
            "continue", "decimal", "default", "delegate", "do", "double", "else", "enum", "event", "explicit", "extern",
            "false", "finally", "fixed", "float", "for", "foreach", "goto", "if", "implicit", "in", "int", "interface",
            "internal", "is", "lock", "long", "namespace", "new", "null", "object", "operator", "out", "override",
            "params", "private", "protected", "public", "readonly", "ref", "return", "sbyte", "sealed", "short",
            "sizeof", "stackalloc", "static", "string", "struct", "switch", "this", "throw", "true", "try", "typeof",
            "uint", "ulong", "unchecked", "unsafe", "ushort", "using", "virtual", "void", "volatile", "while",
        };

        // Members every generated model has (its own and CompiledModel's): a class cannot share a member's name.
        private static readonly HashSet<string> GeneratedMembers = new()
        {
            "InputLength", "OutputLength", "ParameterCount", "InputShape", "OutputShape", "Name", "SampleInputLength", "SampleOutputLength",
            "SampleInputShape", "SampleOutputShape", "MaxBatch", "Tensors", "Parameters", "Gradients", "ParametersChanged", "ZeroGrad",
            "Tensor", "Gradient", "Counter", "Info", "Forward", "Backward", "Infer", "ForwardCore", "BackwardCore", "InferCore",
            "ResetParameters", "ParameterStorage", "GradientStorage", "BeginGradients", "WritesGradientsAfterZeroGrad", "BufferStorage", "CounterStorage", "ThrowSingleValuePerChannel",
            "SaveSafetensors", "LoadSafetensors", "LoadState", "Format", "RefreshFolded", "InputCopy", "ArenaPerSample", "WorkPerSample",
            "IndicesPerSample", "CacheLength", "FoldedLength", "Equals", "GetHashCode", "GetType", "ToString", "MemberwiseClone",
            "Finalize", "CompiledModel", "Indices", "Dispose", "InputGrad", "Architecture", "ArchitectureLayers", "ArchitectureFingerprint",
            "ModelKey", "FingerprintKey", "Summary", "SummaryLayers",
        };

        public static bool IsKeyword(string name) => Keywords.Contains(name);

        public static bool IsGeneratedMember(string name) => GeneratedMembers.Contains(name);

        /// <summary>Why <paramref name="name"/> cannot name a model (a generated C# class), or null when it can.</summary>
        public static string? ModelNameProblem(string name)
        {
            if (IsKeyword(name)) return $"'{name}' is a C# keyword and cannot name a model (it becomes a class); choose another name";
            if (IsGeneratedMember(name) || name.StartsWith("_", System.StringComparison.Ordinal) || name.StartsWith("s_", System.StringComparison.Ordinal))
                return $"'{name}' is the name of a member of every generated model (or reserved for one), and a C# class cannot contain a member named like itself; choose another name";
            bool lowercase = true;
            foreach (char c in name) lowercase &= c is >= 'a' and <= 'z'; // Roslyn's CS8981 rule
            if (lowercase)
                return $"'{name}' becomes a class, and C# reserves all-lowercase type names for keywords (CS8981; 'var' or 'record' would break other code); write {char.ToUpperInvariant(name[0])}{name.Substring(1)}";
            return null;
        }

        /// <summary><c>conv1_bn</c> → <c>Conv1Bn</c>; a leading digit gets a <c>Layer</c> prefix (<c>0</c> → <c>Layer0</c>).</summary>
        public static string Pascal(string name)
        {
            var builder = new StringBuilder();
            bool upper = true;
            foreach (char c in name)
            {
                if (c == '_' || c == '.')
                {
                    upper = true;
                    continue;
                }

                builder.Append(upper ? char.ToUpperInvariant(c) : c);
                upper = false;
            }

            if (builder.Length == 0 || char.IsDigit(builder[0])) builder.Insert(0, "Layer");
            return builder.ToString();
        }
    }
}
