package collector

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
)

func init() {
	Register(Spec{
		Name:           "memory",
		DefaultEnabled: true,
		Core:           true,
		Setup: func(*kingpin.Application) Factory {
			return func(env Env) (Collector, error) {
				if err := checkProcDir(env.Paths.ProcFS); err != nil {
					return nil, err
				}
				return newMemoryCollector(env.Paths.ProcFS), nil
			}
		},
	})
}

// memoryCollector exports the few /proc/meminfo fields an operator needs to
// see memory pressure; node_exporter's meminfo collector exports all ~50.
type memoryCollector struct {
	mu     sync.Mutex
	file   *procFile
	series [len(memFields)]*series // in the order of memFields
}

func newMemoryCollector(procPath string) *memoryCollector {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "memory", name), help, nil, nil)
	}
	c := &memoryCollector{file: newProcFile(filepath.Join(procPath, "meminfo"))}
	for i, d := range [len(memFields)]*prometheus.Desc{
		desc("total_bytes", "Usable RAM (MemTotal in /proc/meminfo)."),
		desc("available_bytes", "Memory available for new work without swapping, as estimated by the kernel (MemAvailable)."),
		desc("free_bytes", "Memory not used at all (MemFree)."),
		desc("buffers_bytes", "Memory in block-device buffers (Buffers)."),
		desc("cached_bytes", "Memory in the page cache (Cached)."),
		desc("swap_total_bytes", "Total swap space (SwapTotal)."),
		desc("swap_free_bytes", "Unused swap space (SwapFree)."),
	} {
		c.series[i] = &series{desc: d}
	}
	return c
}

func (c *memoryCollector) Update(_ context.Context, ch *Batch) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, err := c.file.read()
	if err != nil {
		return fmt.Errorf("reading meminfo: %w", err)
	}
	m, err := parseMeminfo(b)
	if err != nil {
		return err
	}
	if !m.present[0] {
		return errors.New("reading meminfo: no MemTotal line")
	}
	// A field the kernel does not provide (MemAvailable before Linux 3.14)
	// is left out rather than reported as 0, which would read as "no memory".
	for i, s := range c.series {
		if m.present[i] {
			ch.Send(s.gauge(float64(m.bytes[i])))
		}
	}
	return nil
}
