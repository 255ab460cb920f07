package collector

import (
	"context"
	"errors"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"
)

func init() {
	Register(Spec{
		Name:           "memory",
		DefaultEnabled: true,
		Core:           true,
		Setup: func(*kingpin.Application) Factory {
			return func(env Env) (Collector, error) {
				fs, err := openProcFS(env.Paths.ProcFS)
				if err != nil {
					return nil, err
				}
				return newMemoryCollector(fs), nil
			}
		},
	})
}

// memoryCollector exports the few /proc/meminfo fields an operator needs to
// see memory pressure; node_exporter's meminfo collector exports all ~50.
type memoryCollector struct {
	fs                                                           procfs.FS
	total, available, free, buffers, cached, swapTotal, swapFree *prometheus.Desc
}

func newMemoryCollector(fs procfs.FS) *memoryCollector {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "memory", name), help, nil, nil)
	}
	return &memoryCollector{
		fs:        fs,
		total:     desc("total_bytes", "Usable RAM (MemTotal in /proc/meminfo)."),
		available: desc("available_bytes", "Memory available for new work without swapping, as estimated by the kernel (MemAvailable)."),
		free:      desc("free_bytes", "Memory not used at all (MemFree)."),
		buffers:   desc("buffers_bytes", "Memory in block-device buffers (Buffers)."),
		cached:    desc("cached_bytes", "Memory in the page cache (Cached)."),
		swapTotal: desc("swap_total_bytes", "Total swap space (SwapTotal)."),
		swapFree:  desc("swap_free_bytes", "Unused swap space (SwapFree)."),
	}
}

func (c *memoryCollector) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	m, err := c.fs.Meminfo()
	if err != nil {
		return procfsError("meminfo", err)
	}
	if m.MemTotalBytes == nil {
		return errors.New("reading meminfo: no MemTotal line")
	}
	// A field the kernel does not provide (MemAvailable before Linux 3.14)
	// is left out rather than reported as 0, which would read as "no memory".
	for _, f := range []struct {
		desc  *prometheus.Desc
		bytes *uint64
	}{
		{c.total, m.MemTotalBytes},
		{c.available, m.MemAvailableBytes},
		{c.free, m.MemFreeBytes},
		{c.buffers, m.BuffersBytes},
		{c.cached, m.CachedBytes},
		{c.swapTotal, m.SwapTotalBytes},
		{c.swapFree, m.SwapFreeBytes},
	} {
		if f.bytes != nil {
			ch <- prometheus.MustNewConstMetric(f.desc, prometheus.GaugeValue, float64(*f.bytes))
		}
	}
	return nil
}
