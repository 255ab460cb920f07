package collector

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNetdevMalformedLineCostsOnlyItself: a net/dev line procfs cannot
// parse (letters for a counter) or panics on (three columns: procfs
// v0.23.0 indexes sixteen without counting) fails the collector for the
// scrape, but the other interfaces are still exported, whichever side of
// the bad line they are on, and the error quotes nothing of the file.
func TestNetdevMalformedLineCostsOnlyItself(t *testing.T) {
	t.Parallel()
	const head = "Inter-|   Receive                                                |  Transmit\n" +
		" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
	for name, bad := range map[string]string{
		"letters": "  bad0: 1 2 3 x 5 6 7 8 9 10 11 12 13 14 15 16\n",
		"short":   "  bad0: 1 2 3\n",
		"nocolon": "  bad0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			proc := t.TempDir()
			if err := os.MkdirAll(filepath.Join(proc, "net"), 0o755); err != nil {
				t.Fatal(err)
			}
			content := head + "  eth0: 100 2 0 0 0 0 0 0 200 3 0 0 0 0 0 0\n" + bad + "   wg0: 7 1 0 0 0 0 0 0 9 1 0 0 0 0 0 0\n"
			if err := os.WriteFile(filepath.Join(proc, "net", "dev"), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			c := newNetdevCollector(mustProcFS(t, proc), deviceFilter{})
			c.procRoot = proc
			ms, err := collectAll(c)
			if err == nil || strings.Contains(err.Error(), "bad0") || strings.Contains(err.Error(), "panic") {
				t.Errorf("error %v: want one that says lines were skipped, quoting none", err)
			}
			rx := map[string]float64{}
			for _, m := range ms {
				if s := metricSample(t, m); s.name == "clavis_network_receive_bytes_total" {
					rx[s.labels["device"]] = s.value
				}
			}
			if want := map[string]float64{"eth0": 100, "wg0": 7}; !maps.Equal(rx, want) {
				t.Errorf("receive bytes %v, want %v", rx, want)
			}
		})
	}
}
