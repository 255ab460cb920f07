package collector

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/procfs/blockdevice"
)

// systemCollectors builds the six system collectors over a proc tree, with
// their default filters and a statfs that answers at once.
func systemCollectors(t *testing.T, proc string) []Named {
	t.Helper()
	return systemCollectorsAt(t, proc, "testdata/sys", func(string) (fsStats, error) { return fakeStats, nil })
}

// systemCollectorsAt builds the six system collectors over a proc and a sys
// tree with their default filters. The directories are opened as the flags'
// factories open them, but an empty proc tree must still be accepted here:
// the tests check how each collector fails at scrape time.
func systemCollectorsAt(t testing.TB, proc, sys string, stat statFunc) []Named {
	t.Helper()
	fs := mustProcFS(t, proc)
	block, err := blockdevice.NewFS(proc, sys)
	if err != nil {
		t.Fatal(err)
	}
	cfg := defaultFilesystemConfig(t, proc, stat)
	cpu := newCPUCollector(fs, nil)
	cpu.procRoot = proc // as the factories set them
	memory := newMemoryCollector(fs)
	memory.procRoot = proc
	netdev := newNetdevCollector(fs, deviceFilter{exclude: mustRegexpFlag(t, "^lo$")})
	netdev.procRoot = proc
	disk := newDiskstatsCollector(block, deviceFilter{exclude: mustRegexpFlag(t, defaultDiskstatsExclude)})
	disk.procRoot = proc
	if proc == "/proc" {
		cfg.rootfs = "/"
	}
	return []Named{
		{"cpu", cpu},
		{"memory", memory},
		{"loadavg", newLoadavgCollector(fs)},
		{"filesystem", newFilesystemCollector(cfg)},
		{"diskstats", disk},
		{"netdev", netdev},
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
