package collector

import (
	"context"
	"errors"
	"strconv"
	"strings"

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
				c := newMemoryCollector(fs)
				c.procRoot = env.Paths.ProcFS
				return c, nil
			}
		},
	})
}

// memoryCollector exports the few /proc/meminfo fields an operator needs to
// see memory pressure; node_exporter's meminfo collector exports all ~50.
type memoryCollector struct {
	fs procfs.FS
	// procRoot (--path.procfs) is where meminfo is read line by line when
	// procfs cannot parse it (see salvageMeminfo); empty: not read again.
	procRoot string

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
	// readErr is nil, or says how many lines of a file procfs could not
	// parse were skipped; the fields of the other lines are exported, with
	// or without MemTotal.
	m, readErr := c.read()
	if m == nil {
		return readErr
	}
	if m.MemTotalBytes == nil && readErr == nil {
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
	return readErr
}

// read returns procfs' reading of meminfo, or what salvageMeminfo keeps
// of a file procfs cannot parse (see readSalvaging); nil when nothing was
// read.
func (c *memoryCollector) read() (*procfs.Meminfo, error) {
	return readSalvaging("meminfo", c.procRoot,
		func() (*procfs.Meminfo, error) { m, err := c.fs.Meminfo(); return &m, err },
		func(path string) (*procfs.Meminfo, int, error) {
			m, bad, err := salvageMeminfo(path)
			return &m, bad, err
		})
}

// salvageMeminfo reads meminfo line by line with procfs' rules (its
// parseMemInfo: "Key: value" or "Key: value kB", the value an unsigned
// integer in any base strconv accepts, bytes 1024 times a kB value in
// uint64 as procfs computes them), keeping the fields this collector
// exports from every line that parses and counting every line procfs
// would fail the file on (an empty one too). A later good line of the
// same key wins over an earlier one, as in procfs.
//
// Bespoke, and only used when procfs fails, for a user-visible target:
// one malformed line must not cost the other memory series; procfs fails
// the whole file on one.
func salvageMeminfo(path string) (procfs.Meminfo, int, error) {
	lines, err := procLines(path)
	if err != nil {
		return procfs.Meminfo{}, 0, err
	}
	var m procfs.Meminfo
	fields := map[string][2]**uint64{
		"MemTotal:":     {&m.MemTotal, &m.MemTotalBytes},
		"MemFree:":      {&m.MemFree, &m.MemFreeBytes},
		"MemAvailable:": {&m.MemAvailable, &m.MemAvailableBytes},
		"Buffers:":      {&m.Buffers, &m.BuffersBytes},
		"Cached:":       {&m.Cached, &m.CachedBytes},
		"SwapTotal:":    {&m.SwapTotal, &m.SwapTotalBytes},
		"SwapFree:":     {&m.SwapFree, &m.SwapFreeBytes},
	}
	bad := 0
	for _, line := range lines {
		key, raw, bytes, ok := parseMeminfoLine(line)
		if !ok {
			bad++
			continue
		}
		if dst, want := fields[key]; want {
			*dst[0], *dst[1] = &raw, &bytes
		}
	}
	return m, bad, nil
}

// parseMeminfoLine is one line of meminfo as procfs reads it: its key
// (with the colon), the number written and procfs' bytes for it.
func parseMeminfoLine(line string) (key string, raw, bytes uint64, ok bool) {
	f := strings.Fields(line)
	if len(f) < 2 || len(f) > 3 || (len(f) == 3 && f[2] != "kB") {
		return "", 0, 0, false
	}
	raw, err := strconv.ParseUint(f[1], 0, 64)
	if err != nil {
		return "", 0, 0, false
	}
	bytes = raw
	if len(f) == 3 {
		bytes = 1024 * raw // wraps as procfs' does; see meminfoBytes
	}
	return f[0], raw, bytes, true
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
