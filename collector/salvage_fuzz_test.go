package collector

import (
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/prometheus/procfs/blockdevice"
)

// FuzzSalvageMatchesProcfs: the line-by-line readers of net/dev and
// diskstats, used only when procfs fails, never panic, and on any file
// procfs parses they read what procfs reads, so a file does not change
// meaning when one of its lines goes bad.
func FuzzSalvageMatchesProcfs(f *testing.F) {
	f.Add("Inter-|\n face |\n  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n", "   8 0 sda 1 2 3 4 5 6 7 8 9 10 11\n")
	f.Add("h\nh\nwg0:1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\n  a:b: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n",
		"8 1 sda1 1 2 3 4\n259 0 nvme0n1 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18\n\n")
	f.Add("h\nh\n  eth0: 1 2 3\n", "8 0 sda x 2 3 4 5 6 7 8 9 10 11\n")
	f.Fuzz(func(t *testing.T, netdev, diskstats string) {
		proc := t.TempDir()
		if err := os.MkdirAll(filepath.Join(proc, "net"), 0o755); err != nil {
			t.Fatal(err)
		}
		for name, content := range map[string]string{"net/dev": netdev, "diskstats": diskstats} {
			if err := os.WriteFile(filepath.Join(proc, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		salvagedNet, _, err := salvageNetDev(filepath.Join(proc, "net", "dev"))
		if err != nil {
			t.Fatal(err)
		}
		if want, err := netDevOf(mustProcFS(t, proc)); err == nil && !maps.Equal(salvagedNet, want) {
			t.Errorf("net/dev: salvaged %v, procfs %v", salvagedNet, want)
		}
		salvagedDisks, _, err := salvageDiskstats(filepath.Join(proc, "diskstats"))
		if err != nil {
			t.Fatal(err)
		}
		bfs, err := blockdevice.NewFS(proc, proc)
		if err != nil {
			t.Fatal(err)
		}
		if want, err := bfs.ProcDiskstats(); err == nil && !reflect.DeepEqual(salvagedDisks, append([]blockdevice.Diskstats{}, want...)) {
			t.Errorf("diskstats: salvaged %+v, procfs %+v", salvagedDisks, want)
		}
	})
}
