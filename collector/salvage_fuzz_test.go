package collector

import (
	"errors"
	"maps"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/prometheus/procfs"
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

// FuzzSalvageStatMatchesProcfs: the line-by-line reader of stat, used
// only when procfs fails, never panics; on any file procfs parses it reads
// the same CPUs, seconds and boot time and counts no line malformed, and
// on a file where it counts none procfs fails only on a line longer than
// its scanner takes.
func FuzzSalvageStatMatchesProcfs(f *testing.F) {
	f.Add("cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 1 2 3 4 5 6 7 8 9 10\ncpu1 1 2 3 4\nintr 5 1 2\nctxt 3\nbtime 1700000000\n" +
		"processes 4\nprocs_running 1\nprocs_blocked 0\nsoftirq 1 2 3 4 5 6 7 8 9 10 11\n")
	f.Add("cpu0 1e3 0.5 +2 3 4 5 6 7 8 9 10 11\r\n  cpu-1 1\ncpu+7 NaN\ncpu\u00a00 1\nbtime\n\n")
	f.Add("cpu0 x 1\ncpu1 1 2\nbtime -1\nintr 1 x\nsoftirq 1 2\nctxt 1_0\ncpux 1\n")
	f.Fuzz(func(t *testing.T, stat string) {
		proc := t.TempDir()
		if err := os.WriteFile(filepath.Join(proc, "stat"), []byte(stat), 0o644); err != nil {
			t.Fatal(err)
		}
		salvaged, bad, err := salvageStat(filepath.Join(proc, "stat"))
		if err != nil {
			t.Fatal(err)
		}
		want, err := procfsStat(mustProcFS(t, proc))
		if err != nil {
			if bad == 0 && len(stat) < 64<<10 {
				t.Errorf("procfs failed (%v) on a file with no malformed line", err)
			}
			return
		}
		if bad != 0 {
			t.Errorf("%d lines counted malformed in a file procfs parses", bad)
		}
		if salvaged.BootTime != want.BootTime || !sameCPUStat(salvaged.CPUTotal, want.CPUTotal) ||
			!maps.EqualFunc(salvaged.CPU, want.CPU, sameCPUStat) {
			t.Errorf("salvaged %+v, procfs %+v", salvaged, want)
		}
	})
}

// procfsStat is procfs' reading of stat, a panic made an error (procfs
// slices a cpu line's name at 3 without looking at its length).
func procfsStat(pfs procfs.FS) (s procfs.Stat, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = errors.New("procfs panicked")
		}
	}()
	return pfs.Stat()
}

// sameCPUStat is == with NaN equal to NaN (procfs' float parsing lets
// "NaN" through).
func sameCPUStat(a, b procfs.CPUStat) bool {
	x := []float64{a.User, a.Nice, a.System, a.Idle, a.Iowait, a.IRQ, a.SoftIRQ, a.Steal, a.Guest, a.GuestNice}
	y := []float64{b.User, b.Nice, b.System, b.Idle, b.Iowait, b.IRQ, b.SoftIRQ, b.Steal, b.Guest, b.GuestNice}
	for i := range x {
		if x[i] != y[i] && !(math.IsNaN(x[i]) && math.IsNaN(y[i])) {
			return false
		}
	}
	return true
}

// FuzzSalvageMeminfoMatchesProcfs: the line-by-line reader of meminfo,
// used only when procfs fails, never panics; on any file procfs parses it
// reads the same numbers and bytes for the fields the collector exports
// and counts no line malformed, and on a file where it counts none procfs
// fails only on a line longer than its scanner takes.
func FuzzSalvageMeminfoMatchesProcfs(f *testing.F) {
	f.Add("MemTotal:       2048 kB\nMemFree:        1024 kB\nMemAvailable:   1536 kB\nBuffers: 1 kB\nCached: 0 kB\n" +
		"SwapCached: 0 kB\nSwapTotal:      0 kB\nSwapFree:       0 kB\nHugePages_Total: 0\nHugepagesize: 2048 kB\n")
	f.Add("MemTotal: 0x10\r\nMemFree: 0b11 kB\nBuffers: 18014398509481985 kB\nCached:  010\nMemTotal: 1_000 kB\n")
	f.Add("MemTotal: 1 MB\nMemFree: -1 kB\n\nBuffers 1 2 3\nCached: x\n")
	f.Fuzz(func(t *testing.T, meminfo string) {
		proc := t.TempDir()
		if err := os.WriteFile(filepath.Join(proc, "meminfo"), []byte(meminfo), 0o644); err != nil {
			t.Fatal(err)
		}
		salvaged, bad, err := salvageMeminfo(filepath.Join(proc, "meminfo"))
		if err != nil {
			t.Fatal(err)
		}
		want, err := mustProcFS(t, proc).Meminfo()
		if err != nil {
			if bad == 0 && len(meminfo) < 64<<10 {
				t.Errorf("procfs failed (%v) on a file with no malformed line", err)
			}
			return
		}
		if bad != 0 {
			t.Errorf("%d lines counted malformed in a file procfs parses", bad)
		}
		for _, p := range [][2]*uint64{
			{salvaged.MemTotal, want.MemTotal}, {salvaged.MemTotalBytes, want.MemTotalBytes},
			{salvaged.MemFree, want.MemFree}, {salvaged.MemFreeBytes, want.MemFreeBytes},
			{salvaged.MemAvailable, want.MemAvailable}, {salvaged.MemAvailableBytes, want.MemAvailableBytes},
			{salvaged.Buffers, want.Buffers}, {salvaged.BuffersBytes, want.BuffersBytes},
			{salvaged.Cached, want.Cached}, {salvaged.CachedBytes, want.CachedBytes},
			{salvaged.SwapTotal, want.SwapTotal}, {salvaged.SwapTotalBytes, want.SwapTotalBytes},
			{salvaged.SwapFree, want.SwapFree}, {salvaged.SwapFreeBytes, want.SwapFreeBytes},
		} {
			if (p[0] == nil) != (p[1] == nil) || (p[0] != nil && *p[0] != *p[1]) {
				t.Errorf("salvaged %+v, procfs %+v", salvaged, want)
				return
			}
		}
	})
}
