package collector

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestCPUAndLoadavgRejectNonFinite: NaN, infinities and negative values,
// which procfs's float parsing lets through, fail the collector with a
// message that quotes nothing of the file.
func TestCPUAndLoadavgRejectNonFinite(t *testing.T) {
	t.Parallel()
	for _, stat := range []string{
		"cpu0 NaN 1 1 1 1 1 1 1 0 0\nbtime 100\n",
		"cpu0 1 +Inf 1 1 1 1 1 1 0 0\nbtime 100\n",
		"cpu0 1 1 -Inf 1 1 1 1 1 0 0\nbtime 100\n",
		"cpu0 1 1 1 -5 1 1 1 1 0 0\nbtime 100\n",
		"cpu-3 1 1 1 1 1 1 1 1 0 0\nbtime 100\n",
	} {
		proc := t.TempDir()
		if err := os.WriteFile(filepath.Join(proc, "stat"), []byte("cpu 1 1 1 1 1 1 1 1 0 0\n"+stat), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := collectAll(newCPUCollector(mustProcFS(t, proc), nil)); err == nil || !strings.HasPrefix(err.Error(), "reading stat: ") {
			t.Errorf("stat %q: err %v, want a reading stat error", stat, err)
		}
	}
	for _, la := range []string{"NaN 1 1 1/2 3\n", "1 +Inf 1 1/2 3\n", "1 1 -Inf 1/2 3\n", "-1 1 1 1/2 3\n"} {
		proc := t.TempDir()
		if err := os.WriteFile(filepath.Join(proc, "loadavg"), []byte(la), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := collectAll(newLoadavgCollector(mustProcFS(t, proc))); err == nil || strings.Contains(err.Error(), la[:3]) {
			t.Errorf("loadavg %q: err %v, want one that quotes nothing", la, err)
		}
	}
}

// TestCPUOneAbsurdReadingDoesNotStick: one reading far beyond what the
// elapsed time allows is not adopted, so the counter is not held there by
// the backwards clamp; the next sane reading is reported.
func TestCPUOneAbsurdReadingDoesNotStick(t *testing.T) {
	t.Parallel()
	proc := t.TempDir()
	c := newCPUCollector(mustProcFS(t, proc), nil)
	now := time.Unix(1_000_000, 0)
	c.now = func() time.Time { return now }
	for i, tc := range []struct {
		user string
		want float64
	}{
		{"10000", 100}, {"1e300", 100}, {"20000", 200}, {"30000", 300},
	} {
		ms := collectCPU0User(t, c, proc, tc.user)
		for _, m := range ms {
			if s := metricSample(t, m); s.labels["mode"] == "user" && s.value != tc.want {
				t.Errorf("round %d: user %v, want %v", i, s.value, tc.want)
			}
		}
		now = now.Add(100 * time.Second)
	}
}

// collectCPU0User writes a /proc/stat whose cpu0 has user ticks user
// (booted at 100 s) and collects c once.
func collectCPU0User(t *testing.T, c *cpuCollector, proc, user string) []prometheus.Metric {
	t.Helper()
	stat := "cpu 1 1 1 1 1 1 1 1 0 0\ncpu0 " + user + " 1 1 1 1 1 1 1 0 0\nbtime 100\n"
	if err := os.WriteFile(filepath.Join(proc, "stat"), []byte(stat), 0o644); err != nil {
		t.Fatal(err)
	}
	ms, err := collectAll(c)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// TestCPUAbsurdFirstReadingIsNotAdopted: a first reading beyond the time
// since boot has nothing earlier to be compared with; it is not exported
// (nor adopted, which would hold the counter there for good), and the
// first sane reading after it is.
func TestCPUAbsurdFirstReadingIsNotAdopted(t *testing.T) {
	t.Parallel()
	proc := t.TempDir()
	c := newCPUCollector(mustProcFS(t, proc), nil)
	now := time.Unix(100+1000, 0) // 1,000 s after btime 100
	c.now = func() time.Time { return now }
	for i, tc := range []struct {
		user    string
		want    float64
		present bool
	}{
		{"1e300", 0, false}, {"900000", 0, false}, {"50000", 500, true}, {"60000", 600, true},
	} {
		ms := collectCPU0User(t, c, proc, tc.user)
		found, system := false, false
		for _, m := range ms {
			s := metricSample(t, m)
			switch s.labels["mode"] {
			case "user":
				found = true
				if s.value != tc.want {
					t.Errorf("round %d: user %v, want %v", i, s.value, tc.want)
				}
			case "system":
				system = true
			}
		}
		if found != tc.present {
			t.Errorf("round %d: user series present %v, want %v", i, found, tc.present)
		}
		if !system {
			t.Errorf("round %d: the sane modes beside it were not exported", i)
		}
		now = now.Add(100 * time.Second)
	}
}

// TestProcfsErrorsQuoteNothing: procfs quotes the line it could not parse;
// the collectors' errors (which are logged) do not.
func TestProcfsErrorsQuoteNothing(t *testing.T) {
	t.Parallel()
	proc := t.TempDir()
	for name, content := range map[string]string{
		"meminfo":   "MemTotal /home/alice x y z\n",
		"stat":      "cpu0 /home/alice 1 1 1 1 1 1 1 0 0\nbtime 1\n",
		"loadavg":   "/home/alice 1 1 1/1 1\n",
		"diskstats": "254 0 /home/alice x 0 8 0 1 0 8 0 0 0 0\n",
	} {
		if err := os.WriteFile(filepath.Join(proc, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fs := mustProcFS(t, proc)
	memory, cpu := newMemoryCollector(fs), newCPUCollector(fs, nil)
	memory.procRoot, cpu.procRoot = proc, proc // salvaging quotes nothing either
	for name, c := range map[string]Collector{
		"memory":    memory,
		"cpu":       cpu,
		"loadavg":   newLoadavgCollector(fs),
		"diskstats": newDiskstatsCollector(mustBlockFS(t, proc), deviceFilter{}),
	} {
		_, err := collectAll(c)
		if err == nil || strings.Contains(err.Error(), "alice") {
			t.Errorf("%s: err %v, want one that quotes nothing of the file", name, err)
		}
	}
}
