package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
)

func init() {
	Register(Spec{
		Name:           "cpu",
		DefaultEnabled: true,
		Core:           true,
		Setup: func(*kingpin.Application) Factory {
			return func(env Env) (Collector, error) {
				if err := checkProcDir(env.Paths.ProcFS); err != nil {
					return nil, err
				}
				return newCPUCollector(env.Paths.ProcFS, env.Logger), nil
			}
		},
	})
}

// cpuModes are the columns of a cpu line in /proc/stat that we export, in
// file order. guest and guest_nice are left out on purpose: the kernel already
// counts them inside user and nice, so exporting them as modes would make the
// sum over modes exceed wall-clock time.
var cpuModes = [...]string{"user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"}

// cpuCollector exports /proc/stat: seconds per CPU and mode, the number of
// online CPUs, and the boot time.
//
// The kernel's per-CPU counters are not strictly monotonic: iowait and idle
// are derived from nohz accounting and can step back, and a CPU that goes
// offline and returns reports values that lag what it reported before. A
// counter that goes backwards makes Prometheus' rate() see a reset and
// produce a huge spike, so the collector remembers the last value it sent for
// every (cpu, mode) and never sends less. The memory is kept for CPUs that
// went offline too, so they resume where they left off.
type cpuCollector struct {
	logger  *slog.Logger
	seconds *prometheus.Desc
	count   *prometheus.Desc
	boot    *prometheus.Desc

	countSeries, bootSeries *series

	mu   sync.Mutex
	stat *procFile
	cpus []cpuTicks // reused parse buffer
	last map[int64]*cpuSeries
}

// cpuSeries is the clamping memory of one CPU, and its series.
type cpuSeries struct {
	label  string // the cpu label value, formatted once
	values [len(cpuModes)]float64
	series [len(cpuModes)]*series
}

func newCPUCollector(procPath string, logger *slog.Logger) *cpuCollector {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &cpuCollector{
		stat:   newProcFile(filepath.Join(procPath, "stat")),
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
		last: map[int64]*cpuSeries{},
	}
	c.countSeries = &series{desc: c.count}
	c.bootSeries = &series{desc: c.boot}
	return c
}

func (c *cpuCollector) newCPU(id int64) (*cpuSeries, error) {
	cs := &cpuSeries{label: strconv.FormatInt(id, 10)}
	for i, mode := range cpuModes {
		s, err := newSeries(c.seconds, cs.label, mode)
		if err != nil {
			return nil, err
		}
		cs.series[i] = s
	}
	return cs, nil
}

func (c *cpuCollector) Update(_ context.Context, ch *Batch) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, err := c.stat.read()
	if err != nil {
		return fmt.Errorf("reading stat: %w", err)
	}
	cpus, btime, err := parseProcStat(b, c.cpus)
	if err != nil {
		return err
	}
	c.cpus = cpus
	if len(cpus) == 0 {
		return errors.New("reading stat: no per-CPU lines")
	}
	for _, cs := range cpus {
		prev, ok := c.last[cs.id]
		if !ok {
			if prev, err = c.newCPU(cs.id); err != nil {
				return err
			}
			c.last[cs.id] = prev
		}
		for i, ticks := range cs.ticks {
			v := float64(ticks) / userHZ
			if v < prev.values[i] {
				c.logger.Debug("CPU counter went backwards; keeping the last value",
					"cpu", prev.label, "mode", cpuModes[i], "last", prev.values[i], "now", v)
				v = prev.values[i]
			}
			prev.values[i] = v
			ch.Send(prev.series[i].counter(v))
		}
	}
	ch.Send(c.countSeries.gauge(float64(len(cpus))))
	if btime == 0 {
		return errors.New("reading stat: no btime line")
	}
	ch.Send(c.bootSeries.gauge(float64(btime)))
	return nil
}
