package collector

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDiskstatsMalformedLineCostsOnlyItself: a diskstats line procfs
// cannot parse (letters or a negative number for a counter, a counter past
// 2^64) fails the collector for the scrape, but the other devices are still
// exported, on either side of the bad line, in every kernel's format (11,
// 15 and 17 counters; an old kernel's 4-counter partition line is left out
// as procfs leaves it), and the error quotes nothing of the file.
func TestDiskstatsMalformedLineCostsOnlyItself(t *testing.T) {
	t.Parallel()
	for name, bad := range map[string]string{
		"letters":  "   8      16 baddisk 1 2 3 x 5 6 7 8 9 10 11\n",
		"negative": "   8      16 baddisk -1 2 3 4 5 6 7 8 9 10 11\n",
		"overflow": "   8      16 baddisk 18446744073709551616 2 3 4 5 6 7 8 9 10 11\n",
		"trailing": "   8      16 baddisk 1 2 3 4 5 6 7 8 9 10 11 z\n",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			proc := t.TempDir()
			content := "   8       0 sda 10 0 20 0 30 0 40 0 0 50 0\n" +
				"   8       1 sda1 1 2 3 4\n" +
				bad +
				" 259       0 nvme0n1 11 0 21 0 31 0 41 0 0 51 0 0 0 0 0\n" +
				" 253       0 dm-0 12 0 22 0 32 0 42 0 0 52 0 0 0 0 0 7 8\n"
			if err := os.WriteFile(filepath.Join(proc, "diskstats"), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			c := newDiskstatsCollector(mustBlockFS(t, proc), deviceFilter{})
			c.procRoot = proc
			ms, err := collectAll(c)
			if err == nil || strings.Contains(err.Error(), "baddisk") {
				t.Errorf("error %v: want one that says lines were skipped, quoting none", err)
			}
			read := map[string]float64{}
			for _, m := range ms {
				if s := metricSample(t, m); s.name == "clavis_disk_read_bytes_total" {
					read[s.labels["device"]] = s.value
				}
			}
			if want := map[string]float64{"sda": 20 * 512, "nvme0n1": 21 * 512, "dm-0": 22 * 512}; !maps.Equal(read, want) {
				t.Errorf("read bytes %v, want %v", read, want)
			}
		})
	}
}
