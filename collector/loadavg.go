package collector

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
)

func init() {
	Register(Spec{
		Name:           "loadavg",
		DefaultEnabled: true,
		Setup: func(*kingpin.Application) Factory {
			return func(env Env) (Collector, error) {
				if err := checkProcDir(env.Paths.ProcFS); err != nil {
					return nil, err
				}
				return newLoadavgCollector(env.Paths.ProcFS), nil
			}
		},
	})
}

// loadavgCollector exports /proc/loadavg.
type loadavgCollector struct {
	mu     sync.Mutex
	file   *procFile
	series [3]*series
}

func newLoadavgCollector(procPath string) *loadavgCollector {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, nil, nil)
	}
	c := &loadavgCollector{file: newProcFile(filepath.Join(procPath, "loadavg"))}
	for i, d := range [3]*prometheus.Desc{
		desc("load1", "1-minute load average (runnable and uninterruptible tasks)."),
		desc("load5", "5-minute load average."),
		desc("load15", "15-minute load average."),
	} {
		c.series[i] = &series{desc: d}
	}
	return c
}

func (c *loadavgCollector) Update(_ context.Context, ch *Batch) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, err := c.file.read()
	if err != nil {
		return fmt.Errorf("reading loadavg: %w", err)
	}
	l, err := parseLoadavg(b)
	if err != nil {
		return err
	}
	for i, s := range c.series {
		ch.Send(s.gauge(l[i]))
	}
	return nil
}
