package collector

import (
	"maps"
	"os"
	"path/filepath"
	"testing"
)

const memoryHelp = `# HELP clavis_memory_available_bytes Memory available for new work without swapping, as estimated by the kernel (MemAvailable).
# TYPE clavis_memory_available_bytes gauge
`

var memoryFamilies = []string{
	"clavis_memory_total_bytes", "clavis_memory_available_bytes", "clavis_memory_free_bytes",
	"clavis_memory_buffers_bytes", "clavis_memory_cached_bytes",
	"clavis_memory_swap_total_bytes", "clavis_memory_swap_free_bytes",
}

func TestMemoryFixture(t *testing.T) {
	t.Parallel()
	c := newMemoryCollector(mustProcFS(t, fixtureProc))
	// kB values of testdata/proc/meminfo times 1024.
	want := memoryHelp + `clavis_memory_available_bytes 2.459963392e+10
# HELP clavis_memory_buffers_bytes Memory in block-device buffers (Buffers).
# TYPE clavis_memory_buffers_bytes gauge
clavis_memory_buffers_bytes 1.3529088e+07
# HELP clavis_memory_cached_bytes Memory in the page cache (Cached).
# TYPE clavis_memory_cached_bytes gauge
clavis_memory_cached_bytes 1.15111936e+09
# HELP clavis_memory_free_bytes Memory not used at all (MemFree).
# TYPE clavis_memory_free_bytes gauge
clavis_memory_free_bytes 2.3600029696e+10
# HELP clavis_memory_swap_free_bytes Unused swap space (SwapFree).
# TYPE clavis_memory_swap_free_bytes gauge
clavis_memory_swap_free_bytes 2.046816256e+09
# HELP clavis_memory_swap_total_bytes Total swap space (SwapTotal).
# TYPE clavis_memory_swap_total_bytes gauge
clavis_memory_swap_total_bytes 2.147479552e+09
# HELP clavis_memory_total_bytes Usable RAM (MemTotal in /proc/meminfo).
# TYPE clavis_memory_total_bytes gauge
clavis_memory_total_bytes 2.5276502016e+10
` + successHelp + `clavis_scrape_collector_success{collector="memory"} 1
`
	compareCollector(t, "memory", c, want, memoryFamilies...)
}

// TestMemoryOldKernel: before Linux 3.14 there is no MemAvailable line; the
// series is left out instead of reading as "0 bytes available".
func TestMemoryOldKernel(t *testing.T) {
	t.Parallel()
	c := newMemoryCollector(mustProcFS(t, "testdata/proc-oldkernel"))
	want := `# HELP clavis_memory_buffers_bytes Memory in block-device buffers (Buffers).
# TYPE clavis_memory_buffers_bytes gauge
clavis_memory_buffers_bytes 1.048576e+07
# HELP clavis_memory_cached_bytes Memory in the page cache (Cached).
# TYPE clavis_memory_cached_bytes gauge
clavis_memory_cached_bytes 2.097152e+08
# HELP clavis_memory_free_bytes Memory not used at all (MemFree).
# TYPE clavis_memory_free_bytes gauge
clavis_memory_free_bytes 5.24288e+08
# HELP clavis_memory_swap_free_bytes Unused swap space (SwapFree).
# TYPE clavis_memory_swap_free_bytes gauge
clavis_memory_swap_free_bytes 0
# HELP clavis_memory_swap_total_bytes Total swap space (SwapTotal).
# TYPE clavis_memory_swap_total_bytes gauge
clavis_memory_swap_total_bytes 0
# HELP clavis_memory_total_bytes Usable RAM (MemTotal in /proc/meminfo).
# TYPE clavis_memory_total_bytes gauge
clavis_memory_total_bytes 2.097152e+09
` + successHelp + `clavis_scrape_collector_success{collector="memory"} 1
`
	compareCollector(t, "memory", c, want, memoryFamilies...)
}

// TestMemoryHugeValues: kB values whose byte count does not fit 64 bits
// (procfs multiplies in uint64: 2^54 kB wrapped to 0 bytes, 2^54+1 kB to
// 1024) are exported as the bytes they say, not as the wrapped remainder.
func TestMemoryHugeValues(t *testing.T) {
	t.Parallel()
	proc := t.TempDir()
	if err := os.WriteFile(filepath.Join(proc, "meminfo"), []byte("MemTotal:       18014398509481984 kB\nMemFree:        18014398509481985 kB\nBuffers:        1 kB\nCached:         0 kB\nSwapTotal:      18446744073709551615 kB\nSwapFree:       5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ms, err := collectAll(newMemoryCollector(mustProcFS(t, proc)))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, m := range ms {
		s := metricSample(t, m)
		got[s.name] = s.value
	}
	want := map[string]float64{
		"clavis_memory_total_bytes":      1 << 64,
		"clavis_memory_free_bytes":       (1<<54 + 1) * 1024,
		"clavis_memory_buffers_bytes":    1024,
		"clavis_memory_cached_bytes":     0,
		"clavis_memory_swap_total_bytes": 18446744073709551615 * 1024.0,
		"clavis_memory_swap_free_bytes":  5,
	}
	if !maps.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
