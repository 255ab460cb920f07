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
	mu    sync.Mutex
	file  *procFile
	descs [3]*prometheus.Desc
}

func newLoadavgCollector(procPath string) *loadavgCollector {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, nil, nil)
	}
	return &loadavgCollector{
		file: newProcFile(filepath.Join(procPath, "loadavg")),
		descs: [3]*prometheus.Desc{
			desc("load1", "1-minute load average (runnable and uninterruptible tasks)."),
			desc("load5", "5-minute load average."),
			desc("load15", "15-minute load average."),
		},
	}
}

func (c *loadavgCollector) Update(_ context.Context, ch chan<- prometheus.Metric) error {
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
	for i, d := range c.descs {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, l[i])
	}
	return nil
}
