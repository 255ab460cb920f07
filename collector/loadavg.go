package collector

import (
	"context"
	"errors"
	"math"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"
)

func init() {
	Register(Spec{
		Name:           "loadavg",
		DefaultEnabled: true,
		Setup: func(*kingpin.Application) Factory {
			return func(env Env) (Collector, error) {
				fs, err := openProcFS(env.Paths.ProcFS)
				if err != nil {
					return nil, err
				}
				return newLoadavgCollector(fs), nil
			}
		},
	})
}

// loadavgCollector exports /proc/loadavg.
type loadavgCollector struct {
	fs                   procfs.FS
	load1, load5, load15 *prometheus.Desc
}

func newLoadavgCollector(fs procfs.FS) *loadavgCollector {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, nil, nil)
	}
	return &loadavgCollector{
		fs:     fs,
		load1:  desc("load1", "1-minute load average (runnable and uninterruptible tasks)."),
		load5:  desc("load5", "5-minute load average."),
		load15: desc("load15", "15-minute load average."),
	}
}

func (c *loadavgCollector) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	l, err := c.fs.LoadAvg()
	if err != nil {
		return procfsError("loadavg", err)
	}
	// procfs parses the fields as floats, so "NaN" or "+Inf" pass it; no
	// kernel writes them, nor a negative load.
	for _, v := range [...]float64{l.Load1, l.Load5, l.Load15} {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return errors.New("reading loadavg: a load average is not a finite, non-negative number")
		}
	}
	ch <- prometheus.MustNewConstMetric(c.load1, prometheus.GaugeValue, l.Load1)
	ch <- prometheus.MustNewConstMetric(c.load5, prometheus.GaugeValue, l.Load5)
	ch <- prometheus.MustNewConstMetric(c.load15, prometheus.GaugeValue, l.Load15)
	return nil
}
