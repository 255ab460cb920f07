package collector

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// systemCollectors builds the six system collectors over a proc tree, with
// their default filters and a statfs that answers at once.
func systemCollectors(t *testing.T, proc string) []Named {
	t.Helper()
	cfg := defaultFilesystemConfig(t, proc, func(string) (fsStats, error) { return fakeStats, nil })
	return []Named{
		{"cpu", newCPUCollector(proc, nil)},
		{"memory", newMemoryCollector(proc)},
		{"loadavg", newLoadavgCollector(proc)},
		{"filesystem", newFilesystemCollector(cfg)},
		{"diskstats", newDiskstatsCollector(proc, deviceFilter{exclude: mustRegexpFlag(t, defaultDiskstatsExclude)})},
		{"netdev", newNetdevCollector(proc, deviceFilter{exclude: mustRegexpFlag(t, "^lo$")})},
	}
}

// assertAllFail scrapes the collectors through the real scraper and checks
// that each one reports success 0 and logs why, and that the scrape itself
// still succeeds.
func assertAllFail(t *testing.T, cs []Named, why string) {
	t.Helper()
	var logs bytes.Buffer
	s := NewScraper(cs, 5*time.Second, slog.New(slog.NewTextHandler(&logs, nil)))
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(s)
	var want strings.Builder
	want.WriteString(successHelp)
	for _, name := range []string{"cpu", "diskstats", "filesystem", "loadavg", "memory", "netdev"} {
		want.WriteString(`clavis_scrape_collector_success{collector="` + name + `"} 0` + "\n")
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want.String()), "clavis_scrape_collector_success"); err != nil {
		t.Fatalf("%s: %v", why, err)
	}
	for _, c := range cs {
		if !strings.Contains(logs.String(), "collector="+c.Name) {
			t.Errorf("%s: no log line for collector %s; log:\n%s", why, c.Name, logs.String())
		}
	}
	t.Logf("%s:\n%s", why, logs.String())
}

// TestSystemCollectorsGarbledInput: every file of testdata/proc-garbled is
// broken in its own way (letters where numbers belong, a net/dev line with
// three columns, a mountinfo line without its separator).
func TestSystemCollectorsGarbledInput(t *testing.T) {
	t.Parallel()
	assertAllFail(t, systemCollectors(t, "testdata/proc-garbled"), "garbled /proc")
}

// TestSystemCollectorsMissingFiles: an empty /proc (nothing to read, not
// even a mount table to fall back on).
func TestSystemCollectorsMissingFiles(t *testing.T) {
	t.Parallel()
	assertAllFail(t, systemCollectors(t, t.TempDir()), "empty /proc")
}

// TestSystemCollectorsUnreadableFiles: every file is a directory, which no
// read can get through, even as root.
func TestSystemCollectorsUnreadableFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, f := range []string{"stat", "meminfo", "loadavg", "diskstats", "net/dev", "1/mountinfo", "self/mountinfo"} {
		if err := os.MkdirAll(filepath.Join(dir, f), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	assertAllFail(t, systemCollectors(t, dir), "unreadable /proc")
}

// FuzzSystemCollectors writes the same arbitrary bytes into every file the
// system collectors read and calls Update directly (not under the scraper,
// which would hide a panic): an error is fine, a panic is not.
func FuzzSystemCollectors(f *testing.F) {
	for _, name := range []string{"stat", "meminfo", "loadavg", "diskstats", "net/dev", "1/mountinfo"} {
		for _, tree := range []string{fixtureProc, "testdata/proc-garbled"} {
			if b, err := os.ReadFile(filepath.Join(tree, name)); err == nil {
				f.Add(b)
			}
		}
	}
	// One directory and one set of collectors per fuzzing process, the
	// files rewritten for every input: the body runs sequentially within a
	// worker, and building everything per input slows the fuzzer to a crawl.
	// Reusing the cpu collector also exercises its clamping memory.
	dir := f.TempDir()
	var collectors []Named
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, name := range []string{"stat", "meminfo", "loadavg", "diskstats", "net/dev", "1/mountinfo"} {
			p := filepath.Join(dir, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if collectors == nil {
			collectors = systemCollectors(t, dir)
		}
		for _, c := range collectors {
			done := make(chan struct{})
			go func() {
				defer close(done)
				_, _ = collectAll(c.Collector)
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second): // liveness, not performance
				buf := make([]byte, 1<<20)
				t.Fatalf("collector %s did not return:\n%s", c.Name, buf[:runtime.Stack(buf, true)])
			}
		}
	})
}
