package collector

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
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
				c := newCPUCollector(fs, env.Logger)
				c.procRoot = env.Paths.ProcFS
				return c, nil
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
	// procRoot (--path.procfs) is where stat is read line by line when
	// procfs cannot parse it (see salvageStat); empty: not read again.
	procRoot string

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
	// readErr is nil, or says how many lines of a file procfs could not
	// parse were skipped; what the other lines hold is exported.
	stat, readErr := c.read()
	if stat == nil {
		return readErr
	}
	if len(stat.CPU) == 0 {
		if readErr == nil {
			return errors.New("reading stat: no per-CPU lines")
		}
		if stat.BootTime > 0 {
			ch <- prometheus.MustNewConstMetric(c.boot, prometheus.GaugeValue, float64(stat.BootTime))
		}
		return readErr
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
		if readErr != nil {
			return readErr
		}
		return errors.New("reading stat: no btime line")
	}
	ch <- prometheus.MustNewConstMetric(c.boot, prometheus.GaugeValue, float64(stat.BootTime))
	return readErr
}

// read returns procfs' reading of stat, or what salvageStat keeps of a
// file procfs cannot parse (see readSalvaging); nil when nothing was read.
func (c *cpuCollector) read() (*procfs.Stat, error) {
	return readSalvaging("stat", c.procRoot,
		func() (*procfs.Stat, error) { s, err := c.fs.Stat(); return &s, err },
		func(path string) (*procfs.Stat, int, error) { s, bad, err := salvageStat(path); return &s, bad, err })
}

// procfsMaxRead is how much of a /proc file procfs reads (its
// parsers.ReadFileNoStat); a salvage reads the same bytes.
const procfsMaxRead = 1024 * 1024

// procLines is the first procfsMaxRead bytes of a /proc file, split into
// lines as procfs' bufio.Scanner splits them (on "\n", one "\r" before
// it dropped, no empty line after the last "\n").
func procLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, procfsMaxRead))
	if err != nil {
		return nil, err
	}
	text := string(data)
	if text == "" {
		return nil, nil
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	return lines, nil
}

// salvageStat reads stat line by line with procfs' rules (its parseStat
// and parseCPUStat: a line of fewer than two fields is ignored; a cpuN
// line is read by the same Sscanf, so an old kernel's line with fewer
// trailing columns is kept, and its USER_HZ ticks are divided by 100 into
// seconds; the "cpu" line is the aggregate, not a CPU; btime is an
// unsigned integer), keeping the cpu and btime lines that parse and
// counting every line procfs would fail the file on, whether it is kept
// or not (a bad intr or softirq line too). A later good line of the same
// key wins over an earlier one, as in procfs.
//
// Bespoke, and only used when procfs fails, for a user-visible target:
// one malformed line must not cost the other CPUs' series and the boot
// time; procfs fails the whole file on one.
func salvageStat(path string) (procfs.Stat, int, error) {
	lines, err := procLines(path)
	if err != nil {
		return procfs.Stat{}, 0, err
	}
	stat, bad := procfs.Stat{CPU: map[int64]procfs.CPUStat{}}, 0
	for _, line := range lines {
		parts := strings.Fields(line)
		if len(parts) < 2 {
			continue
		}
		ok := true
		switch key := parts[0]; {
		case key == "btime":
			v, err := strconv.ParseUint(parts[1], 10, 64)
			if ok = err == nil; ok {
				stat.BootTime = v
			}
		case key == "intr":
			for _, f := range parts[1:] {
				if _, err := strconv.ParseUint(f, 10, 64); err != nil {
					ok = false
					break
				}
			}
		case key == "ctxt" || key == "processes" || key == "procs_running" || key == "procs_blocked":
			_, err := strconv.ParseUint(parts[1], 10, 64)
			ok = err == nil
		case key == "softirq":
			var prefix string
			var v [11]uint64
			_, err := fmt.Sscanf(line, "%s %d %d %d %d %d %d %d %d %d %d %d", &prefix,
				&v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10])
			ok = err == nil
		case strings.HasPrefix(key, "cpu"):
			var cs procfs.CPUStat
			var id int64
			if cs, id, ok = parseStatCPULine(line); ok {
				if id == -1 {
					stat.CPUTotal = cs
				} else {
					stat.CPU[id] = cs
				}
			}
		}
		if !ok {
			bad++
		}
	}
	return stat, bad, nil
}

// parseStatCPULine is procfs' parseCPUStat without the line in its
// errors: the CPU's seconds per mode and its number, -1 for the "cpu"
// aggregate line.
func parseStatCPULine(line string) (procfs.CPUStat, int64, bool) {
	var s procfs.CPUStat
	var name string
	n, err := fmt.Sscanf(line, "%s %f %f %f %f %f %f %f %f %f %f", &name,
		&s.User, &s.Nice, &s.System, &s.Idle, &s.Iowait, &s.IRQ, &s.SoftIRQ, &s.Steal, &s.Guest, &s.GuestNice)
	if (err != nil && !errors.Is(err, io.EOF)) || n == 0 {
		return procfs.CPUStat{}, 0, false
	}
	const userHZ = 100 // procfs' USER_HZ
	for _, v := range []*float64{&s.User, &s.Nice, &s.System, &s.Idle, &s.Iowait, &s.IRQ, &s.SoftIRQ, &s.Steal, &s.Guest, &s.GuestNice} {
		*v /= userHZ
	}
	if name == "cpu" {
		return s, -1, true
	}
	if len(name) < 3 { // procfs would panic on it
		return procfs.CPUStat{}, 0, false
	}
	id, err := strconv.ParseInt(name[3:], 10, 64)
	if err != nil {
		return procfs.CPUStat{}, 0, false
	}
	return s, id, true
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
