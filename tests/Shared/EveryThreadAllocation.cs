// Bytes allocated on every thread a call runs on: the caller and the worker pool's threads, which
// GC.GetAllocatedBytesForCurrentThread on the caller alone cannot see. Linked into each test project.
using Dsl.Runtime;
using Dsl.Runtime.Kernels;

namespace Dsl.Tests;

/// <summary>
/// Measures what steady-state calls allocate on the caller and on every worker of a <see cref="WorkerPool"/>: the
/// threads a model's passes run on. Each of the pool's threads reads its own allocation count in a fixed-part job
/// (part <c>i</c> runs on thread <c>i</c>) before and after the calls.
/// </summary>
/// <remarks>
/// <c>GC.GetTotalAllocatedBytes(precise: true)</c>, the process-wide count, was tried first: in the test host it
/// also counts other threads (168 bytes every few milliseconds while the cores are busy, with no pool job at all,
/// and bursts of kilobytes while the runner reports results), so it cannot tell a model's 0 from noise, and taking
/// the fewest bytes of several windows hides a worker's allocation whenever the worker, late to wake, left every
/// chunk of a window to the caller. A count per pool thread is exact, so one window decides; and it sees every
/// thread the runtime's kernels use: they run on the caller or as chunks of a pool job, nowhere else. Tests that
/// use it belong to <see cref="EveryThreadAllocationCollection"/>, which runs alone: another test's job on the same
/// shared pool would otherwise be counted too.
/// </remarks>
internal static class EveryThreadAllocation
{
    /// <summary>The name of the collection that runs these tests with nothing else in parallel.</summary>
    public const string Collection = "Allocation on every thread";

    /// <summary>The bytes the caller and the threads of <paramref name="pool"/> allocated while <paramref name="action"/> ran.</summary>
    /// <param name="pool">The pool the calls run on (a model's: <see cref="WorkerPool.Shared"/> with its thread count).</param>
    /// <param name="action">Steady-state calls: warmed up, with the pool started and its workers once asleep (<see cref="LetWorkersSleep"/>).
    /// A worker runs a chunk only when it claims one before the caller does, so make enough calls for it to.</param>
    /// <returns>Bytes, 0 when the calls allocated nothing on any of those threads.</returns>
    public static long BytesAllocatedBy(WorkerPool pool, Action action)
    {
        var before = new long[pool.Threads];
        var after = new long[pool.Threads];
        Action<int, int> readBefore = (part, _) => before[part] = GC.GetAllocatedBytesForCurrentThread();
        Action<int, int> readAfter = (part, _) => after[part] = GC.GetAllocatedBytesForCurrentThread();
        pool.Run(readBefore); // warm-up of the two jobs
        pool.Run(readAfter);

        // A full collection empties every thread's allocation quantum first: a collection during the window could
        // otherwise charge a quantum's unused rest to its thread (dotnet/runtime#13502).
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        pool.Run(readBefore);
        action();
        pool.Run(readAfter);
        long bytes = 0;
        for (int t = 0; t < pool.Threads; t++) bytes += after[t] - before[t];
        return bytes;
    }

    /// <summary>
    /// The bytes the caller and the threads of <paramref name="pool"/> allocated in at least <paramref name="minCalls"/>
    /// calls of <paramref name="call"/>, made for at least <paramref name="milliseconds"/>: a worker not on a core when
    /// a job starts leaves all of that job's chunks to the caller, so a window of a few calls can miss the workers
    /// (on a loaded 2-core machine, a worker-only allocation in batch norm's backward chunk showed once in 20 calls).
    /// </summary>
    /// <param name="pool">The pool the calls run on.</param>
    /// <param name="call">One steady-state call (see <see cref="BytesAllocatedBy"/>).</param>
    /// <param name="minCalls">Calls to make at least.</param>
    /// <param name="milliseconds">Time to keep calling for at least.</param>
    /// <returns>Bytes, 0 when the calls allocated nothing on any of those threads.</returns>
    public static long BytesAllocatedByCalls(WorkerPool pool, Action call, int minCalls, int milliseconds) =>
        BytesAllocatedBy(pool, () =>
        {
            long until = System.Diagnostics.Stopwatch.GetTimestamp() + System.Diagnostics.Stopwatch.Frequency * milliseconds / 1000;
            for (int i = 0; i < minCalls || System.Diagnostics.Stopwatch.GetTimestamp() < until; i++) call();
        });

    /// <summary>
    /// After a warm-up, waits until the pool's workers have gone to sleep once: a worker creates its wake-up event's
    /// lock the first time it blocks (ManualResetEventSlim), a one-time cost that must not fall inside a window.
    /// </summary>
    public static void LetWorkersSleep() => Thread.Sleep(20); // workers spin 200 µs after a job, then sleep
}

/// <summary>Tests that count the allocations of a shared pool's threads: run with no other test in parallel.</summary>
[CollectionDefinition(EveryThreadAllocation.Collection, DisableParallelization = true)]
public sealed class EveryThreadAllocationCollection;
