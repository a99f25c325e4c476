// Lets C# 9+ records and init accessors compile against netstandard2.0.
namespace System.Runtime.CompilerServices
{
    internal static class IsExternalInit { }
}
