// What a backward pass tells an optimizer fused into it: which parameters' gradients are final.
namespace Dsl.Runtime;

/// <summary>
/// Receives, during <see cref="CompiledModel.Backward(ReadOnlySpan{float}, Span{float}, IGradientHook)"/>, each
/// range of parameters whose gradients the pass has finished (an optimizer updates them there, while the
/// gradients are still in cache).
/// </summary>
public interface IGradientHook
{
    /// <summary>
    /// The gradients of parameters [<paramref name="offset"/>, <paramref name="offset"/> + <paramref name="length"/>)
    /// are final for this pass, and the pass will not read those parameters again.
    /// </summary>
    /// <param name="offset">First parameter, an offset into <see cref="CompiledModel.Parameters"/> and <see cref="CompiledModel.Gradients"/>.</param>
    /// <param name="length">Parameters in the range.</param>
    void GradientsReady(int offset, int length);
}
