package collector

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/procfs"
	"github.com/prometheus/procfs/blockdevice"
	"pgregory.net/rapid"
)

// The system collectors read /proc through procfs. These properties write
// kernel-shaped files (the layouts of current and older kernels: /proc/stat
// with its intr and softirq lines, meminfo with fields missing, diskstats in
// its 14-, 18- and 20-field forms, net/dev), then check that what each
// collector exports is, series by series, what the file says in the
// exported unit, and what procfs itself reads from the same file. They
// replace the fuzz targets that only checked the old hand-written parsers
// for panics.

// series is one exported sample: name and label pairs, and its value.
type sample struct {
	key   string
	value float64
}

func metricKey(t *rapid.T, m prometheus.Metric) sample {
	var pb dto.Metric
	if err := m.Write(&pb); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString(metricName(m))
	for _, lp := range pb.GetLabel() {
		fmt.Fprintf(&b, ",%s=%s", lp.GetName(), lp.GetValue())
	}
	v := pb.GetGauge().GetValue()
	if pb.Counter != nil {
		v = pb.GetCounter().GetValue()
	}
	return sample{b.String(), v}
}

// metricName reads the fully-qualified name out of a Desc's String form.
func metricName(m prometheus.Metric) string {
	s := m.Desc().String()
	_, rest, _ := strings.Cut(s, `fqName: "`)
	name, _, _ := strings.Cut(rest, `"`)
	return name
}

func exported(t *rapid.T, c Collector) map[string]float64 {
	ms, err := collectAll(c)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	out := map[string]float64{}
	for _, m := range ms {
		s := metricKey(t, m)
		if _, dup := out[s.key]; dup {
			t.Fatalf("series %s sent twice", s.key)
		}
		out[s.key] = s.value
	}
	return out
}

func compareSeries(t *rapid.T, what string, got, want map[string]float64) {
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Fatalf("%s: series %s missing (got %v)", what, k, got)
		}
		if g != w && math.Abs(g-w) > 1e-9*math.Max(1, math.Abs(w)) {
			t.Fatalf("%s: %s = %v, want %v", what, k, g, w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Fatalf("%s: unexpected series %s", what, k)
		}
	}
}

func rapidProcFS(t *rapid.T, dir string) procfs.FS {
	fs, err := procfs.NewFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

// checkDir is a fresh directory under base for one rapid check.
func checkDir(t *rapid.T, base string) string {
	dir, err := os.MkdirTemp(base, "proc")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func writeProc(t *rapid.T, dir, name, content string) {
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// ticks are USER_HZ (100) counts, as /proc/stat writes them.
func ticks() *rapid.Generator[uint64] { return rapid.Uint64Range(0, 1<<40) }

func TestCPUCollectorMatchesKernelAndProcfs(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	rapid.Check(t, func(t *rapid.T) {
		dir := checkDir(t, base)
		ncpu := rapid.IntRange(1, 6).Draw(t, "ncpu")
		var b strings.Builder
		b.WriteString("cpu  1 2 3 4 5 6 7 8 9 10\n")
		want := map[string]float64{}
		id := 0
		for i := range ncpu {
			id += rapid.IntRange(1, 3).Draw(t, "gap") // offline CPUs leave gaps
			if i == 0 {
				id = rapid.IntRange(0, 1).Draw(t, "first")
			}
			fields := make([]uint64, 10)
			for f := range fields {
				fields[f] = ticks().Draw(t, "tick")
			}
			fmt.Fprintf(&b, "cpu%d", id)
			for _, f := range fields {
				fmt.Fprintf(&b, " %d", f)
			}
			b.WriteString("\n")
			for m, mode := range cpuModes {
				v := float64(fields[m]) / 100
				want[fmt.Sprintf("clavis_cpu_seconds_total,cpu=%d,mode=%s", id, mode)] = v
			}
		}
		nintr := rapid.IntRange(0, 300).Draw(t, "nintr")
		b.WriteString("intr 12345")
		for range nintr {
			fmt.Fprintf(&b, " %d", rapid.Uint32().Draw(t, "intr"))
		}
		btime := rapid.Uint64Range(1, 1<<33).Draw(t, "btime")
		fmt.Fprintf(&b, "\nctxt 987654\nbtime %d\nprocesses 4242\nprocs_running 2\nprocs_blocked 0\nsoftirq 1 2 3 4 5 6 7 8 9 10 11\n", btime)
		writeProc(t, dir, "stat", b.String())
		want["clavis_cpus_online"] = float64(ncpu)
		want["clavis_boot_time_seconds"] = float64(btime)
		// The collector's clock, some time after boot: a first reading
		// beyond what that time allows is not exported.
		sinceBoot := rapid.Int64Range(1, 1<<34).Draw(t, "since boot")
		now := time.Unix(int64(btime)+sinceBoot, 0)
		for k, v := range want {
			if strings.HasPrefix(k, "clavis_cpu_seconds_total,") && v > cpuJumpFactor*float64(sinceBoot)+cpuJumpSlack.Seconds() {
				delete(want, k)
			}
		}
		clocked := func(fs procfs.FS) *cpuCollector {
			c := newCPUCollector(fs, nil)
			c.now = func() time.Time { return now }
			return c
		}

		fs := rapidProcFS(t, dir)
		compareSeries(t, "cpu vs /proc/stat", exported(t, clocked(fs)), want)
		st, err := fs.Stat()
		if err != nil {
			t.Fatal(err)
		}
		fromProcfs := map[string]float64{"clavis_cpus_online": float64(len(st.CPU)), "clavis_boot_time_seconds": float64(st.BootTime)}
		for id, c := range st.CPU {
			for m, v := range cpuModeSeconds(c) {
				if k := fmt.Sprintf("clavis_cpu_seconds_total,cpu=%d,mode=%s", id, cpuModes[m]); v <= cpuJumpFactor*float64(sinceBoot)+cpuJumpSlack.Seconds() {
					fromProcfs[k] = v
				}
			}
		}
		compareSeries(t, "cpu vs procfs", exported(t, clocked(fs)), fromProcfs)
	})
}

var meminfoKeys = []struct{ key, metric string }{
	{"MemTotal", "clavis_memory_total_bytes"},
	{"MemFree", "clavis_memory_free_bytes"},
	{"MemAvailable", "clavis_memory_available_bytes"},
	{"Buffers", "clavis_memory_buffers_bytes"},
	{"Cached", "clavis_memory_cached_bytes"},
	{"SwapCached", ""},
	{"Active", ""},
	{"SwapTotal", "clavis_memory_swap_total_bytes"},
	{"SwapFree", "clavis_memory_swap_free_bytes"},
	{"Dirty", ""},
	{"HugePages_Total", ""},
	{"Hugepagesize", ""},
}

func TestMemoryAndLoadavgCollectorsMatchKernelAndProcfs(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	rapid.Check(t, func(t *rapid.T) {
		dir := checkDir(t, base)
		var b strings.Builder
		want := map[string]float64{}
		for i, k := range meminfoKeys {
			if i > 0 && rapid.IntRange(0, 4).Draw(t, "omit") == 0 {
				continue // older kernels lack fields (MemAvailable before 3.14)
			}
			v := rapid.Uint64Range(0, 1<<44).Draw(t, "kB")
			if k.key == "HugePages_Total" {
				fmt.Fprintf(&b, "%s: %8d\n", k.key, v) // a count, no unit
				continue
			}
			fmt.Fprintf(&b, "%s: %*d kB\n", k.key, max(1, 15-len(k.key)), v)
			if k.metric != "" {
				want[k.metric] = float64(v) * 1024
			}
		}
		writeProc(t, dir, "meminfo", b.String())
		l := [3]float64{}
		for i := range l {
			l[i] = float64(rapid.IntRange(0, 99999).Draw(t, "load")) / 100
		}
		writeProc(t, dir, "loadavg", fmt.Sprintf("%.2f %.2f %.2f %d/%d %d\n", l[0], l[1], l[2],
			rapid.IntRange(0, 50).Draw(t, "running"), rapid.IntRange(50, 5000).Draw(t, "tasks"), rapid.IntRange(1, 1<<22).Draw(t, "lastpid")))

		fs := rapidProcFS(t, dir)
		compareSeries(t, "memory vs /proc/meminfo", exported(t, newMemoryCollector(fs)), want)
		mi, err := fs.Meminfo()
		if err != nil {
			t.Fatal(err)
		}
		fromProcfs := map[string]float64{}
		for _, f := range []struct {
			name string
			v    *uint64
		}{{"clavis_memory_total_bytes", mi.MemTotalBytes}, {"clavis_memory_free_bytes", mi.MemFreeBytes},
			{"clavis_memory_available_bytes", mi.MemAvailableBytes}, {"clavis_memory_buffers_bytes", mi.BuffersBytes},
			{"clavis_memory_cached_bytes", mi.CachedBytes}, {"clavis_memory_swap_total_bytes", mi.SwapTotalBytes},
			{"clavis_memory_swap_free_bytes", mi.SwapFreeBytes}} {
			if f.v != nil {
				fromProcfs[f.name] = float64(*f.v)
			}
		}
		compareSeries(t, "memory vs procfs", exported(t, newMemoryCollector(fs)), fromProcfs)

		wantLoad := map[string]float64{"clavis_load1": l[0], "clavis_load5": l[1], "clavis_load15": l[2]}
		compareSeries(t, "loadavg vs /proc/loadavg", exported(t, newLoadavgCollector(fs)), wantLoad)
		la, err := fs.LoadAvg()
		if err != nil {
			t.Fatal(err)
		}
		compareSeries(t, "loadavg vs procfs", exported(t, newLoadavgCollector(fs)),
			map[string]float64{"clavis_load1": la.Load1, "clavis_load5": la.Load5, "clavis_load15": la.Load15})
	})
}

func deviceName(t *rapid.T, label string) string {
	return rapid.StringMatching(`[a-z][a-z0-9]{0,9}`).Draw(t, label)
}

func TestNetdevAndDiskstatsCollectorsMatchKernelAndProcfs(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	rapid.Check(t, func(t *rapid.T) {
		dir := checkDir(t, base)
		var b strings.Builder
		b.WriteString("Inter-|   Receive                                                |  Transmit\n")
		b.WriteString(" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n")
		wantNet := map[string]float64{"clavis_network_devices_dropped": 0} // far below the cap
		seen := map[string]bool{}
		for range rapid.IntRange(0, 6).Draw(t, "ifaces") {
			name := deviceName(t, "iface")
			if seen[name] {
				continue
			}
			seen[name] = true
			var v [16]uint64
			for i := range v {
				v[i] = rapid.Uint64Range(0, 1<<50).Draw(t, "netv")
			}
			fmt.Fprintf(&b, "%6s:", name)
			for _, x := range v {
				fmt.Fprintf(&b, " %d", x)
			}
			b.WriteString("\n")
			for metric, i := range map[string]int{"receive_bytes_total": 0, "receive_packets_total": 1, "receive_errs_total": 2,
				"receive_drop_total": 3, "transmit_bytes_total": 8, "transmit_packets_total": 9, "transmit_errs_total": 10, "transmit_drop_total": 11} {
				wantNet["clavis_network_"+metric+",device="+name] = float64(v[i])
			}
		}
		writeProc(t, dir, "net/dev", b.String())

		b.Reset()
		wantDisk := map[string]float64{"clavis_disk_devices_dropped": 0}
		seen = map[string]bool{}
		for range rapid.IntRange(0, 6).Draw(t, "disks") {
			name := deviceName(t, "disk")
			if seen[name] {
				continue
			}
			seen[name] = true
			n := rapid.SampledFrom([]int{11, 15, 17}).Draw(t, "fields") // before 4.18, 4.18+, 5.5+
			v := make([]uint64, n)
			for i := range v {
				v[i] = rapid.Uint64Range(0, 1<<40).Draw(t, "diskv")
			}
			fmt.Fprintf(&b, "%4d %7d %s", rapid.IntRange(0, 259).Draw(t, "major"), rapid.IntRange(0, 1<<20).Draw(t, "minor"), name)
			for _, x := range v {
				fmt.Fprintf(&b, " %d", x)
			}
			b.WriteString("\n")
			wantDisk["clavis_disk_reads_completed_total,device="+name] = float64(v[0])
			wantDisk["clavis_disk_read_bytes_total,device="+name] = float64(v[2]) * 512
			wantDisk["clavis_disk_writes_completed_total,device="+name] = float64(v[4])
			wantDisk["clavis_disk_written_bytes_total,device="+name] = float64(v[6]) * 512
			wantDisk["clavis_disk_io_time_seconds_total,device="+name] = float64(v[9]) / 1000
		}
		writeProc(t, dir, "diskstats", b.String())

		fs := rapidProcFS(t, dir)
		compareSeries(t, "netdev vs /proc/net/dev", exported(t, newNetdevCollector(fs, deviceFilter{})), wantNet)
		nd, err := fs.NetDev()
		if err != nil {
			t.Fatal(err)
		}
		fromProcfs := map[string]float64{"clavis_network_devices_dropped": 0}
		for name, l := range nd {
			for metric, v := range map[string]uint64{"receive_bytes_total": l.RxBytes, "receive_packets_total": l.RxPackets,
				"receive_errs_total": l.RxErrors, "receive_drop_total": l.RxDropped, "transmit_bytes_total": l.TxBytes,
				"transmit_packets_total": l.TxPackets, "transmit_errs_total": l.TxErrors, "transmit_drop_total": l.TxDropped} {
				fromProcfs["clavis_network_"+metric+",device="+name] = float64(v)
			}
		}
		compareSeries(t, "netdev vs procfs", exported(t, newNetdevCollector(fs, deviceFilter{})), fromProcfs)

		block, err := blockdevice.NewFS(dir, "testdata/sys")
		if err != nil {
			t.Fatal(err)
		}
		compareSeries(t, "diskstats vs /proc/diskstats", exported(t, newDiskstatsCollector(block, deviceFilter{})), wantDisk)
		ds, err := block.ProcDiskstats()
		if err != nil {
			t.Fatal(err)
		}
		fromProcfs = map[string]float64{"clavis_disk_devices_dropped": 0}
		for _, d := range ds {
			n := d.DeviceName
			fromProcfs["clavis_disk_reads_completed_total,device="+n] = float64(d.ReadIOs)
			fromProcfs["clavis_disk_read_bytes_total,device="+n] = float64(d.ReadSectors) * 512
			fromProcfs["clavis_disk_writes_completed_total,device="+n] = float64(d.WriteIOs)
			fromProcfs["clavis_disk_written_bytes_total,device="+n] = float64(d.WriteSectors) * 512
			fromProcfs["clavis_disk_io_time_seconds_total,device="+n] = float64(d.IOsTotalTicks) / 1000
		}
		compareSeries(t, "diskstats vs procfs", exported(t, newDiskstatsCollector(block, deviceFilter{})), fromProcfs)
	})
}
