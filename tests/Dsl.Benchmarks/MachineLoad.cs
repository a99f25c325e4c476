// How quiet the machine was during the run: CPU time spent by other processes (and stolen by the
// hypervisor) while the benchmarks ran, from /proc/stat and /proc/self/stat. On 2 cores any other load
// distorts the numbers, most of all the 2-thread cells (a spinning OpenMP or ORT team that loses a core
// waits a whole scheduler slice), so ratios.md states it.
using System.Globalization;

namespace Dsl.Benchmarks;

public sealed class MachineLoad
{
    private const double TicksPerSecond = 100; // USER_HZ on Linux

    private readonly long _busy;
    private readonly long _steal;
    private readonly long _self;
    private readonly DateTime _at;

    private MachineLoad(long busy, long steal, long self, DateTime at)
    {
        _busy = busy;
        _steal = steal;
        _self = self;
        _at = at;
    }

    /// <summary>A snapshot, or null where /proc is not available.</summary>
    public static MachineLoad? Now()
    {
        try
        {
            // cpu  user nice system idle iowait irq softirq steal guest guest_nice
            var cpu = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1)
                .Select(v => long.Parse(v, CultureInfo.InvariantCulture)).ToArray();
            long busy = cpu[0] + cpu[1] + cpu[2] + cpu[5] + cpu[6];
            long steal = cpu.Length > 7 ? cpu[7] : 0;
            // /proc/self/stat: fields after the ")" of the command name; utime and stime are fields 14 and 15.
            var stat = File.ReadAllText("/proc/self/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            long self = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
            return new MachineLoad(busy, steal, self, DateTime.UtcNow);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException or InvalidOperationException)
        {
            return null;
        }
    }

    /// <summary>One line: other processes' and stolen CPU between <paramref name="start"/> and now.</summary>
    public static string Describe(MachineLoad? start)
    {
        var end = Now();
        if (start is null || end is null) return "machine load: unknown (no /proc).";
        double seconds = (end._at - start._at).TotalSeconds;
        double others = Math.Max(0, (end._busy - start._busy) - (end._self - start._self)) / TicksPerSecond;
        double steal = (end._steal - start._steal) / TicksPerSecond;
        string loadavg = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : "?";
        string verdict = others / seconds > 0.05 || steal / seconds > 0.05
            ? "**the machine was NOT quiet: treat these numbers, the 2-thread cells most of all, as noisy**"
            : "quiet";
        return $"machine load during the run ({F(seconds)} s): other processes used {F(others)} CPU-s ({F(100 * others / seconds)}% of one core), " +
               $"hypervisor steal {F(steal)} s; load average now {loadavg}; {verdict}.";
    }

    private static string F(double v) => v.ToString("0.0", CultureInfo.InvariantCulture);
}
