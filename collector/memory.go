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
		desc       *prometheus.Desc
		raw, bytes *uint64
	}{
		{c.total, m.MemTotal, m.MemTotalBytes},
		{c.available, m.MemAvailable, m.MemAvailableBytes},
		{c.free, m.MemFree, m.MemFreeBytes},
		{c.buffers, m.Buffers, m.BuffersBytes},
		{c.cached, m.Cached, m.CachedBytes},
		{c.swapTotal, m.SwapTotal, m.SwapTotalBytes},
		{c.swapFree, m.SwapFree, m.SwapFreeBytes},
	} {
		if f.bytes != nil && f.raw != nil {
			ch <- prometheus.MustNewConstMetric(f.desc, prometheus.GaugeValue, meminfoBytes(*f.raw, *f.bytes))
		}
	}
	return nil
}

// meminfoBytes is a meminfo field in bytes, from the number written (raw)
// and procfs' bytes for it. procfs multiplies a kB value by 1024 in uint64,
// which wraps past 16 EiB (2^54 kB reads as 0 bytes): a kB value is
// multiplied here in float64 instead. procfs' bytes equal the number
// written when the line has no unit (or the value is 0).
func meminfoBytes(raw, bytes uint64) float64 {
	if bytes == raw {
		return float64(raw)
	}
	return float64(raw) * 1024
}
