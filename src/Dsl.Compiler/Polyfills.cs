// Lets C# 9+ records and init accessors compile against netstandard2.0.
namespace System.Runtime.CompilerServices
{
    internal static class IsExternalInit { }
}

namespace Dsl.Compiler
{
    /// <summary>Thrown where a switch meets a case the compiler never produces (System.Diagnostics' type is not in netstandard2.0).</summary>
    internal sealed class UnreachableException : System.InvalidOperationException
    {
        public UnreachableException()
            : base("The compiler reached a case it never produces; please report it with the .nn file.")
        {
        }
    }
}
