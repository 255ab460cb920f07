package collector

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"
)

func init() {
	Register(Spec{
		Name:           "cpu",
		DefaultEnabled: true,
		Core:           true,
		Setup: func(*kingpin.Application) Factory {
			return func(env Env) (Collector, error) {
				fs, err := openProcFS(env.Paths.ProcFS)
				if err != nil {
					return nil, err
				}
				return newCPUCollector(fs, env.Logger), nil
			}
		},
	})
}

// cpuModes are the columns of a cpu line in /proc/stat that we export, in
// file order. guest and guest_nice are left out on purpose: the kernel already
// counts them inside user and nice, so exporting them as modes would make the
// sum over modes exceed wall-clock time.
var cpuModes = [...]string{"user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"}

func cpuModeSeconds(s procfs.CPUStat) [len(cpuModes)]float64 {
	return [...]float64{s.User, s.Nice, s.System, s.Idle, s.Iowait, s.IRQ, s.SoftIRQ, s.Steal}
}

// cpuCollector exports /proc/stat (read by procfs): seconds per CPU and
// mode, the number of online CPUs, and the boot time.
//
// The kernel's per-CPU counters are not strictly monotonic: iowait and idle
// are derived from nohz accounting and can step back, and a CPU that goes
// offline and returns reports values that lag what it reported before. A
// counter that goes backwards makes Prometheus' rate() see a reset and
// produce a huge spike, so the collector remembers the last value it sent for
// every (cpu, mode) and never sends less. The memory is kept for CPUs that
// went offline too, so they resume where they left off.
type cpuCollector struct {
	fs      procfs.FS
	logger  *slog.Logger
	seconds *prometheus.Desc
	count   *prometheus.Desc
	boot    *prometheus.Desc

	// now is the clock; tests replace it.
	now func() time.Time

	mu   sync.Mutex
	last map[int64]*cpuLast
}

// cpuLast is what was last sent for one CPU, per mode, and when that
// value was read.
type cpuLast struct {
	v  [len(cpuModes)]float64
	at [len(cpuModes)]time.Time
}

// A CPU cannot spend more than the elapsed wall time in its modes. A
// reading that grew faster than cpuJumpFactor times the time since the
// last one, plus cpuJumpSlack (for the jitter of scrape times and of the
// kernel's tick accounting), is a bad read: adopting it would hold the
// counter at that value for good, since lower readings are clamped to the
// last one. It is not adopted; the last value is sent instead.
const (
	cpuJumpFactor = 4
	cpuJumpSlack  = 10 * time.Second
)

func newCPUCollector(fs procfs.FS, logger *slog.Logger) *cpuCollector {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &cpuCollector{
		fs:     fs,
		logger: logger,
		seconds: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "cpu", "seconds_total"),
			"Seconds the CPUs spent in each mode (from /proc/stat; clamped so it never goes backwards; guest time is inside user and nice).",
			[]string{"cpu", "mode"}, nil),
		// Not clavis_cpu_count: a _count suffix belongs to histograms and
		// summaries, and promtool check metrics flags it on a gauge.
		count: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", "cpus_online"),
			"Number of online CPUs (per-CPU lines in /proc/stat).", nil, nil),
		boot: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", "boot_time_seconds"),
			"Time the host booted, in seconds since the Unix epoch (btime in /proc/stat).", nil, nil),
		now:  time.Now,
		last: map[int64]*cpuLast{},
	}
}

func (c *cpuCollector) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	stat, err := c.fs.Stat()
	if err != nil {
		return procfsError("stat", err)
	}
	if len(stat.CPU) == 0 {
		return errors.New("reading stat: no per-CPU lines")
	}
	// A value procfs parsed but no kernel writes (NaN, an infinity, a
	// negative count, a negative CPU number) fails the scrape rather than
	// being exported as if it were a reading.
	for id, cs := range stat.CPU {
		if id < 0 {
			return errors.New("reading stat: a per-CPU line has a negative CPU number")
		}
		for i, v := range cpuModeSeconds(cs) {
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				return fmt.Errorf("reading stat: cpu%d %s is not a finite, non-negative number", id, cpuModes[i])
			}
		}
	}
	now := c.now()
	// The first reading of a (cpu, mode) has no earlier one to be compared
	// with, but it cannot exceed the time since boot: one that does is not
	// adopted (it would hold the counter there for good) and its series
	// waits for a sane reading. An unknown or future boot time checks
	// nothing.
	var sinceBoot float64
	if stat.BootTime > 0 {
		sinceBoot = now.Sub(time.Unix(int64(stat.BootTime), 0)).Seconds()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, cs := range stat.CPU {
		prev, ok := c.last[id]
		if !ok {
			prev = &cpuLast{}
			c.last[id] = prev
		}
		label := strconv.FormatInt(id, 10)
		for i, v := range cpuModeSeconds(cs) {
			seen := !prev.at[i].IsZero()
			switch {
			case !seen && sinceBoot > 0 && v > cpuJumpFactor*sinceBoot+cpuJumpSlack.Seconds():
				c.logger.Debug("CPU counter exceeds the time since boot; not exported until it is sane",
					"cpu", label, "mode", cpuModes[i], "now", v, "since_boot", sinceBoot)
				continue
			case v < prev.v[i]:
				c.logger.Debug("CPU counter went backwards; keeping the last value",
					"cpu", label, "mode", cpuModes[i], "last", prev.v[i], "now", v)
				v = prev.v[i]
			case seen && v-prev.v[i] > cpuJumpFactor*now.Sub(prev.at[i]).Seconds()+cpuJumpSlack.Seconds():
				c.logger.Debug("CPU counter grew faster than wall time allows; keeping the last value",
					"cpu", label, "mode", cpuModes[i], "last", prev.v[i], "now", v)
				v = prev.v[i]
			default:
				prev.v[i], prev.at[i] = v, now
			}
			ch <- prometheus.MustNewConstMetric(c.seconds, prometheus.CounterValue, v, label, cpuModes[i])
		}
	}
	ch <- prometheus.MustNewConstMetric(c.count, prometheus.GaugeValue, float64(len(stat.CPU)))
	if stat.BootTime == 0 {
		return errors.New("reading stat: no btime line")
	}
	ch <- prometheus.MustNewConstMetric(c.boot, prometheus.GaugeValue, float64(stat.BootTime))
	return nil
}

// openProcFS opens the procfs tree of --path.procfs; a path that is not a
// directory is a start-up error naming the flag.
func openProcFS(path string) (procfs.FS, error) {
	fs, err := procfs.NewFS(path)
	if err != nil {
		return procfs.FS{}, fmt.Errorf("--path.procfs: %w", err)
	}
	return fs, nil
}

// procfsError is the error a collector reports for a /proc file procfs
// could not read or parse. procfs quotes the offending line or value in its
// parse errors, and a line of /proc can carry what no log line may (a vault
// identifier in a mount point, a user's name in a path, a device named by
// whoever created it), so only an operating-system error (which names the
// file and the errno) is kept; anything else says the file is malformed.
func procfsError(file string, err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return fmt.Errorf("reading %s: %w", file, pe)
	}
	return fmt.Errorf("reading %s: malformed content", file)
}
