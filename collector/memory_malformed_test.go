package collector

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMemoryMalformedLineCostsOnlyItself: a /proc/meminfo line procfs
// cannot parse fails the collector for the scrape, but costs only its own
// series (MemTotal's too): every other field is exported with procfs'
// bytes, kB multiplied in float64 as before, and the error says how many
// lines were skipped and quotes none of them.
func TestMemoryMalformedLineCostsOnlyItself(t *testing.T) {
	t.Parallel()
	good := map[string]string{
		"MemTotal":     "MemTotal:       2048 kB\n",
		"MemFree":      "MemFree:        1024 kB\n",
		"MemAvailable": "MemAvailable:   1536 kB\n",
		"Buffers":      "Buffers:        18014398509481985 kB\n", // 2^54+1 kB: past uint64 bytes
		"Cached":       "Cached:         0x10\n",                 // no unit: bytes; base as procfs reads it
		"SwapTotal":    "SwapTotal:      0 kB\n",
		"SwapFree":     "SwapFree:       0 kB\n",
	}
	all := map[string]float64{
		"clavis_memory_total_bytes":      2048 * 1024,
		"clavis_memory_free_bytes":       1024 * 1024,
		"clavis_memory_available_bytes":  1536 * 1024,
		"clavis_memory_buffers_bytes":    (1<<54 + 1) * 1024,
		"clavis_memory_cached_bytes":     16,
		"clavis_memory_swap_total_bytes": 0,
		"clavis_memory_swap_free_bytes":  0,
	}
	without := func(names ...string) map[string]float64 {
		m := maps.Clone(all)
		for _, n := range names {
			delete(m, n)
		}
		return m
	}
	for name, tc := range map[string]struct {
		replace map[string]string // field -> its bad line
		extra   string            // bad lines between the good ones
		want    map[string]float64
		err     string
	}{
		"letters": {
			replace: map[string]string{"MemFree": "MemFree:        alice kB\n"},
			want:    without("clavis_memory_free_bytes"),
			err:     "reading meminfo: 1 malformed lines skipped",
		},
		"MemTotal itself": {
			replace: map[string]string{"MemTotal": "MemTotal:       2048 MB\n"},
			want:    without("clavis_memory_total_bytes"),
			err:     "reading meminfo: 1 malformed lines skipped",
		},
		"other lines": {
			extra: "\nHugePages_Total: alice\nDirectMap4k: 1 2 3 4\nShmem 1 kB extra\n",
			want:  all,
			err:   "reading meminfo: 4 malformed lines skipped",
		},
		"negative and too many fields": {
			replace: map[string]string{"Cached": "Cached:         -5 kB\n", "SwapFree": "SwapFree: 1 kB /home/alice\n"},
			want:    without("clavis_memory_cached_bytes", "clavis_memory_swap_free_bytes"),
			err:     "reading meminfo: 2 malformed lines skipped",
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var b strings.Builder
			for i, f := range []string{"MemTotal", "MemFree", "MemAvailable", "Buffers", "Cached", "SwapTotal", "SwapFree"} {
				line := good[f]
				if bad, ok := tc.replace[f]; ok {
					line = bad
				}
				b.WriteString(line)
				if i == 2 {
					b.WriteString("Active:          1 kB\n" + tc.extra)
				}
			}
			proc := t.TempDir()
			if err := os.WriteFile(filepath.Join(proc, "meminfo"), []byte(b.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			c := newMemoryCollector(mustProcFS(t, proc))
			c.procRoot = proc
			ms, err := collectAll(c)
			if err == nil || err.Error() != tc.err {
				t.Errorf("error %v, want %q", err, tc.err)
			}
			got := map[string]float64{}
			for _, m := range ms {
				s := metricSample(t, m)
				got[s.name] = s.value
			}
			if !maps.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
