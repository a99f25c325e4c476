// A persistent pool of worker threads that runs one job at a time on every core, allocation-free.
using System.ComponentModel;

namespace Dsl.Runtime.Kernels;

/// <summary>
/// Runs a job on <see cref="Threads"/> threads: the caller and <c>Threads − 1</c> workers that live as long
/// as the pool. A job is a function pointer and a pointer to its state (a struct on the caller's stack,
/// pinned by the caller), so dispatching allocates nothing. Workers spin briefly, then sleep on an event.
/// One job at a time: callers on other threads wait their turn. Models share one pool per thread count
/// (<see cref="Shared"/>), so a process keeps a handful of idle threads however many models it builds.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed unsafe class WorkerPool : IDisposable
{
    private static readonly Dictionary<int, WorkerPool> s_shared = new();
    private readonly object _gate = new();
    private readonly Thread[] _workers;
    private readonly ManualResetEventSlim[] _start;
    private readonly ManualResetEventSlim _done = new(false, spinCount: 2000);
    private delegate*<void*, int, int, void> _body;
    private delegate*<void*, int, int, int, void> _chunkBody;
    private Action<int, int>? _managedChunkBody; // a chunked job's body when it is a delegate; null for a function pointer
    private void* _state;
    private Action<int, int>? _managed; // the job when it is a delegate (Run(Action)); null for a function pointer
    private int _remaining;
    private int _chunks;
    private int _completed; // chunks of the current chunked job finished
    // Chunked job: thread t's block of chunks, as one word per thread, end << 16 | next, 128 bytes apart (no two
    // threads' words on one cache line or adjacent-line pair). See RunChunks and ClaimChunks.
    private readonly long[] _tickets;
    private const int TicketStride = 16;

    // A new value per job, odd when the job is chunked, even otherwise: spinning workers watch it, sleeping ones
    // get their event. Job number and kind in one word, so a worker never pairs one job's number with another's kind.
    private int _signal;

    // Workers spin this long after a job before they sleep: the layers of one training step come microseconds
    // apart, and waking a sleeping thread costs tens of microseconds.
    private static readonly long SpinTicks = System.Diagnostics.Stopwatch.Frequency / 5000; // 200 µs
    private volatile bool _stopping;
    private Exception? _failure;

    /// <summary>Creates a pool of <paramref name="threads"/> threads in all, the caller's included.</summary>
    /// <param name="threads">At least 1; 1 runs every job on the caller.</param>
    public WorkerPool(int threads)
    {
        if (threads < 1) throw new ArgumentOutOfRangeException(nameof(threads), threads, "a pool needs at least 1 thread.");
        Threads = threads;
        _workers = new Thread[threads - 1];
        _start = new ManualResetEventSlim[threads - 1];
        _tickets = new long[threads * TicketStride];
        for (int i = 0; i < _workers.Length; i++)
        {
            _start[i] = new ManualResetEventSlim(false, spinCount: 2000);
            int index = i + 1;
            _workers[i] = new Thread(() => Work(index)) { IsBackground = true, Name = $"Dsl.Runtime worker {index}" };
            _workers[i].Start();
        }

        // ManualResetEventSlim creates its lock object the first time a thread really blocks on it. The caller
        // blocks on _done only when a worker is slow (a busy machine); make that first time now, not in a
        // model's call, whose zero-allocation promise it would break by 24 bytes.
        _done.Wait(1);
    }

    /// <summary>Threads that run each job, the caller's included.</summary>
    public int Threads { get; }

    /// <summary>The number of threads to use when the caller asks for "all cores": <see cref="Environment.ProcessorCount"/>.</summary>
    public static int AllCores => Environment.ProcessorCount;

    /// <summary>The process-wide pool of <paramref name="threads"/> threads, created on first use and never disposed.</summary>
    /// <param name="threads">At least 2.</param>
    /// <returns>The shared pool.</returns>
    public static WorkerPool Shared(int threads)
    {
        lock (s_shared)
        {
            if (!s_shared.TryGetValue(threads, out var pool)) s_shared[threads] = pool = new WorkerPool(threads);
            return pool;
        }
    }

    /// <summary>Runs <c>body(state, part, Threads)</c> for every part in <c>[0, Threads)</c>, part 0 on the caller; returns when all are done.</summary>
    /// <param name="body">The job; it must split its work by <c>part</c> and touch only its share.</param>
    /// <param name="state">The job's state, alive and pinned until this returns.</param>
    public void Run(delegate*<void*, int, int, void> body, void* state)
    {
        if (_workers.Length == 0)
        {
            body(state, 0, 1);
            return;
        }

        lock (_gate) RunLocked(body, state, null);
    }

    /// <summary>
    /// Runs <c>body(part, Threads)</c> for every part, part 0 on the caller, for a job whose state lives in an object
    /// (an optimizer's arrays). Allocation-free when the caller keeps the delegate.
    /// </summary>
    /// <param name="body">The job; it must split its work by <c>part</c> and touch only its share.</param>
    public void Run(Action<int, int> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (_workers.Length == 0)
        {
            body(0, 1);
            return;
        }

        lock (_gate) RunLocked(null, null, body);
    }

    /// <summary>The most chunks one <c>RunChunks</c> job may have.</summary>
    public const int MaxChunks = ushort.MaxValue;

    /// <summary>
    /// Runs <c>body(state, chunk, chunks, thread)</c> for every chunk in <c>[0, chunks)</c>, each exactly once, on
    /// whichever thread claims it first (<c>thread</c> is that thread's index in <c>[0, Threads)</c>, 0 for the caller,
    /// for per-thread scratch); returns when all are done. Each thread first claims, in order, the chunks of its own
    /// block (<c>Share(chunks, thread, Threads)</c>), so consecutive jobs split the same way (the layers of one pass)
    /// find each chunk's data in the cache of the core that wrote it; a thread done with its block takes what is still
    /// unclaimed in the others' from their ends. Unlike <c>Run</c>, which gives each thread a fixed part, a late or
    /// descheduled worker costs at most the chunk it holds: the others take the rest, and the caller never waits for a
    /// worker that has not started one.
    /// </summary>
    /// <param name="body">The job; a chunk's work must depend only on its index, not on the thread that runs it.</param>
    /// <param name="state">The job's state, alive and pinned until this returns.</param>
    /// <param name="chunks">Chunks, from 1 to <see cref="MaxChunks"/>.</param>
    public void RunChunks(delegate*<void*, int, int, int, void> body, void* state, int chunks) => RunChunks(body, state, null, chunks);

    /// <summary>
    /// Runs <c>body(chunk, chunks)</c> for every chunk, each exactly once, on whichever thread claims it first, for a
    /// job whose state lives in an object (an optimizer's arrays); as the function-pointer overload otherwise.
    /// Allocation-free when the caller keeps the delegate.
    /// </summary>
    /// <param name="body">The job; a chunk's work must depend only on its index, not on the thread that runs it.</param>
    /// <param name="chunks">Chunks, from 1 to <see cref="MaxChunks"/>.</param>
    public void RunChunks(Action<int, int> body, int chunks)
    {
        ArgumentNullException.ThrowIfNull(body);
        RunChunks(null, null, body, chunks);
    }

    // Either overload: the delegate when `managed` is not null, the function pointer otherwise.
    private void RunChunks(delegate*<void*, int, int, int, void> body, void* state, Action<int, int>? managed, int chunks)
    {
        if (chunks < 1 || chunks > MaxChunks) throw new ArgumentOutOfRangeException(nameof(chunks), chunks, $"a job has from 1 to {MaxChunks} chunks.");
        if (_workers.Length == 0 || chunks == 1)
        {
            // On the caller alone, with the pooled path's contract: every chunk runs, the first failure is reported after.
            Exception? first = null;
            for (int c = 0; c < chunks; c++)
            {
                try
                {
                    RunChunk(body, state, managed, c, chunks, 0);
                }
                catch (Exception exception)
                {
                    first ??= exception;
                }
            }

            if (first is not null) throw new AggregateException("a chunk of a parallel job failed", first);
            return;
        }

        lock (_gate) RunChunksLocked(body, state, managed, chunks);
    }

    private static void RunChunk(delegate*<void*, int, int, int, void> body, void* state, Action<int, int>? managed, int chunk, int chunks, int thread)
    {
        if (managed is not null) managed(chunk, chunks);
        else body(state, chunk, chunks, thread);
    }

    private void RunChunksLocked(delegate*<void*, int, int, int, void> body, void* state, Action<int, int>? managed, int chunks)
    {
        _chunkBody = body;
        _managedChunkBody = managed;
        _state = state;
        _chunks = chunks;
        _failure = null;
        _completed = 0;
        _done.Reset();
        // Publish: a worker claims a chunk by advancing a ticket, then reads the fields above. Until its ticket is
        // set, a thread's block reads as empty (every ticket is when a job ends: all its chunks were claimed).
        for (int t = 0; t < Threads; t++)
        {
            var (start, end) = Share(chunks, t, Threads);
            Interlocked.Exchange(ref _tickets[t * TicketStride], (long)end << 16 | (uint)start);
        }

        Volatile.Write(ref _signal, (_signal | 1) + 1 | 1);
        foreach (var start in _start) start.Set();
        try
        {
            ClaimChunks(0);
        }
        finally
        {
            // Set by whoever finishes the last chunk, after its count: waiting on it (rather than reading the
            // count) makes sure no Set from this job can land on the next one.
            _done.Wait();
            _managedChunkBody = null;
        }

        if (_failure is { } failure) throw new AggregateException("a chunk of a parallel job failed", failure);
    }

    // Claims chunks of the published job until none is left: the front of its own block first, then the back of
    // the others' (a thread that stole from a block leaves its owner the chunks nearest those it has done). A claim (a
    // compare-and-swap of a ticket) comes before any read of the job's fields: a claimed chunk is unfinished, so the
    // job is still the caller's and its fields are still its own, even for a worker that woke up for an older job.
    private void ClaimChunks(int thread)
    {
        int threads = Threads;
        for (int i = 0; i < threads; i++)
        {
            int owner = thread + i < threads ? thread + i : thread + i - threads;
            ref long slot = ref _tickets[owner * TicketStride];
            while (true)
            {
                long ticket = Volatile.Read(ref slot);
                int next = (int)(ticket & 0xFFFF), end = (int)(ticket >> 16);
                if (next >= end) break;
                int chunk;
                long claimed;
                if (i == 0)
                {
                    chunk = next;
                    claimed = ticket + 1;
                }
                else
                {
                    chunk = end - 1;
                    claimed = (long)(end - 1) << 16 | (uint)next;
                }

                if (Interlocked.CompareExchange(ref slot, claimed, ticket) != ticket) continue;
                int chunks = _chunks; // read before this chunk counts as done: after that, the caller may publish another job
                try
                {
                    RunChunk(_chunkBody, _state, _managedChunkBody, chunk, chunks, thread);
                }
                catch (Exception exception)
                {
                    Interlocked.CompareExchange(ref _failure, exception, null);
                }

                if (Interlocked.Increment(ref _completed) == chunks) _done.Set();
            }
        }
    }

    private void RunLocked(delegate*<void*, int, int, void> body, void* state, Action<int, int>? managed)
    {
        _body = body;
        _state = state;
        _managed = managed;
        _failure = null;
        _remaining = _workers.Length;
        _done.Reset();
        Volatile.Write(ref _signal, (_signal | 1) + 1);
        foreach (var start in _start) start.Set();
        try
        {
            if (managed is not null) managed(0, Threads);
            else body(state, 0, Threads);
        }
        finally
        {
            _done.Wait();
            _managed = null;
        }

        if (_failure is { } failure) throw new AggregateException("a worker thread failed", failure);
    }

    private void Work(int index)
    {
        var start = _start[index - 1];
        int seen = 0;
        while (true)
        {
            long until = System.Diagnostics.Stopwatch.GetTimestamp() + SpinTicks;
            while (Volatile.Read(ref _signal) == seen && !_stopping)
            {
                if (System.Diagnostics.Stopwatch.GetTimestamp() < until)
                {
                    Thread.SpinWait(20);
                    continue;
                }

                // Nothing for a while: sleep until the next job (its Set comes after the generation changes).
                start.Wait();
                start.Reset();
            }

            seen = Volatile.Read(ref _signal);
            if (_stopping) return;
            if ((seen & 1) != 0)
            {
                ClaimChunks(index); // a chunked job: nothing to report if the others took every chunk
                continue;
            }

            try
            {
                if (_managed is { } managed) managed(index, Threads);
                else _body(_state, index, Threads);
            }
            catch (Exception exception)
            {
                _failure = exception;
            }

            if (Interlocked.Decrement(ref _remaining) == 0) _done.Set();
        }
    }

    /// <summary>The half-open range of <paramref name="count"/> items that <paramref name="part"/> of <paramref name="parts"/> handles.</summary>
    /// <param name="count">Items to split.</param>
    /// <param name="part">This part.</param>
    /// <param name="parts">All parts.</param>
    /// <returns>The first item and one past the last.</returns>
    public static (int Start, int End) Share(int count, int part, int parts)
    {
        long start = (long)count * part / parts, end = (long)count * (part + 1) / parts;
        return ((int)start, (int)end);
    }

    /// <summary>Stops the worker threads.</summary>
    public void Dispose()
    {
        if (_stopping) return;
        _stopping = true;
        foreach (var start in _start) start.Set();
        foreach (var worker in _workers) worker.Join();
        foreach (var start in _start) start.Dispose();
        _done.Dispose();
    }
}
