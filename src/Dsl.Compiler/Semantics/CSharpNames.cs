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
            "ResetParameters", "ParameterStorage", "GradientStorage", "BeginGradients", "WritesGradientsAfterZeroGrad", "InferenceChunk", "BufferStorage", "CounterStorage", "ThrowSingleValuePerChannel",
            "SaveSafetensors", "LoadSafetensors", "LoadState", "Format", "RefreshFolded", "InputCopy", "ArenaPerSample", "WorkPerSample",
            "IndicesPerSample", "CacheLength", "FoldedLength", "Equals", "GetHashCode", "GetType", "ToString", "MemberwiseClone",
            "Finalize", "CompiledModel", "Indices", "Dispose", "InputGrad", "Architecture", "ArchitectureLayers", "ArchitectureFingerprint",
            "ModelKey", "FingerprintKey", "GetDropoutRandomState", "SetDropoutRandomState", "Summary", "SummaryLayers",
        };

        public static bool IsKeyword(string name) => Keywords.Contains(name);

        public static bool IsGeneratedMember(string name) => GeneratedMembers.Contains(name);

        /// <summary>
        /// The longest qualified model name (namespace, dot, name), in characters. C# limits a type's metadata name,
        /// namespace included, to 1,023 UTF-8 bytes (CS7013); 255 characters stay below that whatever the letters (at most
        /// 3 bytes each), and the generated file's name (the qualified name + <c>.g.cs</c>) stays a usable file name.
        /// </summary>
        public const int MaxQualifiedNameLength = 255;

        /// <summary>Why <paramref name="name"/> cannot name a model (a generated C# class) in <paramref name="ns"/>, or null when it can.</summary>
        public static string? ModelNameProblem(string name, string? ns = null)
        {
            if (IsKeyword(name)) return $"'{name}' is a C# keyword and cannot name a model (it becomes a class); choose another name";
            string qualified = ns is null ? name : ns + "." + name;
            if (qualified.Length > MaxQualifiedNameLength)
                return $"the model's full name '{Abbreviate(qualified)}' has {qualified.Length} characters, more than the {MaxQualifiedNameLength} a generated class may have (C# limits type names, CS7013); choose a shorter name";
            if (ReservedNamespaceProblem(qualified, ns) is { } reserved) return reserved;
            if (IsGeneratedMember(name) || name.StartsWith("_", System.StringComparison.Ordinal) || name.StartsWith("s_", System.StringComparison.Ordinal))
                return $"'{name}' is the name of a member of every generated model (or reserved for one), and a C# class cannot contain a member named like itself; choose another name";
            bool lowercase = true;
            foreach (char c in name) lowercase &= c is >= 'a' and <= 'z'; // Roslyn's CS8981 rule
            if (lowercase)
                return $"'{name}' becomes a class, and C# reserves all-lowercase type names for keywords (CS8981; 'var' or 'record' would break other code); write {char.ToUpperInvariant(name[0])}{name.Substring(1)}";
            return null;
        }

        /// <summary>
        /// Generated code names .NET and runtime types as <c>global::System.…</c> and <c>global::Dsl.Runtime.…</c>. A class
        /// declared inside those namespaces would take the place of the type of that name (<c>namespace System; model Array</c>
        /// hides <c>System.Array</c>, <c>namespace Dsl.Runtime; model CompiledModel</c> its own base class), and a class named
        /// like one of their roots (<c>model System</c> at the top level, <c>namespace Dsl; model Runtime</c>) hides the
        /// namespace itself. Both namespaces belong to others, so no model may live there.
        /// </summary>
        private static string? ReservedNamespaceProblem(string qualified, string? ns)
        {
            foreach (string reserved in ReservedNamespaces)
            {
                if (ns is not null && (ns == reserved || ns.StartsWith(reserved + ".", System.StringComparison.Ordinal)))
                    return $"namespace '{ns}' belongs to {(reserved == "System" ? ".NET" : "the Dsl runtime")}: a model there could hide a type the generated code uses (e.g. '{reserved}.{(reserved == "System" ? "Array" : "CompiledModel")}'); choose another namespace";
                if (reserved == qualified || reserved.StartsWith(qualified + ".", System.StringComparison.Ordinal))
                    return $"a class '{qualified}' would hide the namespace '{reserved}', which the generated code uses; choose another name";
            }

            return null;
        }

        private static readonly string[] ReservedNamespaces = { "System", "Dsl.Runtime" };

        private static string Abbreviate(string text) => text.Length <= 40 ? text : text.Substring(0, 20) + "…" + text.Substring(text.Length - 12);

        /// <summary><c>conv1_bn</c> → <c>Conv1Bn</c>, <c>layer1.0.conv1</c> → <c>Layer1_0Conv1</c>; a leading digit gets a <c>Layer</c> prefix (<c>0</c> → <c>Layer0</c>).</summary>
        public static string Pascal(string name)
        {
            var builder = new StringBuilder();
            bool upper = true;
            for (int i = 0; i < name.Length; i++)
            {
                char c = name[i];
                if (c == '_' || c == '.')
                {
                    // A path's positions stay apart: layer1.0.conv1 → Layer1_0Conv1, not Layer10Conv1 (layer10.conv1's).
                    if (c == '.' && builder.Length > 0 && char.IsDigit(builder[builder.Length - 1]) && i + 1 < name.Length && char.IsDigit(name[i + 1]))
                        builder.Append('_');
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
