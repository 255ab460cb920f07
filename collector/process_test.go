package collector

import (
	"bytes"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// TestProcessCollectorMatchesClientGolang holds the process collector to
// client_golang's on this very process: the same descriptions (names, help,
// no labels), the same series and types, and values that agree up to what
// moves between two reads.
func TestProcessCollectorMatchesClientGolang(t *testing.T) {
	ours, err := NewProcessCollector("/proc", nil)
	if err != nil {
		t.Fatal(err)
	}
	theirs := collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})

	descs := func(c prometheus.Collector) map[string]bool {
		ch := make(chan *prometheus.Desc, 32)
		c.Describe(ch)
		close(ch)
		m := map[string]bool{}
		for d := range ch {
			m[d.String()] = true
		}
		return m
	}
	wantDescs, gotDescs := descs(theirs), descs(ours)
	for d := range wantDescs {
		if !gotDescs[d] {
			t.Errorf("description missing or different: %s", d)
		}
	}
	if len(gotDescs) != len(wantDescs) {
		t.Errorf("%d descriptions, client_golang has %d", len(gotDescs), len(wantDescs))
	}

	gather := func(c prometheus.Collector) map[string]*dto.MetricFamily {
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(c)
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]*dto.MetricFamily{}
		for _, mf := range mfs {
			m[mf.GetName()] = mf
		}
		return m
	}
	want := gather(theirs)
	got := gather(ours) // read second: counters may only have grown
	if len(got) != len(want) || len(want) != 9 {
		t.Fatalf("%d families, client_golang %d, want 9 each", len(got), len(want))
	}
	value := func(mf *dto.MetricFamily) float64 {
		if len(mf.GetMetric()) != 1 {
			t.Fatalf("%s: %d series", mf.GetName(), len(mf.GetMetric()))
		}
		if c := mf.GetMetric()[0].GetCounter(); c != nil {
			return c.GetValue()
		}
		return mf.GetMetric()[0].GetGauge().GetValue()
	}
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			t.Errorf("%s missing", name)
			continue
		}
		if g.GetType() != w.GetType() || g.GetHelp() != w.GetHelp() {
			t.Errorf("%s: %v %q, client_golang %v %q", name, g.GetType(), g.GetHelp(), w.GetType(), w.GetHelp())
		}
		gv, wv := value(g), value(w)
		var ok2 bool
		switch name {
		case "process_max_fds", "process_virtual_memory_max_bytes":
			ok2 = gv == wv
		case "process_start_time_seconds":
			ok2 = math.Abs(gv-wv) < 1
		case "process_open_fds":
			// Ours keeps /proc/self/{stat,net/netstat,fd} open, procfs
			// opens fd/ while counting.
			ok2 = math.Abs(gv-wv) <= 4
		case "process_virtual_memory_bytes", "process_resident_memory_bytes":
			ok2 = math.Abs(gv-wv) <= 0.25*wv
		case "process_cpu_seconds_total", "process_network_receive_bytes_total", "process_network_transmit_bytes_total":
			// The namespace's traffic and our CPU move on; not backwards.
			ok2 = gv >= wv && gv-wv < 1e9
		default:
			t.Errorf("%s: not compared", name)
		}
		if !ok2 {
			t.Errorf("%s = %v, client_golang %v", name, gv, wv)
		}
	}
}

// writeFixture writes files (relative path → content) under a new
// directory; a path ending in "/" is an empty directory.
func writeFixture(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const (
	fixtureSelfStat = "4242 (clavis (telemetry)) S 1 4242 4242 0 -1 4194560 1201 0 0 0 150 25 0 0 20 0 7 0 12345 1262485504 3226 18446744073709551615 1 1 0 0 0 0 0 0 2143420159 0 0 0 17 1 0 0 0 0 0\n"
	fixtureNetstat  = "TcpExt: SyncookiesSent SyncookiesRecv\nTcpExt: 0 0\nIpExt: InNoRoutes InTruncatedPkts InMcastPkts OutMcastPkts InBcastPkts OutBcastPkts InOctets OutOctets\nIpExt: 0 0 0 0 0 0 987654321 123456789\nMPTcpExt: MPCapableSYNRX\nMPTcpExt: 0\n"
)

// TestProcessCollectorFixture reads a hand-made /proc: values come from the
// right fields (the command name holds spaces and parentheses), and a
// missing netstat leaves out just its two series, logged once as a warning.
func TestProcessCollectorFixture(t *testing.T) {
	dir := writeFixture(t, map[string]string{
		"stat":             "cpu  1 2 3 4\nbtime 1700000000\n",
		"self/stat":        fixtureSelfStat,
		"self/net/netstat": fixtureNetstat,
		"self/fd/0":        "",
		"self/fd/1":        "",
	})
	var logs bytes.Buffer
	c, err := NewProcessCollector(dir, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	page := os.Getpagesize()
	want := func(network bool) string {
		s := `# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 1.75
# HELP process_open_fds Number of open file descriptors.
# TYPE process_open_fds gauge
process_open_fds 2
# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes ` + strconv.Itoa(3226*page) + `
# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.
# TYPE process_start_time_seconds gauge
process_start_time_seconds 1.70000012345e+09
# HELP process_virtual_memory_bytes Virtual memory size in bytes.
# TYPE process_virtual_memory_bytes gauge
process_virtual_memory_bytes 1.262485504e+09
`
		if network {
			s += `# HELP process_network_receive_bytes_total Number of bytes received by the process over the network.
# TYPE process_network_receive_bytes_total counter
process_network_receive_bytes_total 9.87654321e+08
# HELP process_network_transmit_bytes_total Number of bytes sent by the process over the network.
# TYPE process_network_transmit_bytes_total counter
process_network_transmit_bytes_total 1.23456789e+08
`
		}
		return s
	}
	names := []string{"process_cpu_seconds_total", "process_open_fds", "process_resident_memory_bytes",
		"process_start_time_seconds", "process_virtual_memory_bytes",
		"process_network_receive_bytes_total", "process_network_transmit_bytes_total"}
	if err := testutil.CollectAndCompare(c, strings.NewReader(want(true)), names...); err != nil {
		t.Fatal(err)
	}

	if err := os.Remove(filepath.Join(dir, "self/net/netstat")); err != nil {
		t.Fatal(err)
	}
	c.(*processCollector).netstat.Close() // as if the file went away for good
	for range 2 {
		if err := testutil.CollectAndCompare(c, strings.NewReader(want(false)), names...); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Errorf("%d warnings, want 1 for the missing netstat:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "level=DEBUG") || !strings.Contains(logs.String(), "source=netstat") {
		t.Errorf("the repeated failure is not logged at debug level:\n%s", logs.String())
	}
}

func TestNewProcessCollectorNeedsProc(t *testing.T) {
	if _, err := NewProcessCollector(t.TempDir(), nil); err == nil {
		t.Fatal("no error for a directory without stat")
	}
	dir := writeFixture(t, map[string]string{"stat": "cpu  1 2 3 4\n", "self/stat": fixtureSelfStat, "self/fd/": ""})
	if _, err := NewProcessCollector(dir, nil); err == nil || !strings.Contains(err.Error(), "btime") {
		t.Fatalf("err = %v, want a missing btime error", err)
	}
}

func TestParseSelfStat(t *testing.T) {
	st, err := parseSelfStat([]byte(fixtureSelfStat))
	if err != nil {
		t.Fatal(err)
	}
	if want := (selfStat{utime: 150, stime: 25, startTicks: 12345, vsize: 1262485504, rssPages: 3226}); st != want {
		t.Fatalf("got %+v, want %+v", st, want)
	}
	for name, bad := range map[string]string{
		"empty":              "",
		"no command":         "4242 clavis S 1 2 3",
		"short":              "4242 (x) S 1 4242 4242 0 -1 4194560 1201 0 0 0 150",
		"utime not a number": strings.Replace(fixtureSelfStat, " 150 ", " 15x ", 1),
		"negative rss":       strings.Replace(fixtureSelfStat, " 3226 ", " -1 ", 1),
	} {
		if _, err := parseSelfStat([]byte(bad)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestParseNetstatOctets(t *testing.T) {
	in, out, err := parseNetstatOctets([]byte(fixtureNetstat))
	if err != nil || in != 987654321 || out != 123456789 {
		t.Fatalf("got %d %d %v", in, out, err)
	}
	if in, out, err := parseNetstatOctets([]byte("TcpExt: A\nTcpExt: 1\n")); err != nil || in != 0 || out != 0 {
		t.Fatalf("no IpExt: got %d %d %v, want 0 0 nil (client_golang exports 0)", in, out, err)
	}
	for name, bad := range map[string]string{
		"names only":   "IpExt: InOctets OutOctets\n",
		"fewer values": "IpExt: InOctets OutOctets\nIpExt: 5\n",
		"more values":  "IpExt: InOctets\nIpExt: 5 6\n",
		"bad number":   "IpExt: InOctets OutOctets\nIpExt: 5 -6\n",
	} {
		if _, _, err := parseNetstatOctets([]byte(bad)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// FuzzProcessParsers: whatever the kernel (or a fixture) hands over, the
// parsers return values or an error, never panic.
func FuzzProcessParsers(f *testing.F) {
	f.Add([]byte(fixtureSelfStat))
	f.Add([]byte(fixtureNetstat))
	f.Add([]byte("IpExt: InOctets OutOctets\nIpExt: 5\n"))
	f.Add([]byte("1 ((((\n) ) ) 1 2"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseSelfStat(b)
		_, _, _ = parseNetstatOctets(b)
	})
}

// BenchmarkProcessCollector compares one gather of the process metrics with
// client_golang's collector, in the same run.
func BenchmarkProcessCollector(b *testing.B) {
	ours, err := NewProcessCollector("/proc", nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		c    prometheus.Collector
	}{{"clavis", ours}, {"client_golang", collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})}} {
		reg := prometheus.NewRegistry()
		reg.MustRegister(c.c)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := reg.Gather(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestCountFDsBothPathsOnRealProc runs both ways of counting descriptors on
// this machine's /proc: the directory size (Linux 6.2 and later) and the
// listing that older kernels need, which the fixture test can only reach on
// a plain directory. Both must agree and follow files being opened.
func TestCountFDsBothPathsOnRealProc(t *testing.T) {
	c, err := NewProcessCollector("/proc", nil)
	if err != nil {
		t.Fatal(err)
	}
	pc := c.(*processCollector)
	defer pc.fdDir.Close()
	count := func(sized bool) int {
		t.Helper()
		pc.fdSized = sized
		n, err := pc.countFDs()
		if err != nil {
			t.Fatalf("countFDs (sized=%v): %v", sized, err)
		}
		return n
	}
	// Other tests' goroutines may open or close a file in between, so
	// agreement is wanted in one of a few back-to-back tries.
	agree := func() int {
		t.Helper()
		var listed, sized int
		for range 5 {
			listed, sized = count(false), count(true)
			if listed == sized {
				return listed
			}
		}
		t.Fatalf("listing counts %d descriptors, the directory size says %d", listed, sized)
		return 0
	}
	if !pc.fdSized {
		// A kernel before 6.2: the listing is the only path; still check
		// it counts.
		if n := count(false); n < 3 {
			t.Fatalf("listing counts %d descriptors, want at least stdin, stdout, stderr", n)
		}
		t.Skip("procfs reports no size for fd directories on this kernel (before 6.2)")
	}
	before := agree()
	const extra = 4
	for range extra {
		f, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
	}
	if after := agree(); after < before+extra {
		t.Fatalf("%d descriptors after opening %d more, %d before", after, extra, before)
	}
}
