package collector

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/prometheus/procfs"
	"github.com/prometheus/procfs/blockdevice"
)

// The lean parsers of procfile.go must read what procfs reads. These tests
// compare the two on the fixture trees, on this host's /proc, and (fuzzing)
// on arbitrary kernel-like input.

type parsed struct {
	stat    map[int64][8]float64
	btime   uint64
	mem     map[string]uint64
	load    [3]float64
	disks   []string // "name reads rsect writes wsect ticks"
	ifaces  map[string][8]uint64
	errStat error
	errMem  error
	errLoad error
	errDisk error
	errNet  error
}

func catchPanic(err *error) {
	if p := recover(); p != nil {
		*err = fmt.Errorf("panic: %v", p)
	}
}

// viaProcfs reads a tree with github.com/prometheus/procfs.
func viaProcfs(t *testing.T, dir string) (r parsed) {
	fs, err := procfs.NewFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	func() {
		defer catchPanic(&r.errStat)
		s, err := fs.Stat()
		if r.errStat = err; err == nil {
			r.stat, r.btime = map[int64][8]float64{}, s.BootTime
			for id, c := range s.CPU {
				r.stat[id] = [8]float64{c.User, c.Nice, c.System, c.Idle, c.Iowait, c.IRQ, c.SoftIRQ, c.Steal}
			}
		}
	}()
	func() {
		defer catchPanic(&r.errMem)
		m, err := fs.Meminfo()
		if r.errMem = err; err == nil {
			r.mem = map[string]uint64{}
			for i, p := range []*uint64{m.MemTotalBytes, m.MemAvailableBytes, m.MemFreeBytes, m.BuffersBytes, m.CachedBytes, m.SwapTotalBytes, m.SwapFreeBytes} {
				if p != nil {
					r.mem[memFields[i]] = *p
				}
			}
		}
	}()
	func() {
		defer catchPanic(&r.errLoad)
		l, err := fs.LoadAvg()
		if r.errLoad = err; err == nil {
			r.load = [3]float64{l.Load1, l.Load5, l.Load15}
		}
	}()
	func() {
		defer catchPanic(&r.errDisk)
		bfs, err := blockdevice.NewFS(dir, dir)
		if err != nil {
			t.Fatal(err)
		}
		ds, err := bfs.ProcDiskstats()
		if r.errDisk = err; err == nil {
			for _, d := range ds {
				r.disks = append(r.disks, fmt.Sprint(d.DeviceName, d.ReadIOs, d.ReadSectors, d.WriteIOs, d.WriteSectors, d.IOsTotalTicks))
			}
		}
	}()
	func() {
		defer catchPanic(&r.errNet)
		nd, err := fs.NetDev()
		if r.errNet = err; err == nil {
			r.ifaces = map[string][8]uint64{}
			for name, l := range nd {
				r.ifaces[name] = [8]uint64{l.RxBytes, l.RxPackets, l.RxErrors, l.RxDropped, l.TxBytes, l.TxPackets, l.TxErrors, l.TxDropped}
			}
		}
	}()
	return r
}

// viaLean reads a tree with the parsers of procfile.go.
func viaLean(dir string) (r parsed) {
	read := func(name string) ([]byte, error) {
		f := newProcFile(filepath.Join(dir, name))
		defer f.Close()
		return f.read()
	}
	if b, err := read("stat"); err != nil {
		r.errStat = err
	} else if cpus, btime, err := parseProcStat(b, nil); err != nil {
		r.errStat = err
	} else {
		r.stat, r.btime = map[int64][8]float64{}, btime
		for _, c := range cpus {
			var v [8]float64
			for i, x := range c.ticks {
				v[i] = float64(x) / userHZ
			}
			r.stat[c.id] = v
		}
	}
	if b, err := read("meminfo"); err != nil {
		r.errMem = err
	} else if m, err := parseMeminfo(b); err != nil {
		r.errMem = err
	} else {
		r.mem = map[string]uint64{}
		for i, f := range memFields {
			if m.present[i] {
				r.mem[f] = m.bytes[i]
			}
		}
	}
	if b, err := read("loadavg"); err != nil {
		r.errLoad = err
	} else {
		r.load, r.errLoad = parseLoadavg(b)
	}
	if b, err := read("diskstats"); err != nil {
		r.errDisk = err
	} else if ds, err := parseDiskstats(b, nil); err != nil {
		r.errDisk = err
	} else {
		for _, d := range ds {
			r.disks = append(r.disks, fmt.Sprint(string(d.name), d.reads, d.readSectors, d.writes, d.writeSectors, d.ioTicks))
		}
	}
	if b, err := read("net/dev"); err != nil {
		r.errNet = err
	} else if ns, err := parseNetDev(b, nil); err != nil {
		r.errNet = err
	} else {
		r.ifaces = map[string][8]uint64{}
		for _, l := range ns {
			r.ifaces[string(l.name)] = [8]uint64{l.rxBytes, l.rxPackets, l.rxErrs, l.rxDrop, l.txBytes, l.txPackets, l.txErrs, l.txDrop}
		}
	}
	return r
}

// compareParsed reports where the lean parsers differ from procfs on input
// procfs accepts. With strict, the lean parsers must also reject what procfs
// rejects.
func compareParsed(t *testing.T, what string, ref, got parsed, strict bool) {
	t.Helper()
	check := func(file string, refErr, gotErr error, refV, gotV any) {
		t.Helper()
		switch {
		case refErr == nil && gotErr != nil:
			t.Errorf("%s %s: procfs reads it, the lean parser fails: %v", what, file, gotErr)
		case refErr != nil && gotErr == nil && strict:
			t.Errorf("%s %s: procfs fails (%v), the lean parser accepts it", what, file, refErr)
		case refErr == nil && !reflect.DeepEqual(refV, gotV):
			t.Errorf("%s %s:\nprocfs %v\nlean   %v", what, file, refV, gotV)
		}
	}
	check("stat", ref.errStat, got.errStat, [2]any{ref.stat, ref.btime}, [2]any{got.stat, got.btime})
	check("meminfo", ref.errMem, got.errMem, ref.mem, got.mem)
	check("loadavg", ref.errLoad, got.errLoad, ref.load, got.load)
	check("diskstats", ref.errDisk, got.errDisk, ref.disks, got.disks)
	check("net/dev", ref.errNet, got.errNet, ref.ifaces, got.ifaces)
}

func TestProcParsersMatchProcfs(t *testing.T) {
	t.Parallel()
	trees := []string{fixtureProc, "testdata/proc-backwards", "testdata/proc-hotplug", "testdata/proc-oldkernel", "testdata/proc-garbled"}
	if _, err := os.Stat("/proc/stat"); err == nil {
		trees = append(trees, "/proc") // this host, live
	}
	for _, dir := range trees {
		ref, got := viaProcfs(t, dir), viaLean(dir)
		// /proc changes between the two reads; compare only success there.
		if dir == "/proc" {
			ref, got = parsed{errStat: ref.errStat, errMem: ref.errMem, errLoad: ref.errLoad, errDisk: ref.errDisk, errNet: ref.errNet},
				parsed{errStat: got.errStat, errMem: got.errMem, errLoad: got.errLoad, errDisk: got.errDisk, errNet: got.errNet}
		}
		compareParsed(t, dir, ref, got, true)
	}
}

// kernelLike reports whether data looks like something the kernel could
// write: printable ASCII, and every token that starts with a digit a plain
// decimal number. procfs accepts more (hex and octal in meminfo, floats and
// signs in stat through fmt.Sscanf); the kernel never writes those.
func kernelLike(data []byte) bool {
	for _, c := range data {
		if c != '\n' && (c < ' ' || c > '~') {
			return false
		}
	}
	for _, tok := range bytes.Fields(data) {
		if tok[0] == '+' || tok[0] == '-' || tok[0] == '.' {
			return false
		}
		if tok[0] >= '0' && tok[0] <= '9' {
			if _, err := parseUint(tok); err != nil || (len(tok) > 1 && tok[0] == '0') {
				return false
			}
		}
	}
	return true
}

func FuzzProcParsersMatchProcfs(f *testing.F) {
	for _, name := range []string{"stat", "meminfo", "loadavg", "diskstats", "net/dev"} {
		for _, tree := range []string{fixtureProc, "testdata/proc-garbled", "testdata/proc-oldkernel"} {
			if b, err := os.ReadFile(filepath.Join(tree, name)); err == nil {
				f.Add(b)
			}
		}
	}
	dir := f.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "net"), 0o755); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, name := range []string{"stat", "meminfo", "loadavg", "diskstats", "net/dev"} {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got := viaLean(dir) // must not panic, whatever the input
		if kernelLike(data) {
			compareParsed(t, "fuzz", viaProcfs(t, dir), got, false)
		}
	})
}

// TestMountTableCachedOnProcfs: on the real /proc the filtered mount table
// is read once and then served from the cache while poll reports no change.
func TestMountTableCachedOnProcfs(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/self/mountinfo"); err != nil {
		t.Skip("no /proc on this system")
	}
	cfg := defaultFilesystemConfig(t, "/proc", func(string) (fsStats, error) { return fakeStats, nil })
	cfg.procRoot = "/proc"
	c := newFilesystemCollector(cfg)
	first, err := c.mounts()
	if err != nil {
		t.Fatal(err)
	}
	if !c.canPoll {
		t.Fatal("/proc mountinfo not recognised as procfs")
	}
	second, err := c.mounts()
	if err != nil {
		t.Fatal(err)
	}
	if len(first) > 0 && &first[0] != &second[0] {
		t.Fatal("the mount table was parsed again although it did not change")
	}
	if mountTableChanged(c.tableFd) {
		t.Fatal("poll reports a change of an unchanged mount table")
	}
}

// TestMountTableRereadOnFixtures: a fixture file is not on procfs, so poll
// cannot report changes and the table is read on every scrape.
func TestMountTableRereadOnFixtures(t *testing.T) {
	t.Parallel()
	c := newFilesystemCollector(defaultFilesystemConfig(t, fixtureProc, nil))
	first, err := c.mounts()
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.mounts()
	if err != nil {
		t.Fatal(err)
	}
	if c.canPoll || &first[0] == &second[0] {
		t.Fatal("a fixture mount table was cached")
	}
}
