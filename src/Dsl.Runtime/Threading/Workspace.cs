// Per-thread scratch for kernel overloads that are not given scratch memory by their caller.
namespace Dsl.Runtime.Kernels;

/// <summary>
/// Scratch memory for the kernel overloads called without a scratch span: one buffer per thread,
/// grown on first use and kept, so steady-state calls allocate nothing. Generated models pass their
/// own scratch (part of their arena) and never come here.
/// </summary>
internal static class Workspace
{
    [ThreadStatic]
    private static AlignedFloats? t_buffer;

    public static Span<float> Get(int length)
    {
        var buffer = t_buffer;
        if (buffer is null || buffer.Length < length) t_buffer = buffer = new AlignedFloats(length);
        return buffer.AsSpan(0, length);
    }
}
