package collector

import "testing"

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
