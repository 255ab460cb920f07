package main

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/clavitor/clavis-telemetry/internal/accesslog"
)

// The smoke test of the driver that make test runs; the benchmark itself
// is make bench (bench/pop.sh).

func TestParseStat(t *testing.T) {
	t.Parallel()
	// A command name with spaces and a ')' must not shift the fields.
	line := []byte("4242 (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 150 25 7 3 20 0 1 0 12345 1000000 200 18446744073709551615")
	got, err := parseStat(line)
	if err != nil || got != 150+25+7+3 {
		t.Fatalf("parseStat = %d, %v; want 185", got, err)
	}
	if _, err := parseStat([]byte("4242 (x) S 1 2")); err == nil {
		t.Error("short stat accepted")
	}
	self, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Fatalf("/proc/self/stat: %v (the benchmark needs /proc)", err)
	}
	if _, err := parseStat(self); err != nil {
		t.Errorf("the kernel's own stat line: %v", err)
	}
}

func TestParseStatusAndSample(t *testing.T) {
	t.Parallel()
	rss, hwm, threads, err := parseStatus([]byte("Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\nThreads:\t5\n"))
	if err != nil || rss != 1024 || hwm != 2048 || threads != 5 {
		t.Fatalf("parseStatus = %d %d %d %v", rss, hwm, threads, err)
	}
	if _, _, _, err := parseStatus([]byte("Name:\tx\n")); err == nil {
		t.Error("status without VmRSS accepted")
	}
	s := sampleProc(os.Getpid())
	if !s.Available || s.RSSKiB == 0 || s.HWMKiB < s.RSSKiB || s.FDs < 3 || s.Threads < 1 {
		t.Errorf("sample of this process: %+v", s)
	}
	ns, err := cpuNanos(os.Getpid())
	if err != nil || ns == 0 {
		t.Errorf("cpuNanos = %d, %v", ns, err)
	}
	if _, err := parseSchedstat([]byte("12 34\n")); err == nil {
		t.Error("short schedstat accepted")
	}
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	var ds []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for p, want := range map[float64]time.Duration{50: 50 * time.Millisecond, 99: 99 * time.Millisecond, 100: 100 * time.Millisecond, 0: time.Millisecond} {
		if got := percentile(ds, p); got != want {
			t.Errorf("p%v = %v, want %v", p, got, want)
		}
	}
	if percentile(nil, 99) != 0 || ds[0] != 100*time.Millisecond {
		t.Error("empty input, or the input was sorted in place")
	}
	if got := windowP99(ds, 10); got != 100*time.Millisecond {
		t.Errorf("windowP99 = %v", got)
	}
}

func TestMetricValue(t *testing.T) {
	t.Parallel()
	body := []byte("# HELP go_goroutines x\n# TYPE go_goroutines gauge\ngo_goroutines 27\ngo_goroutines_extra 5\n" +
		"http_requests_total{method=\"GET\",code=\"2\"} 10\nhttp_requests_total{method=\"a}b\",code=\"5\"} 2.5 1700000000\n")
	if v, ok := metricValue(body, "go_goroutines"); !ok || v != 27 {
		t.Errorf("go_goroutines = %v, %v", v, ok)
	}
	if v, ok := metricValue(body, "http_requests_total"); !ok || v != 12.5 {
		t.Errorf("http_requests_total = %v, %v", v, ok)
	}
	keys, vals := labelledValues([]byte("x{collector=\"cpu\"} 0.5\nx{a=\"b\",collector=\"vault\"} 2\nxy{collector=\"no\"} 1\n"), "x", "collector")
	if len(keys) != 2 || keys[0] != "cpu" || vals["cpu"] != 0.5 || vals["vault"] != 2 {
		t.Errorf("labelledValues = %v %v", keys, vals)
	}
	if _, ok := metricValue(body, "missing"); ok {
		t.Error("missing family found")
	}
}

func TestGrowth(t *testing.T) {
	t.Parallel()
	if g := growth([]float64{10, 10, 10, 11, 11, 11}); g < 0.099 || g > 0.101 {
		t.Errorf("growth = %v, want 0.1", g)
	}
	if a, b := firstLastMax([]float64{3, 5, 1, 1, 2, 4}); a != 5 || b != 4 {
		t.Errorf("firstLastMax = %v, %v", a, b)
	}
}

// The generated log is what both sides must parse: every line is a valid
// combined line with a request time for clavis's parser and matches the
// mtail program's regular expression, and the mix has IPv4 and IPv6
// clients, several methods and code classes.
func TestLogGenParsesOnBothSides(t *testing.T) {
	t.Parallel()
	prog, err := os.ReadFile("../accesslog.mtail")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^/(\^.*\$)/ \{$`).FindSubmatch(prog)
	if m == nil {
		t.Fatal("no regular expression found in bench/accesslog.mtail")
	}
	re := regexp.MustCompile(string(m[1]))
	g := newLogGen(1, 50_000)
	methods, classes := map[string]bool{}, map[int]bool{}
	v4, v6 := 0, 0
	now := time.Date(2026, 12, 1, 21, 0, 0, 0, time.UTC)
	for range 5000 {
		line := g.line(nil, now)
		if !bytes.HasSuffix(line, []byte("\n")) {
			t.Fatalf("no newline: %q", line)
		}
		line = line[:len(line)-1]
		var r accesslog.Record
		if err := accesslog.ParseCombined(line, &r); err != nil || !r.HasDuration {
			t.Fatalf("clavis's parser: %v (duration %v) on %q", err, r.HasDuration, line)
		}
		if !re.Match(line) {
			t.Fatalf("the mtail program's regexp does not match %q", line)
		}
		methods[r.Method.String()] = true
		classes[r.Status/100] = true
		if strings.Contains(string(r.Remote), ":") {
			v6++
		} else {
			v4++
		}
	}
	if len(methods) < 6 || len(classes) < 4 || v6 < 500 || v4 < 2500 {
		t.Errorf("mix too narrow: methods %v, classes %v, v4 %d, v6 %d", methods, classes, v4, v6)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	good := options{duration: time.Minute, scrapeEvery: time.Second, sampleEvery: 10 * time.Second,
		peerVaultEvery: time.Minute, tarpitInterval: 10 * time.Second, linesPerSec: 2000, ssh: 300, httpScanners: 20,
		vaults: 100_000, vaultOps: 10, burst: 300}
	if err := validate(good); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*options){
		"short":     func(o *options) { o.duration = time.Second },
		"no scrape": func(o *options) { o.scrapeEvery = 0 },
		"negative":  func(o *options) { o.vaults = -1 },
		"no burst":  func(o *options) { o.burst = 0 },
		"too many":  func(o *options) { o.ssh = 5000 },
	} {
		o := good
		mut(&o)
		if validate(o) == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// The peer's vault count follows the same rules as clavis's index.
func TestPeerVaultCount(t *testing.T) {
	t.Parallel()
	dir, text := t.TempDir(), t.TempDir()
	for _, n := range []string{"a.db", "b.db", "c.db-wal", "d.tmp", ".e"} {
		if err := createVault(dir, n, 1000); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink("a.db", dir+"/link.db")
	os.Mkdir(dir+"/sub.db", 0o700)
	l := &peerVaultLoop{dir: dir, textDir: text}
	if err := l.once(); err != nil {
		t.Fatal(err)
	}
	out, err := os.ReadFile(text + "/vault.prom")
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "clavis_vaults 2\nclavis_vault_storage_bytes 2000\n" || l.last.Load() != 2 {
		t.Errorf("textfile %q, last %d", out, l.last.Load())
	}
}

func TestFreePortDistinctAndBindable(t *testing.T) {
	t.Parallel()
	taken := map[int]bool{}
	for range 20 {
		p, err := freePort(taken)
		if err != nil || p < 20000 || p >= 32000 {
			t.Fatalf("freePort = %d, %v", p, err)
		}
	}
	if len(taken) != 20 {
		t.Errorf("%d distinct ports of 20", len(taken))
	}
}
